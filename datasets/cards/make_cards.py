"""Build the alignment cards that ship with tealign (issue 28, items 4 and 5).

    PYTHONPATH=src .venv/bin/python datasets/cards/make_cards.py   # writes src/tealign/data/cards/

One card per public dataset, each onto the MPtrj scale (VASP PBE, Materials Project isolated
atoms). Every card is fitted on the committed calibration files of this repository:

    source energies   datasets/calib-public/{calib-spice,calib-ani1x,molecules}.extxyz
                      (ωB97M/def2-TZVPPD D3-free, ωB97X/6-31G(d), QM9's own B3LYP/6-31G(2df,p))
    target energies   GPAW PBE/PW800: datasets/calib-qm9/calib-qm9.extxyz (the 90 "calib"
                      molecules) and datasets/bridge-mini/heldout-qm9.extxyz (the 40 "heldout"
                      ones), matched by qm9_index; one atom table calib-qm9.atoms_pbe.json

The correction is fitted on the 90 calib molecules with tealign's own
:class:`~tealign.align.TotalEnergyAlignment` (icea, scale, scale+elements; a's 95 % interval
from its bootstrap over molecules), the model is chosen by RMSE on the 40 held-out molecules
(never used in a fit), and the chosen fit is stored in the card as a saved alignment whose
isolated-atom tables are the ones the dataset's users have (the shipped source table, limited
to the calibrated elements, and the MPtrj table):

    E_at_src = Σ E_i(shipped source table) − E_src          (E_src without D3)
    E_MPtrj  = Σ E_i(vasp-pbe-mp) − (a · E_at_src + Σ n_el c_el)
    F_MPtrj  = a · F_src

Numbers from other parts of issue 28 are read when their files exist and are null (with a
note) otherwise, so rerunning this script after they land fills them:
datasets/target-transfer/transfer.json (item 3) and datasets/charged-ions/charged.json.
All energies eV.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers
from ase.io import read

from tealign.align import TotalEnergyAlignment
from tealign.align.aec import cross_validated_rmse, kfold_indices, make_model
from tealign.bench.published import FIG4_RMSE_EV
from tealign.compute.spec import parse_spec
from tealign.io.outputs import write_json
from tealign.methods import IsolatedAtomTable, load_table

ROOT = Path(__file__).resolve().parents[2]
PUB = ROOT / "datasets" / "calib-public"
QM9 = ROOT / "datasets" / "calib-qm9"
HELD = ROOT / "datasets" / "bridge-mini" / "heldout-qm9.extxyz"
OUT = ROOT / "src" / "tealign" / "data" / "cards"
TRANSFER = ROOT / "datasets" / "target-transfer" / "transfer.json"
CHARGED = ROOT / "datasets" / "charged-ions" / "charged.json"

TARGET_TABLE = "vasp-pbe-mp"
FIT_TARGET_TABLE = QM9 / "calib-qm9.atoms_pbe.json"
TARGET_KEY = "energy_pbe"
MODELS = ("icea", "scale", "scale+elements")
#: ridge strengths of scale+elements' offsets scanned by 5-fold CV on the calib molecules
ALPHAS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 0.0)
N_BOOTSTRAP = 1000
SEED = 0

_SPICE_COST = ("36 molecules and the 5 atoms on one CPU core of this machine (up to 19 min "
               "per molecule), the other 94 molecules with gpu4pyscf 1.9.0 on one NVIDIA "
               "H200 (752 GPU-seconds for 110 molecules, 16.5 s for the largest); GPU and "
               "CPU agree to 1.8e-11 Ha (datasets/calib-public/README.md)")

#: SPICE's level (OFF23 is computed at it): source method, calibration files and D3 policy
_SPICE_LEVEL = {
    "source_method": "ωB97M-D3(BJ)/def2-TZVPPD, energies without D3(BJ)",
    "source_code": "Psi4 (dataset); PySCF 2.14 / gpu4pyscf 1.9 (calibration)",
    "file": PUB / "calib-spice.extxyz", "key": "energy_wb97m",
    "fit_table": PUB / "calib-spice.atoms_wb97m.json",
    "shipped_table": "wb97m-d3bj-def2-tzvppd",
    "d3": {"published_with_d3": True, "functional": "wb97m"},
    "source_cost": _SPICE_COST, "source_label": "wb97m",
    "fig4": True,
}

PAIRS = {
    "spice-to-mptrj": {
        "dataset": {"name": "SPICE", "citation": "Eastman et al., SPICE, a dataset of "
                    "drug-like molecules and peptides, Sci. Data 10, 11 (2023)",
                    "energy": "total energy ωB97M-D3(BJ)/def2-TZVPPD (Psi4), D3(BJ) "
                    "included"},
        **_SPICE_LEVEL,
    },
    "off23-to-mptrj": {
        "dataset": {"name": "OFF23 (the MACE-OFF23 training set: SPICE 1.x at SPICE's level)",
                    "citation": "Kovács et al., MACE-OFF23: transferable machine learning "
                    "force fields for organic molecules, arXiv:2312.15211 (2023); Eastman et "
                    "al., Sci. Data 10, 11 (2023)",
                    "energy": "total energy ωB97M-D3(BJ)/def2-TZVPPD (Psi4), D3(BJ) "
                    "included"},
        **_SPICE_LEVEL,
        "note": "OFF23 is computed at SPICE's level of theory, so this card is the SPICE "
                "card's fit under OFF23's name and citations (the paper's TEA-OFF23).",
    },
    "ani1x-to-mptrj": {
        "dataset": {"name": "ANI-1x (and Transition1x, same level)",
                    "citation": "Smith et al., J. Chem. Phys. 148, 241733 (2018); Smith et "
                    "al., Sci. Data 7, 134 (2020); Schreiner et al., Transition1x, Sci. Data "
                    "9, 779 (2022)",
                    "energy": "total energy ωB97X/6-31G(d) (Gaussian 09), no dispersion"},
        "source_method": "ωB97X/6-31G(d) (Gaussian's 6D 7F)",
        "source_code": "Gaussian 09 (dataset); PySCF 2.14, cartesian d (calibration)",
        "file": PUB / "calib-ani1x.extxyz", "key": "energy_wb97x",
        "fit_table": PUB / "calib-ani1x.atoms_wb97x.json",
        "shipped_table": "wb97x-6-31gd",
        "d3": {"published_with_d3": False, "functional": None},
        "source_cost": "130 molecules and the 5 atoms, 97 min of one shared CPU core "
                       "(datasets/calib-public/README.md)", "source_label": "wb97x",
        "fig4": False,
    },
    "qm9-to-mptrj": {
        "dataset": {"name": "QM9", "citation": "Ramakrishnan et al., Quantum chemistry "
                    "structures and properties of 134 kilo molecules, Sci. Data 1, 140022 "
                    "(2014)",
                    "energy": "internal energy at 0 K minus ZPVE, i.e. the electronic "
                    "energy, B3LYP/6-31G(2df,p) (Gaussian 09), no dispersion"},
        "source_method": "B3LYP/6-31G(2df,p)",
        "source_code": "Gaussian 09 (QM9's own energies; tealign reproduces them to 0.03 mHa)",
        "file": PUB / "molecules.extxyz", "key": "energy_qm9_b3lyp",
        "fit_table": "b3lyp-6-31g2dfp",
        "shipped_table": "b3lyp-6-31g2dfp",
        "d3": {"published_with_d3": False, "functional": None},
        "source_cost": "none: QM9's published energies are the source", "source_label": None,
        "fig4": False,
    },
}


# ------------------------------------------------------------------------------ data
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def target_energies() -> dict[int, float]:
    """GPAW PBE/PW800 energy (eV) by qm9_index, calib and held-out molecules together."""
    out = {}
    for path in (QM9 / "calib-qm9.extxyz", HELD):
        for a in read(path, ":"):
            out[int(a.info["qm9_index"])] = float(a.info[TARGET_KEY])
    return out


def joined_frames(spec: dict) -> list:
    """Source frames of the pair with the target energy added (by qm9_index)."""
    tgt = target_energies()
    frames = []
    for a in read(spec["file"], ":"):
        a.info[TARGET_KEY] = tgt[int(a.info["qm9_index"])]
        frames.append(a)
    subsets = {a.info["subset"] for a in frames}
    if subsets != {"calib", "heldout"} or len(frames) != 130:
        sys.exit(f"{spec['file']}: expected 130 frames in subsets calib/heldout, got "
                 f"{len(frames)} in {sorted(subsets)}")
    return frames


def check_target_settings() -> dict:
    """The held-out molecules' target energies are the PW800 jobs of calib-qm9's store (the
    same settings hash as calib-qm9.atoms_pbe.json), not the store's older setting."""
    table = load_table(FIT_TARGET_TABLE)
    key = parse_spec(table.provenance["settings"]["spec"]).settings_key(periodic=False)
    con = sqlite3.connect(f"file:{QM9 / 'jobs.snapshot.sqlite'}?mode=ro", uri=True)
    stored = {n: e for n, e in con.execute(
        "SELECT name, energy FROM jobs WHERE status='done' AND label='pbe' AND "
        "settings_hash=?", (key,))}
    worst = {}
    for path in (QM9 / "calib-qm9.extxyz", HELD):
        diff = [abs(float(a.info[TARGET_KEY]) - stored[a.info["mol_id"]])
                for a in read(path, ":")]
        worst[path.name] = max(diff)
    atoms = max(abs(table.energies[s] - stored[s]) for s in table.energies)
    con.close()
    if max(worst.values()) > 1e-9 or atoms > 1e-9:
        sys.exit(f"target energies differ from the PW800 jobs of the store: {worst}")
    return {"spec": table.provenance["settings"]["spec"], "settings_hash": key,
            "max_abs_diff_eV": {**worst, "atoms": atoms},
            "note": "calib and held-out molecules and the atoms are the same job-store "
                    "settings (GPAW PBE, PW 800 eV, 5 Å vacuum, 0.1 eV Fermi-Dirac)"}


