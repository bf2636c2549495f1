"""Open training: mace_run_train options passed through (who wins), fine-tuning from a model
file (tealign-mini) from the CLI and the API, and the GPU check script in its CI size."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ase.io import write as ase_write

from tealign.errors import SetupError

pytest.importorskip("mace")

ROOT = Path(__file__).resolve().parents[1]


def _value(cmd: list[str], key: str) -> str:
    assert cmd.count(f"--{key}") == 1, f"--{key} appears {cmd.count(f'--{key}')} times"
    return cmd[cmd.index(f"--{key}") + 1]


@pytest.fixture
def fake_merged(tmp_path):
    """A directory that looks like `tealign merge` output (for building commands only)."""
    d = tmp_path / "merged"
    for split in ("train", "valid", "test"):
        (d / split).mkdir(parents=True)
    (d / "report.json").write_text(json.dumps({"per_source": False}))
    (d / "statistics.json").write_text(json.dumps({
        "atomic_energies": "{1: -1.0, 6: -2.0, 8: -3.0}", "avg_num_neighbors": 5.0,
        "mean": 0.0, "std": 1.0, "atomic_numbers": "[1, 6, 8]", "r_max": 4.5}))
    return d


def test_pass_through_replaces_the_preset_value_once(fake_merged, tmp_path):
    from tealign.train import plan

    p = plan("tiny", fake_merged, tmp_path / "run", device="cpu",
             mace_args=["--batch_size", "4", "--forces_weight=100", "--amsgrad", "false",
                        "--swa"])
    cmd = p["command"]
    assert _value(cmd, "batch_size") == "4" and _value(cmd, "forces_weight") == "100.0"
    assert "--amsgrad" not in cmd          # a preset flag turned off
    assert "--swa" in cmd                  # a flag the preset does not set
    assert p["overridden"] == {"batch_size": [8, 4], "forces_weight": [10, 100.0],
                               "amsgrad": [True, False]}
    # the API's dict form gives the same command
    q = plan("tiny", fake_merged, tmp_path / "run", device="cpu",
             mace_args={"batch_size": 4, "forces_weight": 100, "amsgrad": False, "swa": True})
    assert q["command"] == cmd


@pytest.mark.parametrize("args, words", [
    (["--E0s", "average"], "statistics.json"),         # mace-torch would ignore it
    (["--train_file", "x.xyz"], "--data"),
    (["--device", "cuda"], "--device"),
    (["--foundation_model", "x.model"], "--from"),
    (["--no_such_option", "1"], "no option"),
    (["--ema", "maybe"], "flag"),
    (["--lr"], "needs a value"),
    (["--lr", "0.1", "--lr", "0.2"], "twice"),
    (["--batch_size", "four"], "takes a number"),
    (["4"], "without its --option"),
])
def test_pass_through_refusals(fake_merged, tmp_path, args, words):
    from tealign.train import plan

    with pytest.raises(SetupError, match=words.replace("-", r"\-")):
        plan("tiny", fake_merged, tmp_path / "run", device="cpu", mace_args=args)


def test_tealign_option_and_pass_through_together_is_an_error(fake_merged, tmp_path):
    from tealign.train import plan

    with pytest.raises(SetupError, match="set twice"):
        plan("tiny", fake_merged, tmp_path / "run", device="cpu",
             overrides={"max_num_epochs": 2}, mace_args=["--max_num_epochs", "5"])


def test_fine_tuning_command(fake_merged, tmp_path):
    from tealign.train import PRESETS, plan
    from tealign.train.pretrained import model_path

    p = plan("small-cpu", fake_merged, tmp_path / "run", device="cpu",
             from_model="tealign-mini")
    cmd = p["command"]
    assert _value(cmd, "foundation_model") == str(model_path())
    assert _value(cmd, "multiheads_finetuning") == "False" and p["finetuning"] == "naive"
    for key in ("num_channels", "max_L", "r_max", "correlation"):  # the model's, not the preset's
        assert f"--{key}" not in cmd
    assert float(_value(cmd, "lr")) == pytest.approx(PRESETS["small-cpu"]["lr"] / 10)
    # an explicit --lr wins over the fine-tuning default; architecture keys are refused
    p = plan("small-cpu", fake_merged, tmp_path / "run", device="cpu",
             from_model="tealign-mini", mace_args=["--lr", "0.003"])
    assert _value(p["command"], "lr") == "0.003"
    with pytest.raises(SetupError, match="architecture"):
        plan("small-cpu", fake_merged, tmp_path / "run", device="cpu",
             from_model="tealign-mini", mace_args=["--num_channels", "64"])
    replay = tmp_path / "pt.extxyz"
    replay.write_text("")
    p = plan("small-cpu", fake_merged, tmp_path / "run", device="cpu",
             from_model="tealign-mini", replay=replay)
    assert _value(p["command"], "multiheads_finetuning") == "True"
    assert _value(p["command"], "pt_train_file") == str(replay)
    with pytest.raises(SetupError, match="--replay needs --from"):
        plan("small-cpu", fake_merged, tmp_path / "run", device="cpu", replay=replay)


def test_fine_tuning_refuses_elements_the_model_lacks(fake_merged, tmp_path):
    from tealign.train import plan

    stats = json.loads((fake_merged / "statistics.json").read_text())
    stats["atomic_numbers"] = "[1, 29, 79]"
    (fake_merged / "statistics.json").write_text(json.dumps(stats))
    with pytest.raises(SetupError, match="no weights for Cu, Au"):
        plan("small-cpu", fake_merged, tmp_path / "run", device="cpu",
             from_model="tealign-mini")


# ------------------------------------------------------------------ end to end (tiny)
@pytest.fixture(scope="module")
def tiny_merged(tmp_path_factory):
    """The demo's merge (organic-mini aligned + inorganic-mini) of every 6th organic and every
    3rd inorganic frame (89 frames)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gpu_train_check
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("tiny")
    try:
        merged = gpu_train_check.prepare(out, None, tiny=True)
    except SetupError as exc:
        pytest.skip(f"bundled datasets not available: {exc}")
    return merged


