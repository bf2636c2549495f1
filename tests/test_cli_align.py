"""`tealign fit` and `tealign align` end to end on files."""

import json

import numpy as np
import pytest
from test_alignment import synthetic

from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.methods import load_table

FIT_KEYS = {"model", "a", "a_ci95", "n", "n_rejected", "rmse_icea_eV", "rmse_tea_eV",
            "r2_icea", "r2_tea"}


@pytest.fixture
def calib(tmp_path):
    wb, pbe = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")
    b = synthetic(60, a=0.91, noise=0.2, seed=21, src=wb, tgt=pbe,
                  src_key="energy_wb97m", tgt_key="energy_pbe")
    b.info["split"] = np.array(["train"] * 50 + ["test"] * 10, dtype=object)
    b.info["energy_pbe"][7] = np.nan  # one frame error
    p = tmp_path / "calib.extxyz"
    write_extxyz(p, [b])
    return p


def test_fit_json_and_plots(calib, tmp_path, run_cli):
    code, stdout, stderr = run_cli(
        "fit", calib, "--source-key", "energy_wb97m", "--target-key", "energy_pbe",
        "--source-e0", "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp",
        "--model", "auto", "--plot", tmp_path / "plots", "--json", "-o", tmp_path / "a.json")
    assert code == 0, stderr
    r = json.loads(stdout)
    assert set(r) >= FIT_KEYS and "cv_rmse_eV" in r
    assert set(r["cv_rmse_eV"]) == {"scale", "scale+elements"}
    assert r["n"] == 59 and r["n_rejected"] == 1
    assert r["a_ci95"][0] <= r["a"] <= r["a_ci95"][1]
    assert abs(r["a"] - 0.91) < 0.01
    for name in ("parity.png", "parity_icea.png", "parity_tea.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 10_000
    rejects = (tmp_path / "a.json.rejects.jsonl").read_text().splitlines()
    assert json.loads(rejects[0])["frame"] == 7
    code, stdout, _ = run_cli(
        "fit", calib, "--source-key", "energy_wb97m", "--target-key", "energy_pbe",
        "--source-e0", "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp",
        "--split", "test", "--json", "-o", tmp_path / "b.json")
    assert json.loads(stdout)["n"] == 10


def test_align_and_inverse_roundtrip(calib, tmp_path, run_cli):
    assert run_cli("fit", calib, "--source-key", "energy_wb97m", "--target-key", "energy_pbe",
                   "--source-e0", "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp",
                   "-o", tmp_path / "a.json")[0] == 0
    rng = np.random.default_rng(0)
    data = read_batch(calib)  # 59 frames: the NaN frame was rejected on reading
    n = data.n_frames
    data.info["energy"] = data.info["energy_wb97m"]
    data.arrays["forces"] = rng.normal(size=(len(data.numbers), 3))
    data.info["charge"] = np.zeros(data.n_frames, dtype=int)
    data.info["charge"][3] = -1
    write_extxyz(tmp_path / "src.xyz", [data])
    code, stdout, stderr = run_cli("align", tmp_path / "src.xyz", "--alignment",
                                   tmp_path / "a.json", "-o", tmp_path / "aligned.xyz",
                                   "--remove-d3", "wb97m", "--json")
    assert code == 0, stderr
    r = json.loads(stdout)
    assert r["frames_in"] == n and r["frames_out"] == n - 1 and r["frames_rejected"] == 1
    aligned = read_batch(tmp_path / "aligned.xyz")
    a = r["a"]
    assert set(aligned.info["source"]) == {"src"}
    assert len(set(aligned.info["alignment_sha256"])) == 1
    np.testing.assert_array_equal(aligned.arrays["orig_forces"],
                                  data.select(np.arange(n) != 3).arrays["forces"])
    # forces: a · (F − F_D3)
    from tealign.dispersion import d3_batch

    kept = data.select(np.arange(n) != 3)
    _, f_d3, _ = d3_batch(kept, "wb97m")
    np.testing.assert_allclose(aligned.arrays["REF_forces"], a * (kept.arrays["forces"] - f_d3),
                               rtol=1e-12, atol=1e-14)
    code, _, stderr = run_cli("align", tmp_path / "aligned.xyz", "--alignment",
                              tmp_path / "a.json", "--inverse", "--remove-d3", "wb97m",
                              "-o", tmp_path / "back.xyz")
    assert code == 0, stderr
    back = read_batch(tmp_path / "back.xyz")
    np.testing.assert_allclose(back.info["energy"], kept.info["energy"], rtol=1e-12)
    np.testing.assert_allclose(back.arrays["forces"], kept.arrays["forces"], rtol=1e-9,
                               atol=1e-12)


def test_align_setup_errors(calib, tmp_path, run_cli):
    run_cli("fit", calib, "--source-key", "energy_wb97m", "--target-key", "energy_pbe",
            "--source-e0", "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp",
            "-o", tmp_path / "a.json")
    code, _, stderr = run_cli("align", calib, "--alignment", tmp_path / "a.json",
                              "--energy-key", "energy_nope", "-o", tmp_path / "o.xyz")
    assert code == 2 and "field 'energy_nope': no frame has this energy key" in stderr
    assert not (tmp_path / "o.xyz").exists()
    code, _, stderr = run_cli("fit", calib, "--source-key", "energy_wb97m", "--target-key",
                              "energy_pbe", "--source-e0", "b3lyp-6-31g2dfp", "--target-e0",
                              "vasp-pbe-mp", "--model", "cubic", "-o", tmp_path / "x.json")
    assert code == 2 and "unknown model" in stderr
