"""PySCF: RKS/UKS (RHF/UHF for ``hf``), any functional PySCF knows (``wb97m`` is ``wb97m_v``
with VV10 switched off), any basis, density fitting by default, analytic gradients; gpu4pyscf
is used when it imports and a CUDA device is present. On request Gaussian's conventions:
``cartesian=d`` (6D 7F, CPU only) or ``all``, and ``pople=gaussian`` (its 6-31G 2d
exponents), which reproduce Gaussian 09's numbers. Energies eV, forces eV/Å (converted from
hartree and bohr with :mod:`tealign.units`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from tealign import units
from tealign.compute.backends.base import (
    Backend,
    CalculationFailed,
    CalculationResult,
    Spec,
    default_multiplicity,
)
from tealign.errors import SetupError

if TYPE_CHECKING:
    from ase import Atoms

#: Every energy-changing setting, with its default.
DEFAULTS = {
    "density_fit": True,    # RI-J/K with PySCF's default auxiliary basis for the basis
    "grid_level": 3,        # PySCF's default DFT grid
    "conv_tol": 1e-10,      # Ha, SCF energy convergence
    "max_cycle": 200,
    "nlc": False,           # VV10 off, as SPICE/OFF23 (docs/architecture.md §7.5)
    "spin_restricted": "auto",  # RKS for closed shells, UKS otherwise
}

#: Settings that only enter a SPEC (and its store key) when set away from their default (the
#: first value), so the keys of SPECs written before they existed stay what they were.
#: ``cartesian``: which shells use Cartesian functions — "none" (PySCF's spherical default),
#: "d" (Cartesian d, pure f and higher: Gaussian's 6D 7F, its default for the 6-31G family) or
#: "all" (6D 10F); ``pople``: "pyscf" (PySCF's basis file) or "gaussian" (Gaussian's exponents
#: for 6-31G multiple d polarization, 2x and 1/2 x the 6-31G* d exponent; PySCF's file has
#: 6-311G's for C-F). Needed to reproduce Gaussian's B3LYP/6-31G(2df,p) (QM9) and
#: wB97X/6-31G(d) (ANI-1x) energies; see docs/published_references.md.
OPTIONAL: dict[str, tuple] = {
    "cartesian": ("none", "d", "all"),
    "pople": ("pyscf", "gaussian"),
}


def check(functional: str, basis: str, settings: dict) -> None:
    """A basis is required; ``pople=gaussian`` only on 6-31G bases with 2d polarization."""
    if not basis:
        raise SetupError("pyscf needs a basis: pyscf:functional/basis", field="--method")
    if settings.get("pople") == "gaussian" and not re.fullmatch(
            r"6-31\+{0,2}g\(2df?(,(p|pd))?\)", basis):
        # only the heavy atoms' d pair is replaced: a basis with several p shells on H
        # (2pd, 3pd, ...) would keep PySCF's pair there, which is not checked against
        # Gaussian's
        raise SetupError("pople=gaussian applies to 6-31G bases with 2d polarization on "
                         "heavy atoms and one p on H (6-31g(2d), 6-31g(2df,p), "
                         f"6-31g(2df,pd)), not {basis!r}", field="--method")


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


def run(spec: Spec, atoms: Atoms, charge: int, multiplicity: int | None,
        forces: bool, isolated_atom: bool = False,
        kpts: tuple[int, int, int] | None = None) -> CalculationResult:
    """One SCF (and gradient with ``forces``); ``isolated_atom`` and ``kpts`` do not apply."""
    from pyscf import dft, gto, scf

    s = spec.settings
    mult = multiplicity or default_multiplicity(atoms, charge)
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
    subspace = cartesian == "d" and any(mol.bas_angular(b) >= 3 for b in range(mol.nbas))
    if subspace:
        # 6D 7F: the SCF runs in the span of Cartesian d and pure f+ functions (without f
        # shells that is the whole Cartesian basis, 6-31G(d)'s 6D)
        x = cartesian_d_orthogonalizer(mol)
        mf.check_linear_dependency = lambda s1e, verbose=None: x
    device = "cpu"
    if not subspace and _gpu_available():  # gpu4pyscf lacks the 6D 7F subspace: CPU then
        import gpu4pyscf

        mf = mf.to_gpu()
        device = f"cuda (gpu4pyscf {gpu4pyscf.__version__})"
    energy = mf.kernel()
    if not mf.converged:
        raise CalculationFailed(f"PySCF SCF did not converge in {mf.max_cycle} cycles")
    res = CalculationResult(energy=float(energy) * units.HARTREE_TO_EV,
                            info={"scf": type(mf).__name__, "multiplicity": mult, "device": device})
    if unrestricted:
        res.info["s2"] = float(mf.spin_square()[0])
    if forces:
        grad = np.asarray(mf.nuc_grad_method().kernel())
        if hasattr(grad, "get"):
            grad = grad.get()
        res.forces = -grad * units.HARTREE_PER_BOHR_TO_EV_PER_A
    return res



BACKEND = Backend(
    name="pyscf", title="PySCF", defaults=DEFAULTS, extra="pyscf", modules=("pyscf",),
    core="all-electron", run=run, check=check, optional=OPTIONAL, free=("auxbasis", "ecp"),
    example="pyscf:wb97m-d3bj/def2-svp")
