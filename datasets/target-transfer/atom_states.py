"""Isolated H, C, N, O, F atoms in several electronic states, GPAW and PySCF PBE (eV).

GPAW at the target's settings (tealign SPEC ``gpaw:pbe/pw800;vacuum=5.0;smearing=0.1``:
PW 800 eV, Γ only, the 10.0 x 10.1 x 10.2 Å box tealign uses for isolated atoms, PAW setups,
SCF tolerances 5e-6 eV / 1e-6) and PySCF PBE/def2-QZVPP (density fitting, grid level 3, the
tealign ``pyscf:pbe/def2-qzvpp`` settings). States:

- ``smeared`` (GPAW): tealign's atoms, those of the committed calib-qm9 table: spin-polarised
  with Hund's-rule moment and 0.1 eV Fermi-Dirac smearing. Whether the open p shell then ends
  up fractionally occupied (spherical) or integer (symmetry broken) is up to the SCF.
- ``fractional``: spin-polarised, the open p shell's electrons spread evenly over the three p
  orbitals (spherical density), no smearing. GPAW: fixed occupation numbers; PySCF:
  ``frac_occ``.
- ``integer``: spin-polarised, integer occupations (e.g. O: p_x² p_y¹ p_z¹), which breaks the
  spherical symmetry. GPAW: fixed occupation numbers (converged on the energy; the density
  only to 1e-4); PySCF: plain UKS, tealign's atoms.
- ``nonspin``: spin-restricted, 0.1 eV smearing (GPAW only; spherical). GPAW's energies are
  relative to its own PAW reference atoms, which are of this kind.

Results go to ``atom_states.json`` beside this file (written atomically after every state, so an
interrupted run resumes). Run with ``OMP_NUM_THREADS=1 nice -n 10 python atom_states.py``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HARTREE_TO_EV = 27.211386245988  # CODATA 2018, as tealign
OUT = Path(__file__).with_name("atom_states.json")
ELEMENTS = ("H", "C", "N", "O", "F")
# (spin-up, spin-down) occupations, lowest bands first: 1s/2s, then the three p orbitals
INTEGER_OCC = {
    "H": ([1], [0]),
    "C": ([1, 1, 1, 0], [1, 0, 0, 0]),
    "N": ([1, 1, 1, 1], [1, 0, 0, 0]),
    "O": ([1, 1, 1, 1], [1, 1, 0, 0]),
    "F": ([1, 1, 1, 1], [1, 1, 1, 0]),
}
FRACTIONAL_OCC = {
    "C": ([1, 2 / 3, 2 / 3, 2 / 3], [1, 0, 0, 0]),
    "O": ([1, 1, 1, 1], [1, 1 / 3, 1 / 3, 1 / 3]),
    "F": ([1, 1, 1, 1], [1, 2 / 3, 2 / 3, 2 / 3]),
}
HUND_MOMENT = {"H": 1, "C": 2, "N": 3, "O": 2, "F": 1}
VACUUM = 5.0
ECUT = 800.0
SMEARING = 0.1


def save(results: dict) -> None:
    """Write ``results`` to OUT atomically."""
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, OUT)


def gpaw_atom(el: str, state: str) -> dict:
    """GPAW energies (eV, relative to GPAW's PAW reference atoms) and magnetic moment.

    ``energy_eV`` is what GPAW (and tealign) report: for Fermi-Dirac smearing the free energy
    F = E - TS extrapolated to zero width as F + TS/2. ``free_energy_eV`` is F and
    ``internal_energy_eV`` is E = F + TS, the energy of the occupations reached. For a
    fractionally occupied degenerate shell the occupations do not change as the width goes to
    zero, so E, not F + TS/2, is the zero-width limit of that (spherical) state.
    """
    from ase import Atoms
    from gpaw import GPAW, PW, FermiDirac

    atoms = Atoms(el, pbc=True, cell=[2 * VACUUM, 2 * VACUUM + 0.1, 2 * VACUUM + 0.2])
    atoms.positions = atoms.cell.lengths() / 2
    common = dict(mode=PW(ECUT), xc="PBE", kpts={"size": (1, 1, 1), "gamma": True},
                  setups="paw", txt=os.environ.get("GPAW_TXT"), maxiter=400,
                  convergence={"energy": 5e-6, "density": 1e-6})
    if state == "smeared":
        calc = GPAW(occupations=FermiDirac(SMEARING, fixmagmom=False), spinpol=True,
                    hund=True, **common)
    elif state == "nonspin":
        calc = GPAW(occupations=FermiDirac(SMEARING), spinpol=False, **common)
    elif state in ("integer", "fractional"):
        up, down = (INTEGER_OCC if state == "integer" else FRACTIONAL_OCC)[el]
        if state == "integer":
            # the symmetry-broken density keeps sloshing at the 1e-5 level between the empty
            # degenerate p orbitals while the energy is converged to 1e-6 eV: converge on the
            # energy (5e-6 eV per valence electron over three cycles) only
            common["convergence"] = {"energy": 5e-6, "density": 1e-4, "eigenstates": 1e-4}
        nb = len(up) + 2
        numbers = [up + [0] * (nb - len(up)), down + [0] * (nb - len(down))]
        atoms.set_initial_magnetic_moments([HUND_MOMENT[el]])
        calc = GPAW(occupations={"name": "fixed", "numbers": numbers}, nbands=nb,
                    spinpol=True, symmetry="off", **common)
    else:
        raise ValueError(state)
    atoms.calc = calc
    from ase.units import Hartree

    energy = float(atoms.get_potential_energy())
    free = float(atoms.get_potential_energy(force_consistent=True))
    minus_ts = float(calc.dft.energies._energies.get("entropy", 0.0)) * Hartree
    magmom = float(calc.get_magnetic_moment()) if state != "nonspin" else 0.0
    return {"energy_eV": energy, "free_energy_eV": free, "internal_energy_eV": free - minus_ts,
            "TS_eV": -minus_ts, "magmom": magmom}


def pyscf_atom(el: str, state: str) -> dict:
    """All-electron PBE/def2-QZVPP energy (eV) and 2S."""
    from pyscf import dft, gto, scf

    spin = HUND_MOMENT[el]
    mol = gto.M(atom=f"{el} 0 0 0", basis="def2-qzvpp", spin=spin, verbose=0)
    mf = dft.UKS(mol).density_fit()
    mf.xc = "pbe"
    mf.grids.level = 3
    mf.conv_tol = 1e-10
    mf.max_cycle = 200
    if state == "fractional":
        mf = scf.addons.frac_occ(mf)
    elif state != "integer":
        raise ValueError(state)
    energy = mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"PySCF {el} {state} did not converge")
    return {"energy_eV": float(energy) * HARTREE_TO_EV, "magmom": float(spin)}


def main(argv: list[str]) -> int:
    which = argv[1:] or ["gpaw", "pyscf"]
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    plan = []
    if "gpaw" in which:
        plan += [("gpaw", el, st) for st in ("smeared", "nonspin", "integer", "fractional")
                 for el in ("H", "N", "O", "F", "C")
                 if not (st in ("integer", "fractional") and el in ("H", "N"))]
    if "pyscf" in which:
        plan += [("pyscf", el, st) for st in ("integer", "fractional") for el in ELEMENTS
                 if not (st == "fractional" and el in ("H", "N"))]
    for code, el, state in plan:
        if state in results.get(code, {}).get(el, {}):
            continue
        t0 = time.time()
        fn = gpaw_atom if code == "gpaw" else pyscf_atom
        entry = fn(el, state)
        entry["seconds"] = round(time.time() - t0, 1)
        results = json.loads(OUT.read_text()) if OUT.exists() else {}
        results.setdefault(code, {}).setdefault(el, {})[state] = entry
        save(results)
        print(f"{code} {el} {state}: {entry}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
