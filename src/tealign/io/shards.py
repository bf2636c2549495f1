"""Streaming, parallel writers of MACE-ready shard directories, and the executors running them.

A :class:`ShardWriter` takes :class:`~tealign.io.frames.FrameBatch` chunks of one split and
hands every ``shard_size`` frames to a worker that writes one shard file:

- ``h5``: MACE's sharded HDF5 (``<prefix>_<k>.h5``, written by mace-torch's own
  ``save_configurations_as_HDF5``) plus the ``<DIR>.meta.jsonl`` sidecar of
  :mod:`tealign.io.mace_h5`;
- ``lmdb``: fairchem's ASE-LMDB (``<prefix>_<k>.aselmdb``, rows with a
  ``SinglePointCalculator``'s energy/forces/stress plus MACE's ``data``, each file's map
  sized to its data), which ASE, fairchem's ``AseDBDataset`` and mace-torch 0.3.16's
  ``LMDBDataset`` read (:mod:`tealign.io.lmdb`).

An :class:`Executor` runs the workers: in this process (``workers=1``), in a local process
pool (``workers>1``) or on a Dask cluster (``scheduler=ADDRESS``, the workers must see the
output directory). At most ``2 × slots`` shards are in flight, so memory is bounded by a few
shards whatever the number of frames.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
from collections import deque
from pathlib import Path

import numpy as np

from tealign.io.atomic import remove_inside
from tealign.io.frames import FrameBatch
from tealign.workers import init_worker

SHARD_SIZE = 10_000
FORMATS = ("lmdb", "h5")
#: Neighbour counts for MACE's ``avg_num_neighbors`` come from at most this many training
#: frames, spread evenly over the split (a stride that doubles as the split grows).
NEIGHBOR_SAMPLE = 2048


class _Done:
    """A finished future (work run in this process)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value

    def done(self) -> bool:
        return True


def _below_the_reader() -> None:
    """Local workers yield the CPU to the process that reads and aligns (the producer is
    what limits a merge on few cores); they only need to keep up with it."""
    with contextlib.suppress(OSError):
        os.nice(5)


class Executor:
    """Where shard (and formatting) work runs: inline, local processes or a Dask cluster."""

    def __init__(self, workers: int = 1, scheduler=None):
        self._pool = self._client = None
        self._own_client = False
        self._inflight: deque = deque()
        if scheduler is not None:
            from distributed import Client

            if isinstance(scheduler, Client):
                self._client = scheduler
            else:
                self._client = Client(scheduler)
                self._own_client = True
            self.slots = max(1, sum(self._client.nthreads().values()))
        elif workers > 1:
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx,
                                             initializer=init_worker(_below_the_reader))
            self.slots = workers
        else:
            self.slots = 1

    @property
    def parallel(self) -> bool:
        return self._pool is not None or self._client is not None

    def submit(self, fn, *args):
        """Run ``fn(*args)`` somewhere; blocks while ``2 × slots`` tasks are in flight."""
        if not self.parallel:
            return _Done(fn(*args))
        while len(self._inflight) >= 2 * self.slots:
            self._inflight[0].result()  # raises a worker's exception here
            while self._inflight and self._inflight[0].done():
                self._inflight.popleft()
        fut = (self._client.submit(fn, *args, pure=False) if self._client is not None
               else self._pool.submit(fn, *args))
        self._inflight.append(fut)
        return fut

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None and self._own_client:
            self._client.close()
        self._client = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def shard_files(path: str | os.PathLike, suffixes: tuple[str, ...]) -> list[Path]:
    """The shard files of a directory (those with one of ``suffixes``) in shard order
    (``name_0``, ``name_1``, …, ``name_10``), or ``[path]`` for one file."""
    import re

    p = Path(path)
    if p.is_file():
        return [p]

    def order(f: Path):
        m = re.search(r"(\d+)$", f.stem)
        return (f.stem[: m.start()] if m else f.stem, int(m.group(1)) if m else -1)

    return sorted((f for f in p.iterdir() if f.suffix in suffixes), key=order)


