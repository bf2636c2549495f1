"""The merge config parsed once (a TOML path, a dict or a MergeConfig), its one path rule,
one read per source, the identity alignment of target-scale sources, the shared rejects
writer and the one key-placement rule (issue 29)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from conftest import requires_mace

from tealign import api
from tealign.errors import FrameError, SetupError
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch
from tealign.keys import ORIG, REF, per_atom, store_of
from tealign.merge import MergeConfig, SourceConfig, load_config, resolve_path


def _frames(path: Path, n: int, split: list | None = None, seed: int = 0) -> Path:
    """``n`` small periodic frames on the target scale (energy eV, forces eV/Å, stress
    eV/Å³); ``split`` gives frame i the split ``split[i]`` (None: no split key)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        a = Atoms("CH4", positions=rng.normal(size=(5, 3)), cell=np.eye(3) * 6, pbc=True)
        a.info["energy"] = float(-1234.5678 - rng.uniform(0, 1e3))
        a.info["stress"] = rng.normal(size=(3, 3)) * 1e-3
        a.info["mol_id"] = f"m{i % 4}"
        a.arrays["forces"] = rng.normal(size=(5, 3))
        if split is not None and split[i] is not None:
            a.info["split"] = split[i]
        frames.append(a)
    write_extxyz(path, [FrameBatch.from_atoms(frames)])
    return path


def _doc(path: str) -> dict:
    return {"target": {"e0": "vasp-pbe-mp", "seed": 1},
            "source": [{"name": "s", "path": path, "energy_key": "energy",
                        "alignment": "target", "allow_method_mismatch": True}]}


def test_one_parse_from_a_path_a_dict_or_a_config(tmp_path, monkeypatch):
    data = _frames(tmp_path / "d.extxyz", 4)
    toml = tmp_path / "m.toml"
    toml.write_text('[target]\ne0 = "vasp-pbe-mp"\nseed = 1\n\n[[source]]\nname = "s"\n'
                    'path = "d.extxyz"\nenergy_key = "energy"\nalignment = "target"\n'
                    'allow_method_mismatch = true\n')
    from_toml = load_config(toml)
    assert from_toml.parsed and from_toml.file == str(toml)
    assert from_toml.sources[0].path == "d.extxyz"  # as written (report.json records it)
    assert from_toml.sources[0].resolved_path == str(tmp_path / "d.extxyz")
    assert load_config(from_toml) is from_toml  # parsed once
    monkeypatch.chdir(tmp_path)
    from_dict = load_config(_doc("d.extxyz"))
    assert from_dict.sources == from_toml.sources and from_dict.e0 == "vasp-pbe-mp"
    assert from_dict.split_settings == ["seed"] and from_dict.file == "<dict>"
    by_hand = load_config(MergeConfig("vasp-pbe-mp", [SourceConfig("s", str(data), "energy")]))
    assert by_hand.parsed and by_hand.sources[0].resolved_path == str(data)
    with pytest.raises(SetupError, match="unknown keys"):
        load_config({"target": {"e0": "vasp-pbe-mp"},
                     "source": [{"name": "s", "path": "d", "energy_key": "e", "oops": 1}]})


def test_one_path_rule(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "beside.extxyz").write_text("")
    (tmp_path / "here.extxyz").write_text("")
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "cfg"
    assert resolve_path(base, "beside.extxyz") == str(base / "beside.extxyz")
    assert resolve_path(base, "here.extxyz") == "here.extxyz"  # exists from here
    assert resolve_path(base, "qm9:30") == "qm9:30"  # a dataset spec
    assert resolve_path(base, "vasp-pbe-mp") == "vasp-pbe-mp"  # a built-in table
    assert resolve_path(base, "missing.json") == str(base / "missing.json")


