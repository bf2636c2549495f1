"""Parallel align over byte ranges: the cuts land on frames, and the output, the rejects and
their frame numbers are those of one reader, whatever the file holds."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.data import chemical_symbols
from ase.io import write as ase_write

from tealign.align import TotalEnergyAlignment, pipeline
from tealign.errors import SetupError
from tealign.io.extxyz import iter_extxyz
from tealign.io.extxyz_ranges import frame_ranges
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.keys import Keys
from tealign.methods import IsolatedAtomTable

SRC = IsolatedAtomTable(name="src", energies={"H": -13.6, "C": -1027.5, "O": -2041.2})
TGT = IsolatedAtomTable(name="tgt", energies={"H": -1.1, "C": -1.26, "O": -1.55})


@pytest.fixture
def tea():
    """A fitted single-factor alignment (a ≈ 0.93) over H, C, O."""
    rng = np.random.default_rng(0)
    recs = []
    for i in range(30):
        z = rng.choice([1, 6, 8], 6)
        sym = [chemical_symbols[k] for k in z]
        x = 4.0 * len(z) * rng.uniform(0.8, 1.2)
        info = {"e_src": sum(SRC.energies[s] for s in sym) - x,
                "e_tgt": sum(TGT.energies[s] for s in sym) - 0.93 * x + rng.normal() * 0.01}
        recs.append(FrameRecord(numbers=z, positions=rng.normal(size=(6, 3)), index=i,
                                info=info))
    return TotalEnergyAlignment(SRC, TGT).fit(FrameBatch.from_records(recs), "e_src", "e_tgt")


def frames(n: int, seed: int = 0, missing_every: int = 0) -> list[Atoms]:
    """Molecules and cells of 1–9 atoms with energy and forces; every ``missing_every``-th
    has no energy (a transform reject)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        nat = int(rng.integers(1, 10))
        z = rng.choice([1, 6, 8], nat)
        a = Atoms(numbers=z, positions=rng.normal(size=(nat, 3)) * 2)
        if i % 3 == 0:
            a.cell = np.diag(rng.uniform(4, 6, 3))
            a.pbc = True
            a.info["stress"] = rng.normal(size=6) * 1e-3
        if not (missing_every and i % missing_every == missing_every - 1):
            a.info["energy"] = float(sum(SRC.energies[s] for s in a.get_chemical_symbols())
                                     - 4.0 * nat)
        a.arrays["forces"] = rng.normal(size=(nat, 3))
        a.info["mol_id"] = f"m{i}"
        out.append(a)
    return out


def frame_starts(path) -> list[int]:
    """Byte offset of every frame's count line, by walking the counts (VEC-free files)."""
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    offsets = np.concatenate([[0], np.cumsum([len(x) + 1 for x in lines])])
    starts, k = [], 0
    while k < len(lines) and lines[k].strip():
        starts.append(int(offsets[k]))
        k += 2 + int(lines[k])
    return starts


def align_both(tea, path, tmp_path, monkeypatch, min_range: int = 512, **options):
    """Align with one reader (workers=1) and over ranges (workers=2, ranges of about
    ``min_range`` bytes); also says whether the ranges were given up for one reader."""
    monkeypatch.setattr(pipeline, "MIN_RANGE_BYTES", min_range)
    monkeypatch.setattr(pipeline, "RANGES_PER_WORKER", 10**9)
    one_pass = []
    stream = pipeline._align_stream
    monkeypatch.setattr(pipeline, "_align_stream",
                        lambda *a, **k: one_pass.append(1) or stream(*a, **k))
    out = {}
    for workers in (1, 2):
        one_pass.clear()
        dest = tmp_path / f"out{workers}.extxyz"
        counts = pipeline.align_file(tea, str(path), dest, Keys(), workers=workers, **options)
        out[workers] = (dest.read_bytes(), counts)
    out["fell_back"] = bool(one_pass)
    return out


