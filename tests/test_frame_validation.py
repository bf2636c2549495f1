"""Issue 26 (items 6, 7) and 27 (item 6): one bad value in one frame is one reject naming
file, frame and field; values are checked for type, shape, finiteness and physical range;
alignments that would reject everything, leave forces unscaled or align twice say so."""

from __future__ import annotations

import copy
import json
import warnings

import h5py
import numpy as np
import pytest

from tealign.align import TotalEnergyAlignment
from tealign.errors import SetupError
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.io.mptrj import iter_mptrj
from tealign.io.spice import iter_spice
from tealign.methods import load_table

SRC, TGT = load_table("wb97m-d3bj-def2-tzvppd"), load_table("vasp-pbe-mp")


def _read(it):
    batches = list(it)
    recs = [b.record(i) for b in batches for i in range(b.n_frames)]
    rejects = {r.frame: (r.field, r.reason) for b in batches for r in b.rejects}
    return recs, rejects


# ------------------------------------------------------------------------------ MPtrj
GOOD_MP = {"structure": {"lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 3]]},
                         "sites": [{"species": [{"element": "Na", "occu": 1}], "xyz": [0, 0, 0]},
                                   {"species": [{"element": "Cl", "occu": 1}],
                                    "xyz": [1.5, 1.5, 1.5]}], "charge": 0},
           "uncorrected_total_energy": -6.5, "force": [[0, 0, 0.1], [0, 0, -0.1]],
           "stress": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "magmom": [0.5, -0.5]}

MP_BAD = [  # (path in the entry, value, field of the reject)
    ("force", "abc", "force"), ("force", [[0, 0], [0, 0, 1]], "force"),
    ("stress", "x", "stress"), ("stress", [[1, 0], [0, 1, 0], [0, 0, 1]], "stress"),
    ("magmom", "x", "magmom"), ("magmom", [[1], [1, 2]], "magmom"),
    ("magmom", [None, 1.0], "magmom"), ("magmom", [1.0, 2.0, 3.0], "magmom"),
    ("uncorrected_total_energy", True, "uncorrected_total_energy"),
    ("uncorrected_total_energy", "-6.5", "uncorrected_total_energy"),
    ("structure.charge", "abc", "structure.charge"),
    ("structure.charge", 1.5, "structure.charge"),
    ("structure.lattice.matrix", [[1, 0], [0, 1]], "structure.lattice"),
    ("structure.lattice.matrix", [[1, 0, 0], [0, 1, 0], [0, 0, None]], "structure.lattice"),
    ("structure.sites", "NaCl", "structure.sites"),
]


def test_mptrj_bad_values_reject_their_entry_only(tmp_path):
    entries = {}
    for k, (path, value, _) in enumerate(MP_BAD):
        e = copy.deepcopy(GOOD_MP)
        *parents, last = path.split(".")
        cur = e
        for p in parents:
            cur = cur[p]
        cur[last] = value
        entries[f"bad{k:02d}"] = e
    entries["zz_good"] = GOOD_MP
    p = tmp_path / "mp.json"
    p.write_text(json.dumps({"mp-1": entries}).replace("NaN", "null"))
    recs, rejects = _read(iter_mptrj(p))
    assert {k: f for k, (f, _) in rejects.items()} == {k: f for k, (_, _, f) in
                                                       enumerate(MP_BAD)}
    assert len(recs) == 1 and recs[0].info["energy"] == -6.5
    np.testing.assert_allclose(recs[0].arrays["magmom"], [0.5, -0.5])
    assert "1.5" in rejects[MP_BAD.index(("structure.charge", 1.5, "structure.charge"))][1]


def test_mptrj_null_magmom_is_no_magmom_and_integral_charge_kept(tmp_path):
    e = copy.deepcopy(GOOD_MP)
    e["magmom"] = None
    e["structure"]["charge"] = -1.0
    p = tmp_path / "mp.json"
    p.write_text(json.dumps({"mp-1": {"0": e}}))
    recs, rejects = _read(iter_mptrj(p))
    assert not rejects and "magmom" not in recs[0].arrays and recs[0].info["charge"] == -1


