"""The second round's model-level driver (experiments/multidomain/run_v2.py, issue 31 item 3):
the training data it builds (every bridge species with at least 10 training frames, the added
frames all in the training split, SiC only in the test split), the convention check on an
added file, the missing-input message, and the per-training plateau numbers. No training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "experiments" / "multidomain"
DATA = ROOT / "datasets" / "bridge-v2"
if str(EXP) not in sys.path:  # the experiment's modules import each other by name
    sys.path.insert(0, str(EXP))

import run_v2  # noqa: E402


def _need(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            pytest.skip(f"{p.relative_to(ROOT)} is not there yet (made by "
                        f"{run_v2.REGENERATE})")


def _species(role: str) -> list[str]:
    species = json.loads((DATA / "bridge.json").read_text())["species"]
    return [s for s, e in species.items() if e["role"] == role]


def _read(path: Path):
    from tealign.io import read_batch

    return read_batch(path)


def _split(batch) -> np.ndarray:
    return np.asarray(batch.info["split"]).astype(str)


def _built(tmp: Path, **inputs: Path):
    run = run_v2.RunV2(tmp, {**run_v2.INPUTS, **inputs})
    run.prepare_data()
    return run


def _check_added(run, out: str, base: Path, added: Path, role: str, every: bool = True
                 ) -> None:
    """The built file = base's frames, then added's all in training; every bridge species of
    ``role`` in ``added`` (``every``: every one of bridge.json) with at least MIN_FRAMES
    training frames."""
    b, a, x = _read(run.files[out]), _read(added), _read(base)
    assert b.n_frames == x.n_frames + a.n_frames
    assert (_split(b)[x.n_frames:] == "train").all()
    assert (_split(b)[:x.n_frames] == _split(x)).all()
    counts = run_v2.training_frames(run.files[out], {s: role for s in _species(role)})
    present = set(run_v2.species_of(a))
    assert present, "the added file holds no bridge species"
    assert all(counts[s] >= run_v2.MIN_FRAMES for s in (counts if every else present)), counts


def _check_sic_held_out(run) -> None:
    b = _read(run.files["inorganic"])
    crystal = np.array([str(c) for c in b.info["crystal"]]) if "crystal" in b.info else None
    has = b.has("crystal")
    sic = has & (crystal == "SiC")
    assert sic.any()
    assert (_split(b)[sic] == "test").all()
    assert set(np.flatnonzero(_split(b) == "test")) == set(np.flatnonzero(sic))


def test_organic_every_gas_species_trained_at_least_ten_times(tmp_path):
    molecules = run_v2.INPUTS["molecules"]
    _need(molecules)
    run = _built(tmp_path)
    _check_added(run, "organic", run.files["organic_mini"], molecules, "molecule")
    # organic-mini's test split is untouched and holds no bridge species
    org, mini = _read(run.files["organic"]), _read(run.files["organic_mini"])
    assert (_split(org) == "test").sum() == (_split(mini) == "test").sum()
    assert not set(run_v2.species_of(org)[_split(org) == "test"]) & set(_species("molecule"))
    # the oracle's ωB97M side gets the same frames
    _check_added(run, "oracle_eo", run.files["oracle_eo_src"], molecules, "molecule")


def test_inorganic_every_solid_trained_at_least_ten_times_and_sic_only_in_test(tmp_path):
    solids = run_v2.INPUTS["solids"]
    _need(solids)
    run = _built(tmp_path)
    _check_added(run, "inorganic", run.files["inorganic_heldout"], solids, "solid")
    _check_sic_held_out(run)


def _stand_in(path: Path, n: int = 10, mol_id: str = "MgS_s", **change) -> Path:
    """``n`` inorganic-mini frames relabelled as one bridge solid, split as compute might
    draw it, with the method record compute writes."""
    from tealign.io.extxyz import write_extxyz

    b = _read(ROOT / "datasets/inorganic-mini/inorganic-mini.extxyz")
    s = b.select(np.arange(b.n_frames) < n)
    s.info["mol_id"] = np.full(n, mol_id, dtype=object)
    s.info["split"] = np.array(["test", "valid"] * (n // 2) + ["test"] * (n % 2), dtype=object)
    s.info["method_energy_pbe"] = np.full(n, "gpaw:pbe/pw800;vacuum=5.0;smearing=0.1",
                                          dtype=object)
    for k, v in change.items():
        s.info[k] = v
    write_extxyz(path, [s])
    return path


def test_inorganic_build_on_a_stand_in(tmp_path):
    """The same checks on stand-in solid frames (runs before the real ones exist)."""
    solids = _stand_in(tmp_path / "solids.extxyz")
    run = _built(tmp_path / "run", solids=solids)
    _check_added(run, "inorganic", run.files["inorganic_heldout"], solids, "solid",
                 every=False)
    _check_sic_held_out(run)


def test_an_added_file_with_other_conventions_stops_the_run(tmp_path):
    bad = _stand_in(tmp_path / "solids.extxyz", n=3,
                    d3_in_energy_pbe=np.ones(3, dtype=bool),
                    method_energy_pbe=np.full(3, "gpaw:pbe/pw400", dtype=object))
    problems = run_v2.check_conventions(
        bad, ROOT / "datasets/inorganic-mini/inorganic-mini.extxyz", "pbe")
    assert any("d3_in_energy_pbe" in p for p in problems)
    assert any("pw400" in p for p in problems)
    with pytest.raises(SystemExit, match="does not follow the conventions"):
        _built(tmp_path / "run", solids=bad)
    good = _stand_in(tmp_path / "good.extxyz", n=3)
    assert run_v2.check_conventions(
        good, ROOT / "datasets/inorganic-mini/inorganic-mini.extxyz", "pbe") == []


def test_missing_input_names_the_file_and_the_command(tmp_path):
    run = run_v2.RunV2(tmp_path, {**run_v2.INPUTS, "solids": tmp_path / "nowhere.extxyz"})
    with pytest.raises(SystemExit) as e:
        run.check_inputs(["a", "e"])
    lines = str(e.value).splitlines()
    assert len(lines) == 1
    assert "nowhere.extxyz" in lines[0] and run_v2.REGENERATE in lines[0]
    assert lines[0].startswith("variants a,e:")


def test_training_record_from_train_log(tmp_path):
    """Per-epoch lines as mace-torch logs them, 120 epochs of at most 120: the energy MAE
    falling 10 % over the last 50 (no plateau), also when the loss has been flat for the
    last 20 epochs (mace-torch's patience of 15 exhausted: recorded, not a plateau); a flat
    MAE (plateau); 100 epochs of at most 300 (early stopping ended it: plateau)."""
    from run import training_record

    def write(mae, loss, max_epochs=120):
        lines = [f"2026 INFO: Epoch {k}: head: Default, loss={x:.8f}, "
                 f"MAE_E_per_atom= {m:7.2f} meV, MAE_F= 1.0 meV / A"
                 for k, (m, x) in enumerate(zip(mae, loss))]
        lines.append("INFO: Loading checkpoint: /x/checkpoints/model_run-1_epoch-99.pt")
        (tmp_path / "train.log").write_text("\n".join(lines) + "\n")
        (tmp_path / "tealign_train.json").write_text(json.dumps(
            {"command": ["mace_run_train", "--max_num_epochs", str(max_epochs),
                         "--patience", "15"]}))
        return training_record(tmp_path)

    falling_mae = [100.0] * 70 + [90.0] * 50
    falling = write(falling_mae, [0.01 - 1e-5 * k for k in range(120)])
    assert falling["epochs_run"] == 120 and falling["best_epoch"] == 70
    assert falling["kept_epoch"] == 99 and falling["best_valid_energy_mae_meV_per_atom"] == 90
    assert falling["drop"] == pytest.approx(0.10)
    assert not falling["stopped_early"] and not falling["patience_exhausted"]
    assert not falling["reached_plateau"]
    patient = write(falling_mae, [0.01 - 1e-5 * min(k, 99) for k in range(120)])
    assert patient["patience_exhausted"] and not patient["reached_plateau"]
    flat = write([100.0] * 120, [0.01 - 1e-5 * k for k in range(120)])
    assert flat["drop"] == pytest.approx(0.0) and flat["reached_plateau"]
    stopped = write(falling_mae[:100], [0.01] * 100, max_epochs=300)
    assert stopped["stopped_early"] and stopped["reached_plateau"]


def test_training_record_reads_the_stage_two_checkpoint(tmp_path):
    """With mace-torch's Stage Two the checkpoint loaded last is ``..._epoch-N_swa.pt``:
    that N is the kept epoch."""
    from run import training_record

    lines = [f"2026 INFO: Epoch {k}: head: Default, loss=0.01, MAE_E_per_atom= 10.00 meV, "
             f"MAE_F= 1.0 meV / A" for k in range(10)]
    lines += ["INFO: Loading checkpoint: /x/checkpoints/model_run-1_epoch-4.pt",
              "INFO: Loading checkpoint: /x/checkpoints/model_run-1_epoch-8_swa.pt"]
    (tmp_path / "train.log").write_text("\n".join(lines) + "\n")
    assert training_record(tmp_path)["kept_epoch"] == 8


def test_stage_two_options_are_mace_torch_options():
    """run_v2's Stage Two options parse as mace_run_train options (its own parser)."""
    tools = pytest.importorskip("mace.tools", reason="needs mace-torch: pip install tealign[mace]")
    build_default_arg_parser = tools.build_default_arg_parser

    assert run_v2.stage_two_args(None) == ()
    args = build_default_arg_parser().parse_args(
        ["--name", "x", "--train_file", "t.xyz", *run_v2.stage_two_args(130)])
    assert args.swa and args.start_swa == 130 and args.swa_energy_weight == 1000
    assert args.swa_forces_weight == 100 and args.swa_stress_weight == 100


def test_own_fit_summary_lists_the_misses_and_splits_model_from_label_error():
    """Two gas molecules and a solid: the worst species and those above the limit named,
    model error and label residual at the bridge frames averaged per atom over the gas
    molecules only, by hand."""
    fit = {"CO_g": {"role": "molecule", "energy_mae_meV_per_atom": 400.0},
           "H2_g": {"role": "molecule", "energy_mae_meV_per_atom": 1.0},
           "MgO_s": {"role": "solid", "energy_mae_meV_per_atom": 2.0}}
    results = {"bridge_natoms": {"CO_g": 2, "H2_g": 2, "MgO_s": 2},
               "label_residual_eV": {"scale": {"CO_g": 0.2, "H2_g": -0.1}},
               "variants": {"e": {"1": {
                   "own_fit": fit,
                   "bridge_frame_error_eV": {"model": {"CO_g": 1.0, "H2_g": -0.1,
                                                       "MgO_s": 0.0}}}}}}
    row = run_v2.own_fit_summary(results)[-1].split(" | ")
    assert row[2:6] == ["3", "2.0", "CO 400", "CO 400"]
    # |1.0|/2 and |-0.1|/2 eV/atom: 275 meV/atom; labels |0.2|/2, |-0.1|/2: 75 meV/atom
    assert row[6] == "275.0" and row[7] == "75.0 |"


def test_an_epoch_missing_from_the_log_is_not_an_early_stop(tmp_path):
    """mace-torch logs no validation line for the epoch in which Stage Two starts: 200 of
    200 epochs with epoch 130 missing ran to the end."""
    from run import training_record

    lines = [f"2026 INFO: Epoch {k}: head: Default, loss=0.01, MAE_E_per_atom= 10.00 meV, "
             f"MAE_F= 1.0 meV / A" for k in range(200) if k != 130]
    (tmp_path / "train.log").write_text("\n".join(lines) + "\n")
    (tmp_path / "tealign_train.json").write_text(json.dumps(
        {"command": ["mace_run_train", "--max_num_epochs", "200", "--patience", "15"]}))
    rec = training_record(tmp_path)
    assert rec["epochs_run"] == 199 and not rec["stopped_early"]
    assert rec["stage_one_epochs"] is None


def test_stage_two_started_by_patience_counts_the_epochs_trained(tmp_path):
    """mace-torch starts Stage Two when Stage One's patience runs out (here after epoch 100)
    and moves its counter on to 131: 101 + 69 epochs trained, ran to the end, and the
    patience judged on Stage Two's losses only (their scale is Stage Two's)."""
    from run import training_record

    ep = list(range(101)) + list(range(131, 200))
    loss = [0.001] * 101 + [0.03 - 1e-4 * i for i in range(69)]
    lines = [f"2026 INFO: Epoch {k}: head: Default, loss={x:.8f}, MAE_E_per_atom= 10.00 meV, "
             f"MAE_F= 1.0 meV / A" for k, x in zip(ep, loss)]
    lines.insert(101, "2026 INFO: Changing loss based on Stage Two Weights")
    (tmp_path / "train.log").write_text("\n".join(lines) + "\n")
    (tmp_path / "tealign_train.json").write_text(json.dumps(
        {"command": ["mace_run_train", "--max_num_epochs", "200", "--patience", "15"]}))
    rec = training_record(tmp_path)
    assert rec["epochs_run"] == 170 and rec["stage_one_epochs"] == 101
    assert not rec["stopped_early"] and not rec["patience_exhausted"]


def test_report_only_recomputes_each_record_from_its_own_train_log(tmp_path):
    """A stored record is replaced by the one its run directory's train.log gives (seed 1 in
    ``<variant>/train``, seed N in ``<variant>/train_seedN``) where mace-torch's results/ are
    there; where they are gone (a fresh checkout: train.log has 2 decimals) a stored record
    is kept (unless the rule stated beside the records changed) and a missing one computed;
    a training without a directory keeps what was stored."""
    def log(d: Path, n: int) -> None:
        d.mkdir(parents=True)
        (d / "train.log").write_text("".join(
            f"2026 INFO: Epoch {k}: head: Default, loss=0.01, MAE_E_per_atom= {50 - k}.00 meV, "
            f"MAE_F= 1.0 meV / A\n" for k in range(n)))

    log(tmp_path / "e" / "train", 10)
    (tmp_path / "e" / "train" / "results").mkdir()
    log(tmp_path / "e" / "train_seed2", 20)
    log(tmp_path / "e" / "train_seed4", 30)
    cur = {"plateau_rule": run_v2.PLATEAU_RULE,
           "variants": {"e": {"1": {"training": {"model": "stale"}},
                              "2": {"training": {"model": "full precision"}},
                              "3": {"training": {"model": "kept"}},
                              "4": {}}}}
    run_v2.refresh_training_records(tmp_path)(cur)
    seeds = cur["variants"]["e"]
    assert seeds["1"]["training"]["model"]["epochs_run"] == 10
    assert seeds["2"]["training"] == {"model": "full precision"}
    assert seeds["3"]["training"] == {"model": "kept"}
    assert seeds["4"]["training"]["model"]["best_epoch"] == 29
    # records stored under another rule are all recomputed
    cur = {"plateau_rule": "an older rule",
           "variants": {"e": {"2": {"training": {"model": "full precision"}}}}}
    run_v2.refresh_training_records(tmp_path)(cur)
    assert cur["variants"]["e"]["2"]["training"]["model"]["epochs_run"] == 20


def test_a_training_short_of_its_plateau_is_extended_in_place(tmp_path):
    """``Run.train(extend_to=N)`` on a finished training: one `tealign train` into the same
    run directory with --epochs N (its seed and the Stage Two options kept; mace-torch resumes
    from the latest checkpoint), requested.json then records ``extended_to``; without
    ``extend_to``, or once extended that far, the model is reused; another request still
    refuses. The record of the appended log judges the plateau on the resumed epochs."""
    from run import training_record

    run = run_v2.RunV2(tmp_path, dict(run_v2.INPUTS))
    calls = []
    run.tealign = lambda *args: calls.append([str(a) for a in args])
    mace_args = run_v2.stage_two_args(130)
    d = tmp_path / "e" / "train_seed3"
    d.mkdir(parents=True)
    (d / "model.model").write_bytes(b"model")
    asked = {"preset": "small-cpu", "epochs": 200, "mace_args": list(mace_args)}
    (d / "requested.json").write_text(json.dumps(asked))

    def train(**kw):
        return run.train("e", "small-cpu", 200, {}, {}, seed=3, mace_args=mace_args, **kw)

    assert train() == d / "model.model" and calls == []
    train(extend_to=300)
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd[cmd.index("--epochs") + 1] == "300" and cmd[cmd.index("--seed") + 1] == "3"
    assert cmd[cmd.index("-o") + 1] == str(d)
    assert cmd[cmd.index("--") + 1:] == list(mace_args)
    assert json.loads((d / "requested.json").read_text()) == {**asked, "extended_to": 300}
    train(extend_to=300)
    train()
    assert len(calls) == 1
    with pytest.raises(SystemExit, match="move"):
        run.train("e", "small-cpu", 300, {}, {}, seed=3, mace_args=mace_args)

    # the log after the extension: 200 epochs, then the resumed run repeats epoch 199 and goes
    # on to 299; the energy MAE falls 10 % over epochs 100-199, then is flat from 200
    def line(k, m):
        return (f"2026 INFO: Epoch {k}: head: Default, loss=0.01, MAE_E_per_atom= {m:.2f} meV, "
                "MAE_F= 1.0 meV / A\n")

    first = "".join(line(k, 100.0 if k < 150 else 90.0) for k in range(200))
    (d / "train.log").write_text(first)
    (d / "tealign_train.json").write_text(json.dumps(
        {"command": ["mace_run_train", "--max_num_epochs", "200", "--patience", "15"]}))
    before = training_record(d)
    assert before["drop"] == pytest.approx(0.10) and not before["reached_plateau"]
    (d / "train.log").write_text(first + "".join(line(k, 89.5) for k in range(199, 300)))
    (d / "tealign_train.json").write_text(json.dumps(
        {"command": ["mace_run_train", "--max_num_epochs", "300", "--patience", "15"]}))
    after = training_record(d)
    assert after["epochs_run"] == 300 and after["max_epochs"] == 300
    assert after["drop"] == pytest.approx(0.0) and after["reached_plateau"]
    assert not after["stopped_early"]


def test_a_model_changed_after_its_assessment_is_flagged(tmp_path):
    """refresh_training_records compares the model in the run directory with the sha256
    stored at assessment: a changed model (an extension not yet assessed again) is flagged
    and named in the tables; the same model, or a record without a stored hash, is not."""
    import hashlib

    d = tmp_path / "d" / "train"
    d.mkdir(parents=True)
    (d / "train.log").write_text("2026 INFO: Epoch 0: head: Default, loss=0.01, "
                                 "MAE_E_per_atom= 50.00 meV, MAE_F= 1.0 meV / A\n")
    (d / "model.model").write_bytes(b"the extended model")
    now = hashlib.sha256(b"the extended model").hexdigest()
    old = hashlib.sha256(b"the model at 200 epochs").hexdigest()
    cur = {"variants": {"d": {"1": {"model_sha256": old, "assessment_stale": False}}}}
    run_v2.refresh_training_records(tmp_path)(cur)
    assert cur["variants"]["d"]["1"]["assessment_stale"] is True
    assert "(d) seed 1" in "".join(run_v2.stale_line(cur))
    cur["variants"]["d"]["1"]["model_sha256"] = now
    run_v2.refresh_training_records(tmp_path)(cur)
    assert "assessment_stale" not in cur["variants"]["d"]["1"]
    assert run_v2.stale_line(cur) == []
    cur["variants"]["d"]["1"].pop("model_sha256")
    run_v2.refresh_training_records(tmp_path)(cur)
    assert "assessment_stale" not in cur["variants"]["d"]["1"]


def test_the_glance_flags_the_references_trainings_too(tmp_path, monkeypatch):
    """The verdicts-at-a-glance table flags an alternative's seeds whose kept checkpoint is far
    from its best epoch; the references (e for most rows, eo for the oracle) are flagged in a
    line below it, so a comparison whose reference kept a poor checkpoint, or stopped short
    of its plateau, says so too."""
    import run

    from tealign.bench import cross

    ids = [it["id"] for it in cross.items_of(json.loads((DATA / "bridge.json").read_text()))]

    def seed(err: float, kept: float = 20.0, plateau: bool = True) -> dict:
        rec = {"best_valid_energy_mae_meV_per_atom": 20.0,
               "kept_valid_energy_mae_meV_per_atom": kept, "reached_plateau": plateau}
        return {"items": {i: err * (1 + 0.01 * k) for k, i in enumerate(ids)},
                "training": {"model": rec}}

    results = {"variants": {"e": {"1": seed(0.4), "2": seed(0.41, plateau=False)},
                            "eo": {"1": seed(0.45, kept=30.0), "2": seed(0.44)},
                            "o": {"1": seed(0.1), "2": seed(0.12)}}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    monkeypatch.setattr(run_v2, "REPORTED", tmp_path)
    text = "\n".join(run.glance_section({}, runs=tmp_path / "no-runs"))
    oracle = next(line for line in text.splitlines() if line.startswith("| oracle"))
    assert "better" in oracle and "well above" not in oracle  # o's own seeds are fine
    refs = next(line for line in text.splitlines() if line.startswith("The references"))
    assert "(eo) kept checkpoint" in refs and "seed 1 (30.00 vs 20.00 meV/atom)" in refs
    assert "(e) seed 2 short of the plateau" in refs and "(e) kept" not in refs


def test_a_new_assessment_replaces_the_old_record_whole():
    """A retrained or extended model's assessment replaces its seed's record: nothing of the
    old one (a key the new one lacks, a note written beside it) survives; an extension's
    training wall is the sum of both trainings'; the run's log grows; variants keep their
    order."""
    old = {"items": {"x": 1.0}, "train_wall_s": 100.0, "model_sha256": "old",
           "model_sha256_note": "checked by hand"}
    cur = {"variants": {"o": {"1": {"items": {}}}, "e": {"1": dict(old)}}, "log": [{"c": 1}]}
    new = {"items": {"x": 0.5}, "train_wall_s": 40.0, "model_sha256": "new"}
    run_v2.record_assessment(cur, "e", 1, dict(new), [{"c": 2}], extended=True)
    assert cur["variants"]["e"]["1"] == {**new, "train_wall_s": 140.0}
    assert list(cur["variants"]) == ["e", "o"] and cur["log"] == [{"c": 1}, {"c": 2}]
    run_v2.record_assessment(cur, "e", 1, dict(new), [])
    assert cur["variants"]["e"]["1"] == new


def test_a_refit_that_moves_only_in_its_last_bits_keeps_the_stored_linear_references(
        tmp_path):
    """Least squares moves in its last bits with the BLAS thread count (up to 9e-12 eV seen on
    S and Cl): a refit that agrees to 1e-9 eV leaves the stored ε table byte for byte, so the
    sha256 of the merge inputs that read it stays; a real change, or another element set,
    replaces it."""
    import run

    from tealign.io.outputs import write_json

    r = _built(tmp_path)
    tables = r.linear_references()
    path = Path(tables["organic_table"])
    fitted = json.loads(path.read_text())
    # what another thread count gave: the same fit, off in the last bits
    noisy = {el: v * (1 + 8e-16) for el, v in fitted["energies"].items()}
    assert noisy != fitted["energies"]
    write_json(path, {**fitted, "energies": noisy})
    before = path.read_bytes()
    r.linear_references()
    assert path.read_bytes() == before
    assert run.stored_fit_if_same(path, fitted["energies"]) == noisy
    moved = {**fitted["energies"], "H": fitted["energies"]["H"] + 1e-6}
    assert run.stored_fit_if_same(path, moved) == moved
    more = {**fitted["energies"], "Br": -70000.0}
    assert run.stored_fit_if_same(path, more) == more
    assert run.stored_fit_if_same(tmp_path / "absent.json", moved) == moved
    # and the refit is what it replaced: a table far off is written again from the fit
    write_json(path, {**fitted, "energies": moved})
    r.linear_references()
    assert json.loads(path.read_text())["energies"] == fitted["energies"]
