"""GPAW: plane waves at the SPEC's cutoff (``gpaw:pbe/pw800``: 800 eV), molecules centred in a
box with ``vacuum`` Å on each side, periodic cells with a k-point density (or one fixed mesh
per crystal), Fermi-Dirac smearing, spin-polarised Hund's-rule isolated atoms. Energies eV,
forces eV/Å, stress eV/Å³ (with the Pulay term: :mod:`tealign.compute.pulay`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from tealign.compute.backends.base import (
    Backend,
    CalculationFailed,
    CalculationResult,
    Spec,
    place_in_box,
)
from tealign.errors import SetupError

if TYPE_CHECKING:
    from ase import Atoms

#: Every energy-changing setting, with its default (lengths Å, energies eV).
DEFAULTS = {
    "vacuum": 5.0,          # Å on each side of a molecule (ASE's center(vacuum=))
    "smearing": 0.1,        # eV, Fermi-Dirac width
    "kpt_density": 4.0,     # k-points per Å⁻¹ (ASE/GPAW 'density') for periodic cells
    "hund": True,           # spin-polarised Hund's-rule isolated atoms
    "energy_tol": 5e-6,     # eV per valence electron (GPAW 'energy' convergence)
    "density_tol": 1e-6,    # GPAW 'density' convergence
    "setups": "paw",
    # stress of periodic cells (tealign.compute.pulay): "formula" adds the Pulay term
    # (2/3)·E_cut·(∂E/∂E_cut)/V with ∂E/∂E_cut from two energy-only probes at
    # E_cut ± pulay_step eV, once per (formula, k-mesh); "fd" probes every frame; "none"
    # keeps GPAW's fixed-basis stress (60 GPa off for MgO at 400 eV)
    "pulay_stress": "formula",
    "pulay_step": 25.0,
}


def check(functional: str, basis: str, settings: dict) -> None:
    """The basis is a plane-wave cutoff ``pwNNN`` in eV (set as ``ecut``)."""
    m = re.fullmatch(r"pw(\d+(?:\.\d+)?)", basis)
    if not m:
        raise SetupError("gpaw needs a plane-wave cutoff in eV: gpaw:pbe/pw800",
                         field="--method")
    settings["ecut"] = float(m.group(1))
    if settings["pulay_stress"] not in ("formula", "fd", "none"):
        raise SetupError("gpaw pulay_stress is 'formula' (Pulay term once per formula), "
                         "'fd' (every frame) or 'none'", field="--method")


def make_calculator(spec: Spec, kpts: dict, spinpol: bool = False, hund: bool = False,
                    charge: int = 0, ecut: float | None = None,
                    symmetry: str | dict | None = None):
    """The GPAW calculator of a SPEC (plane waves at ``ecut`` eV, default the SPEC's cutoff;
    ``kpts`` as GPAW takes it, e.g. ``{"size": (4, 4, 1), "gamma": True}``): what every job of
    this backend runs, and what a relaxation at the same level uses (with ``symmetry="off"``:
    a relaxation may break the starting cell's symmetry, which GPAW otherwise refuses)."""
    from gpaw import GPAW, PW, FermiDirac

    s = spec.settings
    return GPAW(
        mode=PW(float(s["ecut"]) if ecut is None else ecut),
        xc=spec.functional.upper(),
        kpts=kpts,
        occupations=FermiDirac(float(s["smearing"]), fixmagmom=False),
        spinpol=spinpol,
        hund=hund,
        charge=charge,
        setups=s["setups"],
        convergence={"energy": float(s["energy_tol"]), "density": float(s["density_tol"])},
        txt=None,
        **({} if symmetry is None else {"symmetry": symmetry}),
    )


def run(spec: Spec, atoms: Atoms, charge: int, multiplicity: int | None,
        forces: bool, isolated_atom: bool = False,
        kpts: tuple[int, int, int] | None = None) -> CalculationResult:
    """One SCF; ``kpts``: the fixed Γ-centred mesh of a periodic cell (else from
    ``kpt_density``); isolated atoms in a slightly anisotropic box."""
    mesh = kpts
    # GPAW reports eV with ASE's (CODATA 2014) hartree; for its valence-only energies the
    # difference to CODATA 2018 is below 1 µeV per structure.
    s = spec.settings
    work = atoms.copy()
    periodic = bool(atoms.pbc.any())
    if not periodic:
        place_in_box(work, s["vacuum"], isolated_atom)
        kpts = {"size": (1, 1, 1), "gamma": True}
    else:
        from tealign.compute.kpoints import mesh_from_density

        # a fixed mesh per crystal (chosen once from its equilibrium cell) when given
        mesh = mesh or mesh_from_density(atoms.cell[:], float(s["kpt_density"]))
        kpts = {"size": tuple(int(k) for k in mesh), "gamma": True}
    magmoms = None
    spinpol = False
    if isolated_atom and s["hund"]:
        spinpol = True
    elif multiplicity not in (None, 1):
        spinpol = True
        magmoms = [0.0] * len(work)
        magmoms[0] = multiplicity - 1
    symmetry: dict | None = None  # GPAW's default: k-points reduced by the cell's symmetry

    def calculator(ecut: float):
        return make_calculator(spec, kpts, spinpol=spinpol,
                               hund=bool(isolated_atom and s["hund"]), charge=charge, ecut=ecut,
                               symmetry=symmetry)

    if magmoms is not None:
        work.set_initial_magnetic_moments(magmoms)
    ecut = float(s["ecut"])
    work.calc = calculator(ecut)
    try:
        energy = work.get_potential_energy()
    except Exception as exc:  # gpaw raises KohnShamConvergenceError and friends
        if not symmetry_analysis_failed(exc):
            raise CalculationFailed(f"GPAW: {type(exc).__name__}: {exc}") from None
        # GPAW's symmetry finder gives up on some nearly symmetric cells (a relaxed slab):
        # the same SCF without the point group (time reversal kept) on more k-points, which
        # only costs time (the energy is the same)
        symmetry = NO_POINT_GROUP
        work.calc = calculator(ecut)
        try:
            energy = work.get_potential_energy()
        except Exception as exc2:
            raise CalculationFailed(f"GPAW (without point-group symmetry): "
                                    f"{type(exc2).__name__}: {exc2}") from None
    res = CalculationResult(energy=float(energy), info={"spinpol": spinpol})
    if symmetry is not None:
        res.info["symmetry"] = "no point group"
    if periodic:
        res.info["kpts"] = [int(k) for k in kpts["size"]]
    if forces:
        res.forces = work.get_forces()
    if periodic and forces:  # energy-only jobs (--no-forces) skip stress and its probes
        res.stress = work.get_stress(voigt=False)
        if s["pulay_stress"] == "fd":
            res.stress, res.info["dedecut"] = _pulay_corrected(work, calculator, ecut,
                                                               res.stress,
                                                               float(s["pulay_step"]))
    return res


#: GPAW's ``symmetry`` when its symmetry analysis refuses a cell: time reversal only
NO_POINT_GROUP = {"point_group": False}


def symmetry_analysis_failed(exc: BaseException) -> bool:
    """Whether GPAW refused a cell in its symmetry analysis (``SymmetryAnalysisBug``: the
    operations it found within its tolerance do not form a group, which happens for nearly
    symmetric relaxed cells) rather than failing in the SCF."""
    try:
        from gpaw.new.symmetry import SymmetryAnalysisBug
    except ImportError:  # an older GPAW without the new code's symmetry module
        return False
    return isinstance(exc, SymmetryAnalysisBug)


def _pulay_corrected(atoms: Atoms, calculator, ecut: float, stress: np.ndarray,
                     step: float) -> tuple[np.ndarray, float]:
    """Stress (eV/Å³) with the Pulay correction, and dE/dE_cut (eV per eV).

    GPAW's analytic plane-wave stress is the strain derivative at a fixed set of plane waves;
    the energy at a fixed cutoff, which is what the labels hold, has the derivative
    σ = σ_fixed-basis + (2/3)·E_cut·(∂E/∂E_cut)/V · 1. GPAW 26.7's plane-wave code (gpaw.new)
    ignores ``PW(dedecut=...)`` (its builder leaves it unused), so tealign applies the term
    itself, with ∂E/∂E_cut from a central difference of two extra SCFs at E_cut ± ``step``.
    """
    energies = []
    for ec in (ecut + step, ecut - step):
        probe = atoms.copy()
        probe.calc = calculator(ec)
        try:
            energies.append(probe.get_potential_energy())
        except Exception as exc:
            raise CalculationFailed(f"GPAW (Pulay probe at {ec:g} eV): "
                                    f"{type(exc).__name__}: {exc}") from None
    dedecut = (energies[0] - energies[1]) / (2 * step)
    correction = 2.0 / 3.0 * ecut * dedecut / atoms.get_volume()
    return stress + correction * np.eye(3), float(dedecut)



BACKEND = Backend(
    name="gpaw", title="GPAW", defaults=DEFAULTS, extra="gpaw", modules=("gpaw",),
    core="paw", run=run, check=check,
    periodic_only=frozenset({"kpt_density", "pulay_stress", "pulay_step"}), kpoint_mesh=True,
    example="gpaw:pbe/pw800")
