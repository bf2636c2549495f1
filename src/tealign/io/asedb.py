"""ASE's formats: the ASE database reader, any file ``ase.io`` reads or writes.

:func:`iter_asedb` streams ``.db`` files (SQLite or JSON backends) in batches: rows become
frames with their key-value pairs and ``data`` in ``info``/``arrays`` and the stored
calculator results (energy, forces, stress) under ASE's names. :func:`iter_ase` reads, and
:func:`write_ase` writes, through ``ase.io`` (the registry's ``ase`` fallback entry);
:func:`ase_atoms` turns a frame into ``ase.Atoms`` as ``ase.io`` reads extxyz.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ase import Atoms

from tealign.errors import SetupError
from tealign.io.frames import FrameBatch, FrameRecord


def iter_asedb(path: str | Path, batch_size: int = 2048) -> Iterator[FrameBatch]:
    import ase.db

    fname = str(path)
    if not Path(path).exists():
        raise SetupError("no such file", file=fname)
    try:
        db = ase.db.connect(fname)
        rows = db.select()
        chunk = []
        start = 0
        for row in rows:
            atoms = row.toatoms(add_additional_information=False)
            atoms.info.update(row.key_value_pairs)
            for key, value in (row.get("data") or {}).items():
                if hasattr(value, "shape") and value.shape[:1] == (len(atoms),):
                    atoms.arrays[key] = value
                else:
                    atoms.info[key] = value
            chunk.append(atoms)
            if len(chunk) >= batch_size:
                yield FrameBatch.from_atoms(chunk, start_index=start)
                start += len(chunk)
                chunk = []
        if chunk:
            yield FrameBatch.from_atoms(chunk, start_index=start)
    except (OSError, ValueError, KeyError) as exc:
        raise SetupError(f"cannot read ASE database: {exc}", file=fname) from None
    except Exception as exc:  # sqlite3.DatabaseError and friends
        if type(exc).__module__.startswith("sqlite3"):
            raise SetupError(f"not an ASE database: {exc}", file=fname) from None
        raise


def iter_ase(path: str | Path, batch_size: int = 2048,
             format: str | None = None) -> Iterator[FrameBatch]:
    """Any file ``ase.io`` reads (``.traj``, ``vasprun.xml``, ``OUTCAR``, ...) streamed in
    batches; calculator results join ``info``/``arrays`` under ASE's names (energy eV,
    forces eV/Å, stress eV/Å³). An error of ASE's reader is a setup error naming the file."""
    import ase.io

    fname = str(path)
    if not Path(path).exists():
        raise SetupError("no such file", file=fname)
    chunk: list = []
    start = 0
    try:
        for atoms in ase.io.iread(fname, ":", format=format):
            chunk.append(atoms)
            if len(chunk) >= batch_size:
                yield FrameBatch.from_atoms(chunk, start_index=start)
                start += len(chunk)
                chunk = []
    except Exception as exc:  # noqa: BLE001 (ASE's readers raise every kind)
        raise ase_read_error(exc, fname) from None
    if chunk:
        yield FrameBatch.from_atoms(chunk, start_index=start)


def ase_read_error(exc: Exception, fname: str) -> SetupError:
    """The one line for a file ``ase.io`` could not read (or does not know)."""
    from ase.io.formats import UnknownFileTypeError

    if isinstance(exc, UnknownFileTypeError):
        suffix = Path(fname).suffix or "none"
        return SetupError(f"unknown dataset format (suffix {suffix!r}): neither tealign nor "
                          "ase.io reads it", file=fname)
    return SetupError(f"ase.io cannot read it ({type(exc).__name__}: {exc})", file=fname)


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


def write_ase(batches, path, **options) -> int:
    """Write frames through ``ase.io.write`` (format from the name, or ``ase_format``),
    atomically; returns frames written. An error of ASE's writer is a setup error."""
    import ase.io
    from ase.io.formats import filetype

    from tealign.io.outputs import atomic_path

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