def _test_errors(model, merged):
    from tealign.evaluate import evaluate

    res = evaluate(model, merged / "merged.extxyz", split="test")
    return res["overall"]


@pytest.mark.slow
def test_fine_tune_tealign_mini_from_the_cli(tiny_merged, tmp_path, run_cli):
    from tealign.train.pretrained import model_path

    before = _test_errors(model_path(), tiny_merged)
    code, stdout, stderr = run_cli("train", "--from", "tealign-mini", "--data", tiny_merged,
                                   "-o", tmp_path / "cli", "--device", "cpu", "--epochs", "1",
                                   "--json", "--", "--batch_size", "16")
    assert code == 0, stderr
    res = json.loads(stdout)
    assert res["finetuning"] == "naive" and res["from"].endswith("tealign-mini.model")
    assert res["preset"] == "small-cpu"  # tealign-mini's card: its training settings
    assert res["overridden"] == {"batch_size": [8, 16]}
    assert "--batch_size 16 replaces the preset's 8" in stderr
    after = _test_errors(tmp_path / "cli" / "model.model", tiny_merged)
    # fine-tuned, not trained from scratch: a randomly initialised model after one epoch is
    # off by eV/Å in forces; the fine-tuned one stays near tealign-mini's errors
    assert after["forces_mae_meV_per_A"] < 2 * before["forces_mae_meV_per_A"]
    assert after["forces_mae_meV_per_A"] != before["forces_mae_meV_per_A"]


@pytest.mark.slow
def test_gpu_train_check_script_tiny_on_cpu(tiny_merged, tmp_path):
    """The GPU script in its CI size; it fine-tunes tealign-mini through the API
    (``tealign.train_model(..., from_model=...)``) and compares CPU with --device's
    predictions (CPU here)."""
    work = tmp_path / "gpu"
    work.mkdir()
    (work / "merged").symlink_to(tiny_merged, target_is_directory=True)
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_train_check.py"),
                           "-o", str(work), "--tiny", "--from", "tealign-mini",
                           "--device", "auto"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert res["agree"] is True and res["frames"] > 0 and res["epochs"] == 1
    assert res["finetuning"] == "naive" and res["from"].endswith("tealign-mini.model")
    assert res["max_abs_energy_diff_eV_per_atom"] <= res["tol_energy_eV_per_atom"]
    assert Path(res["model"]).exists()


