"""`tealign report` builds each section from the results' own JSON: the methods its prose
names are those the results record, never the demo's; each section belongs to result kinds
of the run-directory layout, and a section whose files are absent is left out."""

from __future__ import annotations

import json
import re

import pytest

from tealign import rundir as rd
from tealign.report.html import build_report
from tealign.report.sections import for_kind, sections

SOURCE = "orca b3lyp/def2-tzvp"
TARGET = "vasp r2scan/pw520"
#: what the demo's own methods look like in prose; none may appear outside published rows
DEMO_LITERALS = ("ωB97M", "wb97m", "def2-SVP", "GPAW", "gpaw", "PySCF", "pyscf", "PBE/PW",
                 "plane-wave PBE", "demo's model", "demo model")


def _write(run, rel: str, doc: dict) -> None:
    path = rd.path(run, rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


@pytest.fixture()
def run(tmp_path):
    """A run directory of another pair of methods: B3LYP/def2-TZVP (ORCA) onto r2SCAN
    (VASP), merged, evaluated and benchmarked."""
    run = tmp_path / "run"
    _write(run, rd.FIT_JSON, {
        "model": "scale", "a": 1.0321, "a_ci95": [1.02, 1.04], "n": 50, "n_rejected": 1,
        "rmse_icea_eV": 2.5, "rmse_tea_eV": 0.4, "r2_icea": 0.99, "r2_tea": 0.999,
        "offsets_eV": {}, "alignment": rd.ALIGNMENT, "sha256": "0" * 64,
        "rejects_file": None, "plots": [], "source_method": SOURCE, "target_method": TARGET})
    _write(run, rd.ALIGNMENT, {"calibration": {"file": "/data/my-calib.extxyz"}})
    _write(run, rd.MERGE_REPORT, {
        "frames_in": 30, "frames_out": 29, "frames_rejected": 1,
        "target_e0": {"name": "r2scan", "units": "eV", "energies": {"H": -1.0},
                      "code": "vasp", "method": "r2scan/pw520"},
        "sources": {
            "molecules": {"alignment": "fit/alignment.json", "frames_in": 20,
                          "frames_out": 19, "frames_rejected": 1,
                          "by_split": {"train": 15, "valid": 2, "test": 2}},
            "metals": {"alignment": "target", "frames_in": 10, "frames_out": 10,
                       "frames_rejected": 0, "by_split": {"train": 8, "valid": 1, "test": 1}}}})
    metrics = {"n": 3, "energy_mae_meV_per_atom": 4.5, "energy_rmse_meV_per_atom": 5.0,
               "forces_mae_meV_per_A": 60.0, "forces_rmse_meV_per_A": 80.0}
    _write(run, rd.EVAL_JSON, {"overall": metrics, "by_config_type": {"molecules": metrics},
                               "frames_rejected": 0})
    _write(run, rd.info_json("molecules"), {
        "frames": 20, "atoms": 200, "periodic_frames": 0, "elements": {"H": 120, "C": 80},
        "energy_key": "energy_b3lyp", "energy_per_atom_eV": {"mean": -40.0},
        "units_verdict": "eV"})
    _write(run, rd.bench_results("eos"), {
        "benchmark": "eos", "calculator": "/models/other.model", "a0_A": 5.46,
        "b0_GPa": 90.0, "rmse_vs_reference_meV_per_atom": 2.0, "reference": "si_ev.extxyz",
        "reference_a0_A": 5.47, "reference_b0_GPa": 88.0, "figures": []})
    _write(run, rd.DEMO_STATE, {"datasets": "/data", "run_dir": str(run), "quick": False,
                                "wall_s_including_resumed": 12.0, "steps": []})
    return run


def _prose(path) -> str:
    """The page's text without the published rows (the paper's own method names)."""
    text = re.sub(r'<tr class="pub">.*?</tr>', "", path.read_text(), flags=re.S)
    return re.sub(r"<[^>]+>", "", text)


def test_methods_in_prose_come_from_the_results(run):
    text = _prose(build_report(run))
    assert f"source ({SOURCE}) onto the target ({TARGET})" in text
    assert f"this run: {SOURCE} → {TARGET}" in text
    assert "this run fits" in text and "my-calib.extxyz" in text
    assert f"fit the alignment of {SOURCE} onto {TARGET}" in text
    assert f"put molecules on the {TARGET} scale, merge it with metals" in text
    assert f"on the target ({TARGET}) scale" in text                # per-domain errors
    assert f"on the target scale ({TARGET})" in text                # merge
    assert "energy_b3lyp" in text and "aligned by alignment.json" in text
    assert "other.model" in text                                    # the eos calculator
    for literal in DEMO_LITERALS:
        assert literal not in text, literal


def test_merge_names_its_own_target_without_a_fit(run):
    """Without fit.json the merge's recorded target table names the scale."""
    rd.path(run, rd.FIT_JSON).unlink()
    text = _prose(build_report(run))
    assert f"on the target scale ({TARGET})" in text
    assert f"on the target ({TARGET}) scale" in text
    assert 'id="alignment"' not in build_report(run).read_text()


def test_sections_of_absent_results_are_left_out(run):
    for rel in (rd.MERGE_REPORT, rd.EVAL_JSON, rd.bench_results("eos")):
        rd.path(run, rel).unlink()
    page = build_report(run).read_text()
    ids = re.findall(r'<section id="([^"]+)"', page)
    assert ids == ["summary", "datasets", "alignment", "reproduce"]


def test_every_section_renders_result_kinds_of_the_layout():
    secs = sections()
    assert [s.sid for s in secs] == ["summary", "cross", "datasets", "alignment", "merge",
                                     "training", "errors", "benchmarks", "reproduce"]
    kinds = [k for s in secs for k in s.kinds]
    assert len(kinds) == len(set(kinds)) and set(kinds) <= set(rd.RESULT_FILES)
    for kind, sid in (("fit", "alignment"), ("merge", "merge"), ("eval", "errors"),
                      ("info", "datasets"), ("bench_cross", "cross"),
                      ("bench_lattice", "benchmarks"), ("train", "training")):
        assert for_kind(kind).sid == sid
    assert for_kind("convert") is None
