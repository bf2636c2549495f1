"""Si E–V benchmark: the fit recovers known parameters; curves compare relative to minima."""

import numpy as np
import pytest

from tealign import units
from tealign.bench import eos
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch


def birch_murnaghan(v, e0, v0, b0, bp):
    eta = (v0 / v) ** (2 / 3)
    return e0 + 9 * v0 * b0 / 16 * ((eta - 1) ** 3 * bp + (eta - 1) ** 2 * (6 - 4 * eta))


def synthetic_curve(a0=5.47, b0_gpa=89.0, bp=4.2, e0=-5.4):
    v = eos.GRID**3 / 8
    return birch_murnaghan(v, e0, a0**3 / 8, b0_gpa / units.EV_PER_A3_TO_GPA, bp)


def test_fit_recovers_a0_and_b0():
    f = eos.fit(eos.GRID, synthetic_curve())
    assert f["a0_A"] == pytest.approx(5.47, abs=1e-4)
    assert f["b0_GPa"] == pytest.approx(89.0, rel=1e-3)
    assert len(eos.GRID) == 101 and eos.GRID[0] == 5.0 and eos.GRID[-1] == 6.0


def test_rmse_relative_to_own_minimum(tmp_path):
    e = synthetic_curve()
    assert eos.rmse_relative(e, e + 123.4) == pytest.approx(0.0, abs=1e-9)
    other = synthetic_curve(e0=0.0) + 0.001 * (eos.GRID - 5.5)
    assert eos.rmse_relative(e, other) > 0.1
    # a reference curve computed by tealign compute: Si cells with energy_<label> (eV/cell)
    frames = []
    for a, epa in zip(eos.GRID, e):
        cell = eos.si(a)
        cell.info["energy_pbe"] = float(epa * len(cell) - 7.0)  # another energy zero
        frames.append(cell)
    rng = np.random.default_rng(0)
    shuffled = [frames[i] for i in rng.permutation(len(frames))]
    write_extxyz(tmp_path / "si_ev.extxyz", [FrameBatch.from_atoms(shuffled)])
    ref = eos.load_reference(tmp_path / "si_ev.extxyz")
    assert eos.rmse_relative(e, ref) == pytest.approx(0.0, abs=1e-9)
