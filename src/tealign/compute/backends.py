"""Reference-calculation backends behind one small interface.

    result = run_calculation(spec, atoms, charge=0, multiplicity=None)

returns a :class:`Result` with the DFT (or xTB) energy in eV, forces in eV/Å and, for
periodic cells, stress in eV/Å³ (ASE sign); when the SPEC asks for ``-d3bj`` the D3(BJ)
term is computed by :mod:`tealign.dispersion` and returned separately. SCF failures raise
:class:`CalculationFailed` with the reason (a frame error for the caller, not a crash).

- PySCF: RKS/UKS (RHF/UHF for ``hf``), any functional PySCF knows (``wb97m`` is
  ``wb97m_v`` with VV10 switched off), any basis, density fitting by default, analytic
  gradients; gpu4pyscf is used when it imports and a CUDA device is present. On request
  Gaussian's conventions: ``cartesian=d`` (6D 7F, CPU only) or ``all``, and
  ``pople=gaussian`` (its 6-31G 2d exponents), which reproduce Gaussian 09's numbers.
- GPAW: plane waves at the SPEC's cutoff, molecules centred in a box with ``vacuum`` Å on each
  side, periodic cells with a k-point density, Fermi-Dirac smearing, spin-polarised Hund's
  rule isolated atoms.
- xTB: GFN2-xTB (or GFN1, IPEA1) through tblite's ASE calculator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from tealign import units
from tealign.compute.spec import MethodSpec


class CalculationFailed(RuntimeError):
    """An SCF that did not converge or a backend error, with the reason."""


@dataclass
class Result:
    energy: float
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    d3_energy: float | None = None
    d3_forces: np.ndarray | None = None
    d3_stress: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def run_calculation(spec: MethodSpec, atoms: Atoms, charge: int = 0,
                    multiplicity: int | None = None, forces: bool = True,
                    isolated_atom: bool = False,
                    kpts: tuple[int, int, int] | None = None) -> Result:
    """Compute one structure with ``spec``; energies eV, forces eV/Å, stress eV/Å³.

    ``multiplicity`` (2S+1) defaults to the lowest allowed (1 or 2). ``isolated_atom`` marks a
    single atom: spin-polarised with that multiplicity, GPAW in a slightly anisotropic box,
    no forces. ``kpts`` is the fixed Γ-centred mesh of a periodic cell (GPAW); without it the
    mesh comes from the SPEC's ``kpt_density`` applied to this cell. Stress comes with forces
    (``forces=True``); for GPAW it includes the Pulay term only with ``pulay_stress=fd``: with
    the default ``formula`` the backend returns GPAW's fixed-basis stress and
    :func:`tealign.compute.calib.compute_calibration` adds the term per (formula, mesh) group
    (:mod:`tealign.compute.pulay`).
    """
    _log_call(spec, atoms)
    if spec.code in ("vasp", "orca", "psi4"):  # run outside tealign (D3 included)
        from tealign.compute.external import run_external

        return run_external(spec, atoms, charge, multiplicity, forces, isolated_atom, kpts)
    if spec.code == "pyscf":
        res = _pyscf(spec, atoms, charge, multiplicity, forces and not isolated_atom)
    elif spec.code == "gpaw":
        res = _gpaw(spec, atoms, charge, multiplicity, forces and not isolated_atom,
                    isolated_atom, kpts)
    elif spec.code == "xtb":
        res = _xtb(spec, atoms, charge, multiplicity, forces and not isolated_atom)
    else:  # parse_spec guards this
        raise CalculationFailed(f"unknown code {spec.code}")
    if spec.d3 is not None:
        from tealign.dispersion import d3_bj

        d3 = d3_bj(atoms.numbers, atoms.positions, atoms.cell[:], atoms.pbc, spec.d3)
        res.d3_energy = d3.energy
        res.d3_forces = d3.forces
        res.d3_stress = d3.stress
    return res


def _log_call(spec: MethodSpec, atoms: Atoms) -> None:
    """Append one line per backend call to $TEALIGN_CALL_LOG (used to prove resume works)."""
    path = os.environ.get("TEALIGN_CALL_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{spec.label} {atoms.get_chemical_formula()} "
                     f"{atoms.info.get('job_key', '')}\n")


def _default_multiplicity(atoms: Atoms, charge: int) -> int:
    return 1 + (int(atoms.numbers.sum()) - charge) % 2


# ----------------------------------------------------------------------------- PySCF
PYSCF_XC = {"wb97m": "wb97m_v", "wb97m-v": "wb97m_v"}


def _gpu_available() -> bool:
    try:
        import cupy  # noqa: F401
        import gpu4pyscf  # noqa: F401

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def gaussian_pople_shells(basis: str, element: str) -> list:
    """PySCF's shells of a 6-31G ``(2d...)`` basis with Gaussian's two d exponents.

    Gaussian builds multiple d polarization on 6-31G from the 6-31G* exponent ζ as 2ζ and ζ/2
    (Frisch, Pople and Binkley, J. Chem. Phys. 80, 3265 (1984)); PySCF's 6-31G(2df,p) file has
    6-311G's pair for C-F instead (C: 1.252/0.313 for Gaussian's 1.6/0.4). Everything else
    (s, p, f and the hydrogen p) is PySCF's. Exponents in bohr⁻².
    """
    from pyscf import gto

    shells = [sh for sh in gto.basis.load(basis, element) if sh[0] != 2]
    star = [sh for sh in gto.basis.load("6-31g*", element) if sh[0] == 2]
    if not star:  # no d on this element (H): nothing to replace
        return gto.basis.load(basis, element)
    zeta = float(star[0][1][0])
    return shells + [[2, [2.0 * zeta, 1.0]], [2, [0.5 * zeta, 1.0]]]


def cartesian_d_orthogonalizer(mol) -> np.ndarray:
    """Orthonormal basis (columns, in ``mol``'s Cartesian AOs) of Cartesian s, p, d and pure
    f and higher shells: Gaussian's 6D 7F. ``mol`` must be built with ``cart=True``."""
    c2s = mol.cart2sph_coeff()
    ncart = mol.nao_cart()
    cols = []
    ic = isph = 0
    for b in range(mol.nbas):
        ang = mol.bas_angular(b)
        nc, ns = (ang + 1) * (ang + 2) // 2, 2 * ang + 1
        for _ in range(mol.bas_nctr(b)):
            if ang >= 3:
                cols.append(c2s[:, isph:isph + ns])
            else:
                block = np.zeros((ncart, nc))
                block[ic:ic + nc] = np.eye(nc)
                cols.append(block)
            ic += nc
            isph += ns
    t = np.hstack(cols)
    w, v = np.linalg.eigh(t.T @ mol.intor("int1e_ovlp") @ t)
    return t @ (v / np.sqrt(w))


def _pyscf(spec: MethodSpec, atoms: Atoms, charge: int, multiplicity: int | None,
           want_forces: bool) -> Result:
    from pyscf import dft, gto, scf

    s = spec.settings
    mult = multiplicity or _default_multiplicity(atoms, charge)
    # coordinates in bohr with tealign's (CODATA 2018) constant, not PySCF's own
    bohr = atoms.positions / units.BOHR_TO_ANGSTROM
    symbols = atoms.get_chemical_symbols()
    basis = spec.basis
    if s.get("pople") == "gaussian":
        basis = {el: gaussian_pople_shells(spec.basis, el) for el in set(symbols)}
    cartesian = s.get("cartesian", "none")
    mol = gto.M(
        atom=[(sym, tuple(pos)) for sym, pos in zip(symbols, bohr)],
        basis=basis, charge=charge, spin=mult - 1, unit="Bohr", verbose=0,
        cart=cartesian != "none",
        # def2 and similar bases carry ECPs beyond Kr; ask for them only where they apply
        ecp=s.get("ecp", spec.basis if atoms.numbers.max() > 36 else None),
    )
    unrestricted = mult != 1 if s["spin_restricted"] == "auto" else not s["spin_restricted"]
    if spec.functional == "hf":
        mf = scf.UHF(mol) if unrestricted else scf.RHF(mol)
    else:
        mf = dft.UKS(mol) if unrestricted else dft.RKS(mol)
        mf.xc = PYSCF_XC.get(spec.functional, spec.functional)
        if not s["nlc"] or spec.functional == "wb97m":
            mf.nlc = False
        mf.grids.level = int(s["grid_level"])
    mf.conv_tol = float(s["conv_tol"])
    mf.max_cycle = int(s["max_cycle"])
    if s["density_fit"]:
        mf = mf.density_fit(auxbasis=s.get("auxbasis"))
    if cartesian == "d" and any(mol.bas_angular(b) >= 3 for b in range(mol.nbas)):
        # 6D 7F: the SCF runs in the span of Cartesian d and pure f+ functions (without f
        # shells that is the whole Cartesian basis, 6-31G(d)'s 6D)
        x = cartesian_d_orthogonalizer(mol)
        mf.check_linear_dependency = lambda s1e, verbose=None: x
    elif _gpu_available():  # gpu4pyscf does not take the 6D 7F subspace; CPU then
        mf = mf.to_gpu()
    energy = mf.kernel()
    if not mf.converged:
        raise CalculationFailed(f"PySCF SCF did not converge in {mf.max_cycle} cycles")
    res = Result(energy=float(energy) * units.HARTREE_TO_EV,
                 info={"scf": type(mf).__name__, "multiplicity": mult})
    if unrestricted:
        res.info["s2"] = float(mf.spin_square()[0])
    if want_forces:
        grad = np.asarray(mf.nuc_grad_method().kernel())
        if hasattr(grad, "get"):
            grad = grad.get()
        res.forces = -grad * units.HARTREE_PER_BOHR_TO_EV_PER_A
    return res


# ----------------------------------------------------------------------------- GPAW
def _gpaw(spec: MethodSpec, atoms: Atoms, charge: int, multiplicity: int | None,
          want_forces: bool, isolated_atom: bool,
          mesh: tuple[int, int, int] | None = None) -> Result:
    # GPAW reports eV with ASE's (CODATA 2014) hartree; for its valence-only energies the
    # difference to CODATA 2018 is below 1 µeV per structure.
    from gpaw import GPAW, PW, FermiDirac

    s = spec.settings
    work = atoms.copy()
    periodic = bool(atoms.pbc.any())
    if not periodic:
        if isolated_atom:
            v = float(s["vacuum"])
            # a slightly anisotropic box breaks the spherical symmetry that stalls open shells
            work.cell = [2 * v, 2 * v + 0.1, 2 * v + 0.2]
            work.positions = work.cell.lengths() / 2
        else:
            work.center(vacuum=float(s["vacuum"]))
        work.pbc = True  # plane waves need periodic images; the vacuum separates them
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
    def calculator(ecut: float):
        return GPAW(
            mode=PW(ecut),
            xc=spec.functional.upper(),
            kpts=kpts,
            occupations=FermiDirac(float(s["smearing"]), fixmagmom=False),
            spinpol=spinpol,
            hund=bool(isolated_atom and s["hund"]),
            charge=charge,
            setups=s["setups"],
            convergence={"energy": float(s["energy_tol"]), "density": float(s["density_tol"])},
            txt=None,
        )

    if magmoms is not None:
        work.set_initial_magnetic_moments(magmoms)
    ecut = float(s["ecut"])
    work.calc = calculator(ecut)
    try:
        energy = work.get_potential_energy()
    except Exception as exc:  # gpaw raises KohnShamConvergenceError and friends
        raise CalculationFailed(f"GPAW: {type(exc).__name__}: {exc}") from None
    res = Result(energy=float(energy), info={"spinpol": spinpol})
    if periodic:
        res.info["kpts"] = [int(k) for k in kpts["size"]]
    if want_forces:
        res.forces = work.get_forces()
    if periodic and want_forces:  # energy-only jobs (--no-forces) skip stress and its probes
        res.stress = work.get_stress(voigt=False)
        if s["pulay_stress"] == "fd":
            res.stress, res.info["dedecut"] = _pulay_corrected(work, calculator, ecut,
                                                               res.stress,
                                                               float(s["pulay_step"]))
    return res


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


# ----------------------------------------------------------------------------- xTB
XTB_METHODS = {"gfn2": "GFN2-xTB", "gfn1": "GFN1-xTB", "ipea1": "IPEA1-xTB"}


def _xtb(spec: MethodSpec, atoms: Atoms, charge: int, multiplicity: int | None,
         want_forces: bool) -> Result:
    """tblite's library interface (hartree, bohr), converted with ``tealign.units``."""
    from tblite.interface import Calculator

    s = spec.settings
    mult = multiplicity or _default_multiplicity(atoms, charge)
    periodic = np.asarray(atoms.pbc, dtype=bool)
    try:
        calc = Calculator(XTB_METHODS[spec.functional], atoms.numbers,
                          atoms.positions / units.BOHR_TO_ANGSTROM, charge, mult - 1,
                          np.asarray(atoms.cell[:]) / units.BOHR_TO_ANGSTROM, periodic)
        calc.set("accuracy", float(s["accuracy"]))
        calc.set("temperature", float(s["electronic_temperature"]) * units.KB_EV_PER_K
                 / units.HARTREE_TO_EV)
        calc.set("max-iter", int(s["max_iterations"]))
        calc.set("verbosity", 0)
        res = calc.singlepoint()
    except Exception as exc:
        raise CalculationFailed(f"tblite: {type(exc).__name__}: {exc}") from None
    out = Result(energy=float(res["energy"]) * units.HARTREE_TO_EV,
                 info={"multiplicity": mult})
    if want_forces:
        out.forces = -np.asarray(res["gradient"]) * units.HARTREE_PER_BOHR_TO_EV_PER_A
    if periodic.any():
        out.stress = np.asarray(res["virial"]) * units.HARTREE_TO_EV / atoms.get_volume()
    return out
