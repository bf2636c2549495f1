"""Dataset readers and writers, chosen from one registry of formats.

Every reader yields :class:`~tealign.io.frames.FrameBatch` chunks (bounded memory). Each
format is one :class:`Format` entry of :data:`REGISTRY` naming its reader, its writer (where
tealign writes it) and how a path is recognised as it, as an input and as an output:

=========  ==========================================  ==================================
format     recognised by                               written by (output names)
=========  ==========================================  ==================================
qm9        ``qm9`` or ``qm9:N``                        –
extxyz     ``.xyz``, ``.extxyz`` (also ``.gz``)        :func:`~tealign.io.extxyz.write_extxyz`
                                                       (``.xyz``, ``.extxyz``)
asedb      ``.db``                                     –
lmdb       ``.aselmdb``/``.lmdb``, or a dir of them    :func:`~tealign.io.lmdb.write_lmdb`
                                                       (``.aselmdb``)
mptrj      ``.json``                                   –
mace-h5    a directory, or ``.h5`` with config_batch_*  :func:`~tealign.io.mace_h5.write_mace_h5`
                                                       (any other name: a directory)
spice      ``.h5``/``.hdf5`` with ``conformations``     –
=========  ==========================================  ==================================

:func:`read`, :func:`iread` and :func:`write` are the public entry points (re-exported by
``tealign``); :func:`iter_batches`, :func:`read_batch` and :func:`read_atoms` are the
batch-level forms the pipeline uses.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from tealign.errors import SetupError
from tealign.io.frames import FrameBatch, FrameRecord, concat_batches


@dataclass(frozen=True)
class Format:
    """One dataset format: its reader, its writer and how a path is recognised.

    ``reader``/``writer`` are ``"module:function"`` names, imported on first use (so
    optional dependencies load only for their format); a reader takes (path, batch_size),
    a writer (batches, path, **options). ``suffixes`` match the last suffix
    (before ``.gz``); ``directory`` recognises a directory; ``layout`` recognises an HDF5
    file by its top-level groups. As an output, a name ending in one of ``output_suffixes``
    is this format; the one ``output_default`` format takes every other name.
    """

    name: str
    reader: str
    writer: str | None = None
    suffixes: tuple[str, ...] = ()
    directory: Callable[[Path], bool] | None = None
    layout: Callable | None = None
    output_suffixes: tuple[str, ...] = ()
    output_default: bool = False

    def read(self, path, batch_size: int = 2048) -> Iterator[FrameBatch]:
        return _load(self.reader)(path, batch_size)

    def write(self, path, batches: Iterable[FrameBatch], **options) -> int:
        if self.writer is None:
            raise SetupError(f"tealign reads {self.name} but does not write it; write one of "
                             f"{', '.join(WRITABLE)}", file=str(path), field="format")
        return _load(self.writer)(batches, path, **options)


def _load(name: str):
    module, func = name.split(":")
    return getattr(importlib.import_module(module), func)


def _has_lmdb_shards(p: Path) -> bool:
    return any(f.suffix in (".aselmdb", ".lmdb") for f in p.iterdir())


def _mace_layout(f) -> bool:
    names = list(f.keys())
    return bool(names) and all(n.startswith("config_batch_") for n in names)


def _spice_layout(f) -> bool:
    names = list(f.keys())
    return bool(names) and "conformations" in f[names[0]]


#: Every format tealign reads, in the order they are tried.
REGISTRY: dict[str, Format] = {f.name: f for f in (
    Format("qm9", "tealign.io.qm9:read_path"),
    Format("extxyz", "tealign.io.extxyz:iter_extxyz", "tealign.io.extxyz:write_batches",
           suffixes=(".xyz", ".extxyz"), output_suffixes=(".xyz", ".extxyz")),
    Format("asedb", "tealign.io.asedb:iter_asedb", suffixes=(".db",)),
    Format("lmdb", "tealign.io.lmdb:iter_lmdb", "tealign.io.lmdb:write_lmdb",
           suffixes=(".aselmdb", ".lmdb"), directory=_has_lmdb_shards,
           output_suffixes=(".aselmdb",)),
    Format("mptrj", "tealign.io.mptrj:iter_mptrj", suffixes=(".json",)),
    Format("mace-h5", "tealign.io.mace_h5:iter_mace_h5", "tealign.io.mace_h5:write_mace_h5",
           directory=lambda p: True, layout=_mace_layout, output_default=True),
    Format("spice", "tealign.io.spice:iter_spice", layout=_spice_layout),
)}
FORMATS = tuple(REGISTRY)
WRITABLE = tuple(name for name, f in REGISTRY.items() if f.writer)

__all__ = ["FORMATS", "REGISTRY", "WRITABLE", "Format", "FrameBatch", "FrameRecord",
           "concat_batches", "detect_format", "get_format", "iread", "iter_batches", "read",
           "read_atoms", "read_batch", "write"]


def get_format(name: str, path=None) -> Format:
    """The registry entry ``name``; an unknown name is a setup error."""
    if name not in REGISTRY:
        raise SetupError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}",
                         file=None if path is None else str(path))
    return REGISTRY[name]


def is_dataset_spec(text: str) -> bool:
    """Whether ``text`` names a dataset rather than a file (``qm9``, ``qm9:N``)."""
    return text == "qm9" or text.startswith("qm9:")


def detect_format(path: str | os.PathLike) -> str:
    """Recognise the format of ``path`` from its name, and for HDF5 from its layout."""
    text = str(path)
    if is_dataset_spec(text):
        return "qm9"
    p = Path(text)
    if p.is_dir():
        return next(f.name for f in REGISTRY.values() if f.directory and f.directory(p))
    suffixes = [s.lower() for s in p.suffixes]
    last = suffixes[-1] if suffixes else ""
    if last == ".gz" and len(suffixes) > 1:
        last = suffixes[-2]
    for f in REGISTRY.values():
        if last in f.suffixes:
            return f.name
    if last in (".h5", ".hdf5"):
        return _detect_hdf5(p, text)
    if not p.exists():
        raise SetupError("no such file", file=text)
    raise SetupError(
        f"unknown dataset format (suffix {last or 'none'!r}); tealign reads "
        ".xyz/.extxyz, .db, .h5/.hdf5 (MACE or SPICE), MPtrj .json, a MACE shard "
        "directory or qm9:N",
        file=text,
    )


def _detect_hdf5(p: Path, text: str) -> str:
    if not p.exists():
        raise SetupError("no such file", file=text)
    from tealign.io.hdf5 import open_hdf5

    try:
        with open_hdf5(text) as f:
            for fmt in REGISTRY.values():
                if fmt.layout and fmt.layout(f):
                    return fmt.name
    except OSError as exc:
        raise SetupError(f"cannot open as HDF5: {exc}", file=text) from None
    raise SetupError("HDF5 file is neither MACE (config_batch_*) nor SPICE layout", file=text)


def iter_batches(
    path: str | os.PathLike, fmt: str | None = None, batch_size: int = 2048
) -> Iterator[FrameBatch]:
    """Stream any supported dataset as batches; frame errors ride along in ``rejects``.

    Every batch passes :func:`~tealign.io.frames.validate_batch` (the boundary checks of
    docs/architecture.md §6.3: finite positions and energies, forces n × 3, stress/virials
    3×3, 6 or 9 values, no empty frames) whatever the reader.
    """
    from tealign.io.frames import validate_batch

    fmt = fmt or detect_format(path)
    batches = get_format(fmt, path).read(path, batch_size)
    if fmt == "extxyz":  # the extxyz reader validates its own batches
        return batches
    return (validate_batch(b, str(path)) for b in batches)


def read_batch(path: str | os.PathLike, fmt: str | None = None) -> FrameBatch:
    """Read a whole (small) dataset into one batch."""
    return concat_batches(list(iter_batches(path, fmt)))


def read_atoms(path: str | os.PathLike, fmt: str | None = None) -> list[Atoms]:
    """Read a whole (small) dataset as a list of ``ase.Atoms``."""
    return [atoms for batch in iter_batches(path, fmt) for atoms in batch.to_atoms()]


def iread(path: str | os.PathLike, format: str | None = None,
          batch_size: int = 2048) -> Iterator[FrameBatch]:
    """Stream a dataset of any format as :class:`FrameBatch` chunks (bounded memory); each
    batch's ``rejects`` lists the frames that could not be read, with the reason."""
    return iter_batches(path, format, batch_size)


