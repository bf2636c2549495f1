"""Datasets at scale: streaming MPtrj, the streaming merge, LMDB and parallel HDF5 shards that
mace-torch trains from, and Dask clusters for align and merge."""

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from test_merge_train_eval import sources  # noqa: F401  (fixture)

from tealign.errors import SetupError
from tealign.io import iter_batches, read_batch

pytest.importorskip("mace")


def _structure(symbols, xyz, a):
    return {"@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0,
            "lattice": {"matrix": [[a, 0, 0], [0, a, 0], [0, 0, a]]},
            "sites": [{"species": [{"element": s, "occu": 1}], "xyz": p, "label": s,
                       "properties": {"magmom": 0.0}} for s, p in zip(symbols, xyz)]}


def _mptrj_doc(n_materials=12, frames_per=4, seed=0):
    rng = np.random.default_rng(seed)
    doc = {}
    for m in range(n_materials):
        frames = {}
        for j in range(frames_per):
            xyz = (rng.uniform(size=(2, 3)) * 4.0).tolist()
            frames[f"mp-{m}-{j}"] = {
                "structure": _structure(["Na", "Cl"], xyz, 4.0 + 0.01 * j),
                "uncorrected_total_energy": -6.5 + 0.01 * rng.normal(),
                "corrected_total_energy": -7.0, "force": rng.normal(size=(2, 3)).tolist(),
                "stress": rng.normal(size=(3, 3)).tolist(), "magmom": [0.1, -0.1],
                "mp_id": f"mp-{m}"}
        doc[f"mp-{m}"] = frames
    return doc


def test_mptrj_streams_with_the_c_parser_and_rejects_per_frame(tmp_path):
    import ijson

    assert ijson.backend == "yajl2_c"  # the pure-Python backends are 20-50x slower
    doc = _mptrj_doc(3, 3)
    doc["mp-1"]["mp-1-1"]["uncorrected_total_energy"] = float("nan")
    doc["mp-2"]["mp-2-0"]["force"] = [[0.0, 0.0, 0.0]]
    doc["mp-2"]["mp-2-2"]["force"][1][2] = float("-inf")
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))  # Python writes NaN/-Infinity tokens
    assert "NaN" in p.read_text() and "-Infinity" in p.read_text()
    batches = list(iter_batches(p, batch_size=2))
    assert max(b.n_frames for b in batches) <= 2
    got = {(r.frame, r.field) for b in batches for r in b.rejects}
    assert got == {(4, "uncorrected_total_energy"), (6, "force"), (8, "force")}
    b = read_batch(p)
    assert b.n_frames == 6
    assert b.info["frame_id"].tolist() == ["mp-0-0", "mp-0-1", "mp-0-2", "mp-1-0", "mp-1-2",
                                          "mp-2-1"]
    ref = doc["mp-2"]["mp-2-1"]
    np.testing.assert_array_equal(b.record(5).arrays["forces"], ref["force"])
    np.testing.assert_allclose(b.info["stress"][5], -0.1 * np.array(ref["stress"])
                               / 160.2176634, rtol=1e-15)
    # a file cut in the middle of a material: the materials before it are read (a material
    # is parsed whole), then a setup error
    cut = p.read_text()[: p.read_text().index('"mp-2-1"') + 20]
    (tmp_path / "cut.json").write_text(cut)
    frames = 0
    with pytest.raises(SetupError, match="not valid JSON near byte"):
        for batch in iter_batches(tmp_path / "cut.json", batch_size=1):
            frames += batch.n_frames + len(batch.rejects)
    assert frames == 6
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(SetupError, match="must map mp_id"):
        list(iter_batches(tmp_path / "list.json"))


def _mace_sees(split_dir, zs):
    """The training data exactly as mace_run_train loads it (mace-torch's own loader)."""
    import torch
    from mace.tools.run_train_utils import load_dataset_for_path
    from mace.tools.utils import AtomicNumberTable

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # as the presets train (--default_dtype float64)
    try:
        ds = load_dataset_for_path(file_path=str(split_dir), r_max=4.5,
                                   z_table=AtomicNumberTable(zs), heads=["Default"],
                                   head_config=SimpleNamespace(head_name="Default"))
        return [ds[i] for i in range(len(ds))]
    finally:
        torch.set_default_dtype(before)


