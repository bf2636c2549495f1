import ase.io
import numpy as np
from conftest import random_frames

from tealign.io import read_batch
from tealign.io.extxyz import iter_extxyz, parse_comment, write_extxyz
from tealign.io.frames import FrameBatch


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.array_equal(x.numbers, y.numbers)
        assert np.array_equal(x.positions, y.positions)
        assert np.array_equal(x.cell[:], y.cell[:])
        assert np.array_equal(x.pbc, y.pbc)
        assert set(x.info) == set(y.info)
        for k in x.info:
            vx, vy = x.info[k], y.info[k]
            if isinstance(vx, np.ndarray):
                assert np.array_equal(vx.ravel(), np.asarray(vy).ravel()), k
            else:
                assert vx == vy and type(vx) is type(vy), k
        assert set(x.arrays) == set(y.arrays)
        for k in x.arrays:
            assert np.array_equal(x.arrays[k], y.arrays[k]), k
            assert x.arrays[k].dtype.kind == y.arrays[k].dtype.kind, k


def test_roundtrip_is_exact(tmp_path):
    frames = random_frames(9)
    write_extxyz(tmp_path / "a.xyz", [FrameBatch.from_atoms(frames)])
    back = read_batch(tmp_path / "a.xyz").to_atoms()
    _assert_same(frames, back)
    # and again: file → file is byte-identical
    write_extxyz(tmp_path / "b.xyz", [read_batch(tmp_path / "a.xyz")])
    assert (tmp_path / "a.xyz").read_bytes() == (tmp_path / "b.xyz").read_bytes()


def test_reads_ase_written_file_like_ase(tmp_path):
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    a = bulk("NaCl", "rocksalt", a=5.6).repeat(2)
    a.rattle(0.1, seed=1)
    a.calc = SinglePointCalculator(a, energy=-12.5, forces=np.ones((len(a), 3)) * 0.25,
                                   stress=np.arange(6) * 1e-3)
    ase.io.write(tmp_path / "ase.xyz", [a, a])
    ref = ase.io.read(tmp_path / "ase.xyz", ":")
    batch = read_batch(tmp_path / "ase.xyz")
    assert batch.n_frames == 2
    np.testing.assert_allclose(batch.positions[: len(a)], ref[0].positions, atol=1e-8)
    np.testing.assert_allclose(batch.cell[0], ref[0].cell[:], atol=1e-8)
    assert batch.info["energy"][0] == ref[0].get_potential_energy()
    np.testing.assert_allclose(batch.arrays["forces"][: len(a)], ref[0].get_forces())


def test_comment_parser():
    d = parse_comment('Lattice="1 0 0 0 2 0 0 0 3" energy=-1.5 n=3 ok=T name="a b" '
                      'v=[1, 2, 3] pbc="T F T" flag')
    assert d["Lattice"].shape == (3, 3) and d["Lattice"][2, 2] == 3
    assert d["energy"] == -1.5 and d["n"] == 3 and d["ok"] is True
    assert d["name"] == "a b" and d["flag"] is True
    assert d["v"].tolist() == [1, 2, 3]
    assert d["pbc"].tolist() == [True, False, True]


def test_streaming_batches_cover_all_frames(tmp_path):
    frames = random_frames(50, periodic_every=0)
    write_extxyz(tmp_path / "a.xyz", [FrameBatch.from_atoms(frames)])
    batches = list(iter_extxyz(tmp_path / "a.xyz", batch_size=7))
    assert [b.n_frames for b in batches] == [7] * 7 + [1]
    assert np.concatenate([b.index for b in batches]).tolist() == list(range(50))


def test_frame_errors_are_named_and_others_kept(tmp_path):
    frames = random_frames(5, periodic_every=0)
    write_extxyz(tmp_path / "a.xyz", [FrameBatch.from_atoms(frames)])
    lines = (tmp_path / "a.xyz").read_text().splitlines(keepends=True)
    # frame 1: break one atom line's column count; frame 3: NaN force; last frame truncated
    starts = []
    i = 0
    while i < len(lines):
        starts.append(i)
        i += int(lines[i]) + 2
    lines[starts[1] + 2] = "H 0.0 0.0\n"
    tokens = lines[starts[3] + 2].split()
    tokens[4] = "nan"  # a force component
    lines[starts[3] + 2] = " ".join(tokens) + "\n"
    text = "".join(lines[: starts[4] + 3])  # frame 4 ends early
    (tmp_path / "b.xyz").write_text(text)
    batches = list(iter_extxyz(tmp_path / "b.xyz"))
    kept = np.concatenate([b.index for b in batches]).tolist()
    rejects = {r.frame: r for b in batches for r in b.rejects}
    assert kept == [0, 2]
    assert set(rejects) == {1, 3, 4}
    assert "columns" in rejects[1].reason
    assert "NaN" in rejects[3].reason
    assert "truncated" in rejects[4].reason and rejects[4].field == "atoms"
