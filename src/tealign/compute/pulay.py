"""Pulay stress of plane-wave calculations, shared by all frames of one composition.

GPAW's analytic plane-wave stress is the strain derivative at a fixed set of plane waves, but
the energy labels are computed at a fixed cutoff; their strain derivative is

    σ = σ_fixed-basis + (2/3) · E_cut · (∂E/∂E_cut) / V · 1          (eV/Å³, ASE sign)

GPAW 26.7's plane-wave code (``gpaw.new``) ignores ``PW(dedecut=...)``, so tealign applies the
term itself. ∂E/∂E_cut (eV per eV of cutoff) comes from a central difference of two extra
energy-only jobs at E_cut ± ``pulay_step``. It is an extensive, nearly geometry-independent
property of the composition, so with ``pulay_stress=formula`` (the default) it is computed once
per (chemical formula, k-point mesh) — on the first frame of that group — and applied to every
frame of the group with that frame's own volume; ``pulay_stress=fd`` computes it for every frame
(three SCFs each), ``none`` keeps GPAW's fixed-basis stress. tests/test_target_scale_physics.py
checks the result against finite differences of the energy on strained and rattled cells.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms

from tealign.compute.runner import Job
from tealign.compute.spec import MethodSpec


def probe_spec(spec: MethodSpec, sign: int) -> MethodSpec:
    """The SPEC at E_cut + sign·pulay_step, energy only, no Pulay treatment of its own."""
    ecut = float(spec.settings["ecut"]) + sign * float(spec.settings["pulay_step"])
    settings = {**spec.settings, "ecut": ecut, "pulay_stress": "none"}
    return dataclasses.replace(spec, basis=f"pw{ecut:g}", settings=settings,
                               spec=f"{spec.spec} [Pulay probe at {ecut:g} eV]")


def group_key(atoms: Atoms, kpts) -> tuple:
    return (atoms.get_chemical_formula(mode="hill"), len(atoms),
            None if kpts is None else tuple(int(k) for k in kpts))


def probe_jobs(spec: MethodSpec, jobs: list[Job | None]) -> dict[tuple, tuple[Job, Job]]:
    """Two energy-only probe jobs per (formula, mesh) group of the periodic frames of ``jobs``
    (the first frame of each group), for a GPAW SPEC with ``pulay_stress=formula``."""
    probes: dict[tuple, tuple[Job, Job]] = {}
    if spec.code != "gpaw" or spec.settings.get("pulay_stress") != "formula":
        return probes
    for job in jobs:
        if job is None or not job.atoms.pbc.any() or not job.forces:
            continue
        key = group_key(job.atoms, job.kpts)
        if key not in probes:
            probes[key] = tuple(Job(spec=probe_spec(spec, s), atoms=job.atoms.copy(),
                                    name=f"{job.name} pulay{'+' if s > 0 else '-'}",
                                    forces=False, kpts=job.kpts) for s in (1, -1))
    return probes


def dedecut(spec: MethodSpec, e_plus: float, e_minus: float) -> float:
    """∂E/∂E_cut (eV/eV) from the two probe energies."""
    return (e_plus - e_minus) / (2.0 * float(spec.settings["pulay_step"]))


def corrected_stress(stress: np.ndarray, spec: MethodSpec, de_decut: float,
                     volume: float) -> np.ndarray:
    """Fixed-basis stress + (2/3)·E_cut·∂E/∂E_cut/V on the diagonal (eV/Å³)."""
    term = 2.0 / 3.0 * float(spec.settings["ecut"]) * de_decut / volume
    return np.asarray(stress, dtype=float).reshape(3, 3) + term * np.eye(3)