# ------------------------------------------------------------------------------ SPICE
def _spice(path, groups):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as fh:
        for name, kw in groups.items():
            z = kw.get("z", np.array([8, 1, 1]))
            n = kw.get("n", 4)
            g = fh.create_group(name)
            g["atomic_numbers"] = z
            g["conformations"] = kw.get("conf", rng.normal(size=(n, 3, 3)))
            g["dft_total_energy"] = kw.get("e", -76.4 + rng.normal(size=n) * 0.01)
            g["dft_total_gradient"] = kw.get("grad", rng.normal(size=(n, 3, 3)) * 0.01)
            g["smiles"] = np.array([b"[O:1]([H:2])[H:3]"])


@pytest.mark.parametrize("kw,field,why", [
    ({"z": np.array([-8, 1, 1])}, "atomic_numbers", "-8 is not an atomic number"),
    ({"z": np.array([0, 1, 1])}, "atomic_numbers", "0 is not an atomic number"),
    ({"z": np.array([8.7, 1, 1])}, "atomic_numbers", "not an integer: 8.7"),
    ({"z": np.array([300, 1, 1])}, "atomic_numbers", "300 is not an atomic number"),
    ({"z": np.array([b"O", b"H", b"H"])}, "atomic_numbers", "dtype"),
    ({"e": -76.4 + np.zeros(6)}, "dft_total_energy", "one value per conformation (4)"),
    ({"e": np.array([b"x"] * 4)}, "dft_total_energy", "dtype"),
    ({"grad": np.zeros((4, 2, 3))}, "dft_total_gradient", "shape"),
    ({"conf": np.zeros((4, 2, 3))}, "conformations", "3 atoms"),
])
def test_spice_bad_group_rejects_its_conformations_not_the_file(tmp_path, kw, field, why):
    p = tmp_path / "s.hdf5"
    _spice(p, {"a_bad": kw, "b_good": {}})
    recs, rejects = _read(iter_spice(p))
    assert sorted(rejects) == [0, 1, 2, 3]  # every conformation of the bad group counted
    assert all(f == f"a_bad/{field}" and why in r for f, r in rejects.values())
    assert [r.index for r in recs] == [4, 5, 6, 7]
    assert all(list(r.numbers) == [8, 1, 1] for r in recs)


# ------------------------------------------------------------------------------ align
def _fitted(a=0.93):
    rng = np.random.default_rng(3)
    recs = []
    for i in range(20):
        numbers = np.array([6] * int(rng.integers(1, 4)) + [1] * int(rng.integers(2, 8)) + [8])
        x = 4.0 * len(numbers) * rng.uniform(0.8, 1.2)
        e_src = sum(SRC.by_number()[z] for z in numbers) - x
        e_tgt = sum(TGT.by_number()[z] for z in numbers) - a * x
        recs.append(FrameRecord(numbers=numbers, positions=rng.normal(size=(len(numbers), 3)),
                                info={"e_src": e_src, "e_tgt": e_tgt, "mol_id": f"c{i}"},
                                arrays={"forces_src": rng.normal(size=(len(numbers), 3))},
                                index=i))
    data = FrameBatch.from_records(recs)
    tea = TotalEnergyAlignment(SRC, TGT, n_bootstrap=20, source_key="e_src",
                               target_key="e_tgt").fit(data)
    return tea, data


def test_transform_defaults_to_the_fitted_source_key():
    tea, data = _fitted()
    out = tea.transform(data, forces_key="forces_src")
    assert out.n_frames == data.n_frames and not out.rejects
    np.testing.assert_allclose(out.arrays["REF_forces"], tea.a_ * data.arrays["forces_src"])


def test_transform_without_the_energy_key_anywhere_is_a_setup_error():
    tea, data = _fitted()
    with pytest.raises(SetupError, match="no frame has this energy key.*e_src"):
        tea.transform(data, energy_key="energy")


def test_transform_refuses_to_leave_forces_unscaled():
    tea, data = _fitted()
    with pytest.raises(SetupError, match="forces_src"):
        tea.transform(data, energy_key="e_src")  # forces_key defaults to 'forces'
    out = tea.transform(data, energy_key="e_src", forces_key=None)  # asked for: no forces
    assert "REF_forces" not in out.arrays


def test_transform_rejecting_every_frame_warns():
    tea, data = _fitted()
    data.info["charge"] = np.ones(data.n_frames, dtype=np.int64)
    with pytest.warns(UserWarning, match="rejected every frame"):
        out = tea.transform(data, forces_key="forces_src")
    assert out.n_frames == 0 and len(out.rejects) == data.n_frames