# ------------------------------------------------------------------ API/CLI consistency
def test_bench_lattice_limit_counts_evaluated_crystals(tmp_path, monkeypatch):
    from ase.calculators.emt import EMT

    from tealign.bench import calculators, lattice

    csv = tmp_path / "c.csv"
    csv.write_text("name,formula,structure,a_exp_zpae,a_pbe,notes\n"
                   "Si,Si,diamond,5.42,5.47,\nGe,Ge,diamond,5.65,5.76,\n"
                   "Cu,Cu,fcc,3.595,3.630,\nAl,Al,fcc,4.019,4.037,\nNi,Ni,fcc,3.51,3.52,\n")
    monkeypatch.setattr(calculators, "model_elements", lambda name: {13, 28, 29})
    res = lattice.run(EMT(), tmp_path / "out", data=csv, limit=2)
    # Si and Ge are skipped (the calculator lacks them) and do not count: 2 evaluated
    assert [c["name"] for c in res["crystals"]] == ["Cu", "Al"]
    assert [s["name"] for s in res["skipped"]] == ["Si", "Ge"]


def test_bench_cross_takes_calculator_then_output(monkeypatch, tmp_path):
    import tealign
    from tealign import api
    from tealign.bench import cross

    seen = []
    monkeypatch.setattr(cross, "run", lambda output, **kw: seen.append(
        (output, kw["calculator"])) or {k: None for k in (
            "mode", "n", "mae_eV", "rmse_eV", "reaction_mae_eV", "adsorption_mae_eV",
            "lattice_mae_eV", "skipped")})
    api.bench_cross("model.model", tmp_path / "new")            # like bench_lattice
    with pytest.warns(DeprecationWarning, match="bench_cross\\(calculator, output"):
        tealign.bench_cross(tmp_path / "old", calculator="model.model")
    api.bench_cross(None, tmp_path / "labels", d3="none")       # label level: no model
    assert seen == [(tmp_path / "new", "model.model"), (tmp_path / "old", "model.model"),
                    (tmp_path / "labels", None)]


def test_tealign_align_is_always_the_subpackage():
    code = ("import warnings, tealign, types; m = tealign.align; "
            "assert isinstance(m, types.ModuleType) and m.__name__ == 'tealign.align'; "
            "assert m.TotalEnergyAlignment is tealign.TotalEnergyAlignment; "
            "from tealign import api; assert tealign.align_file is api.align_file is api.align; "
            "w = warnings.catch_warnings(record=True); rec = w.__enter__(); "
            "warnings.simplefilter('always')\n"
            "try: m('no.extxyz', 'no.json', 'out.extxyz')\n"
            "except Exception as e: print(type(e).__name__)\n"
            "print(rec[0].category.__name__, 'align_file' in str(rec[0].message))")
    proc = _fresh_python(code)
    # a fresh interpreter: the subpackage before anything else imported it; calling it
    # forwards to align_file (SetupError: no such alignment) with a DeprecationWarning
    assert proc.stdout.split() == ["SetupError", "DeprecationWarning", "True"]


def test_saves_return_the_path(tmp_path):
    from test_alignment import SRC, TGT, synthetic

    from tealign import TotalEnergyAlignment
    from tealign.api import Result

    tea = TotalEnergyAlignment(SRC, TGT).fit(synthetic(20, seed=1), "e_src", "e_tgt")
    assert tea.save(tmp_path / "a.json") == tmp_path / "a.json"
    assert json.loads((tmp_path / "a.json").read_text())["sha256"] == tea.sha256()
    assert SRC.save(tmp_path / "t.json") == tmp_path / "t.json"
    assert Result("fit", {"a": 1.0}).save(tmp_path) == tmp_path / "fit.json"


def _help_texts(group, prefix=()):
    """(command words, [help strings]) of every command of the CLI."""
    for name, sub in group.commands.items():
        if hasattr(sub, "commands"):  # a group (Typer's own click)
            yield from _help_texts(sub, (*prefix, name))
        else:
            yield (*prefix, name), [sub.help or ""] + [getattr(p, "help", None) or ""
                                                       for p in sub.params]


def test_help_texts_print_their_brackets(run_cli, monkeypatch):
    """Rich markup took "[target]" and "[[source]]" for tags and dropped them: every
    bracketed word of every help text is printed as written."""
    import re

    import typer

    from tealign.cli import app

    monkeypatch.setenv("COLUMNS", "400")
    checked = 0
    for words, texts in _help_texts(typer.main.get_command(app)):
        texts = [t.replace("\\[", "[") for t in texts]  # as written in the source
        brackets = {b for t in texts for b in re.findall(r"\[+[^\]\s]*\]+", t)}
        if not brackets:
            continue
        code, stdout, _ = run_cli(*words, "--help")
        assert code == 0
        for b in brackets:
            assert b in stdout, f"tealign {' '.join(words)} --help lost {b}"
        checked += 1
    assert checked >= 3  # merge, compute atoms, compute calib at least
    code, stdout, _ = run_cli("merge", "--help")
    assert "TOML listing [target] e0 and [[source]] entries" in stdout