def read(path: str | os.PathLike, format: str | None = None) -> FrameBatch:
    """Read a whole dataset of any format into one :class:`FrameBatch` (``.to_atoms()``
    gives ``ase.Atoms``; ``.rejects`` the frames that could not be read)."""
    return read_batch(path, format)


def write(path: str | os.PathLike, frames, format: str | None = None, **options) -> int:
    """Write frames (a FrameBatch, an iterable of them, or a list of ``ase.Atoms``) to
    ``path`` atomically; returns the number of frames written.

    ``format`` defaults to extxyz for ``.xyz``/``.extxyz`` names, lmdb for ``.aselmdb``
    and MACE sharded HDF5 otherwise. Shard formats take ``keys`` (a
    :class:`~tealign.keys.Keys`, default ``REF_*``) and the options of
    :func:`tealign.io.shards.write_shards`; extxyz takes ``workers``.
    """
    fmt = format or output_format(path)
    return get_format(fmt, path).write(path, as_batches(frames), **options)


def output_format(path: str | os.PathLike, among: Iterable[str] | None = None) -> str:
    """The format an output path names, as the registry's entries recognise outputs: extxyz
    for ``.xyz``/``.extxyz``, lmdb for ``.aselmdb``, else MACE sharded HDF5 (a directory).
    ``among``: only these formats are candidates (the default one always is)."""
    suffix = Path(path).suffix.lower()
    for f in REGISTRY.values():
        if (among is None or f.name in among) and suffix in f.output_suffixes:
            return f.name
    return next(f.name for f in REGISTRY.values() if f.output_default)


def as_batches(data) -> Iterator[FrameBatch]:
    """A path, a FrameBatch, a list of ``ase.Atoms`` or an iterable of batches → batches."""
    if isinstance(data, FrameBatch):
        yield data
    elif isinstance(data, (str, os.PathLike)):
        yield from iter_batches(data)
    elif isinstance(data, list) and (not data or isinstance(data[0], Atoms)):
        yield FrameBatch.from_atoms(data)
    else:
        yield from data
