import json

import numpy as np
import pytest

from tealign import units
from tealign.errors import SetupError
from tealign.methods import builtin_tables, load_table


def test_codata_2018_constants():
    assert units.HARTREE_TO_EV == 27.211386245988
    assert units.BOHR_TO_ANGSTROM == 0.529177210903
    assert units.EV_PER_A3_TO_GPA == 160.2176634
    assert units.KCAL_PER_MOL_TO_EV == 0.0433641043  # the figure of docs/architecture.md §4.1
    assert pytest.approx(4184 / 6.02214076e23 / 1.602176634e-19,
                                                     rel=2e-9) == units.KCAL_PER_MOL_TO_EV


def test_kbar_vasp_sign_to_ase():
    # 10 kbar compressive (VASP positive) = 1 GPa = -1/160.2176634 eV/Å³ in ASE's sign
    s = units.kbar_stress_vasp_to_ase(np.array([10.0]))
    assert s[0] == pytest.approx(-1 / 160.2176634, rel=1e-14)


def test_builtin_tables_in_ev():
    assert set(builtin_tables()) == {"vasp-pbe-mp", "wb97m-d3bj-def2-tzvppd", "wb97x-6-31gd",
                                     "b3lyp-6-31g2dfp"}
    w = load_table("wb97m-d3bj-def2-tzvppd")
    assert w.energies["H"] == pytest.approx(-0.4987605100487531 * 27.211386245988, rel=1e-15)
    assert w.provenance["original_units"] == "hartree"
    v = load_table("vasp-pbe-mp")
    assert v.energies["H"] == -1.11734008 and v.energies["Si"] == -0.8263903
    assert "Er" not in v.energies and len(v.energies) == 87
    q = load_table("b3lyp-6-31g2dfp")
    assert q.energies["O"] == pytest.approx(-75.064579 * units.HARTREE_TO_EV)


def test_user_table_and_errors(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"units": "kcal/mol", "energies": {"H": -10.0}, "source": "me"}))
    t = load_table(p)
    assert t.energies["H"] == pytest.approx(-10 * units.KCAL_PER_MOL_TO_EV)
    assert t.provenance["source"] == "me"
    with pytest.raises(SetupError, match="element C occurs in the data"):
        t.check_covers([1, 6], file="data.xyz")
    p.write_text(json.dumps({"units": "furlongs", "energies": {"H": 1}}))
    with pytest.raises(SetupError, match="unknown energy unit"):
        load_table(p)
    p.write_text(json.dumps({"energies": {"H": 1}}))
    with pytest.raises(SetupError, match="field 'units'"):
        load_table(p)


def test_table_roundtrip(tmp_path):
    t = load_table("wb97x-6-31gd")
    t.save(tmp_path / "x.json")
    t2 = load_table(tmp_path / "x.json")
    assert t2.energies == t.energies


def test_transition_metal_warning():
    v = load_table("vasp-pbe-mp")
    with pytest.warns(UserWarning, match="Fe"):
        assert v.warn_unknown_settings([26, 8]) == ["Fe"]


@pytest.mark.parametrize("value, why", [(1e308, "not a plausible"), (-1e308, "not a plausible"),
                                        (5000.0, "not a plausible"), (10**400, "too large"),
                                        (True, "not a number"), ("x", "not a number")])
def test_implausible_isolated_atom_energies_are_refused(value, why):
    """A table (user JSON, or inside an alignment file with a matching checksum) with an
    energy no atom can have once wrote REF_energy=inf and exited 0 (found by the audit)."""
    from tealign.methods import IsolatedAtomTable

    d = {"units": "eV", "energies": {"H": value, "O": -2000.0}}
    with pytest.raises(SetupError, match=why) as info:
        IsolatedAtomTable.from_json_dict(d, source="t.json")
    assert "energies.H" in info.value.line()


def test_every_published_table_is_within_the_plausible_range():
    from tealign.methods import ATOM_ENERGY_MAX_EV, atom_energy_min_ev, builtin_tables

    for name in builtin_tables():
        for sym, e in load_table(name).energies.items():
            assert atom_energy_min_ev(sym) < e < ATOM_ENERGY_MAX_EV, (name, sym, e)


def _fe_oxide_calibration(src, tgt, n=6, seed=0):
    """n FeO_k structures (k = 1..3) with atomization energies 3-6 eV per atom on both sides."""
    from tealign.io.frames import FrameBatch, FrameRecord

    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        numbers = np.array([26] + [8] * (1 + i % 3))
        x = rng.uniform(3, 6) * len(numbers)
        e_src = src.energies["Fe"] + src.energies["O"] * (len(numbers) - 1) - x
        e_tgt = tgt.energies["Fe"] + tgt.energies["O"] * (len(numbers) - 1) - 0.97 * x
        recs.append(FrameRecord(numbers=numbers, positions=rng.normal(size=(len(numbers), 3)),
                                info={"e_src": e_src, "e_tgt": e_tgt, "mol_id": f"m{i}"},
                                index=i))
    return FrameBatch.from_records(recs)


@pytest.mark.parametrize("case, expected", [
    ("known source, unknown target", 1),
    ("the unknown table loaded twice", 1),
    ("two unknown tables under one name", 2),
])
def test_fit_warns_once_per_table_of_unknown_settings(case, expected):
    """fit warns for d-block atoms from each table of unknown spin/smearing settings once; the
    same table loaded twice is one table, two tables that share only a file stem are two."""
    import warnings

    from tealign.align import TotalEnergyAlignment
    from tealign.methods import IsolatedAtomTable

    vasp = load_table("vasp-pbe-mp")
    sub = {s: vasp.energies[s] for s in ("Fe", "O")}
    known = IsolatedAtomTable("src", {s: e - 1000.0 for s, e in sub.items()},
                              provenance={"settings_known": True})
    if case == "known source, unknown target":
        src, tgt = known, vasp
    elif case == "the unknown table loaded twice":
        src, tgt = load_table("vasp-pbe-mp"), vasp
    else:
        unknown = {"settings_known": False}
        src = IsolatedAtomTable("atoms", {s: e - 1000.0 for s, e in sub.items()}, unknown)
        tgt = IsolatedAtomTable("atoms", dict(sub), unknown)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        TotalEnergyAlignment(src, tgt, source_key="e_src", target_key="e_tgt",
                             n_bootstrap=10).fit(_fe_oxide_calibration(src, tgt))
    said = [w for w in rec if "unknown spin/smearing" in str(w.message)]
    assert len(said) == expected and all("Fe" in str(w.message) for w in said)