def store_cost(label: str, table_path: Path, names: set[str], store: Path) -> dict:
    """Jobs and summed job wall seconds of ``label`` at the table's settings."""
    table = load_table(table_path)
    key = parse_spec(table.provenance["settings"]["spec"]).settings_key(periodic=False)
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    n, secs = 0, 0.0
    for name, sec in con.execute("SELECT name, seconds FROM jobs WHERE status='done' AND "
                                 "label=? AND settings_hash=?", (label, key)):
        if name in names | set(table.energies):
            n, secs = n + 1, secs + float(sec)
    con.close()
    return {"jobs": n, "job_wall_s": round(secs, 1)}


# ------------------------------------------------------------------------------ fitting
def xy(frames, key: str, src: IsolatedAtomTable, tgt: IsolatedAtomTable, elements):
    """Source and target atomization energies (eV) and element counts of ``frames``."""
    counts = np.array([[a.get_chemical_symbols().count(s) for s in elements]
                       for a in frames], dtype=float)
    e_src = np.array([a.info[key] for a in frames])
    e_tgt = np.array([a.info[TARGET_KEY] for a in frames])
    x = counts @ np.array([src.energy(s) for s in elements]) - e_src
    y = counts @ np.array([tgt.energy(s) for s in elements]) - e_tgt
    return x, y, counts, e_tgt


