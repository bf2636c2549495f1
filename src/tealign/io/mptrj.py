"""MPtrj JSON reader (``MPtrj_2022.9_full.json`` layout, DESIGN 7).

``{mp_id: {frame_id: {"structure": <pymatgen Structure dict>, "uncorrected_total_energy",
"force", "stress", "magmom", ...}}}``. The energy is ``uncorrected_total_energy`` (eV, the
raw PAW total that matches raw isolated atoms; never the MP2020-corrected energy); forces
in eV/Å; stress converted from kbar with VASP's sign to eV/Å³ with ASE's sign. ``mp_id``,
``frame_id`` and per-atom ``magmom`` are kept.

The file is parsed with the standard ``json`` module, so the whole document is held in
memory while frames are produced in batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from tealign import units
from tealign.errors import FrameError, SetupError
from tealign.io.frames import FrameBatch, FrameRecord

MPTRJ_METHOD = "pbe/paw (vasp, Materials Project settings)"


def iter_mptrj(path: str | Path, batch_size: int = 2048) -> Iterator[FrameBatch]:
    fname = str(path)
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise SetupError(f"cannot open file: {exc.strerror}", file=fname) from None
    except json.JSONDecodeError as exc:
        raise SetupError(
            f"not valid JSON (line {exc.lineno} col {exc.colno}: {exc.msg}); a truncated "
            "MPtrj file cannot be read",
            file=fname,
        ) from None
    if not isinstance(doc, dict):
        raise SetupError("MPtrj JSON must map mp_id to frames", file=fname)
    records: list[FrameRecord] = []
    rejects: list[FrameError] = []
    frame = 0
    for mp_id, frames in doc.items():
        if not isinstance(frames, dict):
            raise SetupError("expected {frame_id: frame} under each mp_id", file=fname,
                             field=mp_id)
        for frame_id, entry in frames.items():
            try:
                records.append(_record(entry, mp_id, frame_id, frame))
            except _Bad as bad:
                rejects.append(FrameError(fname, frame, bad.field, bad.reason))
            frame += 1
            if len(records) >= batch_size:
                yield FrameBatch.from_records(records, rejects)
                records, rejects = [], []
    if records or rejects:
        yield FrameBatch.from_records(records, rejects)


class _Bad(Exception):
    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason


def _record(entry: dict, mp_id: str, frame_id: str, index: int) -> FrameRecord:
    try:
        s = entry["structure"]
        cell = np.array(s["lattice"]["matrix"], dtype=float)
        sites = s["sites"]
        symbols = [max(site["species"], key=lambda sp: sp.get("occu", 1))["element"]
                   for site in sites]
        positions = np.array([site["xyz"] for site in sites], dtype=float)
    except (KeyError, TypeError, ValueError) as exc:
        raise _Bad("structure", f"malformed pymatgen structure ({exc})") from None
    numbers = []
    for sym in symbols:
        if sym not in atomic_numbers:
            raise _Bad("structure", f"unknown element symbol {sym!r}")
        numbers.append(atomic_numbers[sym])
    n = len(numbers)
    if "uncorrected_total_energy" not in entry:
        raise _Bad("uncorrected_total_energy", "missing")
    energy = entry["uncorrected_total_energy"]
    if not isinstance(energy, (int, float)) or not np.isfinite(energy):
        raise _Bad("uncorrected_total_energy", f"not a finite number: {energy!r}")
    info = {
        "energy": float(energy),
        "mp_id": str(entry.get("mp_id", mp_id)),
        "frame_id": str(frame_id),
        "method": MPTRJ_METHOD,
    }
    if s.get("charge"):
        info["charge"] = int(s["charge"])
    arrays = {}
    if "force" in entry:
        forces = np.array(entry["force"], dtype=float)
        if forces.shape != (n, 3):
            raise _Bad("force", f"shape {forces.shape}, expected ({n}, 3)")
        if not np.isfinite(forces).all():
            raise _Bad("force", "NaN or inf value")
        arrays["forces"] = forces
    if "stress" in entry and entry["stress"] is not None:
        stress = np.array(entry["stress"], dtype=float)
        if stress.shape != (3, 3):
            raise _Bad("stress", f"shape {stress.shape}, expected (3, 3)")
        info["stress"] = units.kbar_stress_vasp_to_ase(stress)
    magmom = entry.get("magmom")
    if magmom is not None:
        mag = np.array(magmom, dtype=float).reshape(-1)
        if mag.shape != (n,):
            raise _Bad("magmom", f"{mag.size} values for {n} atoms")
        arrays["magmom"] = mag
    return FrameRecord(numbers=np.array(numbers), positions=positions, cell=cell,
                       pbc=np.ones(3, dtype=bool), info=info, arrays=arrays, index=index)
