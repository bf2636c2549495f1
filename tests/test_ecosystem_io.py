"""Fitting the ecosystem (issue 27 items 2-4, issue 26 items 5/6/8): LMDB shards that a
memory-limited job can write and that ASE, fairchem's backend and mace-torch read with the
calculator's energy/forces/stress; truncated or foreign shards as one error line; ASE-like
``read``/``iread``; outputs whose format follows the suffix (never a surprising directory)."""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from conftest import random_frames

import tealign
from tealign.errors import SetupError

ROOT = Path(__file__).resolve().parents[1]
INORGANIC = ROOT / "datasets" / "inorganic-mini"
SRC = str(ROOT / "src")


def _cli(*args, limit_as: int | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``python -m tealign ARGS`` in a subprocess (optionally under RLIMIT_AS, bytes)."""

    def limit():
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "tealign", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit)


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """The bundled inorganic-mini set merged (default LMDB output) under a 4 GB address-space
    limit, as a cluster job with ``ulimit -v 4000000`` would run it."""
    pytest.importorskip("mace", reason="LMDB shards need the torch stack (tealign[mace])")
    pytest.importorskip("lmdb", reason="LMDB shards need tealign[mace]")
    tmp = tmp_path_factory.mktemp("merge")
    (tmp / "m.toml").write_text(
        f'[target]\ne0 = "{INORGANIC / "inorganic-mini.atoms_pbe.json"}"\nr_max = 4.5\n\n'
        f'[[source]]\nname = "inorganic"\npath = "{INORGANIC / "inorganic-mini.extxyz"}"\n'
        'energy_key = "energy_pbe"\nforces_key = "forces_pbe"\nstress_key = "stress_pbe"\n'
        'config_type = "inorganic"\nalignment = "target"\n')
    proc = _cli("merge", tmp / "m.toml", "-o", tmp / "out", limit_as=4_000_000_000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "out"


def test_merge_writes_lmdb_under_a_4gb_address_space_limit(merged):
    shards = sorted(merged.glob("*/*.aselmdb"))
    assert {p.parent.name for p in shards} == {"train", "valid", "test"}
    # the map a shard records is sized to its data (the backends' writers record 2 TiB)
    import struct

    for p in shards:
        head = p.read_bytes()[:4096 + 160]
        mapsize = max(struct.unpack_from("<Q", head, 32)[0],
                      struct.unpack_from("<Q", head, 4096 + 32)[0])
        assert mapsize < 64 << 20, (p, mapsize)
    n = sum(b.n_frames for split in ("train", "valid", "test")
            for b in tealign.iter_frames(merged / split))
    assert n == tealign.read_frames(merged / "merged.extxyz").n_frames == 82


def test_shard_rows_carry_results_on_a_calculator_as_ase_and_fairchem_read_them(merged):
    import ase.db
    from ase.stress import voigt_6_to_full_3x3_stress
    from ase_db_backends.aselmdb import LMDBDatabase

    ref = tealign.read_frames(merged / "merged.extxyz")
    train = ref.select(np.asarray(ref.info["split"]).astype(str) == "train")
    shard = next((merged / "train").glob("*.aselmdb"))
    db = ase.db.connect(shard)
    assert isinstance(db, LMDBDatabase)  # fairchem's aselmdb backend
    rows = list(db.select())
    db.close()  # one LMDB environment per file and process
    assert len(rows) == train.n_frames
    for i, row in enumerate(rows):
        rec = train.record(i)
        assert row.energy == rec.info["REF_energy"]
        atoms = row.toatoms()
        assert atoms.calc.get_potential_energy() == rec.info["REF_energy"]
        np.testing.assert_array_equal(row.forces, rec.arrays["REF_forces"])
        np.testing.assert_array_equal(atoms.get_forces(), rec.arrays["REF_forces"])
        np.testing.assert_array_equal(voigt_6_to_full_3x3_stress(row.stress),
                                      rec.info["REF_stress"])
        # what mace-torch's loader needs stays in the row's data
        assert row.data["REF_energy"] == rec.info["REF_energy"]
        np.testing.assert_array_equal(row.data["__arrays__"]["REF_forces"],
                                      rec.arrays["REF_forces"])
        assert row.data["config_stress_weight"] == rec.info["config_stress_weight"]
    # fairchem's AseDBDataset (the copy mace-torch ships) takes the calculator's results
    from mace.tools.fairchem_dataset.lmdb_dataset_tools import AseDBDataset

    ds = AseDBDataset(config={"src": str(merged / "train")})
    assert len(ds) == train.n_frames
    for i in range(train.n_frames):
        atoms, rec = ds.get_atoms(i), train.record(i)
        assert atoms.get_potential_energy() == rec.info["REF_energy"]
        np.testing.assert_array_equal(atoms.get_forces(), rec.arrays["REF_forces"])
        np.testing.assert_array_equal(atoms.get_stress(voigt=False), rec.info["REF_stress"])


def test_mace_torch_loads_the_shards_with_the_merged_values(merged):
    from test_scale_io import _mace_sees

    ref = tealign.read_frames(merged / "merged.extxyz")
    zs = sorted(int(z) for z in np.unique(ref.numbers))
    train = ref.select(np.asarray(ref.info["split"]).astype(str) == "train")
    seen = _mace_sees(merged / "train", zs)
    assert len(seen) == train.n_frames
    for i, d in enumerate(seen):
        rec = train.record(i)
        assert float(d.energy) == rec.info["REF_energy"]
        np.testing.assert_array_equal(d.forces.numpy(), rec.arrays["REF_forces"])
        np.testing.assert_array_equal(d.stress.numpy()[0], rec.info["REF_stress"])


def test_truncated_and_foreign_shards_are_one_line_exit_2(merged, tmp_path):
    shard = next((merged / "train").glob("*.aselmdb"))
    data = shard.read_bytes()
    cases = {"t.aselmdb": data[:20000], "t2.aselmdb": data[:5000],
             "foreign.aselmdb": b"not an lmdb file\n" * 300, "empty.aselmdb": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        proc = _cli("info", tmp_path / name)
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and str(tmp_path / name) in lines[0], (name, proc.stderr)
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
        assert name != "t.aselmdb" or "truncated" in lines[0]
    with pytest.raises(SetupError, match="not an LMDB file"):
        tealign.read_frames(tmp_path / "foreign.aselmdb")


def test_read_and_iread_return_what_ase_io_returns(tmp_path):
    frames = random_frames(6)
    for k, a in enumerate(frames):
        a.info.update(flag=bool(k % 2), name="x y", n=3, energy=-1.5 * k)
        a.arrays["forces"] = np.full((len(a), 3), 0.25 * k)
    path = tmp_path / "a.extxyz"
    ase.io.write(path, frames)
    ours, theirs = tealign.read(path, ":"), ase.io.read(path, ":")
    assert len(ours) == len(theirs) == 6
    for t, a in zip(ours, theirs, strict=True):
        assert set(t.info) == set(a.info)
        for key, value in a.info.items():
            assert type(t.info[key]) is type(value), key
            np.testing.assert_array_equal(t.info[key], value)
        assert set(t.arrays) == set(a.arrays)
        for key, value in a.arrays.items():
            assert t.arrays[key].dtype == value.dtype, key
            np.testing.assert_array_equal(t.arrays[key], value)
        assert t.calc.results.keys() == a.calc.results.keys()
        for key, value in a.calc.results.items():
            np.testing.assert_array_equal(t.calc.results[key], value)
    # index semantics as ase.io: default last frame, ints, slices, strings
    assert tealign.read(path).info["step"] == ase.io.read(path).info["step"] == 5
    assert tealign.read(path, index=0).info["step"] == 0
    assert tealign.read(path, -2).info["step"] == 4
    assert [a.info["step"] for a in tealign.read(path, "1::2")] == [1, 3, 5]
    assert [a.info["step"] for a in tealign.read(path, slice(-3, None))] == [3, 4, 5]
    assert [a.info["step"] for a in tealign.iread(path, "::3")] == [0, 3]
    assert len(list(tealign.iread(path))) == 6
    with pytest.raises(SetupError, match="no frame 9"):
        tealign.read(path, 9)


def test_old_batch_forms_keep_working_with_a_deprecation_warning(tmp_path):
    tealign.write(tmp_path / "a.extxyz", random_frames(5))
    with pytest.warns(DeprecationWarning, match="read_frames"):
        batch = tealign.read(tmp_path / "a.extxyz", "extxyz")
    assert batch.n_frames == 5
    with pytest.warns(DeprecationWarning, match="iter_frames"):
        assert sum(b.n_frames for b in tealign.iread(tmp_path / "a.extxyz", batch_size=2)) == 5
    assert tealign.read_frames(tmp_path / "a.extxyz").n_frames == 5


def test_formats_ase_reads_are_read_through_ase(tmp_path):
    frames = tealign.read(_written(tmp_path), ":")
    ase.io.write(tmp_path / "x.traj", frames)
    back = tealign.read(tmp_path / "x.traj", ":")
    assert len(back) == 4
    np.testing.assert_array_equal(back[2].get_forces(), frames[2].get_forces())
    assert back[1].get_potential_energy() == frames[1].get_potential_energy()
    # the pipeline's columnar reader (info, align, convert) falls back to ase.io too
    batch = tealign.read_frames(tmp_path / "x.traj")
    assert batch.n_frames == 4
    np.testing.assert_array_equal(batch.info["energy"], [-1.0, -3.0, -5.0, -7.0])
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SetupError, match="neither tealign nor ase.io reads it"):
        tealign.read_frames(tmp_path / "data.csv")
    vasp = Path(ase.__file__).parent / "test" / "testdata" / "vasp"
    for name in ("OUTCAR_example_1", "vasprun_pstress.xml"):
        if not (vasp / name).exists():
            continue
        fmt = "vasp-out" if "OUTCAR" in name else "vasp-xml"
        ref = ase.io.read(vasp / name, ":", format=fmt)
        got = tealign.read(vasp / name, ":", format=fmt)
        assert len(got) == len(ref) > 0
        assert got[-1].get_potential_energy() == ref[-1].get_potential_energy()
    with pytest.raises(SetupError, match="ase.io cannot read"):
        (tmp_path / "junk.traj").write_text("nothing")
        tealign.read(tmp_path / "junk.traj")


def _written(tmp_path) -> Path:
    frames = random_frames(4, periodic_every=0)
    for k, a in enumerate(frames):
        for key in [key for key in a.info if key.startswith("REF_")]:
            del a.info[key]
        a.info["energy"] = -2.0 * k - 1
        a.arrays["forces"] = np.full((len(a), 3), 0.5 + k)
    ase.io.write(tmp_path / "src.extxyz", frames)
    return tmp_path / "src.extxyz"


@pytest.mark.parametrize("name, kind", [
    ("o.extxyz", "file"), ("o.xyz", "file"), ("o.extxyz.gz", "gzip"), ("o.xyz.gz", "gzip"),
    ("o.traj", "file"), ("o.db", "file"), ("o.aselmdb", "file"), ("o.h5", "file"),
    ("shards", "dir"), ("o.txt", "refused"), ("o.gz", "refused"), ("o.json", "refused")])
def test_write_and_convert_choose_the_format_from_the_suffix(tmp_path, name, kind, run_cli):
    if name in ("o.aselmdb", "o.h5", "shards"):
        for module in ("mace", "lmdb"):
            pytest.importorskip(module, reason="shards need the torch stack (tealign[mace])")
    src = _written(tmp_path)
    ref = ase.io.read(src, ":")
    for how in ("api", "cli"):
        out = tmp_path / how / name
        out.parent.mkdir()
        if how == "api":
            if kind == "refused":
                with pytest.raises(SetupError, match="unknown output suffix"):
                    tealign.write(out, ref)
                assert not out.exists()
                continue
            assert tealign.write(out, ref) == 4
        else:
            code, _, stderr = run_cli("convert", src, "-o", out)
            if kind == "refused":
                assert code == 2 and not out.exists(), stderr
                assert "unknown output suffix" in stderr
                continue
            assert code == 0, stderr[-2000:]
        assert out.is_dir() == (kind == "dir"), (how, name)
        if kind == "gzip":
            with gzip.open(out, "rt") as fh:
                assert fh.readline().strip() == str(len(ref[0]))
        back = tealign.read(out, ":")
        assert len(back) == 4
        energy = (lambda a: a.info["REF_energy"]) if name in ("o.h5", "shards") \
            else (lambda a: a.get_potential_energy())
        if how == "api" or name not in ("o.aselmdb", "o.h5", "shards"):
            assert [energy(a) for a in back] == [a.get_potential_energy() for a in ref]
        np.testing.assert_array_equal(back[3].positions, ref[3].positions)


def test_a_bad_row_in_a_shard_is_one_reject_naming_frame_and_field(merged, tmp_path):
    import shutil
    import zlib

    import lmdb
    import orjson

    from tealign.io.lmdb import _encode

    shard = tmp_path / "bad.aselmdb"
    shutil.copy(next((merged / "train").glob("*.aselmdb")), shard)
    env = lmdb.open(str(shard), subdir=False, lock=False, map_size=1 << 24)
    with env.begin(write=True) as txn:
        row = orjson.loads(zlib.decompress(txn.get(b"1")))
        bad_z = {**row, "numbers": [300] * len(row["numbers"])}
        bad_f = {**row, "data": {**row["data"], "__arrays__": {"REF_forces": [[1, 2], [3]]}}}
        bad_e = {**row, "data": {**row["data"], "REF_energy": "abc"}}
        txn.put(b"2", _encode(bad_z))
        txn.put(b"3", _encode(bad_f))
        txn.put(b"4", b"not zlib")
        txn.put(b"5", _encode(bad_e))
    env.close()
    good = tealign.read_frames(next((merged / "train").glob("*.aselmdb")))
    batch = tealign.read_frames(shard)
    assert batch.n_frames == good.n_frames - 4
    assert [(r.frame, r.field) for r in batch.rejects] == [
        (1, "numbers"), (2, "REF_forces"), (3, "row"), (4, "REF_energy")]
    np.testing.assert_array_equal(batch.info["REF_energy"][1:], good.info["REF_energy"][5:])


def test_a_shard_map_that_fills_grows_and_keeps_every_row(tmp_path, monkeypatch):
    import struct

    pytest.importorskip("lmdb", reason="LMDB shards need tealign[mace]")

    import lmdb

    from tealign.io import lmdb as tl

    grown = []
    real_open = lmdb.open

    def spy(path, **kw):
        grown.append(kw["map_size"])
        return real_open(path, **kw)

    monkeypatch.setattr(tl, "MAP_MIN", 65536)
    monkeypatch.setattr(tl, "MAP_PER_FRAME", 0)
    monkeypatch.setattr(tl, "MAP_PER_ATOM", 0)
    monkeypatch.setattr(lmdb, "open", spy)
    frames = random_frames(300, periodic_every=3)
    assert tealign.write(tmp_path / "g.aselmdb", frames) == 300
    assert len(grown) > 2 and grown == [65536 * 2**k for k in range(len(grown))]
    head = (tmp_path / "g.aselmdb").read_bytes()
    assert max(struct.unpack_from("<Q", head, 32)[0],
               struct.unpack_from("<Q", head, 4096 + 32)[0]) == grown[-1]
    monkeypatch.setattr(lmdb, "open", real_open)
    back = tealign.read_frames(tmp_path / "g.aselmdb")
    assert back.n_frames == 300 and not back.rejects
    np.testing.assert_array_equal(back.info["REF_energy"],
                                  [a.info["REF_energy"] for a in frames])


def _same_as_ase(ours, theirs) -> None:
    """``tealign.read`` frames equal ``ase.io.read``'s: calculator results, info, arrays."""
    assert len(ours) == len(theirs) > 0
    for t, a in zip(ours, theirs, strict=True):
        assert (t.calc is None) == (a.calc is None)
        if a.calc is not None:
            assert t.calc.results.keys() == a.calc.results.keys()
            for key, value in a.calc.results.items():
                np.testing.assert_array_equal(t.calc.results[key], value)
        assert t.info.keys() == a.info.keys()
        assert t.arrays.keys() == a.arrays.keys()
        for key, value in a.arrays.items():
            assert t.arrays[key].dtype == value.dtype, key
            np.testing.assert_array_equal(t.arrays[key], value)


def test_read_of_aselmdb_gives_what_ase_io_read_gives(merged, tmp_path):
    shard = next((merged / "train").glob("*.aselmdb"))
    one, ref = tealign.read(shard, index=0), ase.io.read(shard, index=0)
    assert one.get_potential_energy() == ref.get_potential_energy()  # was: calc is None
    _same_as_ase([one], [ref])
    _same_as_ase(tealign.read(shard, ":"), ase.io.read(shard, ":"))
    # a shard directory: its files in order, each as ase.io reads it
    files = sorted((merged / "train").glob("*.aselmdb"))
    _same_as_ase(tealign.read(merged / "train", ":"),
                 [a for f in files for a in ase.io.read(f, ":")])
    # a file written by convert: no config_type/config_weight the source did not have
    frames = random_frames(3, periodic_every=2)
    ase.io.write(tmp_path / "x.extxyz", frames)
    assert _cli("convert", tmp_path / "x.extxyz", "-o", tmp_path / "c.aselmdb").returncode == 0
    conv = tmp_path / "c.aselmdb"
    ours, theirs = tealign.read(conv, ":"), ase.io.read(conv, ":")
    _same_as_ase(ours, theirs)
    assert [a.get_potential_energy() for a in ours] == [a.info["REF_energy"] for a in frames]
    assert "config_type" not in ours[0].info and "config_weight" not in ours[0].info
    # the columnar reader still gives everything the row stores (REF_*, weights, extras)
    assert "REF_energy" in tealign.read_frames(tmp_path / "c.aselmdb").info


def _h2o_and_ch4():
    from ase.build import molecule

    a, b = molecule("H2O"), molecule("CH4")
    a.arrays["lab"] = np.array(["x", "y", "zz"])
    a.arrays["q"] = np.array([1, 2, 3])
    return a, b


def test_a_per_atom_string_array_only_some_frames_have_is_written_as_ase_writes_it(tmp_path):
    a, b = _h2o_and_ch4()
    del a.arrays["q"]
    tealign.write(tmp_path / "h1.extxyz", [a, b])  # was: SetupError field 'lab'
    lines = (tmp_path / "h1.extxyz").read_text().splitlines()
    assert "lab:S:1" in lines[1] and "lab" not in lines[6]
    back = ase.io.read(tmp_path / "h1.extxyz", ":")
    assert back[0].arrays["lab"].tolist() == ["x", "y", "zz"] and "lab" not in back[1].arrays
    ase.io.write(tmp_path / "ase.extxyz", [a, b])
    _same_as_ase(tealign.read(tmp_path / "h1.extxyz", ":"),
                 ase.io.read(tmp_path / "ase.extxyz", ":"))


def test_an_integer_array_only_some_frames_have_stays_integer(tmp_path):
    a, b = _h2o_and_ch4()
    del a.arrays["lab"]
    tealign.write(tmp_path / "two_mixed.extxyz", [a, b])
    lines = (tmp_path / "two_mixed.extxyz").read_text().splitlines()
    assert "q:I:1" in lines[1] and "q:" not in lines[6]  # was: q:R:1 (1.0 2.0 3.0)
    back = ase.io.read(tmp_path / "two_mixed.extxyz", ":")
    assert back[0].arrays["q"].dtype.kind == "i" and "q" not in back[1].arrays
    ours = tealign.read(tmp_path / "two_mixed.extxyz", ":")
    assert ours[0].arrays["q"].dtype.kind == "i" and "q" not in ours[1].arrays
    np.testing.assert_array_equal(ours[0].arrays["q"], [1, 2, 3])
    # through an .aselmdb file: the columnar reader keeps the dtype and the missing mask
    pytest.importorskip("lmdb", reason="LMDB files need tealign[mace]")
    ase.io.write(tmp_path / "mix.extxyz", [a, b])
    assert _cli("convert", tmp_path / "mix.extxyz", "-o", tmp_path / "mix.aselmdb").returncode == 0
    batch = tealign.read_frames(tmp_path / "mix.aselmdb")
    assert batch.arrays["q"].dtype.kind == "i"
    assert batch.missing["q"].tolist() == [False, True]
    np.testing.assert_array_equal(batch.record(0).arrays["q"], [1, 2, 3])
    assert "q" not in batch.record(1).arrays
