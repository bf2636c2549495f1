"""The mini datasets tealign computed itself (datasets/): contents, recomputation from their
recorded settings, and merge → train → eval on them. Each test skips, saying which file is
missing, while a dataset is still being computed (datasets/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tealign.io import read_batch

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
FILES = {
    "calib-qm9": DATASETS / "calib-qm9/calib-qm9.extxyz",
    "organic-mini": DATASETS / "organic-mini/organic-mini.extxyz",
    "inorganic-mini": DATASETS / "inorganic-mini/inorganic-mini.extxyz",
    "si_ev": DATASETS / "inorganic-mini/si_ev.extxyz",
}


def recorded_spec(dataset: str, label: str) -> str:
    """The SPEC a dataset was computed with, as its isolated-atom table records it."""
    table = DATASETS / dataset / f"{dataset}.atoms_{label}.json"
    return json.loads(table.read_text())["settings"]["spec"]


def need(*names: str) -> dict[str, Path]:
    missing = [n for n in names if not FILES[n].exists()]
    if missing:
        pytest.skip(f"dataset {missing[0]} not computed yet ({FILES[missing[0]]} missing; "
                    "run datasets/run_all.sh)")
    return {n: FILES[n] for n in names}


def _check_splits(b):
    assert set(np.unique(b.info["split"])) <= {"train", "valid", "test"}
    ids, sp = np.asarray(b.info["mol_id"]).astype(str), np.asarray(b.info["split"]).astype(str)
    for m in np.unique(ids):
        assert len(set(sp[ids == m])) == 1, m  # conformers never straddle splits


def test_calib_qm9_contents():
    b = read_batch(need("calib-qm9")["calib-qm9"])
    assert b.n_frames >= 80  # recomputed at 800 eV: at least 80 molecules over all sizes
    assert set(np.unique(b.numbers)) <= {1, 6, 7, 8, 9}
    heavy = np.add.reduceat((b.numbers > 1).astype(int), np.r_[0, np.cumsum(b.n_atoms)[:-1]])
    assert heavy.max() == 9 and (heavy >= 7).sum() >= 10
    for key in ("energy_pbe", "energy_wb97m", "d3_energy_wb97m", "energy_qm9_b3lyp"):
        assert np.isfinite(np.asarray(b.info[key], float)).all(), key
    # units: GPAW energies are small (relative to GPAW's atomic references), the all-electron
    # ones are thousands of eV per molecule; both in eV, not hartree
    assert np.abs(b.info["energy_pbe"] / b.n_atoms).max() < 15
    assert (b.info["energy_wb97m"] / b.n_atoms < -100).all()
    np.testing.assert_allclose(b.info["energy_wb97m"], b.info["energy_qm9_b3lyp"], rtol=2e-3)
    _check_splits(b)
    for label in ("pbe", "wb97m"):
        t = json.loads((DATASETS / f"calib-qm9/calib-qm9.atoms_{label}.json").read_text())
        assert {"H", "C", "N", "O", "F"} <= set(t["energies"])


def test_organic_mini_contents():
    b = read_batch(need("organic-mini")["organic-mini"])
    assert b.n_frames >= 300 and not b.pbc.any()
    for key in ("energy_wb97m", "d3_energy_wb97m"):
        assert np.isfinite(np.asarray(b.info[key], float)).all()
    for key in ("forces_wb97m", "d3_forces_wb97m"):
        assert b.arrays[key].shape == (b.numbers.size, 3)
    assert len(np.unique(b.info["mol_id"])) >= 50
    _check_splits(b)
    # off-equilibrium, not torn apart: every conformer within 4 eV of its molecule's lowest
    e, ids = np.asarray(b.info["energy_wb97m"], float), np.asarray(b.info["mol_id"]).astype(str)
    for m in np.unique(ids):
        assert np.ptp(e[ids == m]) < 4.0, m
    # no near-copies: every pair of conformers of a molecule differs by ≥ 0.01 Å RMSD after
    # superposition, and a turned dihedral moves its molecule ≥ 0.1 Å from the minimum (a turn
    # about a (nearly) linear axis, O=CC#N or N#CCC#N, used to give the minimum back)
    from tealign.bonds import kabsch_rmsd

    sampling = np.asarray(b.info["sampling"]).astype(str)
    for m in np.unique(ids):
        frames = np.flatnonzero(ids == m)
        pos = [b.positions[b.offsets[i]:b.offsets[i + 1]] for i in frames]
        for x in range(len(pos)):
            for y in range(x + 1, len(pos)):
                rmsd = kabsch_rmsd(pos[x], pos[y])
                assert rmsd > 0.01, (m, frames[x], frames[y], rmsd)
                pair = {sampling[frames[x]], sampling[frames[y]]}
                if pair == {"qm9_minimum", "rotated_dihedral"}:
                    assert rmsd >= 0.1, (m, frames[x], frames[y], rmsd)


def test_inorganic_mini_contents():
    got = need("inorganic-mini", "si_ev")
    b = read_batch(got["inorganic-mini"])
    assert b.n_frames >= 60 and b.pbc.all()
    # every crystal of the stress check is in the training data, off equilibrium too
    crystal = np.asarray(b.info["crystal"]).astype(str)
    bridge = np.char.startswith(np.asarray(b.info["mol_id"]).astype(str), "bridge_")
    crystals, counts = np.unique(crystal[~bridge], return_counts=True)
    assert len(crystals) == 8 and counts.min() >= 7, dict(zip(crystals, counts))
    # bridge-mini's solids (an equilibrium and a strained+rattled cell) and clean slabs, all
    # in training (add_bridge_species.py)
    species, counts = np.unique(crystal[bridge], return_counts=True)
    per = dict(zip(species.tolist(), counts.tolist()))
    assert len(per) == 11 and all(n == (1 if "slab" in s else 2) for s, n in per.items()), per
    assert set(np.asarray(b.info["split"]).astype(str)[bridge]) == {"train"}
    # no near-copies: two frames of one crystal on the same cell differ by ≥ 0.02 Å RMSD of
    # their displacements (common translation removed); an MD snapshot of SiC used to sit
    # 0.010 Å from the equilibrium cell, in another split
    frames = b.to_atoms()
    for x in range(len(frames)):
        for y in range(x + 1, len(frames)):
            p, q = frames[x], frames[y]
            if p.info["crystal"] != q.info["crystal"] or not np.allclose(p.cell, q.cell):
                continue
            d = p.positions - q.positions
            d -= d.mean(axis=0)
            rmsd = float(np.sqrt((d ** 2).sum(axis=1).mean()))
            assert rmsd >= 0.02, (p.info["mol_id"], x, y, rmsd)
    assert np.isfinite(np.asarray(b.info["energy_pbe"], float)).all()
    assert b.arrays["forces_pbe"].shape == (b.numbers.size, 3)
    assert np.asarray(b.info["stress_pbe"]).shape == (b.n_frames, 3, 3)
    _check_splits(b)
    atoms = json.loads((DATASETS / "inorganic-mini/inorganic-mini.atoms_pbe.json").read_text())
    calib = DATASETS / "calib-qm9/calib-qm9.atoms_pbe.json"
    if calib.exists():  # one isolated-atom table for the target scale (docs/architecture.md §4.3)
        shared = json.loads(calib.read_text())["energies"]
        for el in set(shared) & set(atoms["energies"]):
            assert atoms["energies"][el] == pytest.approx(shared[el], abs=1e-6), el
    ev = read_batch(got["si_ev"])
    assert ev.n_frames == 101


@pytest.mark.slow
def test_recompute_two_calibration_molecules():
    """The two smallest calibration molecules, recomputed from their recorded SPECs (GPAW
    and PySCF), match the stored energies within the SCF convergence those settings set."""
    pytest.importorskip("gpaw")
    pytest.importorskip("pyscf")
    from tealign.compute.backends import run_calculation
    from tealign.compute.spec import parse_spec

    calib = read_batch(need("calib-qm9")["calib-qm9"]).to_atoms()
    gpaw = parse_spec(recorded_spec("calib-qm9", "pbe"))
    pyscf = parse_spec(recorded_spec("calib-qm9", "wb97m"))
    for a in sorted(calib, key=len)[:2]:
        e = run_calculation(gpaw, a.copy(), forces=False).energy
        assert e == pytest.approx(a.info["energy_pbe"], abs=1e-3), a.get_chemical_formula()
        e = run_calculation(pyscf, a.copy(), forces=False).energy
        assert e == pytest.approx(a.info["energy_wb97m"], abs=1e-5), a.get_chemical_formula()


@pytest.mark.slow
def test_recompute_three_crystals():
    """Three inorganic frames, recomputed with GPAW from the recorded SPEC."""
    pytest.importorskip("gpaw")
    from tealign.compute.backends import run_calculation
    from tealign.compute.kpoints import parse_mesh
    from tealign.compute.spec import parse_spec

    inorg = read_batch(need("inorganic-mini")["inorganic-mini"]).to_atoms()
    gpaw = parse_spec(recorded_spec("inorganic-mini", "pbe"))
    # the three cheapest: symmetric equilibrium cells on the smallest meshes (NaCl, LiF, MgO)
    cheap = sorted((a for a in inorg if a.info.get("sampling") == "equilibrium"),
                   key=lambda a: np.prod(parse_mesh(a.info["kpts"])))
    for a in cheap[:3]:
        mesh = parse_mesh(a.info["kpts"])
        e = run_calculation(gpaw, a.copy(), forces=False, kpts=mesh).energy
        assert e == pytest.approx(a.info["energy_pbe"], abs=1e-3), a.info["mol_id"]


def test_merge_train_eval_on_the_bundled_data(tmp_path, run_cli):
    """organic-mini aligned with the alignment fitted on calib-qm9, merged with
    inorganic-mini, a tiny MACE trained on it and evaluated per domain."""
    pytest.importorskip("mace")
    need("calib-qm9", "organic-mini", "inorganic-mini", "si_ev")
    from tealign.demo import merge_config

    c = DATASETS / "calib-qm9"
    code, out, err = run_cli("fit", c / "calib-qm9.extxyz", "--source-key", "energy_wb97m",
                             "--target-key", "energy_pbe", "--source-e0",
                             c / "calib-qm9.atoms_wb97m.json", "--target-e0",
                             c / "calib-qm9.atoms_pbe.json", "-o",
                             tmp_path / "fit/alignment.json", "--json")
    assert code == 0, err
    assert json.loads(out)["a"] > 0
    (tmp_path / "merge.toml").write_text(merge_config(DATASETS))
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)  # merge.toml names fit/alignment.json relative to the run directory
    try:
        code, out, err = run_cli("merge", "merge.toml", "-o", "merged", "--json")
        assert code == 0, err
        m = json.loads(out)
        assert m["frames_rejected"] == 0 and m["frames_out"] == m["frames_in"]
        code, out, err = run_cli("train", "--preset", "tiny", "--data", "merged", "-o", "run",
                                 "--epochs", "1", "--device", "cpu", "--json")
        assert code == 0, err
        code, out, err = run_cli("eval", "run/model.model", "merged/merged.extxyz", "--split",
                                 "test", "--json")
        assert code == 0, err
    finally:
        os.chdir(cwd)
    ev = json.loads(out)
    assert set(ev["by_config_type"]) == {"organic", "inorganic"}
    assert "stress_mae_meV_per_A3" in ev["by_config_type"]["inorganic"]
