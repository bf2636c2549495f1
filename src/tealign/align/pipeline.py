"""Streaming alignment of a whole dataset: read → transform (or inverse) → write extxyz.

What ``tealign align`` does, as a library function (docs/architecture.md §2.2, §6.2):

- batches stream through the estimator; frame errors are collected (``strict``: the first
  one raises) and written beside the output;
- a key that no frame has is a setup error: the energy key (``REF_energy`` with
  ``inverse``), and a forces/stress key that no frame has while frames carry forces or
  stress under another key (they would stay unscaled beside aligned energies);
- a large uncompressed extxyz file is cut into byte ranges at frame starts that ``workers``
  processes (default :func:`default_workers`) read, align and format side by side; any other
  input is read by one reader while ``workers`` processes or a Dask ``scheduler`` format the
  output.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tealign.deprecation import renamed
from tealign.errors import FrameError, SetupError, all_rejected
from tealign.io.outputs import remove_inside
from tealign.keys import REF, Keys
from tealign.workers import init_worker


def default_workers() -> int:
    """Processes that format or write output while the input is read: CPU count, at most 4."""
    return min(4, os.cpu_count() or 1)


@dataclass
class _KeyWatch:
    """Which of the given forces/stress keys some frame has, and which other forces/stress
    keys the frames carry (forward alignment only). Judged once every frame is seen, so the
    verdict does not depend on how the frames were batched or split between workers."""

    keys: Keys
    seen: dict = field(default_factory=lambda: {"forces": False, "stress": False})
    others: dict = field(default_factory=lambda: {"forces": set(), "stress": set()})

    def add(self, batch) -> None:
        from tealign.io.frames import other_keys_of

        for kind in ("forces", "stress"):
            key = getattr(self.keys, kind)
            self.seen[kind] |= bool(batch.has(key).any())
            self.others[kind] |= other_keys_of(batch, kind, key)

    def merge(self, other: _KeyWatch) -> None:
        """Add what another watch (a worker's) saw."""
        for kind in ("forces", "stress"):
            self.seen[kind] |= other.seen[kind]
            self.others[kind] |= other.others[kind]

    def check(self, data) -> None:
        for kind, option in (("forces", "--forces-key"), ("stress", "--stress-key")):
            key = getattr(self.keys, kind)
            found = sorted(self.others[kind])
            if not self.seen[kind] and found:
                raise SetupError(
                    f"no frame has {kind} key '{key}', but frames carry {kind} under "
                    f"{', '.join(repr(k) for k in found)}; pass {option} {found[0]} (they "
                    "would stay unscaled beside aligned energies)", file=data, field=option)


@dataclass
class AlignCounts:
    frames_in: int = 0
    frames_out: int = 0
    rejects: list[FrameError] = field(default_factory=list)


@dataclass
class _Aligner:
    """One batch in, the aligned batch out; what the whole-file checks need is kept."""

    tea: object
    keys: Keys
    data: str
    name: str
    remove_d3: str | None
    inverse: bool
    allow_realign: bool = False
    allow_charged: bool = False
    frames_in: int = 0
    seen_key: bool = False
    watch: _KeyWatch | None = None  # forward alignment: the forces/stress keys seen

    def __post_init__(self):
        if not self.inverse and self.watch is None:
            self.watch = _KeyWatch(self.keys)

    def fresh(self) -> _Aligner:
        """The same settings with nothing seen yet."""
        return dataclasses.replace(self, frames_in=0, seen_key=False, watch=None)

    def __call__(self, batch):
        keys = self.keys
        args = (keys.energy, keys.forces, keys.stress, keys.virials)
        self.frames_in += batch.n_frames + len(batch.rejects)
        self.seen_key |= bool(batch.has(REF.energy if self.inverse else keys.energy).any())
        if self.inverse:
            return self.tea.inverse_transform(batch, *args, file=self.data,
                                              add_d3=self.remove_d3)
        self.watch.add(batch)
        return self.tea.transform(batch, *args, source_name=self.name, file=self.data,
                                  remove_d3=self.remove_d3, allow_realign=self.allow_realign,
                                  check=False, allow_charged=self.allow_charged)


#: a file is read in parallel byte ranges when it has at least two of this size
MIN_RANGE_BYTES = 8 << 20
#: ranges per worker (smaller ranges balance the load; each costs a task and a part file)
RANGES_PER_WORKER = 4
MAX_RANGE_BYTES = 64 << 20


def transform_file(tea, data: str, output: str | os.PathLike, keys: Keys = Keys(), *,
                   remove_d3: str | None = None, source_name: str | None = None,
                   inverse: bool = False, strict: bool = False, fmt: str | None = None,
                   workers: int = 0, scheduler: str | None = None,
                   progress: Callable[[int], None] | None = None,
                   allow_realign: bool = False, allow_charged: bool = False) -> AlignCounts:
    """The estimator ``tea``'s transform of a file (the engine of :func:`tealign.align_file`):
    align (or with ``inverse`` undo) every frame of ``data`` into the extxyz ``output``.

    ``keys`` are the source keys (with ``inverse``, the keys to write the source-scale
    values to). ``source_name`` (default: the input's stem) fills the ``source`` key.
    ``progress`` is called with the number of frames done. Frames carrying
    ``alignment_sha256`` (aligned already) are a setup error unless ``allow_realign``.
    Returns the frame counts and the rejects (not written: see
    :func:`tealign.io.outputs.write_rejects`).

    An uncompressed extxyz input of at least ``2 × MIN_RANGE_BYTES`` is cut into byte ranges
    at frame starts (:func:`tealign.io.extxyz_ranges.frame_ranges`) that ``workers``
    processes read, align and format side by side; the parts are joined in order. The cuts
    are trusted only when every range reads without a frame error (which proves each cut a
    frame start); otherwise the file is read again in one pass. Either way the frames, their
    values, the rejects and their frame numbers are those of a single reader, and the key
    checks judge the whole file. (An info key that is an integer in some frames and a float
    in others is written as the frames sharing its batch decide, ``1`` or ``1.0``, with one
    reader as with several.)
    """
    if workers < 0:
        raise SetupError(f"--workers must be ≥ 0 (got {workers})", field="--workers")
    workers = workers or default_workers()
    align = _Aligner(tea, keys, data, source_name or Path(data).name.split(".")[0],
                     remove_d3, inverse, allow_realign, allow_charged)
    # computed forces (a·F) may be rounded at 1e-12 eV/Å; copied columns stay exact
    computed = frozenset({keys.forces} if inverse else {REF.forces})
    if not scheduler and workers > 1:
        ranges = _ranges(data, fmt, workers)
        if len(ranges) > 1:
            try:
                return _align_ranges(align, ranges, output, computed, strict, workers,
                                     progress)
            except _Unsplittable:
                align = align.fresh()
    return _align_stream(align, output, computed, strict, fmt, workers, scheduler, progress)


def _align_stream(align: _Aligner, output, computed: frozenset, strict: bool,
                  fmt: str | None, workers: int, scheduler: str | None,
                  progress) -> AlignCounts:
    """One reader; the output formatted on ``workers`` processes or the ``scheduler``."""
    from tealign.io import iter_batches, write

    counts = AlignCounts()

    def batches():
        done = n_out = 0
        for batch in iter_batches(align.data, fmt):
            res = align(batch)
            if res.rejects and strict:
                raise res.rejects[0].as_setup_error()
            counts.rejects.extend(res.rejects)
            done += batch.n_frames
            n_out += res.n_frames
            if progress:
                progress(done)
            yield res
        _check_all_rejected(align, counts.rejects, n_out, output)
        _check_whole(align)

    counts.frames_out = write(output, batches(), format="extxyz", rounded=computed,
                              workers=workers, scheduler=scheduler)
    counts.frames_in = align.frames_in
    return counts


def _check_all_rejected(align: _Aligner, rejects: list, n_out: int, output) -> None:
    """Every frame rejected: exit 1 (:class:`~tealign.errors.NothingWritten`), raised in the
    writer so a previous output is kept; when frames lack the energy and none has it, the
    setup error that names the key instead."""
    if not rejects or n_out:
        return
    if any(r.reason.startswith("missing energy") for r in rejects):
        _check_whole(align)
    raise all_rejected(rejects, str(output))


def _check_whole(align: _Aligner) -> None:
    """The checks that need every batch: some frame has the energy key; forces/stress keys."""
    if not align.seen_key:
        needed = REF.energy if align.inverse else align.keys.energy
        raise SetupError("no frame has this energy key", file=align.data, field=needed)
    if align.watch is not None:
        align.watch.check(align.data)


def _ranges(data: str, fmt: str | None, workers: int) -> list[tuple[int, int]]:
    """Byte ranges for parallel reading; none when the input is not a large uncompressed
    extxyz file."""
    from tealign.io import detect_format
    from tealign.io.extxyz_ranges import frame_ranges

    path = Path(data)
    if (fmt or detect_format(path)) != "extxyz" or path.suffix == ".gz" \
            or not path.is_file():
        return []
    size = path.stat().st_size
    if size < 2 * MIN_RANGE_BYTES:
        return []
    target = min(MAX_RANGE_BYTES, max(MIN_RANGE_BYTES, size // (RANGES_PER_WORKER * workers)))
    return frame_ranges(path, target)


class _Unsplittable(Exception):
    """A range read with a frame error: the cuts are not proven, read in one pass."""


@dataclass
class _RangeDone:
    frames_in: int
    frames_out: int
    rejects: list
    seen_key: bool
    watch: _KeyWatch | None
    clean: bool  # read without a frame error


#: in a worker: set when the main process gives up on the ranges (workers then stop early)
_CANCEL = None


def _init_worker(cancel) -> None:
    global _CANCEL
    _CANCEL = cancel


def _align_range(job) -> _RangeDone:
    """Worker: read one byte range, align it, write the formatted frames to ``part``."""
    from tealign.io.extxyz import format_batch, iter_extxyz

    align, byte_range, part, computed, strict = job
    n_out = 0
    rejects: list = []
    with open(part, "w") as fh:
        for batch in iter_extxyz(align.data, byte_range=byte_range):
            if batch.rejects or (_CANCEL is not None and _CANCEL.is_set()):
                return _RangeDone(0, 0, [], False, None, clean=False)
            res = align(batch)
            rejects.extend(res.rejects)
            if rejects and strict:
                break
            fh.write(format_batch(res, computed))
            n_out += res.n_frames
    return _RangeDone(align.frames_in, n_out, rejects, align.seen_key, align.watch, True)


def _align_ranges(align: _Aligner, ranges, output, computed: frozenset, strict: bool,
                  workers: int, progress) -> AlignCounts:
    """Ranges read, aligned and formatted by ``workers`` processes; parts joined in order."""
    import multiprocessing as mp
    import tempfile

    from tealign.io.outputs import atomic_path

    counts = AlignCounts()
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    out_dir = Path(os.path.abspath(output)).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".tealign-parts-") as parts, \
            atomic_path(output) as tmp, open(tmp, "wb") as out:
        # the workers start from a fresh aligner that this process never changes (tasks are
        # pickled while results come in); what they saw is added to ``align`` here
        fresh = align.fresh()
        jobs = [(fresh, r, os.path.join(parts, f"{i}.extxyz"), computed, strict)
                for i, r in enumerate(ranges)]
        # never Pool.terminate(): killing a worker that holds the task queue's lock can hang
        # the pool's shutdown; on any exit the workers are told to stop and are joined
        # before the parts folder is removed
        cancel = ctx.Event()
        pool = ctx.Pool(workers, initializer=init_worker(_init_worker, cancel))
        try:
            _join_ranges(align, jobs, pool, out, counts, strict, progress)
        finally:
            cancel.set()
            pool.close()
            pool.join()
        _check_all_rejected(align, counts.rejects, counts.frames_out, output)
        _check_whole(align)
    return counts


def _join_ranges(align: _Aligner, jobs: list, pool, out, counts: AlignCounts, strict: bool,
                 progress) -> None:
    """Take the ranges' results in order: counts, rejects, key checks, the part's text."""
    import shutil

    results = pool.imap(_align_range, jobs)
    for job in jobs:
        offset = counts.frames_in
        try:
            done = next(results)
        except SetupError as exc:
            # a range numbers its frames from 0: name the frame of the whole file
            if type(exc) is not SetupError or exc.frame is None:
                raise
            raise SetupError(exc.message, file=exc.file, frame=exc.frame + offset,
                             field=exc.field) from None
        if not done.clean:
            raise _Unsplittable
        counts.frames_in += done.frames_in
        counts.rejects.extend(dataclasses.replace(r, frame=r.frame + offset)
                              for r in done.rejects)
        if counts.rejects and strict:
            raise counts.rejects[0].as_setup_error()
        align.seen_key |= done.seen_key
        if done.watch is not None:
            align.watch.merge(done.watch)
        with open(job[2], "rb") as fh:
            shutil.copyfileobj(fh, out, 16 << 20)
        remove_inside(os.path.dirname(job[2]), job[2])
        counts.frames_out += done.frames_out
        if progress:
            progress(counts.frames_in)


#: ``align_file``: the former name of :func:`transform_file` (it read as
#: :func:`tealign.align_file`, which takes an alignment file where this takes the estimator)
__getattr__ = renamed(__name__, {"align_file": "transform_file"})
