"""Dataset readers and writers.

Every reader yields :class:`~tealign.io.frames.FrameBatch` chunks (bounded memory);
:func:`iter_batches` picks the reader from the path, :func:`read_atoms` returns
``ase.Atoms`` for small inputs. Formats: extxyz (``.xyz``, ``.extxyz``, ``.gz``), ASE db
(``.db``), MACE sharded HDF5 (a directory of ``.h5`` or one ``.h5`` with
``config_batch_*``), ASE-LMDB (``.aselmdb``, or a directory of them), SPICE HDF5, MPtrj
JSON (``.json``), and QM9 (``qm9`` or ``qm9:N``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ase import Atoms

from tealign.errors import SetupError
from tealign.io.frames import FrameBatch, FrameRecord, concat_batches

FORMATS = ("extxyz", "asedb", "mace-h5", "lmdb", "spice", "mptrj", "qm9")

__all__ = ["FORMATS", "FrameBatch", "FrameRecord", "concat_batches", "detect_format",
           "iter_batches", "read_atoms", "read_batch"]


def detect_format(path: str | os.PathLike) -> str:
    """Guess the format of ``path`` from its name and, for HDF5, its layout."""
    text = str(path)
    if text == "qm9" or text.startswith("qm9:"):
        return "qm9"
    p = Path(text)
    if p.is_dir():
        if any(f.suffix in (".aselmdb", ".lmdb") for f in p.iterdir()):
            return "lmdb"
        return "mace-h5"
    suffixes = [s.lower() for s in p.suffixes]
    last = suffixes[-1] if suffixes else ""
    if last == ".gz" and len(suffixes) > 1:
        last = suffixes[-2]
    if last in (".xyz", ".extxyz"):
        return "extxyz"
    if last == ".db":
        return "asedb"
    if last in (".aselmdb", ".lmdb"):
        return "lmdb"
    if last == ".json":
        return "mptrj"
    if last in (".h5", ".hdf5"):
        if not p.exists():
            raise SetupError("no such file", file=text)
        import h5py

        try:
            with h5py.File(p, "r") as f:
                names = list(f.keys())
                if names and all(n.startswith("config_batch_") for n in names):
                    return "mace-h5"
                if names and "conformations" in f[names[0]]:
                    return "spice"
        except OSError as exc:
            raise SetupError(f"cannot open as HDF5: {exc}", file=text) from None
        raise SetupError("HDF5 file is neither MACE (config_batch_*) nor SPICE layout",
                         file=text)
    if not p.exists():
        raise SetupError("no such file", file=text)
    raise SetupError(
        f"unknown dataset format (suffix {last or 'none'!r}); tealign reads "
        ".xyz/.extxyz, .db, .h5/.hdf5 (MACE or SPICE), MPtrj .json, a MACE shard "
        "directory or qm9:N",
        file=text,
    )


def iter_batches(
    path: str | os.PathLike, fmt: str | None = None, batch_size: int = 2048
) -> Iterator[FrameBatch]:
    """Stream any supported dataset as batches; frame errors ride along in ``rejects``.

    Every batch passes :func:`~tealign.io.frames.validate_batch` (the boundary checks of
    docs/architecture.md §6.3: finite positions and energies, forces n × 3, stress/virials
    3×3, 6 or 9 values, no empty frames) whatever the reader.
    """
    from tealign.io.frames import validate_batch

    fname = str(path)
    fmt = fmt or detect_format(path)
    if fmt == "extxyz":  # the extxyz reader validates its own batches
        return _reader(path, fmt, batch_size)
    return (validate_batch(b, fname) for b in _reader(path, fmt, batch_size))


def _reader(path, fmt, batch_size) -> Iterator[FrameBatch]:
    fmt = fmt or detect_format(path)
    if fmt == "extxyz":
        from tealign.io.extxyz import iter_extxyz

        return iter_extxyz(path, batch_size)
    if fmt == "asedb":
        from tealign.io.asedb import iter_asedb

        return iter_asedb(path, batch_size)
    if fmt == "mace-h5":
        from tealign.io.mace_h5 import iter_mace_h5

        return iter_mace_h5(path, batch_size)
    if fmt == "lmdb":
        from tealign.io.lmdb import iter_lmdb

        return iter_lmdb(path, batch_size)
    if fmt == "spice":
        from tealign.io.spice import iter_spice

        return iter_spice(path, batch_size)
    if fmt == "mptrj":
        from tealign.io.mptrj import iter_mptrj

        return iter_mptrj(path, batch_size)
    if fmt == "qm9":
        from tealign.io.qm9 import iter_qm9

        text = str(path)
        limit = None
        if ":" in text:
            try:
                limit = int(text.split(":", 1)[1])
            except ValueError:
                raise SetupError("qm9:N needs an integer N", file=text) from None
        return iter_qm9(limit, batch_size)
    raise SetupError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}",
                     file=str(path))


def read_batch(path: str | os.PathLike, fmt: str | None = None) -> FrameBatch:
    """Read a whole (small) dataset into one batch."""
    return concat_batches(list(iter_batches(path, fmt)))


def read_atoms(path: str | os.PathLike, fmt: str | None = None) -> list[Atoms]:
    """Read a whole (small) dataset as a list of ``ase.Atoms``."""
    out: list[Atoms] = []
    for batch in iter_batches(path, fmt):
        out.extend(batch.to_atoms())
    return out
