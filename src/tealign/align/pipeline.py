"""Streaming alignment of a whole dataset: read → transform (or inverse) → write extxyz.

What ``tealign align`` does, as a library function (docs/architecture.md §2.2, §6.2):

- batches stream through the estimator; frame errors are collected (``strict``: the first
  one raises) and written beside the output;
- a key that no frame has is a setup error: the energy key (``REF_energy`` with
  ``inverse``), and a forces/stress key that no frame has while frames carry forces or
  stress under another key (they would stay unscaled beside aligned energies);
- the output is formatted by ``workers`` processes (default :func:`default_workers`) or on
  a Dask ``scheduler`` while the input is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tealign.errors import FrameError, SetupError
from tealign.keys import REF, Keys


def default_workers() -> int:
    """Processes that format or write output while the input is read: CPU count, at most 4."""
    return min(4, os.cpu_count() or 1)


@dataclass
class _KeyWatch:
    """Which of the given forces/stress keys some frame has, and which other forces/stress
    keys the frames carry (forward alignment only)."""

    keys: Keys
    seen: dict = field(default_factory=lambda: {"forces": False, "stress": False})
    others: dict = field(default_factory=lambda: {"forces": set(), "stress": set()})

    def add(self, batch) -> None:
        from tealign.io.frames import forces_like, tensor_kind

        self.seen["forces"] |= bool(batch.has(self.keys.forces).any())
        self.seen["stress"] |= bool(batch.has(self.keys.stress).any())
        self.others["forces"].update(k for k in batch.arrays
                                     if forces_like(k) and k != self.keys.forces)
        self.others["stress"].update(k for k in batch.info
                                     if tensor_kind(k) == "stress" and k != self.keys.stress)
        if batch.n_frames:
            self.check(None)

    def check(self, data) -> None:
        for kind, option in (("forces", "--forces-key"), ("stress", "--stress-key")):
            key = getattr(self.keys, kind)
            found = sorted(k for k in self.others[kind]
                           if not k.startswith(("REF_", "orig_", "d3_")))
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


def align_file(tea, data: str, output: str | os.PathLike, keys: Keys = Keys(), *,
               remove_d3: str | None = None, source_name: str | None = None,
               inverse: bool = False, strict: bool = False, fmt: str | None = None,
               workers: int = 0, scheduler: str | None = None,
               progress: Callable[[int], None] | None = None) -> AlignCounts:
    """Align (or with ``inverse`` undo) every frame of ``data`` into the extxyz ``output``.

    ``keys`` are the source keys (with ``inverse``, the keys to write the source-scale
    values to). ``source_name`` (default: the input's stem) fills the ``source`` key.
    ``progress`` is called with the number of frames done after each batch. Returns the
    frame counts and the rejects (not written: see :func:`tealign.io.atomic.write_rejects`).
    """
    from tealign.io import iter_batches
    from tealign.io.extxyz import write_extxyz

    if workers < 0:
        raise SetupError(f"--workers must be ≥ 0 (got {workers})", field="--workers")
    name = source_name or Path(data).name.split(".")[0]
    needed = REF.energy if inverse else keys.energy
    counts = AlignCounts()
    watch = None if inverse else _KeyWatch(keys)
    args = (keys.energy, keys.forces, keys.stress, keys.virials)

    def batches():
        seen_key = False
        done = 0
        for batch in iter_batches(data, fmt):
            counts.frames_in += batch.n_frames + len(batch.rejects)
            seen_key |= bool(batch.has(needed).any())
            if inverse:
                res = tea.inverse_transform(batch, *args, file=data, add_d3=remove_d3)
            else:
                watch.add(batch)
                res = tea.transform(batch, *args, source_name=name, file=data,
                                    remove_d3=remove_d3)
            if res.rejects and strict:
                raise res.rejects[0].as_setup_error()
            counts.rejects.extend(res.rejects)
            done += batch.n_frames
            if progress:
                progress(done)
            yield res
        if not seen_key:
            raise SetupError("no frame has this energy key", file=data, field=needed)
        if watch is not None:
            watch.check(data)

    # computed forces (a·F) may be rounded at 1e-12 eV/Å; copied columns stay exact
    computed = frozenset({keys.forces} if inverse else {REF.forces})
    if scheduler:
        from tealign.io.shards import Executor, write_extxyz_on

        with Executor(scheduler=scheduler) as ex:
            counts.frames_out = write_extxyz_on(ex, output, batches(), rounded=computed)
    else:
        counts.frames_out = write_extxyz(output, batches(), rounded=computed,
                                         workers=workers or default_workers())
    return counts
