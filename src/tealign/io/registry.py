"""The format registry: the one table saying which module reads and writes each format.

Every dataset format is one :class:`Format` entry of :data:`REGISTRY` naming, as
``"module:function"`` strings imported on first use (so optional dependencies load only for
their format and this module imports no format module), its reader, its writers and its
shard writer, and how a path is recognised as it, as an input and as an output. Reading
(:func:`tealign.io.iter_batches`, ``read``/``iread``), writing (:func:`tealign.io.write`),
``convert`` (:mod:`tealign.io.convert`) and the shard directories of ``merge``
(:mod:`tealign.io.shards`) look formats up here only. To add a format: write its module
(reader, writers) and add one entry below (docs/architecture.md §3.2).
"""

from __future__ import annotations

import importlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tealign.errors import SetupError


@dataclass(frozen=True)
class Format:
    """One dataset format: its reader, its writers and how a path is recognised.

    Hooks are ``"module:function"`` names:

    - ``reader(path, batch_size)`` yields :class:`~tealign.io.frames.FrameBatch` chunks;
      ``atoms_reader(path)`` (optional) yields ``ase.Atoms`` for ``read``/``iread`` where
      they are not the batches' frames;
    - ``writer(batches, path, **options)`` writes the format's main output (one file, or a
      shard directory when ``writes_directory``); returns frames written;
    - ``file_writer(batches, path, **options)`` writes one file (a name ending in one of
      ``file_suffixes``) of a format whose ``writer`` writes a directory;
    - ``shard_writer(path, batches, frame0, keys, weights)`` writes one shard of a shard
      directory (:mod:`tealign.io.shards`, run in worker processes; ``shard_suffix`` names
      its files, ``sidecar`` says it leaves a sidecar part, ``shard_preload`` lists modules
      to import before the workers fork); returns frames written;
    - ``statistics(out_dir, e0s, stats_path, r_max=)`` writes training statistics beside
      an output (``convert --e0``).

    Recognition: ``spec`` a dataset name (``qm9``, ``qm9:N``); ``suffixes`` the last suffix
    (before ``.gz``; several formats may share one, told apart by ``layout``, a test on the
    opened HDF5 file); ``directory`` a directory test. As an output, a name ending in one of
    ``output_suffixes`` is this format (``gzip``: also with ``.gz``); the one
    ``output_default`` format takes a name without a suffix. ``keyed``: its writers take
    ``keys`` (a :class:`~tealign.keys.Keys`: where MACE's properties live in the frames).
    ``convert_to``: ``convert --to`` accepts it. ``aliases``: other names accepted for it.
    """

    name: str
    reader: str
    writer: str | None = None
    suffixes: tuple[str, ...] = ()
    directory: Callable[[Path], bool] | None = None
    layout: Callable | None = None
    output_suffixes: tuple[str, ...] = ()
    output_default: bool = False
    aliases: tuple[str, ...] = ()
    label: str = ""
    spec: str | None = None
    validates: bool = False
    own_atoms: bool = True
    atoms_reader: str | None = None
    writes_directory: bool = False
    gzip: bool = False
    file_writer: str | None = None
    file_suffixes: tuple[str, ...] = ()
    file_kind: str | None = None
    keyed: bool = False
    convert_to: bool = False
    statistics: str | None = None
    shard_writer: str | None = None
    shard_suffix: str = ""
    sidecar: bool = False
    shard_preload: tuple[str, ...] = ()

    @property
    def one_file_kind(self) -> str:
        """The output kind of one file written by ``file_writer`` (``<name>-file``)."""
        return self.file_kind or f"{self.name}-file"

    def read(self, path, batch_size: int = 2048) -> Iterator:
        return load(self.reader)(path, batch_size)

    def write(self, path, batches: Iterable, **options) -> int:
        if self.writer is None:
            raise SetupError(f"tealign reads {self.name} but does not write it; write one of "
                             f"{', '.join(writable())}", file=str(path), field="format")
        return load(self.writer)(batches, path, **options)

    def write_one_file(self, path, batches: Iterable, **options) -> int:
        return load(self.file_writer)(batches, path, **options)


