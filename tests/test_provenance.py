"""Provenance guards (issue 28 item 6): a table of another level than the data's recorded
method is refused by fit, align and merge (exit 2, one line naming both) unless
--allow-method-mismatch; data without a recorded method warn; data flagged as including D3
need its removal; an all-charged input is a summary of rejects and a non-zero exit."""

import json
from pathlib import Path

import numpy as np
from conftest import requires_mace

from tealign.align import TotalEnergyAlignment
from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.methods import load_table
from tealign.provenance import Level, level_from_spec, level_from_text, table_level

REPO = Path(__file__).resolve().parents[1]
CALIB_QM9 = REPO / "datasets" / "calib-qm9" / "calib-qm9.extxyz"
ATOMS_WB = CALIB_QM9.with_name("calib-qm9.atoms_wb97m.json")
ATOMS_PBE = CALIB_QM9.with_name("calib-qm9.atoms_pbe.json")
FIT = ("--source-key", "energy_wb97m", "--target-key", "energy_pbe", "--bootstrap", "20")


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ------------------------------------------------------------------ the level record
def test_levels_compare_by_functional_basis_and_code_family():
    pyscf = level_from_spec("pyscf:wb97m-d3bj/def2-tzvppd")
    psi4 = table_level(load_table("wb97m-d3bj-def2-tzvppd"))
    assert pyscf.normalised() == psi4.normalised() == "wb97m/def2-tzvppd@gto"
    assert pyscf.mismatch(psi4) is None  # both all-electron Gaussian-basis codes
    svp = level_from_spec("pyscf:wb97m-d3bj/def2-svp")
    assert "basis" in svp.mismatch(psi4)
    gpaw = level_from_spec("gpaw:pbe/pw800;vacuum=5.0")
    vasp = table_level(load_table("vasp-pbe-mp"))
    assert (gpaw.functional, vasp.functional) == ("pbe", "pbe")
    assert "code family" in gpaw.mismatch(vasp)  # PAW setups differ in absolute energies
    assert "functional" in level_from_spec("pyscf:pbe/def2-tzvppd").mismatch(psi4)
    # the readers' records
    from tealign.io.mptrj import MPTRJ_METHOD
    from tealign.io.spice import SPICE_METHOD

    assert level_from_text(SPICE_METHOD).normalised() == "wb97m/def2-tzvppd@gto"
    assert level_from_text(MPTRJ_METHOD).mismatch(vasp) is None
    assert level_from_text(MPTRJ_METHOD).mismatch(gpaw) is not None
    assert table_level(load_table("b3lyp-6-31g2dfp")) == Level("b3lyp", "6-31g(2df,p)",
                                                               "gaussian")


# ------------------------------------------------------------------ fit
def test_fit_refuses_tables_of_another_method(tmp_path, run_cli):
    # the motivating failure: ωB97M/def2-SVP PySCF and GPAW PBE/PW800 data fitted with the
    # def2-TZVPPD and VASP tables gave a = 1.271 and exit 0
    code, stdout, stderr = run_cli("fit", CALIB_QM9, *FIT, "--source-e0",
                                   "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp",
                                   "-o", tmp_path / "a.json")
    assert code == 2
    line = _one_line(stderr)
    assert "wb97m-d3bj-def2-tzvppd" in line and "def2-tzvppd (psi4)" in line
    assert "def2-svp (pyscf)" in line and "--allow-method-mismatch" in line
    assert not (tmp_path / "a.json").exists()
    # the target side alone: GPAW data, VASP table
    code, _, stderr = run_cli("fit", CALIB_QM9, *FIT, "--source-e0", ATOMS_WB,
                              "--target-e0", "vasp-pbe-mp", "-o", tmp_path / "a.json")
    assert code == 2 and "pbe/pw800 (gpaw)" in _one_line(stderr)
    # the override: fits, and says what it overrode
    code, _, stderr = run_cli("fit", CALIB_QM9, *FIT, "--source-e0", "wb97m-d3bj-def2-tzvppd",
                              "--target-e0", "vasp-pbe-mp", "--allow-method-mismatch",
                              "-o", tmp_path / "a.json")
    assert code == 0 and "used anyway" in stderr
    # the data's own tables: no complaint
    code, _, stderr = run_cli("fit", CALIB_QM9, *FIT, "--source-e0", ATOMS_WB,
                              "--target-e0", ATOMS_PBE, "-o", tmp_path / "b.json")
    assert code == 0, stderr
    assert "method" not in stderr


