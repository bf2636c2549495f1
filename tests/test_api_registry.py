"""The format registry, read/iread/write, Keys and the API's Result."""

import json

import numpy as np
import pytest
from conftest import random_frames

import tealign
from tealign.errors import SetupError
from tealign.io import REGISTRY, WRITABLE, detect_format


def test_registry_names_reader_writer_and_recognition(tmp_path):
    assert set(REGISTRY) == {"extxyz", "asedb", "mace-h5", "lmdb", "spice", "mptrj", "qm9"}
    assert set(WRITABLE) == {"extxyz", "mace-h5", "lmdb"}
    for name, fmt in (("a.xyz", "extxyz"), ("a.extxyz.gz", "extxyz"), ("a.db", "asedb"),
                      ("a.aselmdb", "lmdb"), ("a.json", "mptrj"), ("qm9:5", "qm9")):
        assert detect_format(tmp_path / name if ":" not in name else name) == fmt
    (tmp_path / "shards").mkdir()
    assert detect_format(tmp_path / "shards") == "mace-h5"
    (tmp_path / "shards" / "x_0.aselmdb").write_bytes(b"")
    assert detect_format(tmp_path / "shards") == "lmdb"
    with pytest.raises(SetupError, match="unknown dataset format"):
        (tmp_path / "a.txt").write_text("x")
        detect_format(tmp_path / "a.txt")
    with pytest.raises(SetupError, match="unknown format"):
        tealign.read_frames(tmp_path / "a.xyz", format="nope")
    with pytest.raises(SetupError, match="does not write"):
        tealign.write(tmp_path / "a.db", [], format="asedb")


def test_read_iread_write_round_trip(tmp_path):
    frames = random_frames(6)
    n = tealign.write(tmp_path / "a.extxyz", frames)
    assert n == 6
    back = tealign.read_frames(tmp_path / "a.extxyz")
    assert back.n_frames == 6 and not back.rejects
    assert sum(b.n_frames for b in tealign.iter_frames(tmp_path / "a.extxyz", batch_size=4)) == 6
    assert len(tealign.read(tmp_path / "a.extxyz", ":")) == 6  # ase.Atoms, as ase.io.read
    np.testing.assert_array_equal(back.numbers, np.concatenate([a.numbers for a in frames]))


def test_keys_and_result(tmp_path):
    keys = tealign.Keys.suffixed("pbe")
    assert keys.as_dict() == {"energy": "energy_pbe", "forces": "forces_pbe",
                              "stress": "stress_pbe", "virials": "virials_pbe"}
    assert tealign.REF.replace(energy="e").energy == "e"
    res = tealign.Result("fit", {"a": float("nan"), "n": 3}, estimator=None)
    assert res.n == 3 and res["n"] == 3 and res.to_json() == {"a": None, "n": 3}
    with pytest.raises(AttributeError):
        _ = res.missing_key
    path = res.save(tmp_path / "run" / "fit")
    assert path.name == "fit.json" and json.loads(path.read_text()) == {"a": None, "n": 3}


def test_every_result_kind_saves_under_a_name_of_its_own(tmp_path):
    import inspect
    import re

    from tealign import api, rundir

    names = list(rundir.RESULT_FILES.values())
    assert len(set(names)) == len(names)
    atoms_default = inspect.signature(api.compute_atoms).parameters["output"].default
    others = {rundir.RESULTS_FILE, rundir.MERGE_REPORT_FILE, rundir.STATISTICS_FILE,
              rundir.DEMO_STATE, rundir.TRAIN_SUMMARY_FILE, atoms_default}
    assert not others & set(names)
    # every kind the api makes has a name, and the table names no kind the api never makes
    source = inspect.getsource(api)
    kinds = set(re.findall(r'Result\("(\w+)"', source))
    kinds |= {f"bench_{b}" for b in re.findall(r'_bench\("(\w+)"', source)}
    assert kinds == set(rundir.RESULT_FILES)
    assert rundir.bench_json("cross_labels_icea") == "bench/cross_labels_icea/bench_cross.json"
    assert rundir.FIT_JSON == "fit/fit.json"

    tables, one = api.e0_tables(), api.e0_table(api.e0_tables().tables[0]["name"])
    a, b = tables.save(tmp_path), one.save(tmp_path)
    assert a != b and a.parent == b.parent == tmp_path
    assert json.loads(a.read_text()) == tables.to_json()
    assert json.loads(b.read_text()) == one.to_json()
    with pytest.raises(ValueError, match="no file name for result kind 'nope'"):
        tealign.Result("nope", {}).save(tmp_path)


def test_output_names_are_recognised_by_the_registry_entries(monkeypatch):
    from tealign.io import Format, output_format
    from tealign.io.convert import convert_target

    assert output_format("a.XYZ") == "extxyz" and output_format("a.aselmdb") == "lmdb"
    assert output_format("shards") == "mace-h5" and output_format("a.lmdb") == "mace-h5"
    # convert's output follows the name: one file for a known suffix, a shard directory
    # only for a name without one, an unknown suffix refused
    assert convert_target("a.extxyz") == "extxyz" and convert_target("a.aselmdb") == "lmdb-file"
    assert convert_target("a.extxyz", "mace-h5") == "mace-h5"
    assert convert_target("a.h5") == convert_target("a.h5", "mace-h5") == "mace-h5-file"
    assert convert_target("shards") == "mace-h5" and convert_target("a.traj") == "ase"
    with pytest.raises(SetupError, match="unknown output suffix"):
        convert_target("a.toy")
    with pytest.raises(SetupError, match="--to must be extxyz or mace-h5"):
        convert_target("a.extxyz", "lmdb")
    monkeypatch.setitem(REGISTRY, "toy", Format("toy", "m:r", "m:w", output_suffixes=(".toy",)))
    assert output_format("a.toy") == "toy"
