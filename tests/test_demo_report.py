"""`tealign demo --quick` end to end on a small synthetic bundle, and `tealign report`:
numbers identical to the results they come from, and a real headless-Chromium render in
which every figure loads and no section is empty."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA, emt_copper, xtb_molecules

from tealign.bench.eos import GRID, si
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch
from tealign.methods import load_table
from tealign.units import EV_PER_A3_TO_GPA

pytest.importorskip("mace")
pytest.importorskip("tblite")

A_TRUE = 1.07  # the AEC factor the synthetic calibration set is built with
#: target-scale isolated atoms (GPAW-like small numbers, eV)
TGT_E0 = {"H": -1.1, "C": -1.3, "N": -3.1, "O": -1.9, "Cu": -0.25, "Si": -0.8}
SI_A0, SI_B0_GPA = 5.47, 88.0


def _bm_energy(a):
    """Birch–Murnaghan energy per atom of diamond Si with SI_A0, SI_B0_GPA, B0' = 4."""
    v0, v = SI_A0**3 / 8, a**3 / 8
    b0 = SI_B0_GPA / EV_PER_A3_TO_GPA
    eta = (v0 / v) ** (2 / 3)
    return -5.4 + 9 * v0 * b0 / 16 * ((eta - 1) ** 3 * 4 + (eta - 1) ** 2 * (6 - 4 * eta))


def _molecules(n, seed):
    names = ["H2O", "CH4", "NH3", "CH3OH", "C2H6", "HCN", "H2CO", "CH3CN"]
    return xtb_molecules(n, names, rattle=0.04, seed=seed, groups=3)


def _on_source(m, e_tgt, src, a=A_TRUE):
    """Source-scale total energy whose atomization energy is the target's divided by a."""
    syms = m.get_chemical_symbols()
    x = (sum(TGT_E0[s] for s in syms) - e_tgt) / a
    return sum(src.energies[s] for s in syms) - x


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """calib-qm9 / organic-mini / inorganic-mini in the bundled layout, synthetic numbers:
    GFN2-xTB molecules put on a made-up target scale, their source copies built with a known
    a; EMT copper cells; an analytic Birch–Murnaghan Si E–V curve."""
    root = tmp_path_factory.mktemp("bundle")
    src = load_table("wb97m-d3bj-def2-tzvppd")
    for d in ("calib-qm9", "organic-mini", "inorganic-mini"):
        (root / d).mkdir()
    rng = np.random.default_rng(0)
    calib = []
    for m, r in _molecules(24, 100):
        m.info["energy_pbe"] = r.energy
        m.info["energy_wb97m"] = _on_source(m, r.energy, src) + rng.normal() * 0.02
        calib.append(m)
    write_extxyz(root / "calib-qm9/calib-qm9.extxyz", [FrameBatch.from_atoms(calib)])
    org = []
    for m, r in _molecules(40, 0):
        m.info["energy_wb97m"] = _on_source(m, r.energy, src)
        m.arrays["forces_wb97m"] = r.forces / A_TRUE
        m.info["d3_energy_wb97m"] = -0.004 * len(m)
        m.arrays["d3_forces_wb97m"] = np.zeros((len(m), 3))
        org.append(m)
    write_extxyz(root / "organic-mini/organic-mini.extxyz", [FrameBatch.from_atoms(org)])
    inorg = emt_copper(30, rng, 0.03)
    for i, a in enumerate(np.linspace(5.2, 5.8, 12)):
        # perfect diamond Si on the analytic curve: zero forces, isotropic stress dE/dV
        s = si(a)
        h = 1e-4
        dedv = (_bm_energy(a + h) - _bm_energy(a - h)) / ((a + h) ** 3 / 8 - (a - h) ** 3 / 8)
        s.info.update(energy_pbe=2 * _bm_energy(a), stress_pbe=np.eye(3) * dedv,
                      mol_id=f"Si_{i}")
        s.arrays["forces_pbe"] = np.zeros((2, 3))
        inorg.append(s)
    write_extxyz(root / "inorganic-mini/inorganic-mini.extxyz", [FrameBatch.from_atoms(inorg)])
    ev = []
    for a in GRID:
        s = si(a)
        s.info["energy_pbe"] = _bm_energy(a) * len(s)
        ev.append(s)
    write_extxyz(root / "inorganic-mini/si_ev.extxyz", [FrameBatch.from_atoms(ev)])
    tgt = {"name": "synthetic-target", "units": "eV", "energies": TGT_E0}
    for p in ("calib-qm9/calib-qm9.atoms_pbe.json", "inorganic-mini/inorganic-mini.atoms_pbe.json"):
        (root / p).write_text(json.dumps(tgt))
    (root / "calib-qm9/calib-qm9.atoms_wb97m.json").write_text(json.dumps(
        {"name": "wb97m", "units": "eV", "energies": {s: src.energies[s] for s in "HCNO"}}))
    return root


