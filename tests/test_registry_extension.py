"""A format added by one registry entry (and its module, here this file) is read, written,
converted and sharded by tealign with no other change (issue 29, docs/architecture.md §3.2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import random_frames, requires_mace

import tealign
from tealign.io import REGISTRY, Format
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.io.outputs import atomic_path

SUFFIX = ".tjsonl"


def iter_toy(path, batch_size: int = 2048):
    """Reader: one JSON line per frame (numbers, positions in Å, REF_energy in eV)."""
    files = sorted(Path(path).glob(f"*{SUFFIX}")) if Path(path).is_dir() else [Path(path)]
    records = []
    for f in files:
        for line in f.read_text().splitlines():
            d = json.loads(line)
            records.append(FrameRecord(numbers=np.array(d["numbers"]),
                                       positions=np.array(d["positions"]),
                                       info={"REF_energy": d["energy"]}, index=len(records)))
    yield FrameBatch.from_records(records)


def _lines(batches, keys: dict) -> str:
    out = []
    for b in batches:
        for i in range(b.n_frames):
            rec = b.record(i)
            out.append(json.dumps({"numbers": rec.numbers.tolist(),
                                   "positions": rec.positions.tolist(),
                                   "energy": float(rec.info[keys["energy"]])}) + "\n")
    return "".join(out)


def write_toy(batches, path, *, keys=None) -> int:
    """Writer: the whole file, atomically."""
    batches = list(batches)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(_lines(batches, (keys or tealign.REF).as_dict()))
    return sum(b.n_frames for b in batches)


def write_toy_shard(path: str, batches, frame0: int, keys: dict, weights: dict) -> int:
    """Shard writer: one shard file."""
    Path(path).write_text(_lines(batches, keys))
    return sum(b.n_frames for b in batches)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy", Format(
        "toy", "test_registry_extension:iter_toy", "test_registry_extension:write_toy",
        suffixes=(SUFFIX,), output_suffixes=(SUFFIX,), keyed=True, convert_to=True,
        shard_writer="test_registry_extension:write_toy_shard", shard_suffix=SUFFIX))


def _frames(n: int):
    frames = random_frames(n)
    for k, a in enumerate(frames):
        a.info["REF_energy"] = -10.0 - k
    return frames


def test_one_entry_reads_writes_and_converts(toy, tmp_path):
    from tealign.io.convert import convert_file, convert_target

    frames = _frames(5)
    assert tealign.write(tmp_path / f"a{SUFFIX}", frames) == 5
    assert tealign.io.detect_format(tmp_path / f"a{SUFFIX}") == "toy"
    back = tealign.read_frames(tmp_path / f"a{SUFFIX}")
    np.testing.assert_array_equal(back.positions, np.concatenate([a.positions for a in frames]))
    np.testing.assert_array_equal(back.info["REF_energy"], [-10.0 - k for k in range(5)])
    # convert from it to extxyz and back into it: the same frames
    tealign.write(tmp_path / "b.extxyz", back)
    assert convert_target(tmp_path / f"c{SUFFIX}") == "toy"
    assert convert_file(str(tmp_path / "b.extxyz"), tmp_path / f"c{SUFFIX}").frames_out == 5
    assert (tmp_path / f"c{SUFFIX}").read_text() == (tmp_path / f"a{SUFFIX}").read_text()


@requires_mace
def test_one_entry_writes_shard_directories(toy, tmp_path):
    from tealign.io.shards import write_shards

    frames = _frames(7)
    n = write_shards("toy", [FrameBatch.from_atoms(frames)], tmp_path / "shards", shard_size=3)
    assert n == 7
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        f"shards_{k}{SUFFIX}" for k in range(3)]
    back = tealign.read_frames(tmp_path / "shards", format="toy")
    np.testing.assert_array_equal(back.numbers, np.concatenate([a.numbers for a in frames]))
