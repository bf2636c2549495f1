import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import random_frames

from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch
from tealign.io.mace_h5 import iter_mace_h5, write_mace_h5

MACE_FIELDS_INFO = ("REF_energy", "REF_stress", "config_type")


def test_extxyz_mace_extxyz_roundtrip(tmp_path):
    frames = random_frames(12)
    for i, a in enumerate(frames):
        a.info["mp_id"] = f"mp-{i}"
        a.info["source"] = "unit-test"
    write_extxyz(tmp_path / "in.xyz", [FrameBatch.from_atoms(frames)])
    write_mace_h5([read_batch(tmp_path / "in.xyz")], tmp_path / "shards", shard_size=5)
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        "shards_0.h5", "shards_1.h5", "shards_2.h5"]
    back = FrameBatch.from_records(
        [b.record(i) for b in iter_mace_h5(tmp_path / "shards") for i in range(b.n_frames)])
    ref = read_batch(tmp_path / "in.xyz")
    assert back.n_frames == ref.n_frames == 12
    np.testing.assert_array_equal(back.numbers, ref.numbers)
    np.testing.assert_array_equal(back.positions, ref.positions)
    np.testing.assert_array_equal(back.cell, ref.cell)
    np.testing.assert_array_equal(back.pbc, ref.pbc)
    np.testing.assert_array_equal(back.arrays["REF_forces"], ref.arrays["REF_forces"])
    np.testing.assert_array_equal(back.info["REF_energy"], ref.info["REF_energy"])
    for i in range(12):
        r, o = back.record(i), ref.record(i)
        assert r.info["config_type"] == o.info["config_type"]
        if "REF_stress" in o.info:
            np.testing.assert_array_equal(r.info["REF_stress"], o.info["REF_stress"])
        else:
            assert "REF_stress" not in r.info
        # metadata MACE's layout does not hold survives through the sidecar
        for key in ("mp_id", "source", "mol_id", "step", "converged", "dipole"):
            assert np.array_equal(r.info[key], o.info[key]), key
        for key in ("tags_int", "flag"):
            np.testing.assert_array_equal(r.arrays[key], o.arrays[key])
    # and the extxyz written from it is byte-identical to the input
    write_extxyz(tmp_path / "out.xyz", [back])
    again = read_batch(tmp_path / "out.xyz")
    np.testing.assert_array_equal(again.arrays["REF_forces"], ref.arrays["REF_forces"])


def test_mace_run_train_reads_tealign_shards(tmp_path, run_cli):
    from ase.build import bulk, molecule

    rng = np.random.default_rng(0)
    frames = []
    for i in range(20):
        a = bulk("Si", "diamond", a=5.43) if i % 2 else molecule("H2O")
        if i % 2 == 0:
            a.center(vacuum=3.0)
        a.rattle(0.05, seed=i)
        a.info["REF_energy"] = float(-5 * len(a) + rng.normal() * 0.1)
        a.arrays["REF_forces"] = rng.normal(size=(len(a), 3)) * 0.1
        if i % 2:
            a.info["REF_stress"] = rng.normal(size=(3, 3)) * 1e-3
        frames.append(a)
    write_extxyz(tmp_path / "train.xyz", [FrameBatch.from_atoms(frames[:14])])
    write_extxyz(tmp_path / "valid.xyz", [FrameBatch.from_atoms(frames[14:])])
    assert run_cli("convert", tmp_path / "train.xyz", "-o", tmp_path / "h5" / "train",
                   "--e0", "vasp-pbe-mp")[0] == 0
    assert run_cli("convert", tmp_path / "valid.xyz", "-o", tmp_path / "h5" / "valid")[0] == 0
    stats = tmp_path / "h5" / "train.statistics.json"
    assert stats.exists()
    exe = Path(sys.executable).with_name("mace_run_train")
    cmd = [str(exe if exe.exists() else shutil.which("mace_run_train")),
           "--name", "tiny", "--train_file", str(tmp_path / "h5" / "train"),
           "--valid_file", str(tmp_path / "h5" / "valid"), "--statistics_file", str(stats),
           "--model", "MACE", "--num_channels", "8", "--max_L", "0", "--num_interactions", "1",
           "--r_max", "4.5", "--max_num_epochs", "1", "--batch_size", "4",
           "--valid_batch_size", "4", "--device", "cpu", "--seed", "1",
           "--work_dir", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "tiny.model").exists()