def test_transform_rejects_bad_charges_and_foreign_elements_one_by_one():
    tea, data = _fitted()
    charge = np.empty(data.n_frames, dtype=object)
    charge[:] = 0
    charge[1], charge[2], charge[3], charge[4] = "abc", np.array([1, 2]), 1.5, 1
    data.info["charge"] = charge
    data.numbers = data.numbers.copy()
    data.numbers[data.offsets[5]] = 26  # Fe: not in the wB97M table
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tea.transform(data, forces_key="forces_src")
    got = {r.frame: r.field for r in out.rejects}
    assert got == {1: "charge", 2: "charge", 3: "charge", 4: "charge", 5: "e0[Fe]"}
    assert out.n_frames == data.n_frames - 5


def test_realigning_aligned_frames_needs_asking():
    tea, data = _fitted()
    out = tea.transform(data, forces_key="forces_src")
    with pytest.raises(SetupError, match="aligned already") as exc:
        tea.transform(out, energy_key="REF_energy", forces_key="REF_forces")
    assert exc.value.field == "alignment_sha256"
    again = tea.transform(out, energy_key="REF_energy", forces_key="REF_forces",
                          allow_realign=True)
    assert again.n_frames == out.n_frames


def test_cli_refuses_realign_and_qm9_counts_below_one(tmp_path, run_cli):
    from tealign.io.extxyz import write_extxyz

    tea, data = _fitted()
    al = tmp_path / "al.json"
    tea.save(al)
    data.info["energy"] = data.info.pop("e_src")
    data.arrays["forces"] = data.arrays.pop("forces_src")
    src = tmp_path / "src.extxyz"
    write_extxyz(src, [data])
    aligned = tmp_path / "aligned.extxyz"
    assert run_cli("align", src, "--alignment", al, "-o", aligned)[0] == 0
    twice = tmp_path / "twice.extxyz"
    code, _, err = run_cli("align", aligned, "--alignment", al, "--energy-key", "REF_energy",
                           "--forces-key", "REF_forces", "-o", twice)
    assert code == 2 and "aligned already" in err and "--allow-realign" in err
    assert not twice.exists()
    code, _, _ = run_cli("align", aligned, "--alignment", al, "--energy-key", "REF_energy",
                         "--forces-key", "REF_forces", "--allow-realign", "-o", twice)
    assert code == 0 and twice.exists()
    for n in ("-5", "0"):
        code, _, err = run_cli("info", f"qm9:{n}")
        assert code == 2 and "N ≥ 1" in err


@pytest.mark.parametrize("a,ok", [(0.93, True), (1.9, True), (2.5, False), (0.3, False),
                                  (1e308, False), (10**400, False)])
def test_alignment_values_must_be_plausible(a, ok):
    from tealign.align.estimator import validate_alignment

    tea, _ = _fitted()
    d = tea.to_dict()
    d["model"]["a"] = a
    d["sha256"] = "0" * 64
    if ok:
        validate_alignment(d)
    else:
        with pytest.raises(SetupError, match="model.a"):
            validate_alignment(d)


def test_fit_refuses_an_implausible_factor():
    with pytest.raises(SetupError, match="0.5 < a < 2"):
        _fitted(a=3.0)


# ------------------------------------------------------------------------------ fuzzing
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.text(max_size=4)
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=2),
    max_leaves=8)
_MP_PATHS = ["force", "stress", "magmom", "uncorrected_total_energy", "structure",
             "structure.charge", "structure.lattice", "structure.lattice.matrix",
             "structure.sites", "structure.sites.0", "structure.sites.0.xyz",
             "structure.sites.1.species", "structure.sites.0.species.0.element",
             "structure.sites.0.species.0.occu", "force.0", "stress.2", "magmom.1"]


def _set(entry, path, value):
    *parents, last = path.split(".")
    cur = entry
    for p in parents:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value


def _valid_record(r) -> None:
    """What a reader hands on is physically usable: the checks every frame passed."""
    n = len(r.numbers)
    assert n >= 1 and np.asarray(r.numbers).dtype.kind == "i"
    assert ((np.asarray(r.numbers) >= 1) & (np.asarray(r.numbers) <= 118)).all()
    assert np.asarray(r.positions).shape == (n, 3) and np.isfinite(r.positions).all()
    assert np.asarray(r.cell).shape == (3, 3) and np.isfinite(r.cell).all()
    e = r.info["energy"]
    assert isinstance(e, float) and np.isfinite(e)
    if "forces" in r.arrays:
        f = np.asarray(r.arrays["forces"])
        assert f.shape == (n, 3) and f.dtype.kind == "f" and np.isfinite(f).all()
    if "magmom" in r.arrays:
        assert np.asarray(r.arrays["magmom"]).shape == (n,)
        assert np.isfinite(r.arrays["magmom"]).all()
    if "charge" in r.info:
        assert isinstance(r.info["charge"], int) and not isinstance(r.info["charge"], bool)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(_MP_PATHS), _JUNK),
                min_size=1, max_size=4))