def rmse(r) -> float:
    return float(np.sqrt(np.mean(np.square(r))))


def r2(y, p) -> float:
    return float(1 - np.sum((y - p) ** 2) / np.sum((y - np.mean(y)) ** 2))


def fit_target_table():
    """GPAW PBE/PW800's isolated atoms (calib-qm9.atoms_pbe.json) moved to the state of the MP
    table's atoms (spherical): E_i − c_i with c = transfer.json's ``correction_eV_per_atom``
    (issue 28 item 3; it adds Σ n_el c_el to E_at = E_mol − Σ E_i). Uncorrected if absent."""
    table = load_table(str(FIT_TARGET_TABLE))
    if TRANSFER.exists():
        corr = json.loads(TRANSFER.read_text()).get("correction_eV_per_atom") or {}
        table.energies = {s: e - float(corr.get(s, 0.0)) for s, e in table.energies.items()}
    return table


def fit_models(spec: dict, frames: list):
    """Fit each model on the calib molecules; held-out errors on the others."""
    src, tgt = load_table(str(spec["fit_table"])), fit_target_table()
    calib = [a for a in frames if a.info["subset"] == "calib"]
    held = [a for a in frames if a.info["subset"] == "heldout"]
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()},
                      key=atomic_numbers.get)
    xh, yh, ch, _ = xy(held, spec["key"], src, tgt, elements)
    n_atoms = ch.sum(axis=1)
    # The offsets and a trade off (they are nearly collinear in E_at), so the ridge strength
    # decides a, which also scales the forces: choose it by 5-fold CV on the calib molecules
    # only (the held-out ones stay unseen) and record how a moves with it.
    xc, yc, cc, _ = xy(calib, spec["key"], src, tgt, elements)
    folds = kfold_indices(len(xc), 5, None, np.random.default_rng(SEED))
    alpha_scan = {}
    for alpha in ALPHAS:
        m = make_model("scale+elements", alpha)
        m.a_, m.offsets_ = m._solve(xc, cc, yc)
        alpha_scan[alpha] = {"cv_rmse_eV": cross_validated_rmse("scale+elements", xc, cc, yc,
                                                                folds, alpha),
                             "a": float(m.a_)}
    alpha = min(ALPHAS, key=lambda al: alpha_scan[al]["cv_rmse_eV"])
    fits, results = {}, {}
    for m in MODELS:
        tea = TotalEnergyAlignment(src, tgt, model=m, n_bootstrap=N_BOOTSTRAP,
                                   random_state=SEED, alpha=alpha)
        tea.fit(calib, source_key=spec["key"], target_key=TARGET_KEY)
        off = np.array([tea.offsets_.get(s, 0.0) for s in elements])
        resid = yh - (tea.a_ * xh + ch @ off)  # = E_aligned − E_target (eV per molecule)
        fits[m] = tea
        results[m] = {
            "a": tea.a_, "a_ci95": tea.a_ci95_, "offsets_eV": tea.offsets_,
            "calib_rmse_eV": tea.rmse_tea_, "calib_r2": tea.r2_tea_,
            "heldout_rmse_eV": rmse(resid),
            "heldout_mae_eV": float(np.mean(np.abs(resid))),
            "heldout_max_abs_eV": float(np.max(np.abs(resid))),
            "heldout_rmse_meV_per_atom": 1000 * rmse(resid / n_atoms),
            "heldout_error_by_molecule_eV": {str(a.info["mol_id"]): round(float(r), 6)
                                             for a, r in zip(held, resid)},
        }
    results["scale+elements"]["alpha"] = alpha
    results["scale+elements"]["alpha_scan"] = {
        f"{al:g}": {k: round(v, 6) for k, v in d.items()} for al, d in alpha_scan.items()}
    results["scale+elements"]["a_range_over_alpha_scan"] = [
        round(min(d["a"] for d in alpha_scan.values()), 6),
        round(max(d["a"] for d in alpha_scan.values()), 6)]
    chosen = min(MODELS, key=lambda m: results[m]["heldout_rmse_eV"])
    for m in MODELS:  # the per-molecule list for the chosen model only (cards stay small)
        if m != chosen:
            del results[m]["heldout_error_by_molecule_eV"]
    counts = {s: int(sum(a.get_chemical_symbols().count(s) for a in calib))
              for s in elements}
    return fits, results, chosen, elements, counts, len(calib), len(held)


