"""Dataset readers and writers, chosen from one registry of formats.

Every reader yields :class:`~tealign.io.frames.FrameBatch` chunks (bounded memory). Each
format is one :class:`Format` entry of :data:`REGISTRY` naming its reader, its writer (where
tealign writes it) and how a path is recognised as it, as an input and as an output:

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
                                                       (a name without a suffix)
spice      ``.h5``/``.hdf5`` with ``conformations``     –
=========  ==========================================  ==================================

An output name with any other suffix is refused (:func:`output_kind`).
:func:`read`, :func:`iread` (``ase.Atoms``, as ``ase.io``; other formats through ``ase.io``)
and :func:`write` are the public entry points (re-exported by ``tealign``), with the
columnar :func:`read_frames`/:func:`iter_frames`; :func:`iter_batches`, :func:`read_batch`
and :func:`read_atoms` are the batch-level forms the pipeline uses.
"""

from __future__ import annotations

import importlib
import itertools
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


def _spice_layout(f, look: int = 16) -> bool:
    """SPICE: one of the first ``look`` top-level groups holds ``conformations`` (a few
    malformed groups sorting first are the reader's rejects, not another format)."""
    import h5py

    for name in itertools.islice(f.keys(), look):
        grp = f.get(name)
        if isinstance(grp, h5py.Group) and "conformations" in grp:
            return True
    return False


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
           "concat_batches", "detect_format", "get_format", "iread", "iter_batches",
           "iter_frames", "output_kind", "read", "read_atoms", "read_batch", "read_frames",
           "write"]


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
    if fmt == "ase":
        from tealign.io.asedb import iter_ase

        batches = iter_ase(path, batch_size)
    else:
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
OWN_ATOMS_FORMATS = ("extxyz", "lmdb", "mptrj", "mace-h5", "spice", "qm9")


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


def ase_atoms(rec: FrameRecord) -> Atoms:
    """One frame as ``ase.io`` reads extxyz: calculator results (``energy``, ``forces``,
    ``stress`` in Voigt form, ...) on a ``SinglePointCalculator``, everything else in
    ``info``/``arrays``, ``move_mask`` as constraints."""
    import numpy as np
    from ase.io.extxyz import set_calc_and_arrays

    from tealign.io.frames import _set_constraints

    atoms = Atoms(numbers=rec.numbers, positions=rec.positions, cell=rec.cell, pbc=rec.pbc)
    for key, value in rec.info.items():
        if isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, int) and not isinstance(value, bool):
            value = np.int64(value)  # ASE's scalar kinds (extxyz reader)
        elif isinstance(value, float):
            value = np.float64(value)
        atoms.info[key] = value
    arrays = {}
    for key, value in rec.arrays.items():
        if key == "move_mask":
            _set_constraints(atoms, np.asarray(value, dtype=bool))
        else:
            value = np.array(value)
            arrays[key] = value.astype(np.int32) if value.dtype.kind == "i" else value
    set_calc_and_arrays(atoms, arrays)
    return atoms


def _own_atoms(path, fmt: str) -> Iterator[Atoms]:
    if fmt == "lmdb":  # rows as ase.io.read gives them (calculator results, no data)
        from tealign.io.lmdb import iter_lmdb_atoms

        yield from iter_lmdb_atoms(path)
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


#: Output suffixes and the format each writes (docs: README "Python API", I/O).
OUTPUT_SUFFIXES = {".extxyz": "extxyz", ".xyz": "extxyz", ".extxyz.gz": "extxyz",
                   ".xyz.gz": "extxyz", ".aselmdb": "lmdb-file", ".lmdb": "lmdb-file",
                   ".h5": "mace-h5-file", ".hdf5": "mace-h5-file", ".traj": "ase",
                   ".db": "ase"}