def load(name: str):
    """The function a ``"module:function"`` hook names."""
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


_HDF5 = (".h5", ".hdf5")

#: Every format tealign reads, in the order they are tried.
REGISTRY: dict[str, Format] = {f.name: f for f in (
    Format("qm9", "tealign.io.qm9:read_path", spec="qm9", label="qm9:N"),
    Format("extxyz", "tealign.io.extxyz:iter_extxyz", "tealign.io.extxyz:write_batches",
           suffixes=(".xyz", ".extxyz"), output_suffixes=(".xyz", ".extxyz"), gzip=True,
           validates=True, convert_to=True, label="extxyz"),
    Format("asedb", "tealign.io.asedb:iter_asedb", suffixes=(".db",), own_atoms=False,
           label="ASE db"),
    Format("lmdb", "tealign.io.lmdb:iter_lmdb", "tealign.io.lmdb:write_lmdb",
           suffixes=(".aselmdb", ".lmdb"), directory=_has_lmdb_shards,
           output_suffixes=(".aselmdb",), atoms_reader="tealign.io.lmdb:iter_lmdb_atoms",
           writes_directory=True, file_writer="tealign.io.lmdb:write_lmdb_single",
           file_suffixes=(".aselmdb", ".lmdb"), keyed=True,
           shard_writer="tealign.io.lmdb:write_lmdb_shard", shard_suffix=".aselmdb",
           shard_preload=("lmdb",), label="ASE-LMDB (or a directory of them)"),
    Format("mptrj", "tealign.io.mptrj:iter_mptrj", suffixes=(".json",), label="MPtrj"),
    Format("mace-h5", "tealign.io.mace_h5:iter_mace_h5", "tealign.io.mace_h5:write_mace_h5",
           suffixes=_HDF5, directory=lambda p: True, layout=_mace_layout,
           output_default=True, aliases=("h5",),  # "h5": merge --format's older name
           writes_directory=True, file_writer="tealign.io.mace_h5:write_mace_h5_file",
           file_suffixes=_HDF5, keyed=True, convert_to=True,
           statistics="tealign.io.mace_h5:write_statistics",
           shard_writer="tealign.io.mace_h5:write_h5_shard", shard_suffix=".h5", sidecar=True,
           shard_preload=("mace.data.utils",),
           label="MACE (config_batch_*)"),
    Format("spice", "tealign.io.spice:iter_spice", suffixes=_HDF5, layout=_spice_layout,
           label="SPICE"),
)}

#: Files of formats tealign does not know: read with ``ase.io`` (``iter_batches(fmt="ase")``)
#: and written with ``ase.io.write`` (``.traj``, ``.db``). Not detected from a name.
ASE = Format("ase", "tealign.io.asedb:iter_ase", file_writer="tealign.io.asedb:write_ase",
             file_suffixes=(".traj", ".db"), file_kind="ase", own_atoms=False, label="ase.io")

FORMATS = tuple(REGISTRY)


def writable() -> tuple[str, ...]:
    """The formats tealign writes (those with a writer)."""
    return tuple(name for name, f in REGISTRY.items() if f.writer)


WRITABLE = writable()


def _by_name(name: str) -> Format | None:
    if name in REGISTRY:
        return REGISTRY[name]
    return next((f for f in REGISTRY.values() if name in f.aliases), None)


def get_format(name: str, path=None) -> Format:
    """The registry entry ``name`` (or one of its aliases); an unknown name is a setup
    error."""
    fmt = _by_name(name)
    if fmt is None:
        raise SetupError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}",
                         file=None if path is None else str(path))
    return fmt


def shard_formats() -> tuple[str, ...]:
    """The names (aliases included) of the formats written as shard directories."""
    return tuple(n for f in REGISTRY.values() if f.shard_writer for n in (f.name, *f.aliases))


def shard_format(name: str) -> Format:
    """The entry of a shard format by name or alias; ``ValueError`` for any other name."""
    fmt = _by_name(name)
    if fmt is None or fmt.shard_writer is None:
        raise ValueError(f"format must be one of {shard_formats()}, not {name!r}")
    return fmt


