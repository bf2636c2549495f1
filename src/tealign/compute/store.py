"""A resumable job store for reference calculations (SQLite, one row per finished job).

Jobs are keyed by (structure hash, complete method settings hash): the same geometry at the
same settings is one job, whatever command or label asked for it. Every result is committed
the moment it arrives (SQLite's journal makes each commit atomic), so a run killed with
SIGKILL loses only the jobs in flight; rerunning the same command skips everything finished
and never stores a job twice (the key is the primary key). Failed SCFs are stored with their
reason and are not retried unless asked. Per-job timings are kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from tealign.compute.backends import CalculationResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    structure_hash TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    label TEXT NOT NULL,
    name TEXT,
    status TEXT NOT NULL,           -- 'done' or 'failed'
    energy REAL,                    -- eV (DFT without D3)
    forces BLOB,                    -- eV/Å, npy bytes
    stress BLOB,                    -- eV/Å³, npy bytes (periodic only)
    d3_energy REAL,
    d3_forces BLOB,
    d3_stress BLOB,
    info TEXT,                      -- JSON
    error TEXT,
    seconds REAL,
    host TEXT,
    finished REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def structure_hash(atoms: Atoms, charge: int = 0, multiplicity: int | None = None,
                   isolated_atom: bool = False, kpts=None) -> str:
    """SHA-256 of numbers, positions (rounded to 1e-8 Å), cell, pbc, charge, spin and, for a
    periodic cell with a fixed k-point mesh, the mesh."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=float), 8).tobytes())
    h.update(np.round(np.asarray(atoms.cell[:], dtype=float), 8).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    h.update(json.dumps([int(charge), multiplicity, bool(isolated_atom)]).encode())
    if kpts is not None:
        h.update(json.dumps({"kpts": [int(k) for k in kpts]}).encode())
    return h.hexdigest()


def job_key(structure: str, settings: str) -> str:
    return hashlib.sha256(f"{structure}:{settings}".encode()).hexdigest()[:32]


def _pack(arr) -> bytes | None:
    if arr is None:
        return None
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=float), allow_pickle=False)
    return buf.getvalue()


def _unpack(blob) -> np.ndarray | None:
    if blob is None:
        return None
    return np.load(io.BytesIO(blob), allow_pickle=False)


@dataclass
class StoredJob:
    key: str
    label: str
    name: str | None
    status: str
    result: CalculationResult | None
    error: str | None
    seconds: float | None


class JobStore:
    """The store directory: ``jobs.sqlite`` plus nothing else."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "jobs.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def statuses(self, keys: list[str] | None = None) -> dict[str, str]:
        """``{key: 'done' | 'failed'}`` for the stored jobs among ``keys`` (all when None);
        a key the store does not hold is absent."""
        rows = self._db.execute("SELECT key, status FROM jobs").fetchall()
        got = dict(rows)
        return got if keys is None else {k: got[k] for k in set(keys) if k in got}

    def put(self, key: str, structure: str, settings: str, label: str, name: str | None,
            result: CalculationResult | None, error: str | None, seconds: float) -> None:
        """Record one finished job (done when ``result`` is given, failed otherwise)."""
        r = result
        self._db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, structure, settings, label, name, "done" if r is not None else "failed",
             None if r is None else r.energy, None if r is None else _pack(r.forces),
             None if r is None else _pack(r.stress), None if r is None else r.d3_energy,
             None if r is None else _pack(r.d3_forces),
             None if r is None else _pack(r.d3_stress),
             json.dumps({} if r is None else r.info), error, seconds, socket.gethostname(),
             time.time()),
        )
        self._db.commit()

    def get(self, key: str) -> StoredJob | None:
        row = self._db.execute(
            "SELECT key,label,name,status,energy,forces,stress,d3_energy,d3_forces,d3_stress,"
            "info,error,seconds FROM jobs WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        (key, label, name, status, energy, forces, stress, d3e, d3f, d3s, info, error,
         seconds) = row
        result = None
        if status == "done":
            result = CalculationResult(
                energy=energy, forces=_unpack(forces), stress=_unpack(stress),
                d3_energy=d3e, d3_forces=_unpack(d3f), d3_stress=_unpack(d3s),
                info=json.loads(info or "{}"))
        return StoredJob(key, label, name, status, result, error, seconds)

    def count(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {s: n for s, n in rows}

    def timings(self) -> dict[str, float]:
        rows = self._db.execute(
            "SELECT label, SUM(seconds) FROM jobs GROUP BY label").fetchall()
        return {label: float(t or 0.0) for label, t in rows}


def default_store(output: str | Path) -> Path:
    """The job store of a compute command writing ``output``, unless told otherwise:
    ``<output>.store`` beside it (rerunning resumes from it)."""
    output = Path(output)
    return output.with_name(output.name + ".store")
