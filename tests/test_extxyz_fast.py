"""Invariants of the extxyz reader's fast paths (templated comment lines, plain-frame framing,
vectorised atom lines, batched writing): they must give what the careful paths give."""

import ase.io
import numpy as np
import pytest

import tealign.io.extxyz as ex
from tealign.io.extxyz import _CommentPlans, format_batch, iter_extxyz, parse_comment
from tealign.io.frames import concat_batches

TRICKY_LINES = [
    'Properties=species:S:1:pos:R:3 energy=-12.5 pbc="F F F"',
    'Properties=species:S:1:pos:R:3 energy=-13 pbc="F F F"',  # int, another template
    'Properties=species:S:1:pos:R:3 energy=1e-3 pbc="F F F"',
    'Properties=species:S:1:pos:R:3 energy=-12.75 pbc="F F F"',  # known template again
    'Lattice="5.0 0.1 0 0.2 6 0 0.3 0.4 7.5" Properties=species:S:1:pos:R:3:forces:R:3 '
    'energy=-3.25 stress="1 2 3 4 5 6 7 8 9" virial="1 0 0 0 1 0 0 0 1.5" pbc="T T F"',
    'Lattice="5.0 0.1 0 0.2 6 0 0.3 0.4 7.5" Properties=species:S:1:pos:R:3:forces:R:3 '
    'energy=-3.5 stress="1 2 3 4 5 6 7 8 9" virial="1 0 0 0 1 0 0 0 2.5" pbc="T T F"',
    'name="a b c" ok=T bad=F flags="T F T" n=3 v="1 2 3" w="1 2.5" flag energy=2.0',
    'name="a b c" ok=T bad=F flags="T F T" n=4 v="4 5 6" w="3 4.5" flag energy=3.0',
    "quoted='single quoted' e=1.5 x={1 2 3}",
    "quoted='single quoted' e=2.5 x={1 2 3}",
    'js="_JSON {\\"a\\": [1, 2]}" e=1.0',
    'js="_JSON {\\"a\\": [1, 2]}" e=2.0',
    "uid=123 e=1.0",
    "uid=124 e=1.0",
    "big=123456789012345678901 e=1.0",
    "big=123456789012345678902 e=1.0",
    "n=9223372036854775807 e=1.0",
    "n=9223372036854775806 e=1.0",
    "v=1,2,3 e=1.0",
    "v=4,5,6 e=1.0",
    "v=\"1, 2\" e=1.0",
    "a = 1 b=2",
    "a = 3 b=4",
    "1=2 e=3",
    "1=5 e=6",
    "e=1.0 E=2.5 e2=+3. e3=.5 e4=-0.0",
    "e=2.0 E=3.5 e2=+4. e3=.25 e4=0.0",
    "Lattice=\"1 2 3\" e=1",
    "k=inf m=nan e=1.0",
    "k=inf m=nan e=2.0",
    "text=1.5x e=1",
    "text=2.5x e=1",
    "  padded=1   spaced=2.0  ",
    "  padded=3   spaced=4.0  ",
]


def _same(a, b):
    assert list(a) == list(b)
    for k, va in a.items():
        vb = b[k]
        assert type(va) is type(vb), k
        if isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype and va.shape == vb.shape, k
            assert np.array_equal(va, vb, equal_nan=va.dtype.kind == "f"), k
        elif isinstance(va, float) and np.isnan(va):
            assert np.isnan(vb)
        else:
            assert va == vb, k


def test_comment_plans_match_parse_comment():
    plans = _CommentPlans()
    for _ in range(3):  # the first pass builds plans, the next ones use them
        for line in TRICKY_LINES:
            try:
                ref = parse_comment(line)
            except ex.CommentError as exc:
                with pytest.raises(ex.CommentError) as got:
                    plans.parse(line)
                assert got.value.field == exc.field and str(got.value) == str(exc)
                continue
            _same(plans.parse(line), ref)


def test_comment_plan_values_are_not_shared():
    plans = _CommentPlans()
    line = 'flags="T F T" e=1.0'
    a, b = plans.parse(line), plans.parse(line)
    a["flags"][0] = False
    assert b["flags"][0]


def _atoms_line(sym, pos, extra=()):
    return f"{sym} " + " ".join(repr(float(x)) for x in (*pos, *extra)) + "\n"


