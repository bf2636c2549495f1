"""merge → train (tiny) → eval on small synthetic sources, presets, and the launch command."""

import json
import shlex

import numpy as np
import pytest
from conftest import emt_copper, xtb_molecules
from test_alignment import synthetic

from tealign.align import TotalEnergyAlignment
from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch
from tealign.methods import load_table
from tealign.train import build_command, preset_args

pytest.importorskip("mace")


@pytest.fixture
def sources(tmp_path):
    """An 'organic' source on the ωB97M scale (xTB numbers) and an 'inorganic' target set."""
    rng = np.random.default_rng(0)
    org = []
    for m, r in xtb_molecules(36, ["H2O", "CH4", "NH3", "CH3OH"], rattle=0.05, groups=2):
        m.info["energy_wb97m"] = r.energy
        m.arrays["forces_wb97m"] = r.forces
        org.append(m)
    write_extxyz(tmp_path / "organic.extxyz", [FrameBatch.from_atoms(org)])
    inorg = emt_copper(30, rng, 0.02, prefix="cu")
    write_extxyz(tmp_path / "inorganic.extxyz", [FrameBatch.from_atoms(inorg)])
    wb, pbe = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")
    TotalEnergyAlignment(wb, pbe).fit(synthetic(40, src=wb, tgt=pbe, seed=3), "e_src",
                                      "e_tgt").save(tmp_path / "alignment.json")
    (tmp_path / "sources.toml").write_text(
        '[target]\ne0 = "vasp-pbe-mp"\nr_max = 4.5\n\n'
        '[[source]]\nname = "organic"\npath = "organic.extxyz"\nenergy_key = "energy_wb97m"\n'
        'forces_key = "forces_wb97m"\nalignment = "alignment.json"\nconfig_type = "organic"\n'
        '\n[[source]]\nname = "inorganic"\npath = "inorganic.extxyz"\n'
        'energy_key = "energy_pbe"\nforces_key = "forces_pbe"\nstress_key = "stress_pbe"\n'
        'alignment = "target"\nconfig_type = "inorganic"\nweights = { stress = 10.0 }\n')
    return tmp_path


def test_merge_train_eval(sources, run_cli):
    out = sources / "merged"
    code, stdout, stderr = run_cli("merge", sources / "sources.toml", "-o", out, "--json")
    assert code == 0, stderr
    r = json.loads(stdout)
    assert r["frames_in"] == 66 and r["frames_out"] == 66 and r["frames_rejected"] == 0
    for split in ("train", "valid", "test"):  # merge's default format: ASE-LMDB shards
        assert list((out / split).glob("*.aselmdb"))
    stats = json.loads((out / "statistics.json").read_text())
    assert stats["atomic_numbers"] == "[1, 6, 7, 8, 29]"
    merged = read_batch(out / "merged.extxyz")
    assert set(merged.info["source"]) == {"organic", "inorganic"}
    mol = merged.info["source"] == "organic"
    # molecules carry no stress weight; crystals keep their configured one
    assert np.all(merged.info["config_stress_weight"][mol] == 0.0)
    assert np.all(merged.info["config_stress_weight"][~mol] == 10.0)
    # conformers of one molecule never straddle splits
    ids, splits = merged.info["mol_id"], merged.info["split"]
    for m in set(ids):
        assert len(set(splits[ids == m])) == 1
    # the target-scale source is copied exactly; the other is aligned
    inorg = read_batch(sources / "inorganic.extxyz")
    np.testing.assert_array_equal(np.sort(merged.info["REF_energy"][~mol]),
                                  np.sort(inorg.info["energy_pbe"]))
    code, stdout, stderr = run_cli("train", "--preset", "tiny", "--data", out, "-o",
                                   sources / "run", "--epochs", "2", "--json")
    assert code == 0, stderr
    assert (sources / "run" / "model.model").exists()
    code, stdout, stderr = run_cli("eval", sources / "run" / "model.model",
                                   out / "merged.extxyz", "--json")
    assert code == 0, stderr
    ev = json.loads(stdout)
    assert ev["overall"]["n"] == 66
    assert set(ev["by_config_type"]) == {"organic", "inorganic"}
    for key in ("energy_mae_meV_per_atom", "energy_rmse_meV_per_atom",
                "forces_mae_meV_per_A", "forces_rmse_meV_per_A"):
        assert np.isfinite(ev["overall"][key])
    assert "stress_mae_meV_per_A3" in ev["by_config_type"]["inorganic"]
    assert "stress_mae_meV_per_A3" not in ev["by_config_type"]["organic"]
    # the benchmarks' energies-only path (no autograd, optional float32) gives the energies
    # of the full prediction
    from tealign.bench.energies import single_points
    from tealign.errors import SetupError
    from tealign.evaluate import load_model, predict

    model_file = sources / "run" / "model.model"
    full = predict(load_model(model_file), merged).energy
    np.testing.assert_allclose(single_points(str(model_file), merged), full, rtol=0, atol=1e-9)
    import torch

    before = torch.get_default_dtype()
    e32 = single_points(str(model_file), merged, dtype="float32")
    np.testing.assert_allclose(e32, full, rtol=0, atol=5e-3)
    # a float32 model's predictions leave torch's global default dtype as it was
    assert torch.get_default_dtype() == before
    with pytest.raises(SetupError, match="float64 or float32"):
        load_model(model_file, dtype="half")


