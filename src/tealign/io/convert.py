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
from tealign.io.registry import ASE, REGISTRY, get_format, kind_format, load
from tealign.keys import REF, Keys

#: What ``convert --to`` names: the registry's formats that say so (``convert_to``).
TARGETS = tuple(name for name, f in REGISTRY.items() if f.convert_to)
#: What :func:`convert_target` may answer: :data:`TARGETS` and the one-file kinds of
#: :func:`tealign.io.output_kind`.
KINDS = (*TARGETS, *(f.one_file_kind for f in (*REGISTRY.values(), ASE) if f.file_writer))


def convert_target(output: str | os.PathLike, to: str | None = None) -> str:
    """What ``output`` becomes: with ``to`` (one of :data:`TARGETS`) that format (one file
    where the format writes one for the name's suffix, e.g. mace-h5 on ``.h5``/``.hdf5``,
    else its main output, for mace-h5 a shard directory); without it the kind
    :func:`tealign.io.output_kind` reads from the name (an unknown suffix is a setup
    error: never a surprising directory)."""
    from tealign.io import output_kind

    if to is None:
        return output_kind(output)
    if to in KINDS[len(TARGETS):]:
        return to
    if to not in TARGETS:
        raise SetupError(f"--to must be {' or '.join(TARGETS)}, not {to!r}", field="--to")
    fmt = get_format(to)
    if fmt.file_writer and Path(output).suffix.lower() in fmt.file_suffixes:
        return fmt.one_file_kind
    return to


def output_is_directory(target: str) -> bool:
    """Whether output kind ``target`` (:func:`convert_target`) is a directory."""
    fmt = kind_format(target)
    return target == fmt.name and fmt.writes_directory


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
    from tealign.io import iter_batches, write_kind

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

    out = kind_format(target)
    options = {"keys": keys} if out.keyed else {}
    counts.frames_out = write_kind(target, output, batches(), **options)
    if table is not None and out.statistics:
        e0s = {atomic_numbers[s]: e for s, e in table.energies.items()
               if atomic_numbers[s] in present}
        load(out.statistics)(output, e0s, output.with_name(output.name + ".statistics.json"),
                             r_max=r_max)
    return counts
