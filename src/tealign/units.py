"""Physical constants and unit conversions (CODATA 2018).

tealign works in eV, Å, eV/Å and eV/Å³ (ASE's stress sign). Every conversion in the
package goes through this module; ``ase.units`` (CODATA 2014 by default) is never used,
so that round trips through hartree are exact and every alignment records one constant.

Sources: CODATA 2018 recommended values (Tiesinga et al., Rev. Mod. Phys. 93, 025010
(2021)); NIST SP 330.
"""

from __future__ import annotations

#: CODATA 2018 label written into every alignment and computed table.
CODATA = "CODATA 2018"

#: 1 hartree in eV.
HARTREE_TO_EV = 27.211386245988
#: 1 bohr in Å.
BOHR_TO_ANGSTROM = 0.529177210903
#: 1 eV/Å³ in GPa (e · 1e30 / 1e9 with e = 1.602176634e-19 C, exact in SI 2019).
EV_PER_A3_TO_GPA = 160.2176634
#: Avogadro constant (1/mol) and elementary charge (C), exact in SI 2019.
AVOGADRO = 6.02214076e23
ELEMENTARY_CHARGE = 1.602176634e-19
#: 1 kcal/mol in eV, the figure of docs/architecture.md §4.1 (4184 J / N_A / e =
#: 0.04336410424, so this is 5.8e-11 eV high per kcal/mol: far below any energy tealign
#: reports).
KCAL_PER_MOL_TO_EV = 0.0433641043
#: 1 kJ/mol in eV.
KJ_PER_MOL_TO_EV = KCAL_PER_MOL_TO_EV / 4.184
#: 1 kbar in GPa.
KBAR_TO_GPA = 0.1
#: Boltzmann constant in eV/K (exact in SI 2019).
KB_EV_PER_K = 8.617333262e-5
#: Unified atomic mass unit in kg.
AMU_KG = 1.66053906660e-27

HARTREE_PER_BOHR_TO_EV_PER_A = HARTREE_TO_EV / BOHR_TO_ANGSTROM

#: Energy units tealign accepts in tables and readers, as factors to eV.
ENERGY_UNITS: dict[str, float] = {
    "ev": 1.0,
    "hartree": HARTREE_TO_EV,
    "ha": HARTREE_TO_EV,
    "kcal/mol": KCAL_PER_MOL_TO_EV,
    "kj/mol": KJ_PER_MOL_TO_EV,
}


def energy_factor(unit: str) -> float:
    """Factor that converts an energy in ``unit`` to eV."""
    try:
        return ENERGY_UNITS[unit.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown energy unit {unit!r}; use one of eV, hartree, kcal/mol, kJ/mol"
        ) from None


def kbar_stress_vasp_to_ase(stress_kbar):
    """Convert a VASP stress (kbar, VASP sign: positive = compressive) to ASE (eV/Å³).

    ASE's stress is the derivative of the energy with respect to strain per volume,
    positive under tension; VASP prints the negative of that in kbar.
    """
    return -stress_kbar * KBAR_TO_GPA / EV_PER_A3_TO_GPA
