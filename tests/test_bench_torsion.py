"""Torsion benchmark: SDF mapping, the constrained dihedral, profile arithmetic."""

import numpy as np
import pytest

from tealign import units
from tealign.bench import torsion
from tealign.bench.calculators import BackendCalculator


def test_constrained_dihedral_stays_on_target(shared_data):
    geoms = torsion.read_sdf(shared_data / "biaryl" / "OpenFF_Rowley_Biaryl_v1-0.sdf")
    assert len(geoms) == 87
    atoms, idx = geoms["Rowely_mol_1"]
    assert len(set(idx)) == 4
    calc = BackendCalculator("xtb:gfn2")
    for target in (40.0, 135.0):
        relaxed, energy, converged = torsion.relax_at(atoms, idx, target, calc, steps=300)
        got = relaxed.get_dihedral(*idx)
        assert abs((got - target + 180) % 360 - 180) < 0.01
        assert np.isfinite(energy)


def test_reference_profiles_in_kcal(shared_data):
    rows = torsion.read_profiles(shared_data / "biaryl" / "OpenFF_Rowley_Biaryl_v1-0.csv", 2)
    r = rows[0]
    assert len(r["angles"]) == 24 and r["energy_kcal_mol"].min() == 0.0
    assert np.all(np.diff(r["angles"]) > 0)
    # hand check: the CSV energies are hartree; 1 mHa = 0.62751 kcal/mol
    kcal_per_mha = units.HARTREE_TO_EV / units.KCAL_PER_MOL_TO_EV / 1000
    assert kcal_per_mha == pytest.approx(0.62751, abs=1e-5)
