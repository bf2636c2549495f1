"""What is in a dataset: counts, elements, energies per atom, charges and a units verdict.

Backs ``tealign info``. Streams the input in batches, so memory is bounded whatever its size.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from ase.data import chemical_symbols

from tealign import units
from tealign.errors import FrameError, SetupError
from tealign.io import iter_batches
from tealign.keys import REF
from tealign.methods import builtin_tables, load_table

ENERGY_KEY_PREFERENCE = (REF.energy, "energy")
CHARGE_KEYS = ("charge", "total_charge")


def _all_electron_estimate() -> np.ndarray:
    """Rough all-electron neutral-atom energies in eV by atomic number.

    Built-in all-electron tables where they have the element, otherwise the Thomas-Fermi
    energy with Scott and Schwinger corrections, E ≈ −0.7687 Z^(7/3) + Z²/2 − 0.2699 Z^(5/3)
    hartree (Schwinger, Phys. Rev. A 22, 1827 (1980)), good to a few per cent.
    """
    z = np.arange(119, dtype=float)
    est = (-0.7687 * z ** (7 / 3) + 0.5 * z**2 - 0.2699 * z ** (5 / 3)) * units.HARTREE_TO_EV
    table = load_table("wb97m-d3bj-def2-tzvppd")
    for sym, e in table.energies.items():
        if sym != "I":  # iodine in def2 uses an ECP
            est[chemical_symbols.index(sym)] = e
    return est


def units_verdict(energies: np.ndarray, ae_estimate: np.ndarray, n_atoms: np.ndarray) -> str:
    """Judge whether energies declared in eV look like eV, hartree or kcal/mol.

    ``ae_estimate`` is each frame's summed all-electron atom energy (eV). Ratios near 1 mean
    all-electron totals in eV; near 1/27.2 hartree; near 23.06 kcal/mol; near 96.5 kJ/mol.
    Small per-atom magnitudes are valence-only (PAW/pseudopotential) or relative energies.
    """
    if len(energies) == 0:
        return "no energies to judge"
    ratio = float(np.median(energies / ae_estimate))
    per_atom = float(np.median(np.abs(energies) / np.maximum(n_atoms, 1)))
    checks = [
        (1.0, "eV: all-electron total energies"),
        (1 / units.HARTREE_TO_EV, "looks like hartree, not eV: convert with 1 Ha = "
         f"{units.HARTREE_TO_EV} eV"),
        (1 / units.KCAL_PER_MOL_TO_EV, "looks like kcal/mol, not eV"),
        (1 / units.KJ_PER_MOL_TO_EV, "looks like kJ/mol, not eV"),
    ]
    for target, verdict in checks:
        if abs(ratio / target - 1) < 0.12:
            return verdict
    if per_atom < 30:
        return "eV: valence-only (PAW/pseudopotential) or relative energies"
    return (f"unrecognised energy scale (median {per_atom:.4g} per atom, ratio to all-electron "
            f"atoms {ratio:.3g}); check the units")


@dataclass
class DatasetSummary:
    frames: int = 0
    atoms: int = 0
    elements: Counter = field(default_factory=Counter)
    periodic_frames: int = 0
    properties: dict[str, int] = field(default_factory=dict)
    charges: Counter = field(default_factory=Counter)
    energy_key: str | None = None
    energies_per_atom: list = field(default_factory=list)
    energies: list = field(default_factory=list)
    ae_estimates: list = field(default_factory=list)
    natoms_with_energy: list = field(default_factory=list)
    rejects: list[FrameError] = field(default_factory=list)

    def as_json(self) -> dict:
        e = np.concatenate(self.energies_per_atom) if self.energies_per_atom else np.zeros(0)
        stats = (
            {"min": float(e.min()), "mean": float(e.mean()), "max": float(e.max())}
            if len(e) else {"min": None, "mean": None, "max": None}
        )
        verdict = units_verdict(
            np.concatenate(self.energies) if self.energies else np.zeros(0),
            np.concatenate(self.ae_estimates) if self.ae_estimates else np.zeros(0),
            np.concatenate(self.natoms_with_energy) if self.natoms_with_energy else np.zeros(0),
        )
        return {
            "frames": self.frames,
            "atoms": self.atoms,
            "elements": {
                chemical_symbols[z]: int(n) for z, n in sorted(self.elements.items())
            },
            "periodic_frames": self.periodic_frames,
            "properties": sorted(self.properties),
            "properties_missing": {
                k: self.frames - n for k, n in sorted(self.properties.items())
                if n < self.frames
            },
            "energy_key": self.energy_key,
            "energy_per_atom_eV": stats,
            "charges": {str(q): int(n) for q, n in sorted(self.charges.items())},
            "units_verdict": verdict,
            "frames_rejected": len(self.rejects),
            "rejects": [r.line() for r in self.rejects[:20]],
        }


def summarize(path: str | os.PathLike, energy_key: str | None = None,
              fmt: str | None = None, progress=None) -> DatasetSummary:
    """Stream ``path`` and collect a :class:`DatasetSummary`.

    ``energy_key`` defaults to ``REF_energy``, then ``energy``, then the first key that
    starts with ``energy``. ``progress`` is called with the frames read so far.
    """
    s = DatasetSummary()
    ae = _all_electron_estimate()
    for batch in iter_batches(path, fmt):
        s.rejects.extend(batch.rejects)
        if batch.n_frames == 0:
            continue
        s.frames += batch.n_frames
        s.atoms += int(batch.offsets[-1])
        zs, counts = np.unique(batch.numbers, return_counts=True)
        s.elements.update(dict(zip(zs.tolist(), counts.tolist())))
        s.periodic_frames += int(batch.pbc.any(axis=1).sum())
        for key in (*batch.info, *batch.arrays):
            s.properties[key] = s.properties.get(key, 0) + int(batch.has(key).sum())
        charge_key = next((k for k in CHARGE_KEYS if k in batch.info), None)
        has = batch.has(charge_key) if charge_key else np.zeros(batch.n_frames, bool)
        if (~has).any():
            s.charges[0] += int((~has).sum())
        if has.any():
            s.charges.update(Counter(int(v) for v in np.asarray(batch.info[charge_key])[has]))
        if s.energy_key is None:
            s.energy_key = energy_key or _pick_energy_key(batch.info)
        key = s.energy_key
        if key is not None and key in batch.info:
            has = batch.has(key)
            e = np.asarray(batch.info[key], dtype=float)[has]
            n = batch.n_atoms[has]
            s.energies.append(e)
            s.energies_per_atom.append(e / np.maximum(n, 1))
            s.ae_estimates.append(batch.per_frame_sum(ae[batch.numbers])[has])
            s.natoms_with_energy.append(n)
        if progress is not None:
            progress(s.frames)
    if energy_key is not None and not s.energies:
        raise SetupError(f"no frame has the energy key {energy_key!r}; keys present: "
                         f"{', '.join(sorted(s.properties)) or 'none'}", file=str(path),
                         field=energy_key)
    return s


def _pick_energy_key(info: dict) -> str | None:
    for k in ENERGY_KEY_PREFERENCE:
        if k in info:
            return k
    for k in info:
        if k.startswith("energy") and np.asarray(info[k]).dtype.kind == "f":
            return k
    return None


__all__ = ["DatasetSummary", "builtin_tables", "summarize", "units_verdict"]
