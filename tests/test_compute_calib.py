"""`tealign compute calib`: end to end, resume after SIGKILL, and a Dask cluster."""

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tealign.io import read_batch

if importlib.util.find_spec("qm9pack") is None:  # importing it fails; finding it is enough
    pytest.skip("qm9pack is not installed", allow_module_level=True)
TEALIGN = str(Path(sys.executable).with_name("tealign"))


def test_calib_end_to_end(tmp_path, run_cli):
    out = tmp_path / "calib.extxyz"
    code, stdout, stderr = run_cli("compute", "calib", "--molecules", "qm9:5",
                                   "--method", "xtb:gfn2", "--method", "hf=pyscf:hf/sto-3g",
                                   "-o", out, "--json")
    assert code == 0, stderr
    r = json.loads(stdout)
    assert r["frames"] == 5 and r["failed"] == 0
    b = read_batch(out)
    assert b.n_frames == 5 and len(set(b.info["mol_id"])) == 5
    for key in ("energy_xtb_gfn2", "energy_hf", "energy_qm9_b3lyp", "split", "config_type"):
        assert b.has(key).all(), key
    assert b.arrays["forces_hf"].shape == (len(b.numbers), 3)
    assert set(b.info["split"]) <= {"train", "valid", "test"}
    # provenance: each key records its SPEC (tealign.provenance reads it)
    assert set(b.info["method_energy_hf"]) == {"pyscf:hf/sto-3g"}
    for label in ("xtb_gfn2", "hf"):
        table = json.loads((tmp_path / f"calib.atoms_{label}.json").read_text())
        present = {s for s in b.to_atoms()[0].get_chemical_symbols()}
        assert present <= set(table["energies"]) and table["units"] == "eV"
    # the pick is reproducible and spread over sizes
    again = tmp_path / "again.extxyz"
    run_cli("compute", "calib", "--molecules", "qm9:5", "--method", "xtb:gfn2", "-o", again)
    assert read_batch(again).info["mol_id"].tolist() == b.info["mol_id"].tolist()
    assert len(set(b.n_atoms.tolist())) > 1


def test_a_split_the_frames_bring_is_kept(tmp_path, run_cli):
    """Frames that arrive with a split keep it (a test split recomputed at another level,
    species meant for training); a frame without one gets the drawn split of its mol_id."""
    from ase.build import molecule
    from ase.io import write

    from tealign.io.splits import split_of

    frames = []
    for name, split in (("H2O", "test"), ("NH3", "train"), ("CH4", None)):
        a = molecule(name)
        a.info["mol_id"] = name
        if split:
            a.info["split"] = split
        frames.append(a)
    write(tmp_path / "in.extxyz", frames)
    code, _, stderr = run_cli("compute", "calib", "--molecules", tmp_path / "in.extxyz",
                              "--no-forces", "--method", "xtb:gfn2", "-o", tmp_path / "o.extxyz")
    assert code == 0, stderr
    b = read_batch(tmp_path / "o.extxyz")
    assert b.info["split"].tolist() == ["test", "train", split_of("CH4", 0, None)]


def _keys_in_store(store: Path) -> set[str]:
    with sqlite3.connect(store / "jobs.sqlite") as db:
        return {k for (k,) in db.execute("SELECT key FROM jobs")}


def _log_keys(log: Path) -> list[str]:
    return [ln.split()[-1] for ln in log.read_text().splitlines()] if log.exists() else []