@pytest.mark.parametrize("fmt", ["lmdb", "h5"])
def test_merge_format_trains_and_mace_sees_what_was_written(sources, run_cli, fmt):  # noqa: F811
    out = sources / f"merged_{fmt}"
    code, stdout, stderr = run_cli("merge", sources / "sources.toml", "-o", out, "--format", fmt,
                                   "--workers", "2", "--json")
    assert code == 0, stderr
    r = json.loads(stdout)
    assert r["frames_in"] == r["frames_out"] == 66
    ext = {"lmdb": ".aselmdb", "h5": ".h5"}[fmt]
    assert {p.suffix for p in (out / "train").iterdir()} == {ext}  # nothing else for MACE
    written = read_batch(out / "merged.extxyz")
    stats = json.loads((out / "statistics.json").read_text())
    zs = sorted(int(z) for z in np.unique(written.numbers))
    assert stats["atomic_numbers"] == str(zs)
    for split in ("train", "valid"):
        sub = written.select(np.asarray(written.info["split"]).astype(str) == split)
        seen = _mace_sees(out / split, zs)
        assert len(seen) == sub.n_frames > 0
        for i, d in enumerate(seen):
            rec = sub.record(i)
            np.testing.assert_array_equal(d.positions.numpy(), rec.positions)
            np.testing.assert_array_equal(np.asarray(zs)[d.node_attrs.numpy().argmax(1)],
                                          rec.numbers)
            assert float(d.energy) == rec.info["REF_energy"]
            np.testing.assert_array_equal(d.forces.numpy(), rec.arrays["REF_forces"])
            assert float(d.energy_weight) == rec.info["config_energy_weight"]
            assert float(d.forces_weight) == rec.info["config_forces_weight"]
            assert float(d.stress_weight) == rec.info["config_stress_weight"]
            if "REF_stress" in rec.info:
                np.testing.assert_array_equal(d.stress.numpy()[0], rec.info["REF_stress"])
            else:
                assert float(d.stress_weight) == 0.0
    # the shards read back into the same frames, metadata included
    back = read_batch(out / "train")
    sub = written.select(np.asarray(written.info["split"]).astype(str) == "train")
    np.testing.assert_array_equal(back.info["REF_energy"], sub.info["REF_energy"])
    assert back.info["source"].tolist() == sub.info["source"].tolist()
    # the statistics are those of the training frames (E0s of the target table)
    from tealign.methods import load_table

    e0 = load_table("vasp-pbe-mp").by_number()
    per_atom = (sub.info["REF_energy"] - sub.per_frame_sum(e0[sub.numbers])) / sub.n_atoms
    assert stats["mean"] == pytest.approx(per_atom.mean(), rel=1e-12)
    f = np.nan_to_num(sub.arrays["REF_forces"])
    assert stats["std"] == pytest.approx(math.sqrt((f * f).mean()), rel=1e-12)
    assert 1.0 < stats["avg_num_neighbors"] < 40.0
    # a real training run reads these shards
    run = sources / f"run_{fmt}"
    code, _, stderr = run_cli("train", "--preset", "tiny", "--data", out, "-o", run,
                              "--epochs", "1", "--json")
    assert code == 0, stderr
    log = (run / "train.log").read_text()
    kind = {"lmdb": "Loading LMDB dataset", "h5": "Loading HDF5 dataset"}[fmt]
    assert kind in log
    n_train = int(np.sum(np.asarray(written.info["split"]).astype(str) == "train"))
    assert re.search(rf"training dataset size: {n_train}\b", log), log[-2000:]
    assert (run / "model.model").exists()


