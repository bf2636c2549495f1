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
