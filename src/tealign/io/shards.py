"""Streaming, parallel writers of shard directories, for every format with a shard writer.

A :class:`ShardWriter` takes :class:`~tealign.io.frames.FrameBatch` chunks of one split and
hands every ``shard_size`` frames to a worker that writes one shard file with the format's
``shard_writer`` (a hook on its :mod:`tealign.io.registry` entry), e.g.

- ``mace-h5`` (also ``h5``): MACE's sharded HDF5 (``<prefix>_<k>.h5``,
  :func:`tealign.io.mace_h5.write_h5_shard`) plus the ``<DIR>.meta.jsonl`` sidecar, joined
  here from the parts the shard writers leave;
- ``lmdb``: fairchem's ASE-LMDB (``<prefix>_<k>.aselmdb``,
  :func:`tealign.io.lmdb.write_lmdb_shard`).

The workers also count neighbours (mace-torch's neighbour list) on a sample of training
frames, whatever the format. An :class:`~tealign.workers.Executor` runs them: in this process
(``workers=1``), in a local process pool (``workers>1``) or on a Dask cluster
(``scheduler=ADDRESS``, the workers must see the output directory). At most ``2 × slots``
shards are in flight, so memory is bounded by a few shards whatever the number of frames.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections import deque
from pathlib import Path

import numpy as np

from tealign.deprecation import renamed
from tealign.io.common import sidecar_part, sidecar_path
from tealign.io.frames import FrameBatch
from tealign.io.outputs import remove_inside
from tealign.io.registry import load, shard_format, shard_formats
from tealign.keys import REF
from tealign.workers import Executor

SHARD_SIZE = 10_000
#: The names ``merge --format`` accepts: every format with a shard writer, aliases included
#: (:data:`tealign.io.registry.FORMATS` is every format).
SHARD_FORMATS = shard_formats()
#: ``FORMATS``: the former name of :data:`SHARD_FORMATS` (deprecated).
__getattr__ = renamed(__name__, {"FORMATS": "SHARD_FORMATS"})
#: Neighbour counts for MACE's ``avg_num_neighbors`` come from at most this many training
#: frames, spread evenly over the split (a stride that doubles as the split grows).
NEIGHBOR_SAMPLE = 2048


def write_shards(fmt: str, batches, shard_dir: str | os.PathLike, *, keys=None,
                 weights: dict[str, float] | None = None, prefix: str | None = None,
                 shard_size: int | None = None, workers: int = 1, scheduler=None) -> int:
    """Write frames as one shard directory of ``fmt`` (a shard format of the registry:
    ``mace-h5``/``h5`` or ``lmdb``), atomically (with the sidecar of a format that has one);
    returns frames written.

    ``keys`` (a :class:`~tealign.keys.Keys`, default ``REF_*``) names where each MACE
    property lives in the frames; a frame lacking one gets weight 0 for it (as mace-torch's
    ``config_from_atoms`` does). ``weights`` gives default property weights (e.g.
    ``{"stress": 0.0}`` for molecules); ``config_<name>_weight`` in a frame's info overrides
    them. Shards are written by ``workers`` processes (or on a Dask ``scheduler``); memory
    is bounded by a few shards of ``shard_size`` frames.
    """
    from tealign.io.outputs import atomic_path

    shard_dir = Path(shard_dir)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(shard_dir))
        side = {"sidecar": stack.enter_context(atomic_path(sidecar_path(shard_dir)))} \
            if shard_format(fmt).sidecar else {}
        ex = stack.enter_context(Executor(workers, scheduler))
        w = ShardWriter(tmp, fmt, ex, keys=(keys or REF).as_dict(), weights=weights,
                        prefix=prefix or shard_dir.name, shard_size=shard_size or SHARD_SIZE,
                        **side)
        for batch in batches:
            w.add(batch)
        return w.close()


class ShardWriter:
    """Frames of one split → a shard directory of ``fmt`` (a registry shard format),
    written by workers.

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
        self.format = shard_format(fmt)  # ValueError for a name that is not one
        self.task = _ShardTask(self.format.shard_writer)
        self.dir = Path(shard_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fmt, self.executor = fmt, executor
        self.keys = {**REF.as_dict(), **(keys or {})}
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
        for module in self.format.shard_preload:
            importlib.import_module(module)

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
        path = self.dir / f"{self.prefix}_{self.shard}{self.format.shard_suffix}"
        if self.sample:
            while self.n + self.n_pending > self.stride * NEIGHBOR_SAMPLE:
                self.stride *= 2
        stride = self.stride if self.sample else 0
        fut = self.executor.submit(self.task, str(path), self.pending, self.n, self.keys,
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
        if self.format.sidecar:
            parts = [sidecar_part(self.dir / f"{self.prefix}_{k}{self.format.shard_suffix}")
                     for k in range(self.shard)]
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


class _ShardTask:
    """Worker task: one shard through the format's ``shard_writer`` hook, plus the neighbour
    counts of every ``stride``-th frame (none for ``stride`` 0). Named after the hook's
    function (e.g. ``write_lmdb_shard``), which is what a Dask dashboard shows."""

    def __init__(self, writer: str):
        self.writer = writer
        self.__name__ = writer.rpartition(":")[2]

    def __call__(self, path: str, batches: list[FrameBatch], frame0: int, keys: dict,
                 weights: dict, stride: int, r_max: float | None) -> dict:
        neighbors: dict = {}
        n = frame0
        for batch in batches:
            if stride:
                neighbors.update(_neighbor_counts(batch, n, stride, r_max))
            n += batch.n_frames
        frames = load(self.writer)(path, batches, frame0, keys, weights)
        return {"frames": frames, "neighbors": neighbors}