def test_streaming_merge_accounts_every_frame_and_keeps_materials_together(tmp_path, run_cli):
    doc = _mptrj_doc(40, 5, seed=1)
    doc["mp-3"]["mp-3-2"]["uncorrected_total_energy"] = float("nan")
    (tmp_path / "mp.json").write_text(json.dumps(doc))
    (tmp_path / "m.toml").write_text(
        '[target]\ne0 = "vasp-pbe-mp"\n\n[[source]]\nname = "mptrj"\npath = "mp.json"\n'
        'energy_key = "energy"\nalignment = "target"\n')
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("merge", tmp_path / "m.toml", "-o", out, "--format", "lmdb",
                                   "--no-extxyz", "--workers", "1", "--json")
    assert code == 0, stderr
    r = json.loads(stdout)
    assert (r["frames_in"], r["frames_out"], r["frames_rejected"]) == (200, 199, 1)
    assert not (out / "merged.extxyz").exists()
    rep = json.loads((out / "report.json").read_text())
    assert sum(rep["sources"]["mptrj"]["by_split"].values()) == 199
    rejects = [json.loads(x) for x in (out / "merged.extxyz.rejects.jsonl").read_text()
               .splitlines()]
    assert [(x["frame"], x["field"]) for x in rejects] == [(17, "uncorrected_total_energy")]
    split_of = {}
    for split in ("train", "valid", "test"):
        if (out / split).exists():
            for mp in read_batch(out / split).info["mp_id"]:
                assert split_of.setdefault(mp, split) == split  # one material, one split
    assert len(split_of) == 40 and len(set(split_of.values())) == 3
    code, _, stderr = run_cli("merge", tmp_path / "m.toml", "-o", tmp_path / "strict",
                              "--strict")
    assert code == 2 and "uncorrected_total_energy" in stderr
    assert not (tmp_path / "strict").exists()


def test_align_and_merge_on_a_local_dask_cluster(sources, run_cli):  # noqa: F811
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        out = sources / "dask_merged"
        code, stdout, stderr = run_cli("merge", sources / "sources.toml", "-o", out, "--format",
                                       "lmdb", "--scheduler", cluster.scheduler_address,
                                       "--json")
        assert code == 0, stderr
        assert json.loads(stdout)["frames_out"] == 66
        code, stdout, stderr = run_cli("align", sources / "organic.extxyz", "--alignment",
                                       sources / "alignment.json", "--energy-key",
                                       "energy_wb97m", "--forces-key", "forces_wb97m", "-o",
                                       sources / "dask.extxyz", "--scheduler",
                                       cluster.scheduler_address, "--json")
        assert code == 0, stderr
        ran = set(cluster.scheduler.task_prefixes)
    # the work ran as tasks on the cluster's workers
    assert {"write_lmdb_shard", "format_batch"} <= ran, ran  # dask drops the leading _
    code, _, stderr = run_cli("merge", sources / "sources.toml", "-o", sources / "local",
                              "--format", "lmdb", "--workers", "1")
    assert code == 0, stderr
    a, b = read_batch(out / "train"), read_batch(sources / "local" / "train")
    np.testing.assert_array_equal(a.info["REF_energy"], b.info["REF_energy"])
    np.testing.assert_array_equal(a.arrays["REF_forces"], b.arrays["REF_forces"])
    assert (out / "merged.extxyz").read_text() == (sources / "local" / "merged.extxyz").read_text()
    code, _, stderr = run_cli("align", sources / "organic.extxyz", "--alignment",
                              sources / "alignment.json", "--energy-key", "energy_wb97m",
                              "--forces-key", "forces_wb97m", "-o", sources / "local.extxyz")
    assert code == 0, stderr
    assert (sources / "dask.extxyz").read_text() == (sources / "local.extxyz").read_text()


def test_merge_source_may_name_qm9_by_its_spec(tmp_path):
    """``path = "qm9:N"`` in a merge config reads QM9 (not a file beside the config)."""
    from tealign import api
    from tealign.io.qm9 import qm9_csv_files

    try:
        qm9_csv_files()
    except SetupError as exc:
        pytest.skip(str(exc))
    config = tmp_path / "m.toml"
    config.write_text('[target]\ne0 = "b3lyp-6-31g2dfp"\n\n[[source]]\nname = "qm9"\n'
                      'path = "qm9:30"\nenergy_key = "energy_qm9_b3lyp"\nalignment = "target"\n')
    res = api.merge(config, tmp_path / "out", format="lmdb", workers=1, extxyz=False)
    doc = res.to_json()
    assert (doc["frames_in"], doc["frames_out"]) == (30, 30)
    by_split = json.loads((tmp_path / "out" / "report.json").read_text())["sources"]["qm9"]
    assert sum(by_split["by_split"].values()) == 30
