"""Dataset readers and writers, chosen from one registry of formats.

Every reader yields :class:`~tealign.io.frames.FrameBatch` chunks (bounded memory). Each
format is one :class:`~tealign.io.registry.Format` entry of :data:`REGISTRY`
(:mod:`tealign.io.registry`) naming its reader, its writers and how a path is recognised as
it, as an input and as an output; this module finds everything it reads and writes there:

=========  ==========================================  ==================================
format     recognised by                               written by (output names)
=========  ==========================================  ==================================
qm9        ``qm9`` or ``qm9:N``                        –
extxyz     ``.xyz``, ``.extxyz`` (also ``.gz``)        :func:`~tealign.io.extxyz.write_extxyz`
                                                       (``.xyz``, ``.extxyz``, ``.gz``: gzip)
asedb      ``.db``                                     ``ase.io`` (``.db``, ``.traj``)
lmdb       ``.aselmdb``/``.lmdb``, or a dir of them    one file (``.aselmdb``/``.lmdb``) or
                                                       :func:`~tealign.io.lmdb.write_lmdb`
mptrj      ``.json``                                   –
mace-h5    a directory, or ``.h5`` with config_batch_*  one file (``.h5``) or a directory
(``h5``)                                               (a name without a suffix)
spice      ``.h5``/``.hdf5`` with ``conformations``     –
=========  ==========================================  ==================================

An output name with any other suffix is refused (:func:`output_kind`).
:func:`read`, :func:`iread` (``ase.Atoms``, as ``ase.io``; other formats through ``ase.io``)
and :func:`write` are the public entry points (re-exported by ``tealign``), with the
columnar :func:`read_frames`/:func:`iter_frames`; :func:`iter_batches`, :func:`read_batch`
and :func:`read_atoms` are the batch-level forms the pipeline uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ase import Atoms

from tealign.errors import SetupError
from tealign.io.asedb import ase_atoms
from tealign.io.frames import FrameBatch, FrameRecord, concat_batches
from tealign.io.registry import (
    ASE,
    FORMATS,
    REGISTRY,
    WRITABLE,
    Format,
    detect_format,
    get_format,
    is_dataset_spec,
    kind_format,
    load,
    output_format,
    output_kind,
)

__all__ = ["FORMATS", "REGISTRY", "WRITABLE", "Format", "FrameBatch", "FrameRecord",
           "ase_atoms", "concat_batches", "detect_format", "get_format", "iread",
           "is_dataset_spec", "iter_batches", "iter_frames", "output_format", "output_kind",
           "read", "read_atoms", "read_batch", "read_frames", "write", "write_kind"]


def _unknown_file(exc: SetupError, path) -> bool:
    """Whether ``detect_format`` failed only for not knowing the suffix of a file."""
    return exc.message.startswith("unknown dataset format") and Path(str(path)).is_file()


def iter_batches(
    path: str | os.PathLike, fmt: str | None = None, batch_size: int = 2048
) -> Iterator[FrameBatch]:
    """Stream any supported dataset as batches; frame errors ride along in ``rejects``.

    A file of a format tealign does not know is read through ``ase.io`` (``fmt="ase"``).
    Every batch passes :func:`~tealign.io.frames.validate_batch` (the boundary checks of
    docs/architecture.md §6.3: finite positions and energies, forces n × 3, stress/virials
    3×3, 6 or 9 values, no empty frames) whatever the reader.
    """
    from tealign.io.frames import validate_batch

    if fmt is None:
        try:
            fmt = detect_format(path)
        except SetupError as exc:
            if not _unknown_file(exc, path):
                raise
            fmt = "ase"  # a file tealign does not know: read through ase.io
    entry = ASE if fmt == ASE.name else get_format(fmt, path)
    batches = entry.read(path, batch_size)
    if entry.validates:  # the reader validates its own batches (extxyz)
        return batches
    return (validate_batch(b, str(path)) for b in batches)


def read_batch(path: str | os.PathLike, fmt: str | None = None) -> FrameBatch:
    """Read a whole (small) dataset into one batch."""
    return concat_batches(list(iter_batches(path, fmt)))


def read_atoms(path: str | os.PathLike, fmt: str | None = None) -> list[Atoms]:
    """Read a whole (small) dataset as a list of ``ase.Atoms``."""
    return [atoms for batch in iter_batches(path, fmt) for atoms in batch.to_atoms()]


def iter_frames(path: str | os.PathLike, format: str | None = None,
                batch_size: int = 2048) -> Iterator[FrameBatch]:
    """Stream a dataset of any tealign format as :class:`FrameBatch` chunks (bounded memory,
    the fast columnar form); each batch's ``rejects`` lists the frames that could not be
    read, with the reason. (``tealign.iread`` before 0.2.)"""
    return iter_batches(path, format, batch_size)


def read_frames(path: str | os.PathLike, format: str | None = None) -> FrameBatch:
    """Read a whole dataset of any tealign format into one :class:`FrameBatch`
    (``.to_atoms()`` gives ``ase.Atoms``; ``.rejects`` the frames that could not be read).
    (``tealign.read`` before 0.2.)"""
    return read_batch(path, format)


def _old_form(name: str, index, kwargs: dict) -> str | None:
    """The format of a pre-0.2 call (``read(path, "extxyz")``, ``iread(..., batch_size=)``),
    with a DeprecationWarning; None for an ASE-style call."""
    import warnings

    old = isinstance(index, str) and index in REGISTRY
    if not old and "batch_size" not in kwargs:
        return None
    new = {"read": "read_frames", "iread": "iter_frames"}[name]
    warnings.warn(f"tealign.{name}(path, format, ...) returning FrameBatch is deprecated; "
                  f"use tealign.{new} (tealign.{name} now returns ase.Atoms like ase.io.{name})",
                  DeprecationWarning, stacklevel=3)
    return index if old else kwargs.get("format")


def _index(index, default: str):
    from ase.io.formats import string2index

    if index is None:
        index = default
    if isinstance(index, str):
        try:
            return string2index(index)
        except ValueError:
            raise SetupError(f"bad index {index!r}: an integer or a slice like '1:5'",
                             field="index") from None
    if isinstance(index, (int, slice)):
        return index
    raise SetupError(f"bad index {index!r}: an integer or a slice like '1:5'", field="index")


#: Formats tealign reads itself in :func:`read`/:func:`iread`; all others go through ASE.
OWN_ATOMS_FORMATS = tuple(name for name, f in REGISTRY.items() if f.own_atoms)


def _reader(path, format: str | None) -> str | None:
    """tealign's reader for ``path`` (None: ASE's ``ase.io`` reads it)."""
    if format is not None:
        return format if format in OWN_ATOMS_FORMATS else None
    try:
        fmt = detect_format(path)
    except SetupError as exc:
        if _unknown_file(exc, path):
            return None  # a format tealign does not know: ASE may
        raise
    return fmt if fmt in OWN_ATOMS_FORMATS else None


def _own_atoms(path, fmt: str) -> Iterator[Atoms]:
    entry = get_format(fmt, path)
    if entry.atoms_reader:  # e.g. lmdb rows as ase.io.read gives them (no data)
        yield from load(entry.atoms_reader)(path)
        return
    for batch in iter_batches(path, fmt):
        if batch.rejects:
            raise batch.rejects[0].as_setup_error()
        for i in range(batch.n_frames):
            yield ase_atoms(batch.record(i))


def _ase_iread(path, index, format: str | None, **kwargs) -> Iterator[Atoms]:
    import ase.io

    text = str(path)
    if not Path(text).exists():
        raise SetupError("no such file", file=text)
    from tealign.io.asedb import ase_read_error

    try:
        yield from ase.io.iread(text, index, format=format, **kwargs)
    except Exception as exc:  # noqa: BLE001 (ASE's readers raise every kind)
        raise ase_read_error(exc, text) from None


def iread(path: str | os.PathLike, index=None, format: str | None = None,
          **kwargs) -> Iterator[Atoms]:
    """Iterate over the frames of ``path`` as ``ase.Atoms``, as ``ase.io.iread`` does.

    ``index`` as in ASE (default all frames: ``":"``; an int, a slice or a string such as
    ``"1:10:2"``). Formats tealign reads (extxyz, ASE-LMDB shards, MPtrj, MACE HDF5, SPICE,
    ``qm9:N``) are streamed by tealign's readers and returned as ``ase.io`` returns extxyz
    frames (results on a ``SinglePointCalculator``, the rest in ``info``/``arrays``); any
    other file goes to ``ase.io.iread`` (``.traj``, ``.db``, ``vasprun.xml``, ``OUTCAR``,
    ...). A frame tealign cannot read is a :class:`SetupError`. For the fast columnar form
    use :func:`iter_frames`.
    """
    old = _old_form("iread", index, kwargs)
    if old is not None or "batch_size" in kwargs:
        return iter_frames(path, old, kwargs.get("batch_size", 2048))
    idx = _index(index, ":")
    fmt = _reader(path, format)
    if fmt is None:
        return _ase_iread(path, idx, format, **kwargs)
    return _select(_own_atoms(path, fmt), idx)


def _select(frames: Iterator[Atoms], idx) -> Iterator[Atoms]:
    import itertools

    if isinstance(idx, int):
        if idx >= 0:
            yield from itertools.islice(frames, idx, idx + 1)
        else:
            all_frames = list(frames)
            if -idx <= len(all_frames):
                yield all_frames[idx]
        return
    if (idx.start or 0) >= 0 and (idx.stop is None or idx.stop >= 0) \
            and (idx.step or 1) > 0:
        yield from itertools.islice(frames, idx.start, idx.stop, idx.step)
    else:
        yield from list(frames)[idx]


def read(path: str | os.PathLike, index=None, format: str | None = None, **kwargs):
    """Read frames of ``path`` as ``ase.Atoms``, as ``ase.io.read`` does: ``index`` an int
    (default ``-1``, the last frame) gives one ``Atoms``, a slice or ``":"`` a list.

    Readers as in :func:`iread`. A frame index outside the file is a :class:`SetupError`.
    For the fast columnar form (one :class:`FrameBatch`) use :func:`read_frames`.
    """
    old = _old_form("read", index, kwargs)
    if old is not None:
        return read_frames(path, old)
    idx = _index(index, "-1")
    frames = list(iread(path, idx, format, **kwargs))
    if isinstance(idx, int):
        if not frames:
            raise SetupError(f"no frame {idx}", file=str(path), field="index")
        return frames[0]
    return frames


def write(path: str | os.PathLike, frames, format: str | None = None, **options) -> int:
    """Write frames (``ase.Atoms``, a list of them, a FrameBatch or an iterable of batches)
    to ``path`` atomically; returns the number of frames written.

    The format follows the name (:func:`output_kind`): ``.extxyz``/``.xyz`` (``.gz``:
    gzip) extxyz; ``.aselmdb`` one ASE-LMDB file; ``.h5`` one MACE HDF5 file;
    ``.traj``/``.db`` through ``ase.io.write``; no suffix: a MACE shard
    directory. An unknown suffix is refused. ``format`` (a registry name: ``extxyz``,
    ``lmdb``, ``mace-h5``) forces that format; for ``lmdb``/``mace-h5`` on a name without
    a suffix it writes a shard directory. Shard and MACE formats take ``keys`` (a
    :class:`~tealign.keys.Keys`, default ``REF_*``) and ``weights``; shard directories the
    options of :func:`tealign.io.shards.write_shards`; extxyz takes ``workers``.
    """
    if isinstance(frames, Atoms):
        frames = [frames]
    if format is not None:
        fmt = get_format(format, path)
        if fmt.file_writer and Path(path).suffix:
            return write_kind(fmt.one_file_kind, path, as_batches(frames), **options)
        return fmt.write(path, as_batches(frames), **options)
    kind = output_kind(path)
    fmt = kind_format(kind)
    if kind == fmt.name and fmt.keyed and options.get("keys") is None \
            and isinstance(frames, (list, FrameBatch)):  # in memory already
        batches = list(as_batches(frames))
        options.pop("keys", None)
        return fmt.write(path, batches, **options, keys=_keys_present(batches))
    return write_kind(kind, path, as_batches(frames), **options)


def _keys_present(batches: list[FrameBatch]):
    """``REF_*`` keys, or ASE's names (``energy``, ``forces``, ``stress``, ``virial``) for a
    property the frames carry only under those (e.g. ``ase.Atoms`` with a calculator)."""
    from tealign.keys import REF, Keys

    names: set[str] = set()
    for b in batches:
        names |= set(b.info) | set(b.arrays)
    ase_names = {"energy": "energy", "forces": "forces", "stress": "stress",
                 "virials": "virial"}
    return Keys(**{p: ase_names[p] if k not in names and ase_names[p] in names else k
                   for p, k in REF.as_dict().items()})


def write_kind(kind: str, path, batches: Iterable[FrameBatch], **options) -> int:
    """Write output ``kind`` (:func:`output_kind`: a format's name, its one-file kind, or
    ``ase``); without ``keys`` a keyed (MACE) one-file kind takes ``REF_*``, or ASE's names
    where only those are present."""
    fmt = kind_format(kind)
    if kind == fmt.name and fmt.writer:
        return fmt.write(path, batches, **options)
    if fmt.keyed and options.get("keys") is None:
        batches = list(batches)
        options["keys"] = _keys_present(batches)
    return fmt.write_one_file(path, batches, **options)


def as_batches(data) -> Iterator[FrameBatch]:
    """A path, a FrameBatch, a list of ``ase.Atoms`` or an iterable of batches → batches."""
    if isinstance(data, FrameBatch):
        yield data
    elif isinstance(data, (str, os.PathLike)):
        yield from iter_batches(data)
    elif isinstance(data, Atoms):
        yield FrameBatch.from_atoms([data])
    elif isinstance(data, list) and (not data or isinstance(data[0], Atoms)):
        yield FrameBatch.from_atoms(data)
    else:
        yield from data
