"""Si E–V benchmark: the fit recovers known parameters; curves compare relative to minima."""

import importlib.util

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


def test_gpaw_reference_curve_uses_one_mesh(monkeypatch, tmp_path):
    """Every point of a plane-wave reference curve is computed on the same k-point mesh (a
    mesh chosen per cell changes inside the grid and makes the curve jump)."""
    from tealign.compute import runner
    from tealign.compute.backends import CalculationResult

    seen = []

    def fake_run_jobs(jobs, store, **kw):
        seen.extend(jobs)
        for j in jobs:
            store.put(j.key, j.structure, j.settings, j.spec.label, j.name,
                      CalculationResult(energy=-10.0 * len(j.atoms)), None, 0.0)
        return {}

    monkeypatch.setattr(runner, "run_jobs", fake_run_jobs)
    eos.reference_curve("gpaw:pbe/pw400;kpt_density=2.5", tmp_path / "store")
    meshes = {j.kpts for j in seen}
    assert len(seen) == len(eos.GRID) and len(meshes) == 1 and None not in meshes
    # a per-cell mesh would not be one mesh: at this density it changes inside the grid
    from tealign.compute.kpoints import mesh_from_density

    assert len({mesh_from_density(eos.si(a).cell[:], 2.5) for a in eos.GRID}) > 1


def _fails_once_at_5_50(calls: list):
    """A stand-in compute backend: E/atom = (a − 5.43)² eV for the Si cell of lattice
    constant a (Å), recorded in ``calls``; the point at 5.50 Å fails the first time."""
    from tealign.compute.backends import CalculationFailed, CalculationResult

    def run(spec, atoms, **kw):
        a = (atoms.get_volume() * eos.ATOMS_PER_CONVENTIONAL_CELL / len(atoms)) ** (1 / 3)
        calls.append(round(a, 2))
        if round(a, 2) == 5.5 and calls.count(5.5) == 1:
            raise CalculationFailed("a transient failure")
        return CalculationResult(energy=len(atoms) * (a - 5.43) ** 2)

    return run


def test_a_failed_reference_point_names_the_way_out(monkeypatch, tmp_path):
    """A reference point whose calculation failed stops the benchmark with one line naming
    the point and --retry-failed (the store keeps the failure: a plain rerun does not
    compute it); with retry_failed it runs again and the curve is complete."""
    from tealign.compute import runner
    from tealign.errors import SetupError

    calls = []
    monkeypatch.setattr(runner, "run_calculation", _fails_once_at_5_50(calls))
    spec, store = "gpaw:pbe/pw400;kpt_density=2.5", tmp_path / "store"
    for _ in range(2):  # the first run, then a plain rerun that computes nothing
        with pytest.raises(SetupError, match=r"Si_a5\.50 failed: a transient failure;.*"
                                             r"--retry-failed"):
            eos.reference_curve(spec, store)
    assert calls.count(5.5) == 1 and len(calls) == len(eos.GRID)
    e = eos.reference_curve(spec, store, retry_failed=True)
    assert calls.count(5.5) == 2 and len(calls) == len(eos.GRID) + 1
    assert np.allclose(e, (eos.GRID - 5.43) ** 2)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="bench commands set torch's threads: pip install 'tealign[mace]'")
def test_bench_eos_cli_retry_failed_reaches_the_reference_curve(monkeypatch, tmp_path,
                                                                 run_cli):
    """Through the command line: a failed reference point is one line and exit 2 (again on
    a plain rerun); --retry-failed computes it and the benchmark completes; --retry-failed
    without --reference is refused."""
    import json

    from tealign.bench import calculators
    from tealign.compute import runner

    calls = []
    monkeypatch.setattr(runner, "run_calculation", _fails_once_at_5_50(calls))
    monkeypatch.setattr(eos, "curve", lambda calc, progress=None: (eos.GRID - 5.40) ** 2)
    monkeypatch.setattr(calculators, "model_elements", lambda calc: None)
    args = ("bench", "eos", "--calculator", "stand-in", "--reference",
            "gpaw:pbe/pw400;kpt_density=2.5", "--store", tmp_path / "st")
    for _ in range(2):
        code, _, err = run_cli(*args, "-o", tmp_path / "a")
        lines = [ln for ln in err.splitlines() if ln.startswith("tealign: error:")]
        assert code == 2 and len(lines) == 1 and "Si_a5.50 failed" in lines[0], err
        assert "--retry-failed" in " ".join(err.split())
    code, out, err = run_cli(*args, "--retry-failed", "-o", tmp_path / "b", "--json")
    assert code == 0, err
    d = json.loads((tmp_path / "b" / "results.json").read_text())
    assert np.allclose(d["reference_e_per_atom_eV"], (eos.GRID - 5.43) ** 2)
    assert calls.count(5.5) == 2
    code, _, err = run_cli("bench", "eos", "--calculator", "stand-in", "--retry-failed",
                           "-o", tmp_path / "c")
    assert code == 2 and "give --reference" in " ".join(err.split()), err