def fooling_target(path) -> int:
    """A range size whose proposed cuts include one that is not a frame start."""
    starts = set(frame_starts(path))
    for target in range(100, 400):
        if {lo for lo, _ in frame_ranges(path, target)} - starts:
            return target
    raise AssertionError("no range size fools the proposal")


def test_cuts_land_on_frame_starts(tmp_path):
    path = tmp_path / "f.extxyz"
    ase_write(path, frames(300), format="extxyz")
    starts = set(frame_starts(path))
    ranges = frame_ranges(path, 700)
    assert len(ranges) > 20
    assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:]))
    assert {lo for lo, _ in ranges} <= starts
    # the ranges read back every frame exactly once, in order
    ids = [m for lo, hi in ranges for b in iter_extxyz(path, byte_range=(lo, hi))
           for m in b.info["mol_id"]]
    assert ids == [f"m{i}" for i in range(300)]


def test_parallel_output_and_rejects_equal_one_reader(tea, tmp_path, monkeypatch):
    path = tmp_path / "f.extxyz"
    ase_write(path, frames(400, missing_every=37), format="extxyz")
    got = align_both(tea, path, tmp_path, monkeypatch)
    (serial, c1), (parallel, c2) = got[1], got[2]
    assert not got["fell_back"]
    assert parallel == serial
    assert (c2.frames_in, c2.frames_out) == (c1.frames_in, c1.frames_out) == (400, 390)
    assert [(r.frame, r.field, r.reason) for r in c2.rejects] == \
        [(r.frame, r.field, r.reason) for r in c1.rejects]
    assert [r.frame for r in c1.rejects] == list(range(36, 400, 37))


def test_a_broken_frame_reads_in_one_pass(tea, tmp_path, monkeypatch):
    """A parse error in the middle: the ranges are not trusted; same output and rejects."""
    path = tmp_path / "f.extxyz"
    ase_write(path, frames(300), format="extxyz")
    lines = path.read_text().split("\n")
    starts = [i for i, x in enumerate(lines) if x.startswith("Lattice=") or "Properties" in x]
    lines[starts[150] + 1] = "H 0.0 zero 1.0 0.1 0.2 0.3"  # a bad number
    path.write_text("\n".join(lines))
    got = align_both(tea, path, tmp_path, monkeypatch)
    assert got["fell_back"]
    assert got[2][0] == got[1][0]
    assert [(r.frame, r.field) for r in got[2][1].rejects] == \
        [(r.frame, r.field) for r in got[1][1].rejects] and len(got[1][1].rejects) == 1
    assert got[1][1].rejects[0].frame == 150