def existing_shards(path: str | os.PathLike, suffixes: tuple[str, ...]) -> list[Path]:
    """:func:`shard_files`, where a missing path or a directory without shards is a setup
    error."""
    from tealign.errors import SetupError

    p = Path(path)
    if not p.exists():
        raise SetupError("no such file or directory", file=str(p))
    files = shard_files(p, suffixes)
    if not files:
        raise SetupError(f"directory holds no {suffixes[0]} shards", file=str(p))
    return files


def write_shards(fmt: str, batches, shard_dir: str | os.PathLike, *, keys=None,
                 weights: dict[str, float] | None = None, prefix: str | None = None,
                 shard_size: int | None = None, workers: int = 1, scheduler=None) -> int:
    """Write frames as one shard directory of ``fmt`` (``h5`` or ``lmdb``), atomically (with
    the HDF5 sidecar for ``h5``); returns frames written.

    ``keys`` (a :class:`~tealign.keys.Keys`, default ``REF_*``) names where each MACE
    property lives in the frames; a frame lacking one gets weight 0 for it (as mace-torch's
    ``config_from_atoms`` does). ``weights`` gives default property weights (e.g.
    ``{"stress": 0.0}`` for molecules); ``config_<name>_weight`` in a frame's info overrides
    them. Shards are written by ``workers`` processes (or on a Dask ``scheduler``); memory
    is bounded by a few shards of ``shard_size`` frames.
    """
    from tealign.io.atomic import atomic_path
    from tealign.io.mace_h5 import sidecar_path
    from tealign.keys import REF

    shard_dir = Path(shard_dir)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(shard_dir))
        side = {"sidecar": stack.enter_context(atomic_path(sidecar_path(shard_dir)))} \
            if fmt == "h5" else {}
        ex = stack.enter_context(Executor(workers, scheduler))
        w = ShardWriter(tmp, fmt, ex, keys=(keys or REF).as_dict(), weights=weights,
                        prefix=prefix or shard_dir.name, shard_size=shard_size or SHARD_SIZE,
                        **side)
        for batch in batches:
            w.add(batch)
        return w.close()


