"""ASE database reader (``.db`` files: SQLite or JSON backends), streamed in batches.

Rows become frames with their key-value pairs and ``data`` in ``info``/``arrays`` and the
stored calculator results (energy, forces, stress) under ASE's names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tealign.errors import SetupError
from tealign.io.frames import FrameBatch


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