def fig4_ours(spec: dict, frames: list) -> dict:
    """Ours computed as the paper's Fig. 4(c, d): RMSE and R² of total energies (eV per
    molecule) against the PBE target after ICEA (a = 1) and after ICEA + AEC with a single
    factor fitted on the same molecules, over every molecule of the set (130); once with the
    source energies D3-free and once with D3(BJ) included (the paper's "ωB97M-D3(BJ)")."""
    src, tgt = load_table(str(spec["fit_table"])), fit_target_table()
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()},
                      key=atomic_numbers.get)
    out = {}
    for variant, d3 in (("d3_free", False), ("d3_included", True)):
        fr = []
        for a in frames:
            b = a.copy()
            if d3:
                b.info[spec["key"]] = a.info[spec["key"]] + a.info["d3_energy_wb97m"]
            fr.append(b)
        x, y, counts, e_tgt = xy(fr, spec["key"], src, tgt, elements)
        sum_t = e_tgt + y
        a = float(make_model("scale").fit(x, counts, y).a_)
        e_icea, e_tea = sum_t - x, sum_t - a * x
        out["mean_atoms"] = float(counts.sum(axis=1).mean())
        out[variant] = {"n": len(fr), "a": a,
                        "rmse_icea_eV": rmse(e_icea - e_tgt), "rmse_tea_eV": rmse(e_tea - e_tgt),
                        "r2_icea": r2(e_tgt, e_icea), "r2_tea": r2(e_tgt, e_tea)}
    return out


