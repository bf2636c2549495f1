"""xTB: GFN2-xTB (or GFN1, IPEA1) through tblite's library interface (hartree, bohr),
converted to eV, eV/Å and eV/Å³ with :mod:`tealign.units`. Its own dispersion is part of the
method (no ``-d3bj``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import tealign.compute.backends.base as base
from tealign import units
from tealign.errors import SetupError

if TYPE_CHECKING:
    from ase import Atoms

#: tblite's settings that change the energy, each with its default (temperature in K)
DEFAULTS = {
    "accuracy": 1.0,
    "electronic_temperature": 300.0,  # K
    "max_iterations": 250,
}

XTB_METHODS = {"gfn2": "GFN2-xTB", "gfn1": "GFN1-xTB", "ipea1": "IPEA1-xTB"}


def check(functional: str, basis: str, settings: dict) -> None:
    """The method is one of :data:`XTB_METHODS`."""
    if functional not in XTB_METHODS:
        raise SetupError("xtb methods: gfn2, gfn1, ipea1", field="--method")


def run(spec: base.Spec, atoms: Atoms, charge: int, multiplicity: int | None,
        forces: bool, isolated_atom: bool = False,
        kpts: tuple[int, int, int] | None = None) -> base.CalculationResult:
    """tblite's library interface (hartree, bohr), converted with ``tealign.units``."""
    from tblite.interface import Calculator

    s = spec.settings
    mult = multiplicity or base.default_multiplicity(atoms, charge)
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
        raise base.CalculationFailed(f"tblite: {type(exc).__name__}: {exc}") from None
    out = base.CalculationResult(energy=float(res["energy"]) * units.HARTREE_TO_EV,
                                 info={"multiplicity": mult})
    if forces:
        out.forces = -np.asarray(res["gradient"]) * units.HARTREE_PER_BOHR_TO_EV_PER_A
    if periodic.any():
        out.stress = np.asarray(res["virial"]) * units.HARTREE_TO_EV / atoms.get_volume()
    return out


BACKEND = base.Backend(
    name="xtb", title="xTB", defaults=DEFAULTS, extra="xtb", modules=("tblite",),
    core="unknown", run=run, check=check, own_dispersion=True, bench_spec="xtb:gfn2",
    example="xtb:gfn2")
