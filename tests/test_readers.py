import ast
import csv
import json

import h5py
import numpy as np
import pytest

from tealign import units
from tealign.io import read_batch
from tealign.io.qm9 import qm9_csv_files
from tealign.io.spice import smiles_charge


def test_spice_info_matches_hand_conversion(shared_data, run_cli):
    path = shared_data / "fixtures" / "SPICE-1.1.4_n2.hdf5"
    code, stdout, _ = run_cli("info", path, "--json")
    assert code == 0
    result = json.loads(stdout)
    # hand conversion straight from the HDF5 values
    per_atom, elements, n = [], {}, 0
    with h5py.File(path) as f:
        for name in f:
            g = f[name]
            z = g["atomic_numbers"][()]
            e = g["dft_total_energy"][()] * 27.211386245988
            per_atom.extend(e / len(z))
            n += len(e)
            for zz in z:
                elements[int(zz)] = elements.get(int(zz), 0) + len(e)
    assert result["frames"] == 55 == n
    assert result["elements"] == {"H": elements[1], "C": elements[6], "N": elements[7],
                                  "Na": elements[11]}
    assert result["charges"] == {"1": 55}
    assert result["energy_per_atom_eV"]["min"] == pytest.approx(min(per_atom), rel=1e-12)
    assert result["energy_per_atom_eV"]["mean"] == pytest.approx(np.mean(per_atom), rel=1e-12)
    assert result["energy_per_atom_eV"]["max"] == pytest.approx(max(per_atom), rel=1e-12)
    assert result["units_verdict"].startswith("eV")


def test_spice_positions_and_forces(shared_data):
    path = shared_data / "fixtures" / "SPICE-1.1.4_n2.hdf5"
    batch = read_batch(path)
    with h5py.File(path) as f:
        g = f["C#C.[Na+]"]
        pos = g["conformations"][0].astype(float) * 0.529177210903
        grad = g["dft_total_gradient"][0].astype(float)
    i = int(np.flatnonzero(batch.info["mol_id"] == "C#C.[Na+]")[0])
    rec = batch.record(i)
    np.testing.assert_array_equal(rec.positions, pos)
    np.testing.assert_allclose(rec.arrays["forces"], -grad * 27.211386245988 / 0.529177210903,
                               rtol=1e-15)
    assert rec.info["dispersion"] == "d3bj-included" and "D3(BJ)" in rec.info["method"]


@pytest.mark.parametrize("smiles,charge", [("[N+:9]([H:1])", 1), ("[O-]C", -1),
                                          ("[Fe+3]", 3), ("[Cu++]", 2), ("[O--]", -2),
                                          ("[C@:8]([H])", 0), ("[H:3][C:1]#[C:2][H:4].[Na+:5]",
                                                               1)])
def test_smiles_charge(smiles, charge):
    assert smiles_charge(smiles) == charge


def test_mptrj_units_and_metadata(tmp_path):
    def structure(symbols, xyz, lattice):
        return {"@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0,
                "lattice": {"matrix": lattice},
                "sites": [{"species": [{"element": s, "occu": 1}], "xyz": p, "label": s,
                           "properties": {}} for s, p in zip(symbols, xyz)]}

    doc = {
        "mp-1": {"mp-1-0-0": {
            "structure": structure(["Si", "Si"], [[0, 0, 0], [1.3575, 1.3575, 1.3575]],
                                   [[0, 2.715, 2.715], [2.715, 0, 2.715], [2.715, 2.715, 0]]),
            "uncorrected_total_energy": -10.8, "corrected_total_energy": -99.0,
            "energy_per_atom": -5.4, "force": [[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]],
            "stress": [[10.0, 1.0, 0.0], [1.0, -20.0, 0.0], [0.0, 0.0, 5.0]],
            "magmom": [0.5, -0.5], "mp_id": "mp-1"}},
        "mp-2": {"mp-2-1-3": {
            "structure": structure(["Na", "Cl"], [[0, 0, 0], [2.8, 0, 0]],
                                   [[5.6, 0, 0], [0, 5.6, 0], [0, 0, 5.6]]),
            "uncorrected_total_energy": -6.5, "corrected_total_energy": -7.0,
            "force": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            "stress": [[-1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]], "magmom": None,
            "mp_id": "mp-2"}},
    }
    p = tmp_path / "mptrj.json"
    p.write_text(json.dumps(doc))
    b = read_batch(p)
    assert b.n_frames == 2
    assert b.info["energy"].tolist() == [-10.8, -6.5]  # uncorrected, never corrected
    assert b.info["mp_id"].tolist() == ["mp-1", "mp-2"]
    np.testing.assert_array_equal(b.arrays["forces"][:2], [[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])
    # 10 kbar compressive (VASP +) → −1 GPa → −1/160.2176634 eV/Å³ (ASE sign)
    s0 = b.info["stress"][0]
    assert s0[0, 0] == pytest.approx(-1.0 / 160.2176634)
    assert s0[1, 1] == pytest.approx(2.0 / 160.2176634)
    assert s0[0, 1] == pytest.approx(-0.1 / 160.2176634)
    assert b.info["stress"][1][2, 2] == pytest.approx(0.1 / 160.2176634)
    assert b.record(0).arrays["magmom"].tolist() == [0.5, -0.5]
    assert "magmom" not in b.record(1).arrays
    assert b.pbc.all() and b.cell[1, 0, 0] == 5.6


def test_qm9_first_100_against_csv():
    try:
        files = qm9_csv_files()
    except Exception as exc:  # qm9pack missing
        pytest.skip(str(exc))
    b = read_batch("qm9:100")
    assert b.n_frames == 100
    with open(files[0], newline="") as fh:
        rows = [r for _, r in zip(range(100), csv.DictReader(fh))]
    for i in (0, 1, 2, 57, 99):
        row = rows[i]
        expect = (float(row["InternalEnergy_0K_au"]) - float(row["ZPVE_au"])) * 27.211386245988
        rec = b.record(i)
        assert rec.info["energy_qm9_b3lyp"] == pytest.approx(expect, rel=1e-15)
        np.testing.assert_array_equal(rec.positions, ast.literal_eval(row["XYZ_Ang"]))
        assert rec.info["mol_id"] == f"qm9_{int(row['Index']):06d}"
    # methane: U0 − ZPVE = −40.47893 − 0.044749 Ha
    assert b.info["energy_qm9_b3lyp"][0] == pytest.approx(-40.523679 * units.HARTREE_TO_EV)
