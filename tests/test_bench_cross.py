"""bench cross: the bridge definition balances; on a tiny bridge set computed by
`tealign compute calib` at two xTB levels, the label-level numbers equal an independent
computation from the dataset's keys, and `--calculator xtb` runs (and, being the target
level itself, reproduces the truth)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "datasets" / "bridge-mini"


def _geometries():
    spec = importlib.util.spec_from_file_location("bridge_make_geometries",
                                                  BRIDGE / "make_geometries.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _atoms_of(frames, s):
    return Counter(frames[s].get_chemical_symbols())


# ----------------------------------------------------------------------------- the real set
def test_every_bridge_item_balances_and_files_match_the_builder():
    d = json.loads((BRIDGE / "bridge.json").read_text())
    frames = {a.info["species"]: a for f in ("molecules.extxyz", "periodic.extxyz")
              for a in read(BRIDGE / f, ":")}
    assert len(d["reactions"]) >= 10 and len(d["adsorption"]) >= 6 and len(d["lattice"]) >= 3
    z = {s: e["formula_units"] for s, e in d["species"].items()}
    for r in d["reactions"]:
        net: Counter = Counter()
        for s, nu in r["coefficients"].items():
            for el, n in _atoms_of(frames, s).items():
                net[el] += Fraction(nu) * n / z[s]
        assert all(v == 0 for v in net.values()), (r["equation"], dict(net))
        # the equation text names the same species on each side as the coefficients
        lhs, rhs = r["equation"].split("->")
        assert lhs.count("+") + rhs.count("+") + 2 == len(r["coefficients"]), r["equation"]
        phases = {s.split("_")[-1] for s in r["coefficients"]}
        assert phases == {"g", "s"}, f"{r['id']} is not gas–solid"
    for a in d["adsorption"]:
        assert _atoms_of(frames, a["complex"]) == (_atoms_of(frames, a["slab"])
                                                   + _atoms_of(frames, a["molecule"]))
        cplx, slab = frames[a["complex"]], frames[a["slab"]]
        np.testing.assert_allclose(cplx.positions[: len(slab)], slab.positions, atol=1e-6)
    for c in d["lattice"]:
        cryst = _atoms_of(frames, c["crystal"])
        mol = _atoms_of(frames, c["molecule"])
        assert cryst == Counter({el: n * c["molecules_per_cell"] for el, n in mol.items()})
    for s, a in frames.items():
        assert len(a) <= 24, s
        role = a.info["role"]
        expected = {"molecule": "organic", "solid": "inorganic", "slab": "inorganic",
                    "complex": "bridge", "molecular_crystal": "bridge"}[role]
        assert a.info["config_type"] == expected, s
        assert a.info["mol_id"] == s
        if role == "molecule":
            assert not a.pbc.any() and "kpts" not in a.info
            continue
        kpts = np.asarray(a.info["kpts"])
        assert kpts.shape == (3,) and (kpts >= 1).all(), s
        if role in ("slab", "complex"):
            assert kpts[2] == 1, s
            z_atoms = a.positions[:, 2]
            vacuum = a.cell[2, 2] - (z_atoms.max() - z_atoms.min())
            # 2 x 5 Å between clean-slab images; >= 5.5 Å above the highest adsorbate atom
            assert vacuum >= (9.99 if role == "slab" else 5.5), (s, vacuum)
        else:
            assert (kpts > 1).all(), s
    # the committed files are what make_geometries.py builds
    molecules, periodic, definition = _geometries().build()
    assert definition == d
    for a in molecules + periodic:
        b = frames[a.info["species"]]
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)


def test_an_unbalanced_item_is_a_setup_error(tmp_path):
    from ase import Atoms
    from ase.io import write

    from tealign.bench import cross
    from tealign.errors import SetupError

    frames = [Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]),
              Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])]
    for a, s in zip(frames, ("H2O_g", "H2_g")):
        a.info.update(species=s, energy_pbe=-10.0)
    write(tmp_path / "d.extxyz", frames)
    (tmp_path / "bridge.json").write_text(json.dumps({
        "species": {"H2O_g": {"formula_units": 1}, "H2_g": {"formula_units": 1}},
        "reactions": [{"id": "bad", "coefficients": {"H2O_g": -1, "H2_g": 1}}]}))
    with pytest.raises(SetupError, match="does not conserve atoms"):
        cross.run(tmp_path / "out", data=[tmp_path / "d.extxyz"], calculator="xtb")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- a tiny computed set
FIT_MOLECULES = ("CH4_g", "NH3_g", "H2_g", "CH3OH_g")


@pytest.fixture(scope="module")
def tiny_bridge(tmp_path_factory):
    """Two reactions, one adsorption system and one molecular crystal, computed with
    `tealign compute calib`: molecules at tgt=GFN2 and src=GFN1, periodic frames at tgt."""
    from typer.testing import CliRunner

    from tealign.cli import app

    mg = _geometries()
    tmp = tmp_path_factory.mktemp("bridge")
    molecules, periodic, definition = mg.build(
        reactions=[r for r in mg.REACTIONS if r[0] in ("MgO+H2O", "MgO+2HF")],
        adsorption=[a for a in mg.ADSORPTION if a[0] == "H2O@MgO(001)"],
        lattice=[c for c in mg.LATTICE if c[1] == "CO2_Pa-3"])
    # more molecules for the alignment fit (not part of any item)
    molecules += [mg._tag(mg.gas(s), s, "molecule", "organic", 1) for s in FIT_MOLECULES]
    from ase.io import write

    write(tmp / "molecules_in.extxyz", molecules)
    write(tmp / "periodic_in.extxyz", periodic)
    (tmp / "bridge.json").write_text(json.dumps(definition))
    runner = CliRunner()

    def cli(*args):
        r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert r.exit_code == 0, r.stderr
        return r.stdout

    cli("compute", "calib", "--molecules", tmp / "molecules_in.extxyz", "--no-forces",
        "--method", "tgt=xtb:gfn2", "--method", "src=xtb:gfn1", "-o", tmp / "mol.extxyz")
    cli("compute", "calib", "--molecules", tmp / "periodic_in.extxyz", "--no-forces",
        "--method", "tgt=xtb:gfn2", "-o", tmp / "per.extxyz")
    mg.combine([str(tmp / "mol.extxyz"), str(tmp / "per.extxyz")], str(tmp / "bridge.extxyz"))
    cli("fit", tmp / "mol.extxyz", "--source-key", "energy_src", "--target-key", "energy_tgt",
        "--source-e0", tmp / "mol.atoms_src.json", "--target-e0", tmp / "mol.atoms_tgt.json",
        "--model", "scale", "-o", tmp / "alignment.json")
    return tmp, cli, definition


def _table_eV(table: dict) -> dict[str, float]:
    f = table.get("hartree_to_eV", 27.211386245988) if table["units"] == "hartree" else 1.0
    return {el: float(v) * f for el, v in table["energies"].items()}


def _expected(frames: dict, definition: dict, al: dict, src_key: str,
              tgt_key: str) -> dict[str, list[float]]:
    """Item id -> [truth, label level], by hand from the frames' keys and the alignment's
    formula (docs/architecture.md §1.1): periodic frames at the target level, molecules
    E = sum E_i[tgt] - a (sum E_i[src] - E_src)."""
    a = al["model"]["a"]
    e_src, e_tgt = _table_eV(al["source_table"]), _table_eV(al["target_table"])

    def label(s):
        f = frames[s]
        if f.pbc.any():  # solids, slabs, complexes, molecular crystals: target level
            return f.info[tgt_key]
        sym = f.get_chemical_symbols()
        return sum(e_tgt[x] for x in sym) - a * (sum(e_src[x] for x in sym) - f.info[src_key])

    def truth(s):
        return frames[s].info[tgt_key]

    z = {s: e["formula_units"] for s, e in definition["species"].items()}
    expected = {}
    for r in definition["reactions"]:
        expected[r["id"]] = [sum(nu / z[s] * f(s) for s, nu in r["coefficients"].items())
                             for f in (truth, label)]
    for ad in definition["adsorption"]:
        expected[ad["id"]] = [f(ad["complex"]) - f(ad["slab"]) - f(ad["molecule"])
                              for f in (truth, label)]
    for c in definition["lattice"]:
        expected[c["id"]] = [f(c["crystal"]) / c["molecules_per_cell"] - f(c["molecule"])
                             for f in (truth, label)]
    return expected


def test_label_level_numbers_equal_an_independent_computation(tiny_bridge):
    tmp, cli, definition = tiny_bridge
    out = json.loads(cli("bench", "cross", "--data", tmp / "bridge.extxyz",
                         "--definition", tmp / "bridge.json", "--alignment",
                         tmp / "alignment.json", "--target-key", "energy_tgt",
                         "--source-key", "energy_src", "--json", "-o", tmp / "label"))
    res = json.loads((tmp / "label" / "results.json").read_text())
    assert (tmp / "label" / "cross.png").stat().st_size > 10_000
    # independent: the frames through ASE, the alignment's formula
    # (docs/architecture.md §1.1) by hand
    frames = {a.info["species"]: a for a in read(tmp / "bridge.extxyz", ":")}
    al = json.loads((tmp / "alignment.json").read_text())
    a = al["model"]["a"]
    assert al["model"]["name"] == "scale" and not al["model"]["offsets_eV"]
    assert 0.5 < a < 2.0 and a != 1.0

    expected = _expected(frames, definition, al, "energy_src", "energy_tgt")
    got = {it["id"]: it for it in res["items"]}
    assert set(got) == set(expected) and len(got) == 4 and not res["skipped"]
    for k, (ref, pred) in expected.items():
        assert got[k]["reference_eV"] == pytest.approx(ref, abs=1e-8)
        assert got[k]["predicted_eV"] == pytest.approx(pred, abs=1e-8)
        assert got[k]["error_eV"] == pytest.approx(pred - ref, abs=1e-8)
    errors = np.array([p - r for r, p in expected.values()])
    # GFN1 aligned to GFN2 is not GFN2: the label level has errors to measure
    assert np.abs(errors).max() > 1e-3
    assert out["mae_eV"] == pytest.approx(np.mean(np.abs(errors)), abs=1e-9)
    assert res["reaction_mae_eV"] == pytest.approx(
        np.mean([abs(expected[r["id"]][1] - expected[r["id"]][0])
                 for r in definition["reactions"]]), abs=1e-9)
    assert res["by_kind"]["adsorption"]["n"] == 1 and res["by_kind"]["lattice"]["n"] == 1
    # strict JSON and the levels used
    json.loads((tmp / "label" / "results.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    levels = {s: v["level"] for s, v in res["frames"].items()}
    assert levels["H2O_g"] == "aligned source" and levels["MgO_s"] == "target"
    assert res["alignment_sha256"] == al["sha256"]


def test_calculator_xtb_runs_and_the_report_shows_it(tiny_bridge):
    tmp, cli, _ = tiny_bridge
    out = json.loads(cli("bench", "cross", "--data", tmp / "bridge.extxyz",
                         "--definition", tmp / "bridge.json", "--calculator", "xtb",
                         "--target-key", "energy_tgt", "--json", "-o", tmp / "run" / "bench"
                         / "cross"))
    assert out["mode"] == "calculator" and out["n"] == 4 and not out["skipped"]
    # `xtb` is GFN2-xTB at tealign's default settings, the very level of energy_tgt
    assert out["mae_eV"] < 1e-6
    from tealign.report.html import build_report

    page = build_report(tmp / "run").read_text()
    assert "Cross-domain consistency" in page and "H2O@MgO(001)" in page


# ----------------------------------------------------------------------------- the committed set
COMMITTED = BRIDGE / "bridge-mini.extxyz"


@pytest.mark.skipif(not COMMITTED.exists(), reason="datasets/bridge-mini/bridge-mini.extxyz "
                    "not computed yet (datasets/bridge-mini/regenerate.sh)")
def test_committed_bridge_set_label_level_equals_an_independent_computation(tmp_path):
    """The committed GPAW/PySCF bridge set: every item scored, each equal to the sum by hand;
    the TEA labels (calib-qm9's single factor) are far closer to GPAW than the unaligned
    all-electron totals, and within a few eV per item."""
    from tealign.align import TotalEnergyAlignment
    from tealign.bench import cross

    calib = ROOT / "datasets" / "calib-qm9"
    tea = TotalEnergyAlignment(calib / "calib-qm9.atoms_wb97m.json",
                               calib / "calib-qm9.atoms_pbe.json", model="scale",
                               n_bootstrap=10)
    tea.fit(str(calib / "calib-qm9.extxyz"), source_key="energy_wb97m",
            target_key="energy_pbe")
    tea.save(tmp_path / "alignment.json")
    res = cross.run(tmp_path / "out", data=[COMMITTED], alignment=tmp_path / "alignment.json")
    definition = json.loads((BRIDGE / "bridge.json").read_text())
    frames = {a.info["species"]: a for a in read(COMMITTED, ":")}
    al = json.loads((tmp_path / "alignment.json").read_text())
    expected = _expected(frames, definition, al, "energy_wb97m", "energy_pbe")
    got = {it["id"]: it for it in res["items"]}
    assert not res["skipped"] and set(got) == set(expected)
    assert len(definition["reactions"]) >= 10 and len(definition["adsorption"]) >= 6
    assert len(definition["lattice"]) >= 3
    for k, (ref, pred) in expected.items():
        assert got[k]["reference_eV"] == pytest.approx(ref, abs=1e-6)
        assert got[k]["error_eV"] == pytest.approx(pred - ref, abs=1e-6)
    # adsorption and lattice items involve one molecule's label; a reaction a few
    assert max(abs(p - r) for r, p in expected.values()) < 5.0
    # the registry pins the committed file
    from tealign.bench import registry

    assert registry.get("bridge-mini").sha256 == registry.sha256_file(COMMITTED)


def test_chgnet_scores_molecules_in_a_box():
    """CHGNet needs a cell: a molecule goes into a box with 10 Å of vacuum, beyond its 6 Å
    cutoff, so the energy equals that of the same molecule in a bigger box."""
    pytest.importorskip("chgnet")
    from ase.build import molecule

    from tealign.bench.calculators import get_calculator
    from tealign.bench.energies import single_points
    from tealign.io.frames import FrameBatch

    water = molecule("H2O")
    e = single_points("chgnet", FrameBatch.from_atoms([water]))
    assert np.isfinite(e).all()
    big = water.copy()
    big.center(vacuum=15.0)
    big.pbc = True
    big.calc = get_calculator("chgnet")
    assert e[0] == pytest.approx(big.get_potential_energy(), abs=1e-4)