def is_dataset_spec(text: str) -> bool:
    """Whether ``text`` names a dataset rather than a file (``qm9``, ``qm9:N``)."""
    return any(f.spec and (text == f.spec or text.startswith(f.spec + ":"))
               for f in REGISTRY.values())


def detect_format(path: str | os.PathLike) -> str:
    """Recognise the format of ``path`` from its name, and for HDF5 from its layout."""
    text = str(path)
    for f in REGISTRY.values():
        if f.spec and (text == f.spec or text.startswith(f.spec + ":")):
            return f.name
    p = Path(text)
    if p.is_dir():
        return next(f.name for f in REGISTRY.values() if f.directory and f.directory(p))
    suffixes = [s.lower() for s in p.suffixes]
    last = suffixes[-1] if suffixes else ""
    if last == ".gz" and len(suffixes) > 1:
        last = suffixes[-2]
    candidates = [f for f in REGISTRY.values() if last in f.suffixes]
    if candidates and candidates[0].layout is None:
        return candidates[0].name
    if candidates:  # formats sharing a suffix, told apart by their layout (HDF5)
        return _detect_layout(p, text, [f for f in candidates if f.layout])
    if not p.exists():
        raise SetupError("no such file", file=text)
    reads = ", ".join(f"{f.label} ({'/'.join(f.suffixes)})" if f.suffixes else f.label
                      for f in REGISTRY.values())
    raise SetupError(f"unknown dataset format (suffix {last or 'none'!r}); tealign reads "
                     f"{reads}", file=text)


def _detect_layout(p: Path, text: str, candidates: list[Format]) -> str:
    """The candidate whose HDF5 layout the file has."""
    if not p.exists():
        raise SetupError("no such file", file=text)
    from tealign.io.hdf5 import open_hdf5

    try:
        with open_hdf5(text) as f:
            for fmt in candidates:
                if fmt.layout and fmt.layout(f):
                    return fmt.name
    except OSError as exc:
        raise SetupError(f"cannot open as HDF5: {exc}", file=text) from None
    names = " nor ".join(f.label for f in candidates)
    raise SetupError(f"HDF5 file is neither {names} layout", file=text)


def output_suffixes() -> dict[str, str]:
    """Output name suffix → the kind of output it names (see :func:`output_kind`)."""
    table: dict[str, str] = {}
    for f in (*REGISTRY.values(), ASE):
        if f.writer and not f.writes_directory:
            for s in f.output_suffixes:
                table[s] = f.name
                if f.gzip:
                    table[s + ".gz"] = f.name
        for s in f.file_suffixes if f.file_writer else ():
            table[s] = f.one_file_kind
    return table


def kind_format(kind: str) -> Format:
    """The format writing output ``kind`` (a format's name, or its one-file kind)."""
    for f in (*REGISTRY.values(), ASE):
        if kind == f.name and f.writer or f.file_writer and kind == f.one_file_kind:
            return f
    raise SetupError(f"unknown output kind {kind!r}")


def output_kind(path: str | os.PathLike) -> str:
    """What a name written by :func:`tealign.io.write` or ``convert`` becomes, from its
    suffix: ``extxyz`` (``.extxyz``/``.xyz``, gzip-compressed with ``.gz``), ``lmdb-file``
    (one ASE-LMDB file: ``.aselmdb``/``.lmdb``), ``mace-h5-file`` (one MACE HDF5 file:
    ``.h5``/``.hdf5``), ``ase`` (through ``ase.io.write``: ``.traj``, ``.db``), or the
    default format's directory (``mace-h5``, MACE shards: a name without a suffix). Any other
    suffix is a :class:`SetupError`, so no name becomes a directory by surprise."""
    table = output_suffixes()
    name = Path(path).name.lower()
    for suffix in sorted(table, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return table[suffix]
    default = next(f for f in REGISTRY.values() if f.output_default)
    if not Path(name).suffix:
        return default.name
    raise SetupError(
        f"unknown output suffix {Path(name).suffix!r}: write "
        f"{', '.join(sorted(table))}, or a name without a suffix for a {default.name} "
        "shard directory",
        file=str(path))


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