def test_fuzzed_mptrj_reads_or_rejects_every_entry(tmp_path, edits):
    n = 6
    entries = [copy.deepcopy(GOOD_MP) for _ in range(n)]
    for k, e in enumerate(entries):
        e["uncorrected_total_energy"] = -6.5 - k
    touched = set()
    for k, path, value in edits:
        try:
            _set(entries[k], path, value)
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # an earlier edit removed the path
        touched.add(k)
    p = tmp_path / "mp.json"
    p.write_text(json.dumps({"mp-1": {f"f{k}": e for k, e in enumerate(entries)}}))
    recs, rejects = _read(iter_mptrj(p))  # never anything but a frame error per entry
    assert len(recs) + len(rejects) == n and not set(rejects) & {r.index for r in recs}
    for r in recs:
        _valid_record(r)
    got = {r.index: r.info["energy"] for r in recs}
    for k in set(range(n)) - touched:
        assert got[k] == -6.5 - k


_SPICE_KEYS = ["atomic_numbers", "conformations", "dft_total_energy", "dft_total_gradient",
               "dispersion_correction_energy", "smiles"]
_ARRAYS = st.one_of(
    st.builds(lambda shape, v: np.full(shape, v),
              st.lists(st.integers(0, 5), max_size=3).map(tuple),
              st.floats(allow_nan=True, allow_infinity=True) | st.integers(-300, 300)),
    st.builds(lambda shape: np.full(shape, b"x"), st.lists(st.integers(1, 4), max_size=2)
              .map(tuple)),
    st.builds(lambda shape: np.random.default_rng(0).normal(size=shape),
              st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)),
)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(_SPICE_KEYS), _ARRAYS),
                min_size=1, max_size=3))
def test_fuzzed_spice_reads_or_rejects_every_conformation(tmp_path, edits):
    p = tmp_path / "s.hdf5"
    names = [f"g{k}" for k in range(4)]
    _spice(p, {name: {"d3": True} for name in names})
    with h5py.File(p, "a") as fh:
        for name in names:
            fh[name]["dispersion_correction_energy"] = np.full(4, -0.001)
        for k, key, value in edits:
            g = fh[names[k]]
            if key in g:
                del g[key]
            g[key] = value
        expected = 0
        for name in names:  # frames a reader can delimit: the conformations' first axis
            shape = fh[name]["conformations"].shape
            expected += int(shape[0]) if shape and shape[0] > 0 else 1
    touched = {names[k] for k, _, _ in edits}
    with h5py.File(p, "r") as fh:
        clean = {n: (fh[n]["dft_total_energy"][()].copy(), fh[n]["conformations"][()].copy())
                 for n in names if n not in touched}
    recs, rejects = _read(iter_spice(p))
    assert len(recs) + len(rejects) == expected
    for r in recs:
        _valid_record(r)
    for name, (e, conf) in clean.items():
        mine = [r for r in recs if r.info["mol_id"] == name]
        assert len(mine) == 4
        np.testing.assert_allclose([r.info["energy"] for r in mine], e * 27.211386245988)
        np.testing.assert_allclose(mine[0].positions, conf[0] * 0.529177210903)


def test_mptrj_integer_beyond_64_bits_is_read_not_a_setup_error(tmp_path):
    entries = {f"f{k}": copy.deepcopy(GOOD_MP) for k in range(4)}
    entries["f2"]["structure"]["charge"] = 10**20  # valid JSON the C parser cannot hold
    entries["f3"]["uncorrected_total_energy"] = -7.25
    p = tmp_path / "mp.json"
    p.write_text(json.dumps({"mp-1": entries}))
    recs, rejects = _read(iter_mptrj(p, batch_size=1))  # two batches out before the restart
    assert [r.index for r in recs] == [0, 1, 2, 3] and not rejects
    assert recs[2].info["charge"] == 10**20 and recs[3].info["energy"] == -7.25