def hydrogen_pairs(path, comments: list[str], seed: int = 3) -> None:
    """H2 frames (2 atoms), frame i with comment line ``comments[i]``."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for comment in comments:
            fh.write(f"2\n{comment}\n")
            for x in rng.normal(size=(2, 3)):
                fh.write(f"H {x[0]:.1f} {x[1]:.1f} {x[2]:.1f}\n")


def test_integer_comment_lines_cannot_fool_the_cuts(tea, tmp_path, monkeypatch):
    """Comment lines that are bare atom counts make frames look shifted by one line; a cut
    lands inside a frame, and the result is still that of one reader."""
    path = tmp_path / "f.extxyz"
    hydrogen_pairs(path, ["2"] * 400)
    target = fooling_target(path)
    monkeypatch.setattr(pipeline, "MIN_RANGE_BYTES", target)
    monkeypatch.setattr(pipeline, "RANGES_PER_WORKER", 10**9)
    # no energy key at all: both ways raise the same setup error and write nothing
    for w in (1, 2):
        dest = tmp_path / f"o{w}.extxyz"
        with pytest.raises(SetupError, match="no frame has this energy key"):
            pipeline.align_file(tea, str(path), dest, Keys(), workers=w)
        assert not dest.exists()
    # the first half without energies (rejects), the second half with
    hydrogen_pairs(path, ["2"] * 200 + ["energy=-27.0"] * 200)
    got = align_both(tea, path, tmp_path, monkeypatch, min_range=fooling_target(path))
    assert got["fell_back"]
    assert got[2][0] == got[1][0]
    assert [r.frame for r in got[2][1].rejects] == [r.frame for r in got[1][1].rejects] \
        == list(range(200))
    assert got[1][1].frames_out == 200


def test_strict_raises_the_first_reject_either_way(tea, tmp_path, monkeypatch):
    path = tmp_path / "f.extxyz"
    ase_write(path, frames(300, missing_every=120), format="extxyz")
    monkeypatch.setattr(pipeline, "MIN_RANGE_BYTES", 512)
    msgs = []
    for workers in (1, 2):
        dest = tmp_path / f"s{workers}.extxyz"
        with pytest.raises(SetupError) as exc:
            pipeline.align_file(tea, str(path), dest, Keys(), workers=workers, strict=True)
        msgs.append(str(exc.value))
        assert not dest.exists()
        assert not list(tmp_path.glob(".tealign-parts-*"))
    assert msgs[0] == msgs[1] and "frame 119" in msgs[0]


def test_inverse_over_ranges_restores_the_source(tea, tmp_path, monkeypatch):
    path = tmp_path / "f.extxyz"
    ase_write(path, frames(200), format="extxyz")
    monkeypatch.setattr(pipeline, "MIN_RANGE_BYTES", 512)
    fwd = tmp_path / "fwd.extxyz"
    pipeline.align_file(tea, str(path), fwd, Keys(), workers=2)
    got = align_both(tea, fwd, tmp_path, monkeypatch, inverse=True)
    assert got[2][0] == got[1][0] and not got["fell_back"]
    back = list(iter_extxyz(tmp_path / "out2.extxyz"))
    orig = list(iter_extxyz(path))
    for key, store in (("energy", "info"), ("forces", "arrays")):
        assert np.allclose(np.concatenate([getattr(b, store)[key] for b in back]),
                           np.concatenate([getattr(b, store)[key] for b in orig]), atol=1e-9)


def test_key_checks_judge_the_whole_file_either_way(tea, tmp_path, monkeypatch):
    """Stress under another key in the first frames only: no error with one reader or with
    ranges (the first range alone would look wrong); with no frame under ``stress`` at all,
    the same setup error both ways."""
    sample = frames(400)
    for a in sample[:60]:
        if "stress" in a.info:
            a.info["stress_dft"] = a.info.pop("stress")
    path = tmp_path / "f.extxyz"
    ase_write(path, sample, format="extxyz")
    got = align_both(tea, path, tmp_path, monkeypatch)
    assert not got["fell_back"] and got[2][0] == got[1][0] and got[1][1].frames_out == 400
    for a in sample:
        if "stress" in a.info:
            a.info["stress_dft"] = a.info.pop("stress")
    ase_write(path, sample, format="extxyz")
    for w in (1, 2):
        with pytest.raises(SetupError, match="no frame has stress key 'stress'.*stress_dft"):
            pipeline.align_file(tea, str(path), tmp_path / f"k{w}.extxyz", Keys(), workers=w)
        assert not (tmp_path / f"k{w}.extxyz").exists()


def test_info_values_equal_where_their_type_changes(tea, tmp_path, monkeypatch):
    """An info key that is an integer in some frames and a float in others is written as its
    batch decides (``1`` or ``1.0``, one reader's batches as much as the ranges'); the values
    read back are the same either way."""
    sample = frames(400)
    for i, a in enumerate(sample):
        a.info["x"] = 1 if i < 200 else 1.5
    path = tmp_path / "f.extxyz"
    ase_write(path, sample, format="extxyz")
    align_both(tea, path, tmp_path, monkeypatch)
    x = [np.concatenate([np.asarray(b.info["x"], dtype=float)
                         for b in iter_extxyz(tmp_path / f"out{w}.extxyz")]) for w in (1, 2)]
    assert np.array_equal(x[0], x[1]) and x[0][0] == 1.0 and x[0][-1] == 1.5