def test_per_source_heads_and_distributed_command(sources, run_cli):
    out = sources / "heads"
    assert run_cli("merge", sources / "sources.toml", "-o", out, "--per-source")[0] == 0
    assert (out / "organic" / "train").is_dir() and (out / "inorganic" / "statistics.json").exists()
    cmd = build_command("tiny", out, sources / "run", device="cpu")
    heads = eval(cmd[cmd.index("--heads") + 1])  # a Python literal, as mace-torch parses it
    assert set(heads) == {"organic", "inorganic"}
    dist = build_command("osaka24-small", out,
                         sources / "run", distributed=True, nproc=4, device="cuda")
    assert dist[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert "--distributed" in dist and "mace.cli.run_train" in dist
    code, _, stderr = run_cli("train", "--preset", "tiny", "--data", out, "-o",
                              sources / "r2", "--distributed", "--device", "cpu")
    assert code == 2 and "needs CUDA" in stderr
    # --seed and --epochs replace the preset's values in the command handed to mace-torch
    code, stdout, _ = run_cli("train", "--preset", "tiny", "--data", out, "-o", sources / "r3",
                              "--seed", "7", "--epochs", "3", "--dry-run", "--json")
    cmd = json.loads(stdout)["command"]
    assert cmd[cmd.index("--seed") + 1] == "7" and cmd[cmd.index("--max_num_epochs") + 1] == "3"
    assert cmd.count("--seed") == 1


def test_merge_reports_progress_in_frames(sources):
    from tealign.merge import run_merge

    seen = []
    report = run_merge(sources / "sources.toml", sources / "p", progress=seen.append,
                       extxyz=False)
    assert seen and seen == sorted(seen) and seen[-1] == report["frames_in"] == 66


def test_osaka24_large_preset_is_the_published_recipe():
    args = preset_args("osaka24-large")
    text = " ".join(args)
    expect = {
        "model": "ScaleShiftMACE", "interaction_first": "RealAgnosticResidualInteractionBlock",
        "interaction": "RealAgnosticResidualInteractionBlock", "num_interactions": "2",
        "correlation": "3", "max_ell": "3", "r_max": "4.5", "max_L": "2",
        "num_channels": "128", "num_radial_basis": "10", "MLP_irreps": "16x0e",
        "scaling": "rms_forces_scaling", "loss": "universal", "energy_weight": "1",
        "forces_weight": "10", "compute_stress": "True", "stress_weight": "100",
        "error_table": "PerAtomMAE", "eval_interval": "1", "lr": "0.005",
        "weight_decay": "1e-08", "ema_decay": "0.995", "scheduler_patience": "5",
        "batch_size": "16", "valid_batch_size": "32", "max_num_epochs": "200",
        "patience": "50", "seed": "1", "clip_grad": "100",
    }
    for key, value in expect.items():
        i = args.index(f"--{key}")
        assert args[i + 1] == value, (key, args[i + 1])
    for flag in ("--ema", "--amsgrad", "--keep_checkpoints", "--save_cpu", "--restart_latest"):
        assert flag in args, flag
    assert shlex.split(text) == args
    assert args[args.index("--max_L") + 1] == "2"
    assert preset_args("osaka24-small")[preset_args("osaka24-small").index("--max_L") + 1] == "0"


def test_per_source_heads_keep_their_own_e0s(sources, run_cli):
    """With --per-source a head may keep its source's own scale: its statistics.json holds
    that source's isolated-atom energies, and its energies are copied unchanged."""
    toml = (sources / "sources.toml").read_text().replace(
        'alignment = "alignment.json"', 'alignment = "target"\ne0 = "wb97m-d3bj-def2-tzvppd"')
    (sources / "own.toml").write_text(toml)
    code, _, stderr = run_cli("merge", sources / "own.toml", "-o", sources / "one")
    assert code == 2 and "--per-source" in stderr
    out = sources / "own"
    code, _, stderr = run_cli("merge", sources / "own.toml", "-o", out, "--per-source")
    assert code == 0, stderr
    org = json.loads((out / "organic" / "statistics.json").read_text())
    inorg = json.loads((out / "inorganic" / "statistics.json").read_text())
    wb = load_table("wb97m-d3bj-def2-tzvppd")
    def e0s(stats):  # statistics.json holds Python literals (docs/architecture.md §7.6)
        e = eval(stats["atomic_energies"])
        return e if isinstance(e, dict) else dict(zip(eval(stats["atomic_numbers"]), e))

    e0_org = e0s(org)
    assert e0_org[8] == pytest.approx(wb.energy("O"), abs=1e-6)
    e0_inorg = e0s(inorg)
    assert e0_inorg[29] == pytest.approx(load_table("vasp-pbe-mp").energy("Cu"), abs=1e-6)
    merged = read_batch(out / "organic" / "merged.extxyz")
    src = read_batch(sources / "organic.extxyz")
    np.testing.assert_array_equal(np.sort(merged.info["REF_energy"]),
                                  np.sort(src.info["energy_wb97m"]))
    # each head trains on its own source. mace-torch 0.3.16 reads a head's HDF5 shards with
    # every frame on its last head, so heads read extxyz files of their splits; through
    # mace-torch's own reader each frame lands on its head's index
    run = sources / "own_run"
    code, _, stderr = run_cli("train", "--preset", "tiny", "--data", out, "-o", run,
                              "--epochs", "1", "--device", "cpu")
    assert code == 0, stderr
    from mace.data import AtomicData, KeySpecification, load_from_xyz
    from mace.tools import AtomicNumberTable

    from tealign.evaluate import load_model

    heads = list(load_model(run / "model.model").heads)
    assert heads == ["organic", "inorganic"]
    cmd = json.loads((run / "tealign_train.json").read_text())["command"]
    spec = eval(cmd[cmd.index("--heads") + 1])
    keys = KeySpecification(info_keys={"energy": "REF_energy", "stress": "REF_stress",
                                       "head": "head"}, arrays_keys={"forces": "REF_forces"})
    log = "".join(f.read_text() for f in (run / "logs").glob("*.log"))
    for index, head in enumerate(heads):
        merged_b = read_batch(out / head / "merged.extxyz")
        for split in ("train", "valid"):
            path = spec[head][f"{split}_file"]
            assert path.endswith(f"{head}_{split}.extxyz")
            n = int((np.asarray(merged_b.info["split"]).astype(str) == split).sum())
            _, configs = load_from_xyz(path, keys, head_name=head)
            assert len(configs) == n > 0
            z = AtomicNumberTable(sorted({int(x) for c in configs for x in c.atomic_numbers}))
            got = {int(AtomicData.from_config(c, z_table=z, cutoff=4.5, heads=heads).head)
                   for c in configs}
            assert got == {index}, (head, split, got)
        n_train = int((np.asarray(merged_b.info["split"]).astype(str) == "train").sum())
        assert f"Head '{head}' training dataset size: {n_train}" in log


def test_target_e0_as_a_union_of_tables(sources, run_cli, tmp_path):
    """[target] e0 may list tables computed at the same settings (the GPAW atoms of two
    datasets): merged where they agree, one clear line where they do not."""
    from tealign.methods import union_tables

    pbe = load_table("vasp-pbe-mp").to_json_dict()
    light = {**pbe, "name": "light", "energies": {s: pbe["energies"][s] for s in "HCNO"}}
    heavy = {**pbe, "name": "heavy", "energies": {s: pbe["energies"][s] for s in ("O", "Cu")}}
    (sources / "light.json").write_text(json.dumps(light))
    (sources / "heavy.json").write_text(json.dumps(heavy))
    toml = (sources / "sources.toml").read_text().replace(
        'e0 = "vasp-pbe-mp"', 'e0 = ["light.json", "heavy.json"]')
    (sources / "union.toml").write_text(toml)
    code, stdout, stderr = run_cli("merge", sources / "union.toml", "-o", sources / "u", "--json")
    assert code == 0, stderr
    stats = json.loads((sources / "u" / "statistics.json").read_text())
    assert stats["atomic_numbers"] == "[1, 6, 7, 8, 29]"
    bad = {**heavy, "energies": {**heavy["energies"], "O": heavy["energies"]["O"] + 0.01}}
    with pytest.raises(Exception, match="disagree for O"):
        union_tables([load_table(sources / "light.json"),
                      type(load_table("vasp-pbe-mp")).from_json_dict(bad, source="bad")])