def output_kind(path: str | os.PathLike) -> str:
    """What a name written by :func:`write` or ``convert`` becomes, from its suffix:
    ``extxyz`` (``.extxyz``/``.xyz``, gzip-compressed with ``.gz``), ``lmdb-file`` (one
    ASE-LMDB file: ``.aselmdb``/``.lmdb``), ``mace-h5-file`` (one MACE HDF5 file:
    ``.h5``/``.hdf5``), ``ase`` (through ``ase.io.write``: ``.traj``, ``.db``),
    or ``mace-h5`` (a MACE shard directory: a name without a suffix). Any other suffix is
    a :class:`SetupError`, so no name becomes a directory by surprise."""
    name = Path(path).name.lower()
    for suffix in sorted(OUTPUT_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return OUTPUT_SUFFIXES[suffix]
    if not Path(name).suffix:
        return "mace-h5"
    raise SetupError(
        f"unknown output suffix {Path(name).suffix!r}: write .extxyz/.xyz (.gz), .aselmdb, "
        ".h5, .traj or .db, or a name without a suffix for a MACE shard directory",
        file=str(path))


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
        if fmt.name in ("lmdb", "mace-h5") and Path(path).suffix:
            kind = {"lmdb": "lmdb-file", "mace-h5": "mace-h5-file"}[fmt.name]
            return write_file(kind, path, as_batches(frames), **options)
        return fmt.write(path, as_batches(frames), **options)
    kind = output_kind(path)
    if kind == "mace-h5" and options.get("keys") is None \
            and isinstance(frames, (list, FrameBatch)):  # in memory already
        batches = list(as_batches(frames))
        options.pop("keys", None)
        return get_format(kind, path).write(path, batches, **options,
                                            keys=_keys_present(batches))
    if kind in ("extxyz", "mace-h5"):
        return get_format(kind, path).write(path, as_batches(frames), **options)
    return write_file(kind, path, as_batches(frames), **options)


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


def write_file(kind: str, path, batches: Iterable[FrameBatch], **options) -> int:
    """One output file of ``kind`` (``lmdb-file``, ``mace-h5-file``, ``ase``); without
    ``keys`` the MACE formats take ``REF_*``, or ASE's names where only those are present."""
    if kind in ("lmdb-file", "mace-h5-file") and options.get("keys") is None:
        batches = list(batches)
        options["keys"] = _keys_present(batches)
    if kind == "lmdb-file":
        from tealign.io.lmdb import write_lmdb_single

        return write_lmdb_single(batches, path, **options)
    if kind == "mace-h5-file":
        from tealign.io.shards import write_h5_file

        return write_h5_file(batches, path, **options)
    return _write_ase(path, batches, **options)


def _write_ase(path, batches, **options) -> int:
    import ase.io
    from ase.io.formats import filetype

    from tealign.io.atomic import atomic_path

    atoms = [a for batch in batches for a in (ase_atoms(batch.record(i))
                                              for i in range(batch.n_frames))]
    fmt = options.pop("ase_format", None) or filetype(str(path), read=False)
    with atomic_path(path) as tmp:
        try:
            if fmt == "db":  # ase.db picks the backend from the name: the temporary's is odd
                import ase.db

                with ase.db.connect(str(tmp), type="db", append=False) as db:
                    for a in atoms:
                        db.write(a)
            else:
                ase.io.write(str(tmp), atoms, format=fmt, **options)
        except (ValueError, TypeError, KeyError) as exc:
            raise SetupError(f"ase.io cannot write it ({type(exc).__name__}: {exc})",
                             file=str(path)) from None
    return len(atoms)


def output_format(path: str | os.PathLike, among: Iterable[str] | None = None) -> str:
    """The registry format an output path names, as the registry's entries recognise
    outputs: extxyz for ``.xyz``/``.extxyz``, lmdb for ``.aselmdb``, else MACE sharded
    HDF5. ``among``: only these formats are candidates (the default one always is)."""
    name = Path(path).name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    suffix = Path(name).suffix
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
    elif isinstance(data, Atoms):
        yield FrameBatch.from_atoms([data])
    elif isinstance(data, list) and (not data or isinstance(data[0], Atoms)):
        yield FrameBatch.from_atoms(data)
    else:
        yield from data
