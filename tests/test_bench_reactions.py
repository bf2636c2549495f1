"""Reaction-barrier benchmark arithmetic, and the dataset registry (fetch via file://)."""

import json

import numpy as np
import pytest
from ase import Atoms

from tealign import units
from tealign.bench import reactions, registry
from tealign.errors import SetupError
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch


def test_barrier_arithmetic_and_units(tmp_path):
    """Energies in eV → barrier E_TS − E_R in kcal/mol, compared with the reference."""
    frames = []
    for rxn, ref in ((7, 20.0), (3, 35.0)):
        for role in ("r", "ts", "p"):
            a = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
            a.info.update({"rxn": rxn, "role": role, "barrier_kcal_mol": ref})
            frames.append(a)
    write_extxyz(tmp_path / "rx.extxyz", [FrameBatch.from_atoms(frames)])
    batch, index, ref = reactions.load_reactions(tmp_path / "rx.extxyz", limit=1)
    assert list(index) == [3] and ref == {3: 35.0}  # first N in ascending rxn order
    e = np.zeros(batch.n_frames)
    e[index[3]["r"]] = -100.0
    e[index[3]["ts"]] = -100.0 + 1.5  # 1.5 eV = 34.5912... kcal/mol
    pred = reactions.barriers(e, index)
    assert pred[3] == pytest.approx(1.5 / units.KCAL_PER_MOL_TO_EV)
    assert pred[3] == pytest.approx(34.5912, abs=1e-3)


def test_registry_fetch_file_url_and_missing_message(tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TEALIGN_DATA_DIR", raising=False)
    with pytest.raises(SetupError, match="tealign data fetch reactions"):
        registry.locate("reactions")
    src = shared_data / "reactions" / "rdb7_forward.extxyz.gz"
    rec = registry.fetch("reactions", url=src.resolve().as_uri())
    assert rec["download_sha256"] == registry.REGISTRY["reactions"].sha256
    assert registry.locate("reactions") == tmp_path / "cache" / "tealign" / "data" / \
        "reactions" / "rdb7_forward.extxyz.gz"
    assert registry.verify("reactions")["ok"]
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not the data")
    with pytest.raises(SetupError, match="sha256"):
        registry.fetch("reactions", url=bad.as_uri())
    monkeypatch.setenv("TEALIGN_DATA_DIR", str(shared_data))
    assert registry.locate("reactions") == shared_data / "reactions" / "rdb7_forward.extxyz.gz"


def test_bench_reactions_cli(shared_data, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TEALIGN_DATA_DIR", str(shared_data))
    code, stdout, stderr = run_cli("bench", "reactions", "--calculator", "xtb", "--limit", "3",
                                   "--json", "-o", tmp_path / "rx")
    assert code == 0, stderr
    r = json.loads(stdout)
    assert r["n"] == 3 and r["mae_eV"] == pytest.approx(r["mae_kcal_mol"] *
                                                        units.KCAL_PER_MOL_TO_EV)
    res = json.loads((tmp_path / "rx" / "results.json").read_text())
    assert (tmp_path / "rx" / "reactions_violin.png").exists()
    errs = [p["barrier_pred_kcal_mol"] - p["barrier_ref_kcal_mol"] for p in res["per_reaction"]]
    assert np.mean(np.abs(errs)) == pytest.approx(r["mae_kcal_mol"])
