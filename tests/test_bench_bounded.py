"""Bounded benchmarks (issue 17): the runaway guard, the force-call cap, batched torsion scans,
torch threads, and a deliberately poor MACE model through `bench lattice` and `bench torsion`
under 2 GB peak RSS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from tealign.bench import lattice, runaway, torsion

BIARYL = ("OpenFF_Rowley_Biaryl_v1-0.csv", "OpenFF_Rowley_Biaryl_v1-0.sdf")
ZS = [1, 3, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 29]


def random_mace(path: Path, seed: int = 0, scale: float = 1.0, r_max: float = 4.5) -> Path:
    """A one-interaction MACE with random weights (a deliberately poor model), saved as
    mace-torch saves models."""
    import mace  # noqa: F401  (first: it lets torch.load read e3nn's constants)
    import torch
    from e3nn import o3
    from mace import modules

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        model = modules.ScaleShiftMACE(
            r_max=r_max, num_bessel=4, num_polynomial_cutoff=5, max_ell=1,
            interaction_cls=block, interaction_cls_first=block, num_interactions=1,
            num_elements=len(ZS), hidden_irreps=o3.Irreps("8x0e"),
            MLP_irreps=o3.Irreps("8x0e"), atomic_energies=np.zeros(len(ZS)),
            avg_num_neighbors=8.0, atomic_numbers=ZS, correlation=2,
            gate=torch.nn.functional.silu, atomic_inter_scale=scale, atomic_inter_shift=0.0)
        torch.save(model, path)
    finally:
        torch.set_default_dtype(before)
    return path


@pytest.fixture(scope="module")
def poor_model(tmp_path_factory):
    pytest.importorskip("mace")
    # seed 3, 20× interactions: NaCl and Cu cells collapse under it (Al, MgO, Si do not)
    return random_mace(tmp_path_factory.mktemp("poor") / "poor.model", seed=3, scale=20.0)


@pytest.fixture(scope="module")
def smooth_model(tmp_path_factory):
    pytest.importorskip("mace")
    return random_mace(tmp_path_factory.mktemp("smooth") / "smooth.model", seed=0, scale=0.2)


# ----------------------------------------------------------------------------- the guard
def test_guard_reasons_for_cells_and_molecules():
    cu = bulk("Cu", "fcc", a=3.6)
    g = runaway.RunawayGuard(cu, cutoff=4.5)
    assert g.reason(cu) is None
    grown = cu.copy()
    grown.set_cell(cu.cell * 1.5, scale_atoms=True)  # volume × 3.375
    assert "cell volume" in g.reason(grown) and "3.38×" in g.reason(grown)
    shrunk = cu.copy()
    shrunk.set_cell(cu.cell * 0.68, scale_atoms=True)  # volume × 0.314
    assert "cell volume" in g.reason(shrunk)
    inside = cu.copy()
    inside.set_cell(cu.cell * 0.72, scale_atoms=True)  # volume × 0.373: allowed, 2.7× pairs
    assert g.reason(inside) is None
    nan = cu.copy()
    nan.positions[0, 0] = np.nan
    assert g.reason(nan) == "non-finite positions"
    cube = bulk("Cu", "fcc", a=3.6, cubic=True)
    flat = cube.copy()  # same volume, one height a quarter of the start's: images multiply
    flat.set_cell(np.diag([4.0, 1.0, 0.25]) * 3.6, scale_atoms=True)
    assert "cell height" in runaway.RunawayGuard(cube, cutoff=4.5).reason(flat)

    water = molecule("H2O")
    gm = runaway.RunawayGuard(water, cutoff=4.5)
    apart = water.copy()
    apart.positions[1] += [0, 0, 4.0]  # an H atom flies off
    assert "radius of gyration" in gm.reason(apart)
    with pytest.raises(runaway.Runaway, match="radius of gyration"):
        gm.check(apart)


def test_guard_counts_neighbours_in_a_fixed_cell():
    box = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(4)
    g = runaway.RunawayGuard(box, cutoff=4.5)
    clumped = box.copy()
    clumped.positions[:] = box.positions[0] + 0.3 * (box.positions - box.positions[0])
    assert "neighbour pairs" in g.reason(clumped)


class _CollapsingAl(EMT):
    """EMT, except for Al: energy c·V, so the cell shrinks without end (forces zero)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if set(atoms.get_chemical_symbols()) != {"Al"}:
            return super().calculate(atoms, properties, system_changes)
        Calculator.calculate(self, atoms, properties, system_changes)
        v = atoms.get_volume()
        self.results = {"energy": 0.5 * v, "free_energy": 0.5 * v,
                        "forces": np.zeros((len(atoms), 3)),
                        "stress": np.array([0.5, 0.5, 0.5, 0.0, 0.0, 0.0])}


