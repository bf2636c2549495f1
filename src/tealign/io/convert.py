"""Convert a dataset of any format to extxyz or MACE's sharded HDF5 (+ statistics.json).

What ``tealign convert`` does, as a library function: frames stream from the reader to
the writer; frame errors are collected (``strict``: the first one raises); with an
isolated-atom table every frame's elements must be in it, and MACE's ``statistics.json``
is written beside the shard directory for the elements present.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tealign.errors import FrameError, SetupError
from tealign.keys import REF, Keys

TARGETS = ("extxyz", "mace-h5")


def convert_target(output: str | os.PathLike, to: str | None = None) -> str:
    """The output format: ``to``, else the one of :data:`TARGETS` the format registry
    recognises ``output`` as (extxyz for a ``.xyz``/``.extxyz`` name, else mace-h5);
    anything but extxyz or mace-h5 is a setup error."""
    from tealign.io import output_format

    target = to or output_format(output, among=TARGETS)
    if target not in TARGETS:
        raise SetupError(f"--to must be extxyz or mace-h5, not {to!r}", field="--to")
    return target


@dataclass
class ConvertCounts:
    frames_in: int = 0
    frames_out: int = 0
    rejects: list[FrameError] = field(default_factory=list)


def convert_file(data: str, output: str | os.PathLike, to: str | None = None, *,
                 fmt: str | None = None, keys: Keys = REF, table=None, r_max: float = 4.5,
                 strict: bool = False,
                 progress: Callable[[int], None] | None = None) -> ConvertCounts:
    """Stream ``data`` into ``output`` (see the module text); ``table`` is an
    :class:`~tealign.methods.IsolatedAtomTable` or None. Rejects are returned, not written."""
    from ase.data import atomic_numbers

    from tealign.errors import all_rejected
    from tealign.io import iter_batches
    from tealign.io.extxyz import write_extxyz
    from tealign.io.mace_h5 import write_mace_h5, write_statistics

    target = convert_target(output, to)
    output = Path(output)
    counts = ConvertCounts()
    present: set[int] = set()

    def batches():
        done = 0
        for batch in iter_batches(data, fmt):
            counts.frames_in += batch.n_frames + len(batch.rejects)
            if batch.rejects and strict:
                raise batch.rejects[0].as_setup_error()
            counts.rejects.extend(batch.rejects)
            if table is not None and batch.n_frames:
                table.check_covers(batch.numbers, file=data)
                present.update(int(z) for z in set(batch.numbers.tolist()))
            done += batch.n_frames
            if progress:
                progress(done)
            yield batch
        if counts.rejects and not done:  # inside the writer: the previous output is kept
            raise all_rejected(counts.rejects, str(output))

    if target == "extxyz":
        counts.frames_out = write_extxyz(output, batches())
        return counts
    counts.frames_out = write_mace_h5(batches(), output, keys=keys)
    if table is not None:
        e0s = {atomic_numbers[s]: e for s, e in table.energies.items()
               if atomic_numbers[s] in present}
        write_statistics(output, e0s, output.with_name(output.name + ".statistics.json"),
                         r_max=r_max)
    return counts
