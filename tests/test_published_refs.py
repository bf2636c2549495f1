"""Published reference energies reproduced by tealign's PySCF backend (issue 28, item 1).

Fast subset (CI): light atoms at wB97X/6-31G(d) (ANI-1x's table) and B3LYP/6-31G(2df,p)
(QM9's atom table) and QM9's water, computed here. The committed results of every atom and
molecule (datasets/published-refs, regenerate.sh) are checked against the published tables.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from tealign import units
from tealign.compute.atoms import GROUND_STATE_MULTIPLICITY
from tealign.compute.backends import gaussian_pople_shells, run_calculation
from tealign.compute.spec import parse_spec
from tealign.errors import SetupError
from tealign.methods import load_table

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "datasets" / "published-refs"
HA = units.HARTREE_TO_EV

#: the settings that reproduce Gaussian 09 (docs/published_references.md)
B3LYP_G09 = "pyscf:b3lyp/6-31g(2df,p);cartesian=d;pople=gaussian"
WB97X_G09 = "pyscf:wb97x/6-31g(d);cartesian=d"
#: QM9 molecule 3 (water): geometry (Å), U0 and ZPVE (Ha) as QM9 publishes them
QM9_WATER = ([("O", (-0.0343604951, 0.9775395708, 0.0076015923)),
              ("H", (0.0647664923, 0.0205721989, 0.0015346341)),
              ("H", (0.8717903737, 1.3007924048, 0.0006931336))], -76.404702, 0.021375)


def _atom_ha(spec_text: str, el: str) -> float:
    r = run_calculation(parse_spec(spec_text), Atoms(el), isolated_atom=True,
                        multiplicity=GROUND_STATE_MULTIPLICITY[el])
    return r.energy / HA


def _published_ha(table: str, el: str) -> float:
    return load_table(table).energies[el] / HA


@pytest.mark.parametrize("spec_text,table,el,tol_ha", [
    # published to 1e-7 Ha (torchani); ours within 1e-5 Ha (measured 3e-8 H, 4e-6 C)
    (WB97X_G09, "wb97x-6-31gd", "H", 1e-5),
    (WB97X_G09, "wb97x-6-31gd", "C", 1e-5),
    # published to 1e-6 Ha (QM9 atomref); measured within 1.5e-6 Ha
    (B3LYP_G09, "b3lyp-6-31g2dfp", "H", 5e-6),
    (B3LYP_G09, "b3lyp-6-31g2dfp", "O", 5e-6),
])
def test_published_atom_reproduced(spec_text, table, el, tol_ha):
    assert _atom_ha(spec_text, el) == pytest.approx(_published_ha(table, el), abs=tol_ha)


def test_pyscf_defaults_do_not_reproduce_qm9_atoms():
    """The options matter: PySCF's own 6-31G(2df,p) (spherical, 6-311G's d exponents) puts
    the O atom 4 mHa above QM9's; a B3LYP with VWN5 puts H 3.4 mHa above."""
    o = _atom_ha("pyscf:b3lyp/6-31g(2df,p)", "O") - _published_ha("b3lyp-6-31g2dfp", "O")
    assert 2e-3 < o < 6e-3
    h = _atom_ha("pyscf:b3lyp5/6-31g(2df,p)", "H") - _published_ha("b3lyp-6-31g2dfp", "H")
    assert 3e-3 < h < 4e-3


def test_qm9_water_single_point():
    """B3LYP/6-31G(2df,p) at QM9's geometry equals QM9's U0 - ZPVE to 1e-5 Ha (1.3e-6 seen)."""
    atoms_list, u0, zpve = QM9_WATER
    water = Atoms([s for s, _ in atoms_list], positions=[p for _, p in atoms_list])
    e = run_calculation(parse_spec(B3LYP_G09), water, forces=False).energy / HA
    assert e == pytest.approx(u0 - zpve, abs=1e-5)


def test_6d7f_forces_match_finite_differences():
    """Forces in the 6D 7F subspace are −∇E (the subspace does not move with the atoms);
    Hartree-Fock (no grid) in B3LYP_G09's basis, so the check is not blurred by the grid."""
    spec = parse_spec("pyscf:hf/6-31g(2df,p);cartesian=d;pople=gaussian;conv_tol=1e-12")
    hf = Atoms("HF", positions=[(0, 0, 0), (0, 0, 0.95)])
    f = run_calculation(spec, hf).forces
    h = 1e-3
    e = []
    for sgn in (1, -1):
        a = hf.copy()
        a.positions[1, 2] += sgn * h
        e.append(run_calculation(spec, a, forces=False).energy)
    assert f[1, 2] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=2e-4)
    assert f[0, 2] == pytest.approx(-f[1, 2], abs=1e-6)