def test_a_source_is_read_once_even_with_a_split_column(tmp_path, monkeypatch):
    import tealign.merge.run as run

    data = _frames(tmp_path / "d.extxyz", 6, split=["train", "valid", "test"] * 2)
    calls = []
    real = run.iter_batches

    def counting(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(run, "iter_batches", counting)
    cfg = load_config(_doc(str(data)))
    from tealign.methods import load_table

    with pytest.warns(UserWarning, match="keep those splits"):
        out = list(run.prepare_source(cfg, cfg.sources[0], load_table("vasp-pbe-mp")))
    assert calls == [str(data)]
    assert np.asarray(out[0].info["split"]).tolist() == ["train", "valid", "test"] * 2


def test_a_split_column_missing_after_the_first_frames_is_refused(tmp_path, monkeypatch):
    import tealign.merge.run as run
    from tealign.methods import load_table

    monkeypatch.setattr(run, "iter_batches", lambda path, reader=None: iter(
        [b.select(np.arange(b.n_frames) < 3), b.select(np.arange(b.n_frames) >= 3)]))
    from tealign.io import read_batch

    b = read_batch(_frames(tmp_path / "d.extxyz", 6, split=["train"] * 3 + [None] * 3))
    cfg = load_config({**_doc(str(tmp_path / "d.extxyz")), "target": {"e0": "vasp-pbe-mp"}})
    with pytest.raises(SetupError, match="first frames of the source have one"):
        list(run.prepare_source(cfg, cfg.sources[0], load_table("vasp-pbe-mp")))


def test_identity_alignment_copies_values_bit_for_bit(tmp_path):
    from tealign.io import read_batch
    from tealign.merge.run import _to_reference

    b = read_batch(_frames(tmp_path / "d.extxyz", 8))
    src = SourceConfig("s", "d.extxyz", "energy")
    out = _to_reference(b, src)
    assert np.array_equal(out.info[REF.energy], b.info["energy"])
    assert np.array_equal(out.info[ORIG.energy], b.info["energy"])
    assert np.array_equal(out.arrays[REF.forces], b.arrays["forces"])
    assert list(out.info)[-4:] == [REF.energy, ORIG.energy, REF.stress, ORIG.stress]
    assert "energy" not in out.info and "alignment_sha256" not in out.info


def test_one_rejects_writer(tmp_path):
    from tealign.io.outputs import RejectsWriter, reject_line, write_rejects

    errs = [FrameError("a.extxyz", 3, "energy", "missing energy"),
            FrameError("b.extxyz", 0, "charge", "charged structure")]
    with RejectsWriter(tmp_path / "stream.jsonl") as log:
        log.write([])
        assert not (tmp_path / "stream.jsonl").exists()  # created at the first reject
        log.write(errs)
    path = write_rejects(tmp_path / "out.extxyz", errs)
    assert path.read_text() == (tmp_path / "stream.jsonl").read_text() \
        == "".join(reject_line(e) for e in errs)
    assert json.loads(reject_line(errs[0])) == {"file": "a.extxyz", "frame": 3,
                                                "field": "energy", "reason": "missing energy"}


def test_one_key_placement_rule():
    b = FrameBatch.from_atoms([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])])
    assert [k for k in ("energy", "forces", "stress", "virials") if per_atom(k)] == ["forces"]
    assert store_of(b, "forces") is b.arrays and store_of(b, "stress") is b.info


@requires_mace
def test_api_merge_takes_a_path_a_dict_or_a_config(tmp_path, monkeypatch):
    _frames(tmp_path / "d.extxyz", 12)
    toml = tmp_path / "m.toml"
    toml.write_text('[target]\ne0 = "vasp-pbe-mp"\nseed = 1\n\n[[source]]\nname = "s"\n'
                    'path = "d.extxyz"\nenergy_key = "energy"\nalignment = "target"\n'
                    'allow_method_mismatch = true\n')
    monkeypatch.chdir(tmp_path)
    outs = {}
    for name, config in (("path", toml), ("dict", _doc("d.extxyz")),
                         ("config", load_config(toml))):
        res = api.merge(config, tmp_path / name, workers=1, format="lmdb")
        assert res.frames_out == 12
        outs[name] = (tmp_path / name / "merged.extxyz").read_text()
    assert outs["path"] == outs["dict"] == outs["config"]


def test_a_config_built_by_hand_is_checked_like_a_toml(tmp_path):
    data = _frames(tmp_path / "d.extxyz", 2)
    with pytest.raises(SetupError, match="names must differ"):
        load_config(MergeConfig("vasp-pbe-mp", [SourceConfig("s", str(data), "energy"),
                                                SourceConfig("s", str(data), "e2")]))
    with pytest.raises(SetupError) as exc:
        load_config(MergeConfig("vasp-pbe-mp", [SourceConfig("../up", str(data), "energy")]))
    assert exc.value.field == "source[0].name"
    keep = load_config(MergeConfig("vasp-pbe-mp", [SourceConfig("s", str(data), "energy",
                                                                forces_key=None)]))
    assert keep.sources[0].forces_key is None
