"""Convert a dataset of any format to the format the output's name says (+ statistics.json).

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
#: What :func:`convert_target` may answer: :data:`TARGETS` and the one-file kinds of
#: :func:`tealign.io.output_kind`.
KINDS = (*TARGETS, "mace-h5-file", "lmdb-file", "ase")


def convert_target(output: str | os.PathLike, to: str | None = None) -> str:
    """What ``output`` becomes: with ``to`` (extxyz or mace-h5) that format (mace-h5 on a
    ``.h5``/``.hdf5`` name: one HDF5 file, else a shard directory); without it the kind
    :func:`tealign.io.output_kind` reads from the name (an unknown suffix is a setup
    error: never a surprising directory)."""
    from tealign.io import output_kind

    if to is None:
        return output_kind(output)
    if to in KINDS[2:]:
        return to
    if to not in TARGETS:
        raise SetupError(f"--to must be extxyz or mace-h5, not {to!r}", field="--to")
    if to == "mace-h5" and Path(output).suffix.lower() in (".h5", ".hdf5"):
        return "mace-h5-file"
    return to


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
    if target == "mace-h5":
        counts.frames_out = write_mace_h5(batches(), output, keys=keys)
    else:
        from tealign.io import write_file

        options = {} if target == "ase" else {"keys": keys}
        counts.frames_out = write_file(target, output, batches(), **options)
        if target != "mace-h5-file":
            return counts
    if table is not None:
        e0s = {atomic_numbers[s]: e for s, e in table.energies.items()
               if atomic_numbers[s] in present}
        write_statistics(output, e0s, output.with_name(output.name + ".statistics.json"),
                         r_max=r_max)
    return counts