def test_lattice_lists_a_collapsing_cell_under_skipped(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("name,formula,structure,a_exp_zpae,a_pbe,notes\n"
                   "Cu,Cu,fcc,3.595,3.630,\nAl,Al,fcc,4.019,4.037,\n")
    calls = []

    class Recording(_CollapsingAl):
        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            calls.append(atoms.get_volume())
            super().calculate(atoms, properties, system_changes)

    res = lattice.run(Recording(), tmp_path / "out", data=csv, r_max=4.5)
    assert [c["name"] for c in res["crystals"]] == ["Cu"]
    [skip] = res["skipped"]
    assert skip["name"] == "Al" and skip["reason"].startswith("runaway: cell volume")
    # the calculator never saw a cell below a third of Al's start (1.02 · a_pbe)
    v0 = bulk("Al", "fcc", a=1.02 * 4.037).get_volume()
    assert min(calls) >= v0 / 3
    assert json.loads((tmp_path / "out" / "results.json").read_text())["skipped"] == [skip]


def test_water_md_that_collapses_is_skipped(tmp_path):
    from tealign.bench import water

    class Inward(Calculator):
        """Pulls every atom towards the box centre with 20 eV/Å: the liquid collapses."""

        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            d = atoms.positions - atoms.cell.sum(axis=0) / 2
            r = np.linalg.norm(d, axis=1)[:, None]
            self.results = {"energy": float(20.0 * r.sum()), "forces": -20.0 * d / r}

    res = water.run(Inward(), tmp_path, ps=0.1, d3=None, prerelax_steps=2)
    [skip] = res["skipped"]
    assert skip["name"] == "water box"
    assert re.match(r"runaway: \d+ neighbour pairs within 5 Å, more than 3× the start's",
                    skip["reason"]), skip
    assert res["peak_r_A"] is None and res["r_A"] == []
    assert json.loads((tmp_path / "results.json").read_text())["skipped"] == [skip]
    assert (tmp_path / "water_rdf.png").exists()


# ----------------------------------------------------------------------------- force budget
def test_force_budget_never_exceeds_the_cap_and_shares_leftovers():
    b = torsion.ForceBudget(cap=100, n_points=10, per_point=30)
    allowances = []
    for _ in range(10):
        a = b.start()
        allowances.append(a)
        b.finish(a, min(a, 3))  # every point converges after 3 calls
    assert allowances[0] == 10 and max(allowances) == 30  # unused calls go to later points
    assert b.used == 30 and b.reserved == 0
    tight = torsion.ForceBudget(cap=5, n_points=8, per_point=30)
    got = [tight.start() for _ in range(8)]
    assert sum(got) <= 5 and got.count(0) == 3


# ----------------------------------------------------------------------------- torsion
def _counting(evaluate, seen):
    def wrapped(atoms_list):
        seen.append(len(atoms_list))
        return evaluate(atoms_list)
    return wrapped


def _emt_evaluator(seen):
    """``evaluate`` for scan_lockstep: EMT structure by structure (forces unconstrained, as a
    calculator returns them)."""
    def evaluate(atoms_list):
        seen.append(len(atoms_list))
        out = []
        for a in atoms_list:
            b = a.copy()
            b.set_constraint()
            b.calc = EMT()
            out.append((b.get_potential_energy(), b.get_forces()))
        return out
    return evaluate


def test_lockstep_scan_is_the_one_by_one_scan(shared_data):
    """Same forces in, same BFGS: the lock-step driver reproduces scan() point for point."""
    geoms = torsion.read_sdf(shared_data / "biaryl" / BIARYL[1])
    mols = [geoms["Rowely_mol_1"], geoms["Rowely_mol_2"]]
    step, steps = 60.0, 60
    seen: list[int] = []
    bests, records = torsion.scan_lockstep(mols, step, _emt_evaluator(seen), steps=steps)
    # 2 molecules × 2 directions in flight: one call evaluates up to 4 structures
    assert max(seen) == 4 and len(seen) < sum(seen)
    for (atoms, idx), best, recs in zip(mols, bests, records):
        points: list[dict] = []
        counter = runaway.ForceCounter()
        one = torsion.scan(atoms, idx, np.arange(0, 360, step),
                           runaway.GuardedCalculator(EMT(), None, counter), step, steps=steps,
                           points=points, counter=counter)
        assert set(one) == set(best)
        for k in one:
            assert best[k][1] == one[k][1]
            assert best[k][0] == pytest.approx(one[k][0], abs=1e-9, nan_ok=True)
        assert sum(np.isfinite(v[0]) for v in one.values()) >= len(one) // 2
        assert len(recs) == len(points) == 2 * 7
        # point for point: same force calls, same energy, same status
        by_point = {(r["direction"], r["angle_deg"], r["k"]): r for r in recs}
        for i, p in enumerate(points):
            r = by_point[(p["direction"], p["angle_deg"], i % 7)]
            assert (r["force_calls"], r["status"]) == (p["force_calls"], p["status"])
            assert r["energy_eV"] == pytest.approx(p["energy_eV"], abs=1e-9, nan_ok=True)
        assert max(r["force_calls"] for r in recs) > 5  # real relaxations, not one-call stops
        assert all(r["force_calls"] <= steps + 1 for r in recs)


def test_batched_mace_passes_match_single_calls(smooth_model):
    from tealign.bench.calculators import get_calculator

    evaluate = torsion.mace_evaluator(smooth_model)
    mols = [molecule(n) for n in ("CH3OH", "C6H6", "NH3", "CH3CH2OH")]
    for m in mols:
        m.rattle(0.05, seed=1)
    batched = evaluate(mols)
    calc = get_calculator(str(smooth_model))
    for m, (e, f) in zip(mols, batched):
        m.calc = calc
        assert e == pytest.approx(m.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(f, m.get_forces(), atol=1e-8)


def test_batched_torsion_run_gives_the_one_by_one_energies(shared_data, smooth_model,
                                                          tmp_path):
    """`run` end to end, batched MACE passes against MACECalculator one point after the other:
    5 BFGS steps per point keep both trajectories within float rounding of each other."""
    d = shared_data / "biaryl"
    kw = dict(limit=1, step=15.0, steps=5)
    one = torsion.run(str(smooth_model), tmp_path / "one", d / BIARYL[0], d / BIARYL[1],
                      batched=False, **kw)
    bat = torsion.run(str(smooth_model), tmp_path / "bat", d / BIARYL[0], d / BIARYL[1],
                      batched=True, **kw)
    assert "lock-step" in bat["relaxation"] and "one point" in one["relaxation"]
    assert bat["force_calls"] == one["force_calls"] > 50
    m1, mb = one["molecules"][0], bat["molecules"][0]
    assert mb["point_status"] == m1["point_status"]
    np.testing.assert_allclose(mb["predicted_kcal_mol"], m1["predicted_kcal_mol"], atol=1e-5)


def test_force_call_cap_is_honoured_and_reported(shared_data, poor_model, tmp_path):
    d = shared_data / "biaryl"
    seen: list[int] = []
    real = torsion.mace_evaluator

    def counting_evaluator(*a, **kw):
        return _counting(real(*a, **kw), seen)

    mp = pytest.MonkeyPatch()
    mp.setattr(torsion, "mace_evaluator", counting_evaluator)
    try:
        # 1 molecule at 15°: 2 × 25 scan points; 150 calls cannot relax them all
        res = torsion.run(str(poor_model), tmp_path / "b", d / BIARYL[0], d / BIARYL[1],
                          limit=1, steps=50, max_force_calls=150)
    finally:
        mp.undo()
    assert "lock-step" in res["relaxation"]
    assert sum(seen) == res["force_calls"] <= 150
    assert res["max_force_calls"] == 150 and res["cap_reached"] is True
    [bit] = res["cap_bit"]
    assert bit["molid"] == "Rowely_mol_1" and bit["points_cut_short"] > 0
    on_disk = json.loads((tmp_path / "b" / "results.json").read_text())
    assert on_disk["cap_bit"] == res["cap_bit"]
    for m in res["molecules"]:
        assert m["unconverged_by_cap"] == m["point_status"].count("cap") > 0

    # one by one (any ASE calculator) under the same cap, calls counted by the calculator
    calls = []

    class CountingEMT(EMT):
        def calculate(self, *a, **kw):
            calls.append(1)
            super().calculate(*a, **kw)

    res1 = torsion.run(CountingEMT(), tmp_path / "c", d / BIARYL[0], d / BIARYL[1], limit=1,
                       steps=50, max_force_calls=150)
    assert "one point" in res1["relaxation"]
    assert len(calls) == res1["force_calls"] <= 150 and res1["cap_reached"] is True
    assert res1["cap_bit"][0]["points_cut_short"] > 0

    # a cap below the number of scan points: some angles are never relaxed and the
    # molecule says why
    from tealign.errors import SetupError

    calls.clear()
    with pytest.raises(SetupError, match="force-call cap was spent before 4 of 24"):
        torsion.run(CountingEMT(), tmp_path / "e", d / BIARYL[0], d / BIARYL[1], limit=1,
                    steps=50, max_force_calls=20)
    assert len(calls) == 20


# ----------------------------------------------------------------------------- threads
def test_torch_threads_from_flag_env_and_cores(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        assert runaway.torch_threads(1) == (1, "--threads") and torch.get_num_threads() == 1
        monkeypatch.setenv("TEALIGN_THREADS", "2")
        assert runaway.torch_threads() == (2, "TEALIGN_THREADS")
        monkeypatch.delenv("TEALIGN_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        n, src = runaway.torch_threads()
        assert src == "available cores" and n == runaway.available_cores()
        assert n <= len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)


def test_demo_gives_every_step_its_threads(monkeypatch):
    from tealign.demo import demo_threads

    monkeypatch.delenv("TEALIGN_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert demo_threads(3) == {"TEALIGN_THREADS": "3"}
    monkeypatch.delenv("OMP_NUM_THREADS")
    env = demo_threads()
    assert env["TEALIGN_THREADS"] == env["OMP_NUM_THREADS"] == str(runaway.available_cores())


# ----------------------------------------------------------------------------- poor model
_MEASURE = textwrap.dedent("""
    import json, resource, subprocess, sys
    limit = 6 * 1024**3  # address space: a runaway that escapes the guard fails, not the host
    def child():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    runs = []
    for args in json.loads(sys.argv[1]):
        p = subprocess.run([sys.executable, "-m", "tealign", *args], preexec_fn=child,
                           capture_output=True, text=True)
        runs.append({"code": p.returncode, "stdout": p.stdout, "stderr": p.stderr[-3000:]})
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"runs": runs, "peak_rss_MiB": peak_kib / 1024}))
""")


def test_poor_model_benchmarks_finish_under_2_gb(shared_data, poor_model, tmp_path):
    """`bench lattice` (MgO, NaCl, Si, Cu, Al) and `bench torsion --limit 2` on a random MACE
    model with 5× scaled interactions: both finish, runaways are listed under `skipped` with
    their reason, and the largest process stays under 2 GB resident."""
    csv = tmp_path / "c.csv"
    csv.write_text("name,formula,structure,a_exp_zpae,a_pbe,notes\n"
                   "MgO,MgO,rocksalt,4.188,4.255,\nNaCl,NaCl,rocksalt,5.565,5.695,\n"
                   "Si,Si,diamond,5.422,5.468,\nCu,Cu,fcc,3.595,3.630,\n"
                   "Al,Al,fcc,4.019,4.037,\n")
    d = shared_data / "biaryl"
    runs = [["bench", "lattice", "--calculator", str(poor_model), "--data", str(csv),
             "-o", str(tmp_path / "lat"), "--json", "--threads", "1"],
            ["bench", "torsion", "--calculator", str(poor_model), "--data", str(d / BIARYL[0]),
             "--geometries", str(d / BIARYL[1]), "--limit", "2", "--max-steps", "30",
             "--max-force-calls", "1500", "-o", str(tmp_path / "tor"), "--json",
             "--threads", "1"]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(runs)], capture_output=True,
                       text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout)
    lat_run, tor_run = got["runs"]
    assert lat_run["code"] == 0, lat_run["stderr"]
    lat = json.loads((tmp_path / "lat" / "results.json").read_text())
    run_away = [s for s in lat["skipped"] if s["reason"].startswith("runaway: ")]
    assert run_away, lat["skipped"]
    assert len(lat["crystals"]) + len(lat["skipped"]) == 5
    # torsion: exit 0 with profiles, or exit 2 when every molecule was left out; either way
    # results say why and the force calls stayed under the cap
    assert tor_run["code"] in (0, 2), tor_run["stderr"]
    if tor_run["code"] == 0:
        tor = json.loads((tmp_path / "tor" / "results.json").read_text())
        assert tor["force_calls"] <= 1500
        assert tor["n"] + len(tor["skipped"]) == 2
    else:
        assert "no torsion profile could be computed" in tor_run["stderr"]
    print(f"peak RSS {got['peak_rss_MiB']:.0f} MiB; lattice skipped: {lat['skipped']}; "
          f"torsion exit {tor_run['code']}")
    assert got["peak_rss_MiB"] < 2048, got