def test_reader_and_shards_options(tmp_path, run_cli):
    from conftest import random_frames

    from tealign.io.extxyz import write_extxyz
    from tealign.io.frames import FrameBatch

    src = tmp_path / "in.extxyz"
    write_extxyz(src, [FrameBatch.from_atoms(random_frames(2))])
    # --format in align named the input reader: now --reader; --format still works, warned
    code, _, stderr = run_cli("align", src, "--alignment", tmp_path / "none.json",
                              "--reader", "extxyz", "-o", tmp_path / "o.extxyz")
    assert code == 2 and "none.json" in stderr and "deprecated" not in stderr
    code, _, stderr = run_cli("align", src, "--alignment", tmp_path / "none.json",
                              "--format", "extxyz", "-o", tmp_path / "o.extxyz")
    assert code == 2 and "--format is deprecated here" in stderr and "--reader" in stderr
    code, _, stderr = run_cli("align", src, "--alignment", tmp_path / "none.json",
                              "--format", "extxyz", "--reader", "asedb",
                              "-o", tmp_path / "o.extxyz")
    assert code == 2 and "disagree" in stderr


def test_model_load_is_quiet_but_other_output_passes(tmp_path):
    """Loading a MACE model prints neither the TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD warning nor
    the cuequivariance notice (a fresh interpreter: both come from the first import)."""
    code = ("import warnings; warnings.simplefilter('always'); "
            "from tealign.train.pretrained import model_path; "
            "from tealign.evaluate import load_model; m = load_model(model_path()); "
            "from tealign.bench.calculators import get_calculator; "
            "c = get_calculator(str(model_path())); "
            "from tealign._mace import quiet_import\n"
            "with quiet_import(): print('kept line'); warnings.warn('a real warning')\n"
            "print(len(m.atomic_numbers))")
    proc = _fresh_python(code)
    both = proc.stdout + proc.stderr
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in both
    assert "cuequivariance" not in both
    assert "kept line" in proc.stdout and "a real warning" in proc.stderr


@pytest.mark.parametrize("suffix", [".h5", "dir"])
def test_shard_writers_import_mace_quietly(tmp_path, suffix):
    """convert to MACE HDF5 / a shard directory (and merge, through the same writers) once
    printed both mace import notices (found by the audit): a fresh interpreter each."""
    from ase.build import molecule

    src = tmp_path / "in.extxyz"
    frames = []
    for k in range(3):
        a = molecule("H2O")
        a.rattle(0.01, seed=k)
        a.info["energy"] = -10.0 - k
        frames.append(a)
    ase_write(src, frames, format="extxyz")
    proc = subprocess.run([sys.executable, "-m", "tealign", "convert", str(src), "-o",
                           str(tmp_path / f"out{suffix}")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    both = proc.stdout + proc.stderr
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in both and "cuequivariance" not in both


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (nothing imported yet); asserts it exits 0."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_stage_two_model_becomes_the_run_model_and_stage_one_is_kept(tmp_path):
    """mace-torch's --swa writes model.model (Stage One) and model_stagetwo.model; the run's
    model.model must then be Stage Two, with Stage One kept as model_stageone.model (also
    for the compiled copies); a run without Stage Two is left as it is."""
    from tealign.train.launch import use_stage_two

    model = tmp_path / "model.model"
    assert not use_stage_two(tmp_path, model)
    for name, text in (("model.model", "one"), ("model_compiled.model", "one-c"),
                       ("model_stagetwo.model", "two"),
                       ("model_stagetwo_compiled.model", "two-c")):
        (tmp_path / name).write_text(text)
    assert use_stage_two(tmp_path, model)
    assert model.read_text() == "two"
    assert (tmp_path / "model_compiled.model").read_text() == "two-c"
    assert (tmp_path / "model_stageone.model").read_text() == "one"
    assert (tmp_path / "model_stageone_compiled.model").read_text() == "one-c"
    assert (tmp_path / "model_stagetwo.model").read_text() == "two"
    assert not list(tmp_path.glob("*.part"))
