"""Water benchmark: box density and the RDF normalisation."""

import numpy as np
import pytest

from tealign import units
from tealign.bench import water


def test_box_is_one_gram_per_cm3():
    box = water.water_box()
    assert len(box) == 192 and (box.numbers == 8).sum() == 64
    mass_g = box.get_masses().sum() * 1.66053906660e-24
    volume_cm3 = water.BOX_A**3 * 1e-24
    assert mass_g / volume_cm3 == pytest.approx(1.0, abs=0.01)
    assert units.AMU_KG == 1.66053906660e-27


def test_rdf_of_ideal_gas_is_one():
    rng = np.random.default_rng(0)
    frames = [rng.uniform(0, 10.0, size=(200, 3)) for _ in range(40)]
    r, g = water.rdf_oo(frames, 10.0, 5.0, nbins=25)
    assert np.mean(g[5:]) == pytest.approx(1.0, abs=0.03)
    # and the comparison is an RMSD on the reference grid within [2, 6] Å
    assert water.compare(r, g, r, np.ones_like(g), lo=1.0, hi=5.0) < 0.1


def test_run_relaxes_then_samples_the_second_half(tmp_path):
    """The whole protocol with a cheap force field (ASE's TIP3P, intermolecular terms only):
    the lattice start is relaxed before MD, the RDF uses the second half, files are written."""
    from ase.calculators.tip3p import TIP3P

    start = water.water_box()
    start.calc = TIP3P(rc=4.5)
    e_start = start.get_potential_energy() / water.N_WATER
    res = water.run(TIP3P(rc=4.5), tmp_path, ps=0.02, d3=None, prerelax_steps=20)
    assert 0 < res["prerelax_steps"] <= 20
    assert res["prerelaxed_energy_eV_per_molecule"] < e_start
    assert res["steps"] == 40 and res["frames_in_rdf"] == 2  # steps 30 and 40 of 40
    assert np.isfinite(res["peak_g"]) and 2.0 <= res["peak_r_A"] <= 6.0
    assert (tmp_path / "results.json").exists() and (tmp_path / "water_rdf.png").exists()