# ------------------------------------------------------------------------------ the card
def restricted(table: IsolatedAtomTable, elements) -> IsolatedAtomTable:
    """The table limited to the calibrated elements (so the alignment covers nothing else)."""
    prov = dict(table.provenance)
    prov["note"] = (prov.get("note", "") + " " if prov.get("note") else "") + (
        f"limited to the elements of the card's calibration ({' '.join(elements)})")
    return IsolatedAtomTable(table.name, {s: table.energies[s] for s in elements}, prov)


def alignment_dict(tea: TotalEnergyAlignment, spec: dict, elements, n_calib: int) -> dict:
    """The chosen fit as a saved alignment with the tables the dataset's users have."""
    card_tea = TotalEnergyAlignment.from_dict(
        {**tea.to_dict(), "sha256": tea.sha256()})  # a copy, validated
    card_tea.source = card_tea.source_table_ = restricted(
        load_table(spec["shipped_table"]), elements)
    card_tea.target = card_tea.target_table_ = load_table(TARGET_TABLE)
    card_tea.calibration_ = {
        "file": str(Path(spec["file"]).relative_to(ROOT)), "sha256": sha256(spec["file"]),
        "source_key": spec["key"], "target_key": TARGET_KEY, "split": "subset=calib",
        "n": n_calib, "n_rejected": 0, "elements": list(elements),
        "fit_tables": {"source": str(spec["fit_table"]).replace(str(ROOT) + "/", ""),
                       "target": str(FIT_TARGET_TABLE.relative_to(ROOT)),
                       "target_atoms_moved_to_mp_state_eV": (json.loads(TRANSFER.read_text())
                           .get("correction_eV_per_atom") if TRANSFER.exists() else None)},
    }
    d = card_tea.to_dict()
    d["sha256"] = card_tea.sha256()
    return d


def table_info(table: IsolatedAtomTable) -> dict:
    p = table.provenance
    return {"name": table.name, "method": p.get("method"), "code": p.get("code"),
            "source": p.get("source"), "citation": p.get("citation")}


def read_optional(path: Path, keys: tuple[str, ...], what: str) -> dict:
    rel = str(path.relative_to(ROOT))
    if not path.exists():
        return {**{k: None for k in keys}, "file": rel,
                "note": f"{what}: {rel} not present when this card was built; rerun "
                        "datasets/cards/regenerate.sh once it is"}
    d = json.loads(path.read_text())
    return {**{k: d.get(k) for k in keys}, "file": rel, "sha256": sha256(path)}


