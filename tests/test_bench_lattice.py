"""Lattice benchmark: relaxation with any ASE calculator, and the bcc cutoff analysis."""

import numpy as np
import pytest
from ase.calculators.emt import EMT

from tealign.bench import lattice


@pytest.fixture
def csv(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("name,formula,structure,a_exp_zpae,a_pbe,notes\n"
                 "Cu,Cu,fcc,3.595,3.630,\nAl,Al,fcc,4.019,4.037,\n")
    return p


def test_relaxation_finds_emt_minimum(csv, tmp_path):
    res = lattice.run(EMT(), tmp_path / "out", data=csv)
    a = {c["name"]: c["a_A"] for c in res["crystals"]}
    # EMT's own fcc minima by a fine energy scan
    for name in ("Cu", "Al"):
        grid = np.linspace(a[name] - 0.02, a[name] + 0.02, 41)
        e = []
        for x in grid:
            at = lattice.build({"formula": name, "structure": "fcc"}, x)
            at.calc = EMT()
            e.append(at.get_potential_energy())
        assert abs(grid[int(np.argmin(e))] - a[name]) <= 0.0015
    assert res["n"] == 2 and set(res["mae_by_structure"]) == {"fcc"}
    errs = [abs(c["a_A"] - c["a_pbe"]) for c in res["crystals"]]
    assert res["mae_A"] == pytest.approx(np.mean(errs))
    assert (tmp_path / "out" / "lattice_errors.png").exists()


def test_cutoff_analysis_excludes_beyond_first_shell(csv, tmp_path):
    # fcc nearest neighbour a/√2: Cu ≈ 2.54 Å, Al ≈ 2.86 Å; r_max 2.7 excludes only Al
    res = lattice.run(EMT(), tmp_path / "out", data=csv, r_max=2.7)
    assert [e["name"] for e in res["excluded"]] == ["Al"]
    assert res["n"] == 1
    # bcc: first shell a·√3/2, so the limit is a > 2·r_max/√3 (5.196 Å at 4.5 Å)
    assert pytest.approx(5.196, abs=1e-3) == 2 * 4.5 / 3**0.5
    assert lattice.FIRST_SHELL["bcc"] * 5.2 > 4.5 > lattice.FIRST_SHELL["bcc"] * 5.19