# ------------------------------------------------------------------------------ extxyz
@pytest.mark.parametrize("column,value,why", [
    ("Z:I:1", "0", "0 is not an atomic number"), ("Z:I:1", "-8", "-8 is not an atomic number"),
    ("Z:I:1", "300", "300 is not an atomic number"), ("Z:R:1", "8.7", "8.7 is not an integer"),
    ("species:S:1", "X", "dummy atom"), ("species:S:1", "8", "is an atomic number"),
])
def test_extxyz_atomic_numbers_outside_1_118_reject_their_frame(tmp_path, column, value, why):
    from tealign.io import read_batch

    p = tmp_path / "z.extxyz"
    ok = "O" if column.startswith("species") else "8"
    p.write_text(f"1\nProperties={column}:pos:R:3 energy=-1\n{value} 0 0 0\n"
                 f"1\nProperties={column}:pos:R:3 energy=-2\n{ok} 0 0 0\n")
    b = read_batch(p)
    assert b.numbers.tolist() == [8] and b.index.tolist() == [1]
    assert [r.frame for r in b.rejects] == [0] and why in b.rejects[0].reason


@pytest.mark.parametrize("where,raw,field,why", [
    ("charge", "9" * 400, "structure.charge", "integer"),  # > 64 bits and > float range
    ("energy", "9" * 400, "uncorrected_total_energy", "not a finite number"),
    ("energy", "1e400", "uncorrected_total_energy", "not a finite number"),  # overflows C
    ("energy", "-1e400", "uncorrected_total_energy", "not a finite number"),
    ("energy", "1e308", "uncorrected_total_energy", "per atom"),  # finite, not physical
    ("energy", "-2001", "uncorrected_total_energy", "per atom"),  # 2 atoms: > 1e3 eV/atom
])
def test_mptrj_number_beyond_float_or_physics_rejects_its_entry_only(tmp_path, where, raw,
                                                                     field, why):
    entries = {f"f{k}": copy.deepcopy(GOOD_MP) for k in range(4)}
    entries["f3"]["uncorrected_total_energy"] = -7.25
    if where == "charge":
        entries["f1"]["structure"]["charge"] = "@@"
    else:
        entries["f1"]["uncorrected_total_energy"] = "@@"
    p = tmp_path / "mp.json"
    p.write_text(json.dumps({"mp-1": entries}).replace('"@@"', raw))  # raw JSON number
    recs, rejects = _read(iter_mptrj(p, batch_size=1))
    assert [r.index for r in recs] == [0, 2, 3] and recs[2].info["energy"] == -7.25
    assert list(rejects) == [1] and rejects[1][0] == field and why in rejects[1][1]
    np.testing.assert_allclose(recs[1].positions, [[0, 0, 0], [1.5, 1.5, 1.5]])


def _spice_with_broken(path, broken: dict[str, list[str]]):
    """Two good groups plus groups holding only the datasets listed (copied from a good one)."""
    _spice(path, {"b_good": {}, "c_good": {}})
    with h5py.File(path, "a") as fh:
        for name, keys in broken.items():
            g = fh.create_group(name)
            for key in keys:
                g[key] = fh["b_good"][key][()]


@pytest.mark.parametrize("broken,frames,field", [
    ({"zz_empty": []}, [8], "zz_empty/atomic_numbers"),  # sorts last: after 8 good frames
    ({"a_empty": []}, [0], "a_empty/atomic_numbers"),  # sorts first: detection must see past it
    ({"a_no_energy": ["atomic_numbers", "conformations"]}, [0, 1, 2, 3],
     "a_no_energy/dft_total_energy"),  # conformations countable: one reject each
])
def test_spice_group_missing_datasets_is_a_reject_not_the_run(tmp_path, broken, frames, field):
    from tealign.io import detect_format, read_batch

    p = tmp_path / "s.hdf5"
    _spice_with_broken(p, broken)
    assert detect_format(p) == "spice"
    b = read_batch(p)
    assert [r.frame for r in b.rejects] == frames
    assert all(r.field == field and "missing" in r.reason for r in b.rejects)
    assert b.n_frames == 8 and sorted(b.index.tolist() + frames) == list(range(8 + len(frames)))


def test_spice_file_with_no_usable_group_is_a_setup_error(tmp_path):
    p = tmp_path / "s.hdf5"
    with h5py.File(p, "w") as fh:
        fh.create_group("a").create_dataset("conformations", data=np.zeros((2, 1, 3)))
        fh.create_group("b")
    with pytest.raises(SetupError, match="none of its 2 groups"):
        list(iter_spice(p))
