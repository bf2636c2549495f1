"""Isolated neutral atoms in their ground-state spin multiplicity, and the tables they make.

Multiplicities (2S+1) are those of the ground-state terms in the NIST Atomic Spectra Database
(Kramida, Ralchenko, Reader and NIST ASD Team, NIST ASD v5.11, https://physics.nist.gov/asd),
for H–Kr, the heavier elements of the lattice benchmark and the common heavier main-group
elements.
"""

from __future__ import annotations

from ase import Atoms
from ase.data import atomic_numbers

from tealign.compute.runner import Job
from tealign.compute.spec import MethodSpec
from tealign.compute.store import JobStore
from tealign.errors import SetupError
from tealign.methods import IsolatedAtomTable

#: Ground-state multiplicity 2S+1 of neutral atoms (NIST ASD ground terms).
GROUND_STATE_MULTIPLICITY: dict[str, int] = {
    "H": 2, "He": 1,
    "Li": 2, "Be": 1, "B": 2, "C": 3, "N": 4, "O": 3, "F": 2, "Ne": 1,
    "Na": 2, "Mg": 1, "Al": 2, "Si": 3, "P": 4, "S": 3, "Cl": 2, "Ar": 1,
    "K": 2, "Ca": 1, "Sc": 2, "Ti": 3, "V": 4, "Cr": 7, "Mn": 6, "Fe": 5, "Co": 4, "Ni": 3,
    "Cu": 2, "Zn": 1, "Ga": 2, "Ge": 3, "As": 4, "Se": 3, "Br": 2, "Kr": 1,
    "Rb": 2, "Sr": 1, "Y": 2, "Zr": 3, "Nb": 6, "Mo": 7, "Ru": 5, "Rh": 4, "Pd": 1, "Ag": 2,
    "Cd": 1, "In": 2, "Sn": 3, "Sb": 4, "Te": 3, "I": 2, "Xe": 1,
    "Cs": 2, "Ba": 1, "La": 2, "Hf": 3, "Ta": 4, "W": 5, "Re": 6, "Os": 5, "Ir": 4, "Pt": 3,
    "Au": 2, "Hg": 1, "Tl": 2, "Pb": 3, "Bi": 4,
}


def parse_elements(text: str) -> list[str]:
    """``"H,C,N,O"`` → ``["H", "C", "N", "O"]``; SetupError for unknown symbols."""
    out = []
    for sym in (s.strip() for s in text.split(",")):
        if not sym:
            continue
        if sym not in atomic_numbers or sym == "X":
            raise SetupError(f"unknown element {sym!r}", field="--elements")
        if sym not in GROUND_STATE_MULTIPLICITY:
            raise SetupError(f"no ground-state multiplicity on record for {sym}; tealign "
                             f"knows {len(GROUND_STATE_MULTIPLICITY)} elements",
                             field="--elements")
        if sym not in out:
            out.append(sym)
    if not out:
        raise SetupError("no elements given", field="--elements")
    return out


def atom_jobs(spec: MethodSpec, elements: list[str]) -> list[Job]:
    """One isolated-atom job per element, spin-polarised in its ground-state multiplicity."""
    return [Job(spec=spec, atoms=Atoms(sym, positions=[(0.0, 0.0, 0.0)]), name=sym,
                multiplicity=GROUND_STATE_MULTIPLICITY[sym], isolated_atom=True)
            for sym in elements]


def table_from_store(spec: MethodSpec, jobs: list[Job], store: JobStore) -> tuple[
        IsolatedAtomTable, list[str]]:
    """Build the isolated-atom table (docs/architecture.md §4.4) from finished atom jobs;
    returns (table, failed elements)."""
    energies, failed = {}, []
    for job in jobs:
        stored = store.get(job.key)
        if stored is None or stored.result is None:
            failed.append(f"{job.name}: {stored.error if stored else 'not computed'}")
            continue
        energies[job.name] = stored.result.energy
    prov = {
        "method": f"{spec.functional}/{spec.basis}" if spec.basis else spec.functional,
        "code": spec.code,
        "core": spec.method.core,
        "spin": "neutral atoms, spin-polarised, ground-state multiplicity (NIST ASD): "
                + ", ".join(f"{j.name} {j.multiplicity}" for j in jobs),
        "source": f"computed by tealign compute atoms --method {spec.label}={spec.spec}",
        "settings": spec.provenance(),
        "settings_known": True,
        "note": "DFT energies without D3 (D3 of an isolated atom is zero)",
    }
    return IsolatedAtomTable(name=spec.label, energies=energies, provenance=prov), failed