@pytest.fixture(scope="module")
def demo_run(bundle, tmp_path_factory):
    run = tmp_path_factory.mktemp("demo") / "run"
    env = dict(os.environ)
    if SHARED_DATA.is_dir():
        env["TEALIGN_DATA_DIR"] = str(SHARED_DATA)
    else:
        env.pop("TEALIGN_DATA_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "tealign", "demo", "-o", str(run),
                           "--datasets", str(bundle), "--quick", "--json"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, json.loads(proc.stdout)


def test_demo_runs_every_step_and_fits_the_known_factor(demo_run):
    run, out = demo_run
    required = ["fit", "merge", "train", "eval", "bench_lattice", "bench_eos"]
    assert all(out["steps"][s] == "done" for s in required), out["steps"]
    state = {s["name"]: s for s in json.loads((run / "demo.json").read_text())["steps"]}
    for name in ("bench_torsion", "bench_reactions"):
        if SHARED_DATA.is_dir():  # the registry's offline mirror has the data
            assert state[name]["status"] == "done", state[name]
        else:  # otherwise the demo says how to get it
            assert state[name]["status"] == "skipped"
            assert "tealign data fetch" in state[name]["reason"]
    for name in ("bench_cross_labels", "bench_cross_labels_icea", "bench_cross"):  # no bridge set
        assert state[name]["status"] == "skipped", state[name]
        assert "bridge-mini/regenerate.sh" in state[name]["reason"]
    fit = json.loads((run / "fit/fit.json").read_text())
    assert fit["a_ci95"][0] - 0.01 < A_TRUE < fit["a_ci95"][1] + 0.01
    eos = json.loads((run / "bench/eos/results.json").read_text())
    assert eos["reference_a0_A"] == pytest.approx(SI_A0, abs=2e-3)
    assert eos["reference_b0_GPa"] == pytest.approx(SI_B0_GPA, rel=0.02)
    ev = json.loads((run / "eval/eval.json").read_text())
    assert set(ev["by_config_type"]) == {"organic", "inorganic"}
    assert (run / "report.html").stat().st_size > 50_000


def test_demo_resumes_without_rerunning(demo_run, bundle):
    from tealign.demo import DemoOptions, run_demo

    run, _ = demo_run
    before = {p: p.stat().st_mtime_ns for p in (run / "fit/fit.json", run / "train/model.model")}
    state = run_demo(run, bundle, DemoOptions(quick=True), log=lambda m: None)
    assert all(s.get("resumed") for s in state["steps"] if s["status"] == "done")
    assert {p: p.stat().st_mtime_ns for p in before} == before


NUM = re.compile(r'<span class="num" data-src="([^"]+)" data-key="([^"]*)" '
                 r'data-value="([^"]*)" data-fmt="([^"]*)">([^<]*)</span>')


def _at(doc, key):
    for k in key.split("/"):
        doc = doc[int(k)] if isinstance(doc, list) else doc[k]
    return doc


def test_report_numbers_are_the_results_numbers(demo_run):
    run, _ = demo_run
    text = (run / "report.html").read_text()
    spans = NUM.findall(text)
    assert len(spans) > 60
    seen = set()
    for src, key, value, fmt, shown in spans:
        src, key = html.unescape(src), html.unescape(key)
        v = _at(json.loads((run / src).read_text()), key)
        assert html.unescape(value) == repr(v), (src, key)
        # what the reader sees is exactly that value in the stated format
        assert html.unescape(shown).startswith(format(v, html.unescape(fmt))), (src, key)
        seen.add((src, key))
    for must in [("fit/fit.json", "a"), ("fit/fit.json", "rmse_tea_eV"),
                 ("fit/fit.json", "rmse_icea_eV"),
                 ("eval/eval.json", "by_config_type/organic/energy_mae_meV_per_atom"),
                 ("eval/eval.json", "by_config_type/inorganic/forces_mae_meV_per_A"),
                 ("bench/eos/results.json", "a0_A"),
                 ("bench/eos/results.json", "rmse_vs_reference_meV_per_atom"),
                 ("bench/reactions/results.json", "mae_kcal_mol"),
                 ("bench/torsion/results.json", "barrier_mae_kcal_mol")]:
        assert must in seen, must
    # the published figures sit beside ours, labelled
    assert "MACE-Osaka24-large" in text and "published" in text


CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const secs = Array.from(document.querySelectorAll('section'));
  const empty = secs.filter(s => {
    const body = Array.from(s.children).filter(c => c.tagName !== 'H2');
    return body.length === 0 ||
      body.every(c => c.innerText.trim() === '' && !c.querySelector('img'));
  }).map(s => s.id);
  document.body.setAttribute('data-check', JSON.stringify(
    {images: imgs.length, broken: broken, sections: secs.map(s => s.id), empty: empty}));
});
</script></body>"""

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    run, _ = demo_run
    page = tmp_path / "checked.html"
    page.write_text((run / "report.html").read_text().replace("</body>", CHECK))
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([exe, *flags, "--virtual-time-budget=10000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-check="([^"]+)"', dom)
    assert m, "the page's load handler never ran"
    check = json.loads(html.unescape(m.group(1)))
    assert check["broken"] == 0 and check["images"] >= 6, check
    assert check["empty"] == [], check
    for sid in ("summary", "datasets", "alignment", "merge", "training", "errors",
                "benchmarks", "reproduce"):
        assert sid in check["sections"], sid
    shot = tmp_path / "report.png"
    subprocess.run([exe, *flags, "--window-size=1280,2000", f"--screenshot={shot}",
                    (run / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000


def test_report_of_an_empty_directory_is_one_line(run_cli, tmp_path):
    code, _, stderr = run_cli("report", tmp_path)
    assert code == 2
    assert stderr.strip().count("\n") == 0 and "nothing to report" in stderr


def test_demo_without_datasets_says_how_to_get_them(run_cli, tmp_path):
    code, _, stderr = run_cli("demo", "-o", tmp_path / "run", "--datasets", tmp_path)
    assert code == 2 and "run_all.sh" in stderr and "--datasets" in stderr


def test_report_says_where_the_torsion_force_call_cap_bit(tmp_path, run_cli):
    """A torsion run whose shared force-call cap bit: the report names the molecule and how
    many of its points were cut short or never run, with the cap and the calls used."""
    res = {"benchmark": "torsion", "calculator": "m", "n": 1, "step_deg": 15,
           "barrier_mae_kcal_mol": 1.5, "profile_mae_kcal_mol": 0.7, "unconverged_points": 2,
           "unconverged_by_cap": 2, "max_steps": 100, "max_force_calls": 500,
           "force_calls": 500, "cap_reached": True, "skipped": [], "results": [],
           "cap_bit": [{"molid": "biaryl_7", "points_cut_short": 2, "points_not_run": 1,
                        "angles_deg": [0, 15, 30]}]}
    (tmp_path / "bench/torsion").mkdir(parents=True)
    (tmp_path / "bench/torsion/results.json").write_text(json.dumps(res))
    code, _, err = run_cli("report", tmp_path)
    assert code == 0, err
    text = re.sub(r"<[^>]+>", "", (tmp_path / "report.html").read_text())
    assert ("The cap of 500 force calls for all scans together bit (500 used): biaryl_7: "
            "2 points cut short, 1 not run") in text
    res["cap_bit"] = []
    (tmp_path / "bench/torsion/results.json").write_text(json.dumps(res))
    assert run_cli("report", tmp_path)[0] == 0
    assert "force calls for all scans together bit" not in (tmp_path / "report.html").read_text()


def test_report_puts_the_shipped_model_beside_the_demo_model(demo_run, tmp_path, run_cli):
    """Every benchmark table takes a row for tealign-mini (bench_mini/<name>) beside the demo
    model's row and the published rows, whatever the number of each."""
    import shutil

    from tealign.report.html import MINI_MODEL

    run, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    names = [n for n in ("lattice", "eos", "reactions") if (copy / "bench" / n).is_dir()]
    assert names
    for name in names:
        if not (copy / "bench_mini" / name).is_dir():
            shutil.copytree(copy / "bench" / name, copy / "bench_mini" / name)
    code, _, err = run_cli("report", copy)
    assert code == 0, err
    text = (copy / "report.html").read_text()
    assert text.count(html.escape(MINI_MODEL)) >= len(names)