def test_fit_warns_when_data_record_no_method(tmp_path, run_cli):
    from test_alignment import synthetic

    wb, pbe = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")
    b = synthetic(30, a=0.91, noise=0.1, seed=3, src=wb, tgt=pbe, src_key="energy_wb97m",
                  tgt_key="energy_pbe")
    write_extxyz(tmp_path / "c.extxyz", [b])
    code, _, stderr = run_cli("fit", tmp_path / "c.extxyz", *FIT, "--source-e0",
                              "wb97m-d3bj-def2-tzvppd", "--target-e0", "vasp-pbe-mp",
                              "-o", tmp_path / "a.json")
    assert code == 0
    assert stderr.count("records no method") == 2  # one line per key


# ------------------------------------------------------------------ align
def _alignment(tmp_path, source: str, target: str = "vasp-pbe-mp") -> Path:
    p = tmp_path / f"{source}.alignment.json"
    TotalEnergyAlignment.icea_only(load_table(source), load_table(target)).save(p)
    return p


def _tagged_calib(tmp_path, spec: str) -> Path:
    """Five calib-qm9 frames whose energy_wb97m records ``spec`` (no sibling atoms file)."""
    b = read_batch(CALIB_QM9).select(np.arange(90) < 5)
    b.info["method_energy_wb97m"] = np.array([spec] * 5, dtype=object)
    p = tmp_path / "five.extxyz"
    write_extxyz(p, [b])
    return p


def test_align_refuses_an_alignment_of_another_source_method(tmp_path, run_cli):
    data = _tagged_calib(tmp_path, "pyscf:wb97m-d3bj/def2-svp")
    bad = _alignment(tmp_path, "wb97m-d3bj-def2-tzvppd")
    out = tmp_path / "out.extxyz"
    code, _, stderr = run_cli("align", data, "--alignment", bad, "--energy-key",
                              "energy_wb97m", "-o", out)
    assert code == 2 and not out.exists()
    line = _one_line(stderr)
    assert "def2-tzvppd (psi4)" in line and "def2-svp (pyscf)" in line
    code, _, stderr = run_cli("align", data, "--alignment", bad, "--energy-key",
                              "energy_wb97m", "--allow-method-mismatch", "-o", out)
    assert code == 0 and len(read_batch(out).info["REF_energy"]) == 5
    # PySCF data against a Psi4 table of the same functional and basis: compatible
    ok = _tagged_calib(tmp_path, "pyscf:wb97m-d3bj/def2-tzvppd")
    code, _, stderr = run_cli("align", ok, "--alignment", bad, "--energy-key", "energy_wb97m",
                              "-o", tmp_path / "ok.extxyz")
    assert code == 0 and "method" not in stderr