def build(name: str, spec: dict, target_check: dict) -> dict:
    frames = joined_frames(spec)
    fits, results, chosen, elements, counts, n_cal, n_held = fit_models(spec, frames)
    shipped, fit_src = load_table(spec["shipped_table"]), load_table(str(spec["fit_table"]))
    tgt_fit, tgt = fit_target_table(), load_table(TARGET_TABLE)
    ch = results[chosen]
    molecules = {a.info["mol_id"] for a in frames}
    cost = {"target": {"level": "GPAW PBE/PW800", "where": "one CPU core per job, this "
                       "machine (shared)",
                       **store_cost("pbe", FIT_TARGET_TABLE, molecules,
                                    QM9 / "jobs.snapshot.sqlite")},
            "source": {"level": spec["source_method"], "where": spec["source_cost"]}}
    if spec["source_label"]:
        cost["source"].update(store_cost(spec["source_label"], spec["fit_table"], molecules,
                                         PUB / "jobs.snapshot.sqlite"))
    d3 = spec["d3"]
    card = {
        "format": "tealign-card/1",
        "name": name,
        "title": f"{spec['dataset']['name'].split(' (')[0]} → MPtrj",
        "dataset": spec["dataset"],
        "source": {"method": spec["source_method"], "code": spec["source_code"],
                   "table": table_info(shipped),
                   "fit_table": {**table_info(fit_src),
                                 "file": str(spec["fit_table"]).replace(str(ROOT) + "/", "")},
                   "shipped_minus_fit_meV": {s: round(1000 * (shipped.energy(s)
                                                              - fit_src.energy(s)), 4)
                                             for s in elements}},
        "target": {"method": "PBE, plane waves, PAW (VASP, Materials Project settings): the "
                   "MPtrj scale", "code": "VASP (dataset); GPAW 800 eV plane waves "
                   "(calibration)", "table": table_info(tgt),
                   "dataset_citation": "Deng et al., CHGNet, Nat. Mach. Intell. 5, 1031 "
                   "(2023) (MPtrj); Jain et al., APL Mater. 1, 011002 (2013)",
                   "calibrated_against": {**table_info(tgt_fit), **target_check,
                                          "file": str(FIT_TARGET_TABLE.relative_to(ROOT))}},
        "model": {"chosen": chosen, "chosen_by": f"lowest RMSE on the {n_held} held-out "
                  f"molecules among {', '.join(MODELS)}", "a": ch["a"],
                  "a_ci95": ch["a_ci95"], "offsets_eV": ch["offsets_eV"],
                  "heldout_rmse_eV": ch["heldout_rmse_eV"],
                  "heldout_rmse_meV_per_atom": ch["heldout_rmse_meV_per_atom"]},
        "single_factor": {"a": results["scale"]["a"], "a_ci95": results["scale"]["a_ci95"],
                          "heldout_rmse_eV": results["scale"]["heldout_rmse_eV"]},
        "models": results,
        "coverage": {"elements": list(elements), "calib_atoms": counts,
                     "policy": "refuse: a frame with another element stops the run (no "
                               "calibration data for it)"},
        "d3": {"source_must_be_d3_free": True,
               "published_with_d3": d3["published_with_d3"],
               "functional": d3["functional"],
               "policy": ("the published energies include D3(BJ): align with --remove-d3 "
                          f"(subtracts D3(BJ) of {d3['functional']}); frames whose "
                          "energy key is marked D3-free (d3_in_<key> = F) pass without it; "
                          "anything else is refused")
               if d3["published_with_d3"] else
               ("the published energies have no dispersion term: no --remove-d3; frames "
                "marked as including D3 (d3_in_<key> = T) are refused")},
        "charge": {**read_optional(CHARGED, ("policy", "rmse_eV_per_molecule",
                                             "neutral_heldout_rmse_eV"), "charged ions"),
                   "applied": "reject: charged frames (charge/total_charge ≠ 0) are "
                              "rejected, one reject line each (TEA's isolated atoms are "
                              "neutral)"},
        "transfer_error": read_optional(TRANSFER, ("transfer_error_eV_per_molecule",
                                                   "transfer_error_meV_per_atom",
                                                   "correction_eV_per_atom"),
                                        "target transfer (issue 28 item 3, GPAW PBE/PW800 "
                                        "vs a Gaussian-basis PBE)"),
        "calibration": {"molecules": {"calib": n_cal, "heldout": n_held},
                        "set": "QM9 molecules, 1–9 heavy atoms, H C N O F "
                               "(datasets/calib-public/molecules.extxyz)",
                        "files": {str(p.relative_to(ROOT)): sha256(p) for p in
                                  (Path(spec["file"]), QM9 / "calib-qm9.extxyz", HELD)},
                        "command": "datasets/calib-public/regenerate.sh (source) and "
                                   "datasets/calib-qm9/regenerate.sh + "
                                   "datasets/bridge-mini/regenerate.sh (target); "
                                   "datasets/cards/regenerate.sh (this card)",
                        "cost": cost,
                        "settings": {"n_bootstrap": N_BOOTSTRAP, "random_state": SEED}},
        "application": {"formula": "E_MPtrj = Σ_i E_i(vasp-pbe-mp) − (a · (Σ_i E_i(source "
                                   "table) − E_source) + Σ_el n_el c_el); F = a · F_source; "
                                   "stress = a · stress_source",
                        "command": f"tealign align DATA --alignment {name}"
                                   + (" --remove-d3" if d3["published_with_d3"] else "")
                                   + " -o OUT.extxyz"},
    }
    if spec.get("note"):
        card["note"] = spec["note"]
    if spec["fig4"]:
        paper = FIG4_RMSE_EV["ωB97M-D3(BJ)/def2-TZVPPD (Psi4) → PBE/PW (VASP)"]
        ours = fig4_ours(spec, frames)
        card["fig4"] = {
            "what": "RMSE (eV per molecule) and R² of total energies against PBE/PW after "
                    "ICEA (a = 1) and after ICEA + AEC (one factor a fitted on the same "
                    "molecules), QM9 geometries (paper Fig. 4(d), appendix A)",
            "paper": {"pair": "ωB97M-D3(BJ)/def2-TZVPPD (Psi4) → PBE/PW400 (VASP)",
                      "set": "QM9Psi4 vs QM9VASP (QM9 geometries; number of molecules not "
                             "stated)", **paper},
            "ours": {"pair": "ωB97M/def2-TZVPPD (PySCF) → PBE/PW800 (GPAW)",
                     "set": "the 130 molecules of datasets/calib-public", **ours},
            "why_they_differ": "",
        }
        card["fig4"]["why_they_differ"] = why_fig4(card["fig4"])
    card["alignment"] = alignment_dict(fits[chosen], spec, elements, n_cal)
    return card