def _tricky_file(path, n=40, bad=()):
    """Frames mixing specs (forces in some), cells (non-orthogonal), pbc strings, quoted and
    bool keys, arrays; ``bad`` frames hold a value that is not a number."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 6))
        sym = rng.choice(["H", "C", "O", "Na", "Cl"], k)
        pos = rng.normal(size=(k, 3)) * 2
        forces = i % 3 != 1
        props = "species:S:1:pos:R:3" + (":forces:R:3" if forces else "")
        head = [f'Properties={props}', f"energy={rng.normal() * 100:.10f}"]
        if i % 2:
            cell = np.diag(rng.uniform(4, 8, 3)) + rng.normal(size=(3, 3)) * 0.3
            head.insert(0, 'Lattice="' + " ".join(repr(float(v)) for v in cell.ravel()) + '"')
            head.append('pbc="T T F"' if i % 4 == 1 else 'pbc="T T T"')
        else:
            head.append('pbc="F F F"')
        head += [f'config_type="{"bulk phase" if i % 5 else "mol"}"', f"ok={'T' if i % 2 else 'F'}",
                 f'dipole="{i} 0.5 -1.25"', f"step={i}"]
        if i % 7 == 3:
            head.append('note="a \\"quoted\\" word"')
        out.append(f"{k}\n{' '.join(head)}\n")
        for j in range(k):
            extra = rng.normal(size=3) if forces else ()
            line = _atoms_line(sym[j], pos[j], extra)
            if i in bad and j == k - 1:
                line = line.replace(repr(float(pos[j][1])), "1.2.3", 1)
            out.append(line)
    path.write_text("".join(out))


def _read_all(path, **kw):
    batches = list(iter_extxyz(path, **kw))
    rejects = [r for b in batches for r in b.rejects]
    return concat_batches([b for b in batches if b.n_frames] or batches), rejects


def test_tricky_file_reads_like_ase(tmp_path):
    path = tmp_path / "t.extxyz"
    _tricky_file(path)
    batch, rejects = _read_all(path, batch_size=7)
    assert not rejects
    ref = ase.io.read(path, ":")
    assert batch.n_frames == len(ref)
    got = batch.to_atoms()
    for a, b in zip(got, ref):
        assert np.array_equal(a.numbers, b.numbers)
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.cell[:], b.cell[:])
        assert np.array_equal(a.pbc, b.pbc)
        ref_forces = b.calc.results.get("forces") if b.calc else b.arrays.get("forces")
        if ref_forces is None:
            assert "forces" not in a.arrays
        else:
            assert np.array_equal(a.arrays["forces"], ref_forces)
        ref_e = b.calc.results["energy"] if b.calc and "energy" in b.calc.results \
            else b.info["energy"]
        assert a.info["energy"] == ref_e
        for key in ("config_type", "step", "note"):
            assert (key in a.info) == (key in b.info), key
            if key in b.info:
                assert a.info[key] == b.info[key], key
        assert np.array_equal(a.info["dipole"], b.info.get("dipole", b.calc and
                                                            b.calc.results.get("dipole")))
        assert bool(a.info["ok"]) == bool(b.info["ok"])


def test_small_blocks_and_batches_give_the_same_frames(tmp_path, monkeypatch):
    path = tmp_path / "t.extxyz"
    _tricky_file(path, bad=(5, 17))
    big, big_rej = _read_all(path)
    monkeypatch.setattr(ex, "BLOCK_BYTES", 97)
    small, small_rej = _read_all(path, batch_size=3)
    assert [(r.frame, r.field) for r in big_rej] == [(r.frame, r.field) for r in small_rej]
    assert format_batch(big) == format_batch(small)
    assert big.index.tolist() == small.index.tolist()


def test_malformed_frame_named_and_rest_kept(tmp_path):
    path = tmp_path / "t.extxyz"
    _tricky_file(path, n=30, bad=(4, 21))
    batch, rejects = _read_all(path)
    assert [(r.file, r.frame, r.field) for r in rejects] == [
        (str(path), 4, "pos"), (str(path), 21, "pos")]
    assert all("not a real number" in r.reason for r in rejects)
    assert batch.n_frames == 28
    assert 4 not in batch.index and 21 not in batch.index


def test_roundtrip_text_is_stable(tmp_path):
    path = tmp_path / "t.extxyz"
    _tricky_file(path)
    batch, _ = _read_all(path, batch_size=11)
    text = format_batch(batch)
    (tmp_path / "a.extxyz").write_text(text)
    again, _ = _read_all(tmp_path / "a.extxyz", batch_size=5)
    assert format_batch(again) == text
    np.testing.assert_array_equal(again.positions, batch.positions)
    np.testing.assert_array_equal(again.cell, batch.cell)
    np.testing.assert_array_equal(again.pbc, batch.pbc)
