"""Open training: mace_run_train options passed through (who wins), fine-tuning from a model
file (tealign-mini) from the CLI and the API, and the GPU check script in its CI size."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