def why_fig4(f: dict) -> str:
    """One paragraph on why our Fig. 4 numbers differ from the paper's (from the numbers)."""
    o, od, p = f["ours"]["d3_free"], f["ours"]["d3_included"], f["paper"]

    def cmp(ours, paper):
        return "below" if ours < paper else "above"

    return (
        f"Same quantity, different set and target code. After ICEA ours is "
        f"{o['rmse_icea_eV']:.3f} eV ({cmp(o['rmse_icea_eV'], p['icea'])} the paper's "
        f"{p['icea']} eV), after ICEA + AEC {o['rmse_tea_eV']:.3f} eV (paper {p['tea']} eV). "
        f"(1) The set: a single factor leaves an error that grows with the atomization "
        f"energy, so the RMSE depends on molecule size; ours are 130 QM9 molecules of "
        f"{f['ours']['mean_atoms']:.1f} atoms on average (1–9 heavy atoms), the paper's "
        "QM9Psi4 a QM9 set of unstated size (QM9 averages about 18 atoms). (2) The target "
        "code: the ICEA error is the sum of per-element isolated-atom mismatches plus "
        "(a − 1)·E_at; our atoms are GPAW PAW atoms (800 eV, 5 Å vacuum, spin-polarised "
        "with Hund's rule, moved to the spherical state of the MP table's atoms: "
        "docs/target_transfer.md), the paper's VASP atoms at 400 eV and 10 Å, whose per-element "
        "mismatches differ, so the ICEA RMSE differs most while the AEC residual, set by "
        f"how far from proportional the two atomization energies are, lands close "
        f"(fitted a: ours {o['a']:.4f}). (3) D3: the paper calls its Psi4 level ωB97M-D3(BJ) "
        "and does not say whether D3 was removed for Fig. 4; with D3(BJ) kept ours gives "
        f"{od['rmse_icea_eV']:.3f} → {od['rmse_tea_eV']:.3f} eV. The per-element model "
        "(scale+elements) removes most of what one factor leaves (see models).")


def main() -> None:
    target_check = check_target_settings()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in PAIRS.items():
        card = build(name, spec, target_check)
        write_json(OUT / f"{name}.json", card)
        m = card["model"]
        print(f"{name}: {m['chosen']} a = {m['a']:.5f} "
              f"({m['a_ci95'][0]:.5f}–{m['a_ci95'][1]:.5f}); held-out RMSE "
              + ", ".join(f"{k} {v['heldout_rmse_eV']:.3f}" for k, v in card["models"].items())
              + " eV")
        if "fig4" in card:
            print("  fig4 ours:", json.dumps(card["fig4"]["ours"], indent=None)[:400])


if __name__ == "__main__":
    main()