def test_report_names_each_cross_domain_run_on_its_card_and_heading(tmp_path):
    """The cross-domain runs a run directory holds: each on a summary card and under its own
    heading, in the report's order; runs it does not hold are absent from both."""
    from tealign import api

    common = {"target_key": "energy_pbe", "n": 3, "mae_eV": 0.125, "max_abs_eV": 0.25,
              "by_kind": {"reaction": {"n": 3, "mae_eV": 0.125, "max_abs_eV": 0.25}},
              "items": [], "skipped": [], "figures": []}
    runs = {"bench/cross_labels": {"mode": "alignment", "alignment": "fit/alignment.json",
                                   "alignment_model": "scale", "a": 1.01},
            "bench_mini/cross": {"mode": "calculator", "calculator": "mini.model"}}
    for where, res in runs.items():
        (tmp_path / where).mkdir(parents=True)
        (tmp_path / where / "results.json").write_text(json.dumps(common | res))
    api.report(tmp_path)
    text = re.sub(r"<[^>]+>", "", (tmp_path / "report.html").read_text())
    cards = ["TEA labels (scale, a = 1.0100), no model · cross-domain MAE (3 items)",
             "tealign-mini · cross-domain MAE (3 items)"]
    headings = ["Labels aligned by TEA, no model",
                "tealign-mini (ships with tealign, trained to a plateau)"]
    places = [text.index(s) for s in cards + headings]
    assert places == sorted(places)
    assert "ICEA-only labels" not in text and "Labels shifted by ICEA only" not in text
    assert "demo model ·" not in text and "The demo's model (trained minutes ago)" not in text