def test_gaussian_pople_exponents_and_spec_options():
    # C: Gaussian's 2d are 2x and 1/2 x the 6-31G* exponent 0.8; f and the rest stay PySCF's
    d = sorted(sh[1][0] for sh in gaussian_pople_shells("6-31g(2df,p)", "C") if sh[0] == 2)
    assert d == [0.4, 1.6]
    f = [sh[1][0] for sh in gaussian_pople_shells("6-31g(2df,p)", "C") if sh[0] == 3]
    assert f == [0.8]
    assert len(gaussian_pople_shells("6-31g(2df,p)", "H")) == 3  # H has no d: unchanged
    # the defaults are absent from the settings: existing SPECs keep their store keys
    # (hash below is the key of this SPEC before the options existed)
    plain = parse_spec("pyscf:b3lyp/6-31g(2df,p)")
    assert plain.settings_key(periodic=False) == (
        "e2afbfefb0c71965d68110259bb9f8991f11c2467352ac0574c905a9922b94eb")
    assert parse_spec("pyscf:b3lyp/6-31g(2df,p);cartesian=none;pople=pyscf").settings_key() \
        == plain.settings_key()
    assert parse_spec(B3LYP_G09).settings_key() != plain.settings_key()
    for bad, msg in [("pyscf:b3lyp/def2-svp;pople=gaussian", "6-31G bases with 2d"),
                     ("pyscf:b3lyp/6-31g(2df,2pd);pople=gaussian", "one p on H"),
                     ("pyscf:b3lyp/6-31g(d);cartesian=6d", "one of none, d, all"),
                     ("gpaw:pbe/pw400;cartesian=d", "unknown gpaw setting")]:
        with pytest.raises(SetupError, match=msg):
            parse_spec(bad)


# ----------------------------------------------------------------------------- committed data
def _committed(name: str) -> dict:
    path = REFS / name
    if not path.exists():
        pytest.skip(f"{path} not committed (datasets/published-refs/regenerate.sh makes it)")
    return json.loads(path.read_text())


#: agreement the committed atoms reach (Ha): max |tealign − published| per reproducing level
ATOM_TOL = {"b3lyp_g09": 5e-6, "wb97x_631gd": 5e-5, "wb97m_tzvppd": 4e-4}


def test_committed_atoms_match_shipped_tables():
    levels = _committed("atoms.json")["levels"]
    for label, tol in ATOM_TOL.items():
        lev = levels[label]
        table = load_table(lev["published_table"])
        assert len(lev["elements"]) >= 5
        for el, row in lev["elements"].items():
            assert row["published_ha"] * HA == pytest.approx(table.energies[el], abs=1e-9)
            assert abs(row["tealign_ha"] - row["published_ha"]) < tol, (label, el)


def test_committed_atoms_match_shared_reference_file(shared_data):
    """The shipped tables equal /work/shared's reference file (torchani, QM9 paper)."""
    ref = json.loads((shared_data / "e0" / "isolated_atom_energies.json").read_text())
    levels = _committed("atoms.json")["levels"]
    for label, key in [("wb97m_tzvppd", "wb97m-d3bj/def2-tzvppd"),
                       ("wb97x_631gd", "wb97x/6-31g(d)"), ("b3lyp_g09", "b3lyp/6-31g(2df,p)")]:
        for el, row in levels[label]["elements"].items():
            assert row["published_ha"] == ref[key]["energies"][el]


def test_committed_qm9_molecules_within_1_mha():
    data = _committed("qm9_b3lyp.json")
    mols = data["molecules"]
    assert len(mols) >= 20
    d = np.array([m["b3lyp_g09"]["diff_mha"] for m in mols])
    assert np.abs(d).max() < 1.0
    assert data["summary"]["b3lyp_g09"]["max_abs_mha"] == pytest.approx(np.abs(d).max())


def test_committed_qm9_references_are_qm9s():
    """The reference energies in the committed file are QM9's U0 − ZPVE (needs qm9pack)."""
    from tealign.io.qm9 import iter_qm9_rows, qm9_csv_files

    try:
        qm9_csv_files()  # qm9pack is located, not imported (it does not import)
    except SetupError:
        pytest.skip("qm9pack (QM9's data) is not installed")

    mols = {m["qm9_index"]: m for m in _committed("qm9_b3lyp.json")["molecules"]}
    for row in iter_qm9_rows(max(mols)):
        i = int(row["Index"])
        if i in mols:
            ref = float(row["InternalEnergy_0K_au"]) - float(row["ZPVE_au"])
            assert mols[i]["qm9_e_elec_ha"] == pytest.approx(ref, abs=1e-9)