def test_sigkill_then_resume_recomputes_nothing(tmp_path):
    out, log, store = tmp_path / "calib.extxyz", tmp_path / "calls.log", tmp_path / "store"
    env = {**os.environ, "TEALIGN_CALL_LOG": str(log)}
    cmd = [TEALIGN, "compute", "calib", "--molecules", "qm9:8", "--method", "xtb:gfn2",
           "--method", "hf=pyscf:hf/6-31g", "-o", str(out), "--store", str(store)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        keys = _log_keys(log)
        if sum(1 for _ in keys) >= 16:  # atoms and xTB done, some HF molecules under way
            break
        time.sleep(0.005)
    assert proc.poll() is None, "finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _keys_in_store(store)
    calls_before = _log_keys(log)
    assert 0 < len(done_before) < len(set(calls_before)) + 1
    assert not out.exists()  # nothing half-written
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    calls_after = _log_keys(log)[len(calls_before):]
    assert not set(calls_after) & done_before  # nothing finished was recomputed
    assert len(calls_after) == len(set(calls_after))  # nothing computed twice
    all_keys = _keys_in_store(store)
    assert all_keys == done_before | set(calls_after)
    # every job ran once, except at most the one in flight at the kill
    assert len(calls_before) + len(calls_after) <= len(all_keys) + 1
    b = read_batch(out)
    assert b.n_frames == 8 and len(set(b.info["mol_id"])) == 8
    # a third run computes nothing at all
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    assert len(_log_keys(log)) == len(calls_before) + len(calls_after)


def test_dask_local_cluster(tmp_path, run_cli):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        out = tmp_path / "calib.extxyz"
        code, stdout, stderr = run_cli("compute", "calib", "--molecules", "qm9:3",
                                       "--method", "xtb:gfn2", "-o", out,
                                       "--scheduler", cluster.scheduler_address, "--json")
        assert code == 0, stderr
        assert json.loads(stdout)["computed"] > 0
        b = read_batch(out)
        assert b.n_frames == 3 and np.isfinite(b.info["energy_xtb_gfn2"]).all()


def test_a_frame_multiplicity_is_used(tmp_path, run_cli):
    """O2 with ``multiplicity=3`` is computed as the triplet (UHF, <S²> ≈ 2), below the
    closed-shell singlet the electron count alone would give."""
    from ase.build import molecule
    from ase.io import write

    frames = []
    for mult in (3, None):
        a = molecule("O2")
        a.set_initial_magnetic_moments(None)
        a.info["mol_id"] = f"O2_{mult}"
        if mult is not None:
            a.info["multiplicity"] = mult
        frames.append(a)
    src = tmp_path / "o2.extxyz"
    write(src, frames)
    out = tmp_path / "o2-hf.extxyz"
    code, _, stderr = run_cli("compute", "calib", "--molecules", src, "--method",
                              "hf=pyscf:hf/sto-3g", "--no-forces", "-o", out, "--json")
    assert code == 0, stderr
    b = read_batch(out)
    e = dict(zip(b.info["mol_id"], np.asarray(b.info["energy_hf"], float)))
    assert e["O2_3"] < e["O2_None"] - 0.5  # triplet O2 lies well below the RHF singlet


def test_failed_jobs_stay_failed_until_retry_failed(tmp_path, run_cli, monkeypatch):
    """A molecule whose calculation failed is rejected again on a rerun (the store keeps the
    failure, nothing is recomputed) and computed once --retry-failed is given, its result
    replacing the failure."""
    from ase.build import molecule
    from ase.io import write

    import tealign.compute.runner as runner
    from tealign.compute.backends import CalculationFailed

    mols = tmp_path / "mols.extxyz"
    frames = [molecule("H2O"), molecule("NH3")]
    for i, a in enumerate(frames):
        a.info["mol_id"] = f"m{i}"
    write(mols, frames, format="extxyz")
    real = runner.run_calculation
    calls = []

    def broken_for_nh3(spec, atoms, **kw):
        calls.append(atoms.get_chemical_formula())
        if atoms.get_chemical_formula() == "H3N" and not kw.get("isolated_atom"):
            raise CalculationFailed("a transient failure")
        return real(spec, atoms, **kw)

    monkeypatch.setattr(runner, "run_calculation", broken_for_nh3)
    args = ("compute", "calib", "--molecules", mols, "--method", "xtb:gfn2",
            "--store", tmp_path / "store")
    code, stdout, stderr = run_cli(*args, "--json", "-o", tmp_path / "a.extxyz")
    r = json.loads(stdout)
    assert code == 0 and r["frames"] == 1 and r["frames_rejected"] == 1, stderr
    assert "a transient failure" in Path(r["rejects_file"]).read_text()
    assert r["failed_kept"] == 0 and r["failed"] == 1
    calls.clear()
    code, stdout, stderr = run_cli(*args, "--json", "-o", tmp_path / "b.extxyz")
    assert code == 0 and calls == []  # the failure is kept, nothing recomputed
    assert json.loads(stdout)["failed_kept"] == 1 and json.loads(stdout)["failed"] == 0
    code, stdout, stderr = run_cli(*args, "-o", tmp_path / "b.extxyz")
    assert "from the store (1 of them kept failed)" in " ".join(stderr.split()), stderr
    assert "a transient failure" in stderr and "--retry-failed" in stderr  # the way out
    code, stdout, stderr = run_cli(*args, "--strict", "-o", tmp_path / "s.extxyz")
    assert code == 2 and "a transient failure" in stderr, stderr
    assert "--retry-failed" in stderr  # --strict names the way out too
    assert not list(tmp_path.glob("s.*"))  # a setup error: nothing written
    monkeypatch.setattr(runner, "run_calculation", real)
    code, stdout, stderr = run_cli(*args, "--retry-failed", "--json",
                                   "-o", tmp_path / "c.extxyz")
    r = json.loads(stdout)
    assert code == 0 and r["frames"] == 2 and r["computed"] == 1 and r["failed"] == 0
    assert r["failed_kept"] == 0
    with sqlite3.connect(tmp_path / "store" / "jobs.sqlite") as db:
        assert {s for (s,) in db.execute("SELECT status FROM jobs")} == {"done"}
    assert np.isfinite(read_batch(tmp_path / "c.extxyz").info["energy_xtb_gfn2"]).all()


def test_a_failed_isolated_atom_is_reported_with_the_way_out(tmp_path, run_cli, monkeypatch):
    """An isolated-atom job that failed is named on every rerun (it is kept failed in the
    store), with --retry-failed as the way out, which then computes it."""
    from ase.build import molecule
    from ase.io import write

    import tealign.compute.runner as runner
    from tealign.compute.backends import CalculationFailed

    mols = tmp_path / "mols.extxyz"
    water = molecule("H2O")
    water.info["mol_id"] = "w"
    write(mols, [water], format="extxyz")
    real = runner.run_calculation

    def broken_for_o_atom(spec, atoms, **kw):
        if kw.get("isolated_atom") and atoms.get_chemical_formula() == "O":
            raise CalculationFailed("a transient failure")
        return real(spec, atoms, **kw)

    monkeypatch.setattr(runner, "run_calculation", broken_for_o_atom)
    args = ("compute", "calib", "--molecules", mols, "--method", "xtb:gfn2",
            "--store", tmp_path / "store")
    for out in ("a", "b"):  # the first run and a rerun alike
        code, stdout, stderr = run_cli(*args, "-o", tmp_path / f"{out}.extxyz")
        assert code == 0 and "isolated atom failed: xtb_gfn2 O" in stderr, stderr
        assert "--retry-failed" in stderr
    code, stdout, stderr = run_cli(*args, "--strict", "-o", tmp_path / "s.extxyz")
    assert code == 2 and "isolated atom failed: xtb_gfn2 O" in stderr, stderr
    assert "--retry-failed" in stderr and not list(tmp_path.glob("s.*"))
    monkeypatch.setattr(runner, "run_calculation", real)
    code, stdout, stderr = run_cli(*args, "--retry-failed", "-o", tmp_path / "c.extxyz")
    assert code == 0 and "isolated atom failed" not in stderr, stderr
    table = json.loads((tmp_path / "c.atoms_xtb_gfn2.json").read_text())
    assert set(table["energies"]) == {"H", "O"}


def test_strict_error_names_the_failed_calculation_first():
    """--strict's one line: a failed calculation before a bad-input reject (with the way
    out), all failed isolated atoms named when no frame failed, the count of the rest."""
    from tealign.compute.calib import strict_error
    from tealign.errors import FrameError

    mesh = FrameError("m.extxyz", 0, "kpts", "no k-point mesh for a 0-volume cell")
    scf = FrameError("m.extxyz", 3, "energy_pbe", "pbe failed: SCF did not converge",
                     failed=True)
    e = strict_error([mesh, scf], ["pbe O"])
    assert e.frame == 3 and "SCF did not converge" in e.message
    assert "--retry-failed" in e.message and "2 more" in e.message
    e = strict_error([mesh], ["pbe O", "pbe H"])
    assert "pbe O, pbe H" in e.message and "--retry-failed" in e.message
    assert "1 rejected frames besides" in e.message
    e = strict_error([mesh], [])
    assert e.frame == 0 and "--retry-failed" not in e.message and "more" not in e.message
