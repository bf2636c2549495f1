"""Torsion benchmark: SDF mapping, the constrained dihedral, profile arithmetic."""

import numpy as np
import pytest
from ase.calculators.emt import EMT

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


class _BreaksBetween(EMT):
    """EMT, except that energies and forces are NaN while the dihedral ``idx`` lies in
    [lo, hi] degrees: a model that breaks down on part of the scan."""

    def __init__(self, idx, lo, hi):
        super().__init__()
        self.idx, self.lo, self.hi = idx, lo, hi

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        if self.lo <= atoms.get_dihedral(*self.idx) % 360 <= self.hi:
            self.results["energy"] = self.results["free_energy"] = float("nan")
            self.results["forces"] = np.full((len(atoms), 3), np.nan)


def test_a_point_that_breaks_down_is_nan_and_the_scan_restarts_from_the_reference(
        monkeypatch):
    from ase.build import molecule

    ethane = molecule("C2H6")
    idx = [2, 0, 1, 5]  # H–C–C–H
    assert ethane.numbers[idx].tolist() == [1, 6, 6, 1]
    calc = _BreaksBetween(idx, 100.0, 140.0)
    _, e, conv = torsion.relax_at(ethane, idx, 120.0, calc, fmax=0.05, steps=5)
    assert np.isnan(e) and conv is False
    grid = np.arange(0, 360, 30.0)
    starts, relax = [], torsion.relax_at

    def recording(atoms, idx, angle, *args, **kw):
        out = relax(atoms, idx, angle, *args, **kw)
        starts.append((angle, atoms is ethane, np.isfinite(out[1])))
        return out

    monkeypatch.setattr(torsion, "relax_at", recording)
    best = torsion.scan(ethane, idx, grid, calc, 30.0, steps=5)
    # the point after a broken one starts again from the reference geometry
    after_broken = [starts[i + 1][1] for i in range(len(starts) - 1)
                    if not starts[i][2] and starts[i + 1][0] != starts[0][0]]
    assert after_broken and all(after_broken)
    assert set(best) == set(grid)
    assert np.isnan(best[120.0][0]) and best[120.0][1] is False
    # every other angle has a finite energy, also those reached after the broken point
    assert all(np.isfinite(best[a][0]) for a in grid if a != 120.0)


def test_a_molecule_whose_scan_breaks_down_is_skipped_with_its_reason(shared_data, tmp_path):
    from ase.calculators.calculator import Calculator

    from tealign.errors import SetupError

    class AlwaysNaN(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            super().calculate(atoms, properties, system_changes)
            self.results = {"energy": float("nan"),
                            "forces": np.full((len(atoms), 3), np.nan)}

    d = shared_data / "biaryl"
    with pytest.raises(SetupError, match=r"Rowely_mol_1: the relaxation broke down .* at 24 "
                                         r"of 24 reference angles"):
        torsion.run(AlwaysNaN(), tmp_path, d / "OpenFF_Rowley_Biaryl_v1-0.csv",
                    d / "OpenFF_Rowley_Biaryl_v1-0.sdf", limit=1, steps=2)