class ShardWriter:
    """Frames of one split → a shard directory (``h5`` or ``lmdb``), written by workers.

    ``keys`` maps MACE's property names (energy, forces, stress, virials) to the keys the
    frames carry them under; ``weights`` are default property weights (a frame's
    ``config_<name>_weight`` overrides them). With ``sample_neighbors`` the workers count
    neighbours within ``r_max`` (mace-torch's own neighbour list) on an evenly spread sample
    of frames, for ``statistics.json``.
    """

    def __init__(self, shard_dir: str | os.PathLike, fmt: str, executor: Executor, *,
                 keys: dict[str, str] | None = None, weights: dict[str, float] | None = None,
                 prefix: str | None = None, shard_size: int = SHARD_SIZE,
                 sidecar: str | os.PathLike | None = None, r_max: float | None = None,
                 sample_neighbors: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
        from tealign.io.mace_h5 import MACE_KEYS, sidecar_path

        self.dir = Path(shard_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fmt, self.executor = fmt, executor
        self.keys = {**MACE_KEYS, **(keys or {})}
        self.weights = dict(weights or {})
        self.prefix = prefix or self.dir.name
        self.shard_size = shard_size
        self.sidecar = Path(sidecar) if sidecar else sidecar_path(self.dir)
        self.r_max = r_max
        self.sample = sample_neighbors and r_max is not None
        self.stride = 1
        self.neighbors: dict[int, tuple[int, int]] = {}  # frame → (edges, atoms with edges)
        self.pending: list[FrameBatch] = []
        self.n_pending = 0
        self.n = 0  # frames handed to workers
        self.futures: deque = deque()
        self.shard = 0
        from tealign._mace import import_mace

        import_mace()  # quietly (tealign._mace), once, before the workers fork
        import mace.data.neighborhood  # noqa: F401
        if fmt == "h5":
            import mace.data.utils  # noqa: F401
        else:
            import lmdb  # noqa: F401

    def add(self, batch: FrameBatch) -> None:
        """Queue frames; every ``shard_size`` of them go to a worker as one shard."""
        start, n = 0, batch.n_frames
        while start < n:
            take = min(n - start, self.shard_size - self.n_pending)
            if start == 0 and take == n:
                part = batch
            else:
                keep = np.zeros(n, dtype=bool)
                keep[start:start + take] = True
                part = batch.select(keep)
            self.pending.append(part)
            self.n_pending += take
            start += take
            if self.n_pending >= self.shard_size:
                self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        ext = "h5" if self.fmt == "h5" else "aselmdb"
        path = self.dir / f"{self.prefix}_{self.shard}.{ext}"
        fn = _write_h5_shard if self.fmt == "h5" else _write_lmdb_shard
        if self.sample:
            while self.n + self.n_pending > self.stride * NEIGHBOR_SAMPLE:
                self.stride *= 2
        stride = self.stride if self.sample else 0
        fut = self.executor.submit(fn, str(path), self.pending, self.n, self.keys,
                                   self.weights, stride, self.r_max)
        self.futures.append(fut)
        self.n += self.n_pending
        self.shard += 1
        self.pending, self.n_pending = [], 0
        self._collect(block=False)

    def _collect(self, block: bool) -> None:
        while self.futures and (block or self.futures[0].done()):
            res = self.futures.popleft().result()
            self.neighbors.update(res["neighbors"])
            if len(self.neighbors) > 2 * NEIGHBOR_SAMPLE:
                self._prune()

    def _prune(self) -> None:
        self.neighbors = {k: v for k, v in self.neighbors.items() if k % self.stride == 0}

    def close(self) -> int:
        """Write what is pending, wait for the workers; returns the frames written."""
        self._flush()
        self._collect(block=True)
        self._prune()
        if self.fmt == "h5":
            parts = [self.dir / f".{self.prefix}_{k}.meta.part" for k in range(self.shard)]
            with open(self.sidecar, "wb") as out:
                for part in parts:
                    with open(part, "rb") as fh:
                        while chunk := fh.read(1 << 22):
                            out.write(chunk)
                    remove_inside(self.dir, part)
        return self.n

    def avg_num_neighbors(self) -> float | None:
        """Mean neighbour count over sampled atoms that have neighbours (mace-torch's
        definition in ``compute_statistics``); None without a sample."""
        edges = sum(v[0] for v in self.neighbors.values())
        atoms = sum(v[1] for v in self.neighbors.values())
        return edges / atoms if atoms else None


def _neighbor_counts(batch: FrameBatch, frame0: int, stride: int, r_max: float) -> dict:
    from tealign._mace import import_mace

    import_mace()
    from mace.data.neighborhood import get_neighborhood

    out = {}
    if not stride:
        return out
    first = (-frame0) % stride
    for i in range(first, batch.n_frames, stride):
        a, b = batch.offsets[i], batch.offsets[i + 1]
        edge_index, *_ = get_neighborhood(
            positions=np.asarray(batch.positions[a:b], dtype=float), cutoff=r_max,
            pbc=tuple(bool(x) for x in batch.pbc[i]), cell=np.array(batch.cell[i], float))
        receivers = edge_index[1]
        out[frame0 + i] = (int(receivers.size), int(np.unique(receivers).size))
    return out


def _write_h5_shard(path: str, batches: list[FrameBatch], frame0: int, keys: dict,
                    weights: dict, stride: int, r_max: float | None) -> dict:
    """One MACE HDF5 shard through mace-torch's writer, and its sidecar part."""
    import json

    import h5py

    from tealign._mace import import_mace

    import_mace()
    from mace.data.utils import save_configurations_as_HDF5

    from tealign.io.mace_h5 import _config, _jsonable

    mace_info = {keys["energy"], keys["stress"], keys["virials"], "config_type",
                 "config_weight"} | {f"config_{n}_weight" for n in keys}
    mace_arrays = {keys["forces"]}
    p = Path(path)
    configs, lines, neighbors = [], [], {}
    n = frame0
    for batch in batches:
        if stride:
            neighbors.update(_neighbor_counts(batch, n, stride, r_max))
        for i in range(batch.n_frames):
            rec = batch.record(i)
            configs.append(_config(rec, keys, weights))
            extra_info = {k: _jsonable(v) for k, v in rec.info.items() if k not in mace_info}
            extra_arrays = {k: _jsonable(np.asarray(v)) for k, v in rec.arrays.items()
                            if k not in mace_arrays}
            lines.append(json.dumps({"frame": n, "info": extra_info, "arrays": extra_arrays}))
            n += 1
    # HDF5 builds the shard in memory and Python writes it: a full disk or ``ulimit -f`` is
    # then an OSError naming the file, where HDF5 writing to disk itself crashed the process
    # (segmentation fault on a full tmpfs, issue 26)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["drop_last"] = False
        save_configurations_as_HDF5(configs, 0, f)
    with open(p, "wb") as fh:
        fh.write(buf.getbuffer())
    del buf
    part = p.with_name(f".{p.stem}.meta.part")
    part.write_text("".join(line + "\n" for line in lines))
    return {"frames": n - frame0, "neighbors": neighbors}


def _write_lmdb_shard(path: str, batches: list[FrameBatch], frame0: int, keys: dict,
                      weights: dict, stride: int, r_max: float | None) -> dict:
    """One fairchem ASE-LMDB shard (:func:`tealign.io.lmdb.write_lmdb_file`: rows with
    their calculator results and MACE's ``data``, in a map sized to the data)."""
    from tealign.io.lmdb import row_atoms, row_data, write_lmdb_file

    neighbors = {}
    n = frame0
    for batch in batches:
        if stride:
            neighbors.update(_neighbor_counts(batch, n, stride, r_max))
        n += batch.n_frames

    def rows():
        for batch in batches:
            for i in range(batch.n_frames):
                rec = batch.record(i)
                yield row_atoms(rec, keys), row_data(rec, keys, weights)

    write_lmdb_file(path, rows, n_frames=n - frame0,
                    n_atoms=sum(int(b.offsets[-1]) for b in batches))
    return {"frames": n - frame0, "neighbors": neighbors}


def write_h5_file(batches, path: str | os.PathLike, *, keys=None,
                  weights: dict[str, float] | None = None) -> int:
    """Write frames as one MACE HDF5 file (mace-torch's ``save_configurations_as_HDF5``, one
    ``config_batch_0`` group) plus its sidecar ``<path>.meta.jsonl``, both atomically;
    returns frames written. All frames are held in memory: use a shard directory
    (:func:`write_shards`) for large data."""
    from tealign.io.atomic import atomic_path
    from tealign.io.mace_h5 import MACE_KEYS
    from tealign.keys import REF

    path = Path(path)
    keys_d = {**MACE_KEYS, **(keys or REF).as_dict()}
    with atomic_path(path) as tmp, \
            atomic_path(path.with_name(path.name + ".meta.jsonl")) as side:
        res = _write_h5_shard(str(tmp), list(batches), 0, keys_d, dict(weights or {}), 0, None)
        os.replace(tmp.with_name(f".{tmp.stem}.meta.part"), side)
    return res["frames"]


@contextlib.contextmanager
def open_text_output(tmp, path):
    """``tmp`` (the temporary of output ``path``) opened for text; gzip-compressed when
    ``path`` ends in ``.gz``, the gzip header naming ``path`` without ``.gz``."""
    if not str(path).lower().endswith(".gz"):
        with open(tmp, "w") as fh:
            yield fh
        return
    import gzip
    import io

    with open(tmp, "wb") as raw, \
            gzip.GzipFile(filename=Path(path).name[:-3], mode="wb", fileobj=raw) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8") as fh:
        yield fh


def write_extxyz_on(executor: Executor, path: str | os.PathLike, batches,
                    rounded: frozenset = frozenset()) -> int:
    """Like :func:`tealign.io.extxyz.write_extxyz`, with the formatting done by ``executor``
    (e.g. a Dask cluster) and the text written here in input order; returns frames written."""
    from tealign.io.atomic import atomic_path
    from tealign.io.extxyz import format_batch

    n = 0
    pending: deque = deque()
    with atomic_path(path) as tmp, open_text_output(tmp, path) as fh:
        for batch in batches:
            pending.append((executor.submit(format_batch, batch, frozenset(rounded)),
                            batch.n_frames))
            while pending and pending[0][0].done():
                fut, k = pending.popleft()
                fh.write(fut.result())
                n += k
        while pending:
            fut, k = pending.popleft()
            fh.write(fut.result())
            n += k
    return n
