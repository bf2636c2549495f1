"""What is in a dataset: counts, elements, energies per atom, charges and a units verdict.

Backs ``tealign info``. Streams the input in batches, so memory is bounded whatever its size:
the energy-per-atom range and mean are exact running values, and the units verdict (medians)
is taken on an evenly spread sample of at most :data:`VERDICT_SAMPLE` frames.
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
#: The units verdict's medians come from at most this many frames with an energy, every
#: ``stride``-th of them (the stride doubles as the file grows), so ``info`` runs in constant
#: memory on any number of frames.
VERDICT_SAMPLE = 65_536
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
    with_energy: int = 0  # frames that carry the energy key
    e_per_atom_min: float = np.inf  # eV/atom, running over every frame with an energy
    e_per_atom_max: float = -np.inf
    e_per_atom_sum: float = 0.0
    stride: int = 1  # the verdict sample holds every stride-th frame with an energy
    sample: dict[str, np.ndarray] = field(default_factory=dict)
    rejects: list[FrameError] = field(default_factory=list)

    def add_energies(self, e: np.ndarray, ae: np.ndarray, n: np.ndarray) -> None:
        """Energies (eV), all-electron atom estimates (eV) and atom counts of consecutive
        frames with an energy: exact running statistics, and the verdict sample."""
        if not len(e):
            return
        per_atom = e / np.maximum(n, 1)
        self.e_per_atom_min = min(self.e_per_atom_min, float(per_atom.min()))
        self.e_per_atom_max = max(self.e_per_atom_max, float(per_atom.max()))
        self.e_per_atom_sum += float(per_atom.sum())
        first = self.with_energy
        self.with_energy += len(e)
        pick = np.flatnonzero((first + np.arange(len(e))) % self.stride == 0)
        new = {"energy": e[pick], "ae": ae[pick], "n_atoms": n[pick]}
        self.sample = {k: np.concatenate([self.sample[k], v]) if self.sample else v
                       for k, v in new.items()}
        while len(self.sample["energy"]) > VERDICT_SAMPLE:  # keep every other sampled frame
            self.stride *= 2
            self.sample = {k: v[::2] for k, v in self.sample.items()}

    def as_json(self) -> dict:
        stats = (
            {"min": self.e_per_atom_min, "mean": self.e_per_atom_sum / self.with_energy,
             "max": self.e_per_atom_max}
            if self.with_energy else {"min": None, "mean": None, "max": None}
        )
        empty = np.zeros(0)
        verdict = units_verdict(self.sample.get("energy", empty), self.sample.get("ae", empty),
                                self.sample.get("n_atoms", empty))
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
            "units_verdict_frames": int(len(self.sample.get("energy", ()))),
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
            s.add_energies(np.asarray(batch.info[key], dtype=float)[has], batch.per_frame_sum(
                ae[batch.numbers])[has], batch.n_atoms[has])
        if progress is not None:
            progress(s.frames)
    if energy_key is not None and not s.with_energy:
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