def test_align_refuses_spice_with_d3_and_rejects_all_charged(shared_data, tmp_path, run_cli):
    spice = shared_data / "fixtures" / "SPICE-1.1.4_n2.hdf5"
    tea = _alignment(tmp_path, "wb97m-d3bj-def2-tzvppd")
    out = tmp_path / "spice.extxyz"
    code, _, stderr = run_cli("align", spice, "--alignment", tea, "-o", out)
    assert code == 2 and "includes D3(BJ)" in _one_line(stderr) and "--remove-d3" in stderr
    assert not out.exists()
    # with D3 removed: every frame is charged -> a summary, a rejects file and exit 1
    code, _, stderr = run_cli("align", spice, "--alignment", tea, "--remove-d3", "wb97m",
                              "-o", out)
    assert code == 1 and not out.exists()
    assert "all 55 frames were rejected" in stderr and "charged structure" in stderr
    rejects = [json.loads(ln) for ln in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 55 and all(r["field"] == "charge" for r in rejects)


def test_all_charged_input_is_a_nonzero_exit_with_a_summary(tmp_path, run_cli):
    b = read_batch(CALIB_QM9).select(np.arange(90) < 4)
    b.info["charge"] = np.array([1, -1, 1, -1])
    b.info["method_energy_wb97m"] = np.array(["pyscf:wb97m-d3bj/def2-svp"] * 4, dtype=object)
    data = tmp_path / "ions.extxyz"
    write_extxyz(data, [b])
    tea = tmp_path / "a.json"
    TotalEnergyAlignment.icea_only(load_table(str(ATOMS_WB)), load_table(str(ATOMS_PBE))) \
        .save(tea)
    out = tmp_path / "out.extxyz"
    code, _, stderr = run_cli("align", data, "--alignment", tea, "--energy-key",
                              "energy_wb97m", "-o", out)
    assert code == 1 and not out.exists()
    line = _one_line(stderr)
    assert "all 4 frames were rejected (by field: charge 4)" in line
    assert "charged structure (charge 1)" in line and "--allow-charged" in line
    assert len(Path(f"{out}.rejects.jsonl").read_text().splitlines()) == 4
    # the opt-in keeps them, aligned with the neutral-atom tables, and states the error
    code, _, stderr = run_cli("align", data, "--alignment", tea, "--energy-key",
                              "energy_wb97m", "--allow-charged", "-o", out)
    assert code == 0 and "eV/atom" in stderr
    got = read_batch(out)
    np.testing.assert_allclose(got.info["REF_energy"], b.info["energy_pbe"], atol=5.0)
    assert got.info["charge"].tolist() == [1, -1, 1, -1]
    # a mixed input: the neutral frames are written, the summary counts the charged ones
    b.info["charge"] = np.array([0, -1, 0, 0])
    write_extxyz(data, [b])
    code, stdout, stderr = run_cli("align", data, "--alignment", tea, "--energy-key",
                                   "energy_wb97m", "-o", out)
    assert code == 0 and read_batch(out).n_frames == 3
    assert "1 rejected (1 charged: --allow-charged keeps them)" in stderr


def test_charged_policy_constant_is_the_measurement():
    from tealign.provenance import CHARGED_CHECK

    measured = json.loads((REPO / "datasets" / "charged-ions" / "charged.json").read_text())
    for key, value in CHARGED_CHECK.items():
        assert measured[key] == value, key
    assert measured["n_ions"] >= 10 and len(measured["ions"]) == measured["n_ions"]
    rmse = np.sqrt(np.mean([r["error_eV"] ** 2 for r in measured["ions"]]))
    assert abs(rmse - measured["rmse_eV_per_molecule"]) < 1e-3
    assert measured["policy"] == "reject"


# ------------------------------------------------------------------ merge
def _merge_config(tmp_path, data: Path, e0: str, extra: str = "") -> Path:
    cfg = tmp_path / "sources.toml"
    cfg.write_text(f'[target]\ne0 = "{e0}"\n\n[[source]]\nname = "qm9"\npath = "{data}"\n'
                   f'energy_key = "energy_pbe"\nforces_key = "forces_pbe"\n'
                   f'alignment = "target"\n{extra}')
    return cfg


def test_merge_refuses_a_target_table_of_another_method(tmp_path, run_cli):
    b = read_batch(CALIB_QM9).select(np.arange(90) < 6)
    b.info["method_energy_pbe"] = np.array(["gpaw:pbe/pw800;vacuum=5.0"] * 6, dtype=object)
    data = tmp_path / "six.extxyz"
    write_extxyz(data, [b])
    cfg = _merge_config(tmp_path, data, "vasp-pbe-mp")
    code, _, stderr = run_cli("merge", cfg, "-o", tmp_path / "merged")
    assert code == 2 and not (tmp_path / "merged").exists()
    line = _one_line(stderr)
    assert "vasp-pbe-mp" in line and "pbe/pw800 (gpaw)" in line and "code family" in line
    assert "allow_method_mismatch" in line


def test_merge_refuses_an_aligned_source_that_keeps_d3(shared_data, tmp_path, run_cli):
    tea = _alignment(tmp_path, "wb97m-d3bj-def2-tzvppd")
    spice = shared_data / "fixtures" / "SPICE-1.1.4_n2.hdf5"
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[target]\ne0 = "vasp-pbe-mp"\n\n[[source]]\nname = "spice"\n'
                   f'path = "{spice}"\nenergy_key = "energy"\nalignment = "{tea}"\n')
    code, _, stderr = run_cli("merge", cfg, "-o", tmp_path / "m")
    assert code == 2 and "includes D3(BJ)" in _one_line(stderr)


@requires_mace
def test_merge_override_per_source_and_on_the_command(tmp_path, run_cli):
    b = read_batch(CALIB_QM9).select(np.arange(90) < 6)
    b.info["method_energy_pbe"] = np.array(["gpaw:pbe/pw800;vacuum=5.0"] * 6, dtype=object)
    data = tmp_path / "six.extxyz"
    write_extxyz(data, [b])
    cfg = _merge_config(tmp_path, data, "vasp-pbe-mp", "allow_method_mismatch = true\n")
    code, _, stderr = run_cli("merge", cfg, "-o", tmp_path / "m1")
    assert code == 0 and "used anyway" in stderr
    cfg = _merge_config(tmp_path, data, "vasp-pbe-mp")
    code, _, stderr = run_cli("merge", cfg, "--allow-method-mismatch", "-o", tmp_path / "m2")
    assert code == 0 and "used anyway" in stderr
    cfg = _merge_config(tmp_path, data, str(ATOMS_PBE))
    code, _, stderr = run_cli("merge", cfg, "-o", tmp_path / "m3")
    assert code == 0, stderr
