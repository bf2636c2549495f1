"""D3(BJ) through dftd3: units and signs checked against finite differences."""

import numpy as np
import pytest
from ase.build import bulk, molecule

from tealign.dispersion import apply_d3, d3_bj
from tealign.io.frames import FrameBatch

pytest.importorskip("dftd3")


def test_forces_are_minus_energy_gradient():
    mol = molecule("CH3CH2OH")
    mol.rattle(0.05, seed=0)
    r = d3_bj(mol.numbers, mol.positions, functional="wb97m")
    assert r.energy < 0 and r.stress is None
    h = 1e-4
    for atom in (0, 3, 7):
        for k in range(3):
            p = mol.positions.copy()
            p[atom, k] += h
            ep = d3_bj(mol.numbers, p, functional="wb97m").energy
            p[atom, k] -= 2 * h
            em = d3_bj(mol.numbers, p, functional="wb97m").energy
            assert r.forces[atom, k] == pytest.approx(-(ep - em) / (2 * h), abs=1e-5)


def test_stress_is_strain_derivative_per_volume():
    si = bulk("SiC", "zincblende", a=4.36)
    si.rattle(0.02, seed=1)
    cell = si.cell[:].copy()
    r = d3_bj(si.numbers, si.positions, cell, si.pbc, functional="pbe")
    vol = abs(np.linalg.det(cell))
    # D3 truncates pairs at a real-space cutoff, so the energy has tiny jumps whenever a
    # pair crosses it; a small strain step (1e-6) keeps the difference clear of them.
    h = 1e-6
    for i, j in [(0, 0), (1, 1), (0, 1), (1, 2)]:
        es = []
        for sgn in (+1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] += sgn * h / 2
            eps[j, i] += sgn * h / 2
            deform = np.eye(3) + eps
            es.append(d3_bj(si.numbers, si.positions @ deform, cell @ deform, si.pbc,
                            functional="pbe").energy)
        fd = (es[0] - es[1]) / (2 * h) / vol
        assert r.stress[i, j] == pytest.approx(fd, abs=1e-5)
    assert np.allclose(r.stress, r.stress.T)


def test_apply_d3_subtracts_and_adds_back():
    frames = [molecule("H2O"), bulk("Si", "diamond", a=5.43)]
    for a in frames:
        a.info["energy"] = -10.0
        a.arrays["forces"] = np.zeros((len(a), 3))
    frames[1].info["stress"] = np.zeros((3, 3))
    b = FrameBatch.from_atoms(frames)
    removed = apply_d3(b, "pbe", "energy", "forces", "stress")
    ref = d3_bj(frames[1].numbers, frames[1].positions, frames[1].cell[:], frames[1].pbc,
                functional="pbe")
    assert removed.info["energy"][1] == pytest.approx(-10.0 - ref.energy)
    np.testing.assert_allclose(removed.arrays["forces"][3:], -ref.forces)
    np.testing.assert_allclose(removed.info["stress"][1], -ref.stress)
    back = apply_d3(removed, "pbe", "energy", "forces", "stress", sign=+1)
    np.testing.assert_allclose(back.info["energy"], b.info["energy"], rtol=1e-14)
    np.testing.assert_allclose(back.arrays["forces"], b.arrays["forces"], atol=1e-14)
