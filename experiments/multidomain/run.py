"""The multi-domain experiment (paper section IV at small scale): identical MACE models trained
on organic-mini and inorganic-mini mixed in the ways people mix datasets today.

    .venv/bin/python experiments/multidomain/run.py --label-level    # no model: alignments only
    .venv/bin/python experiments/multidomain/run.py                  # all variants, seeds 1,2,3
    .venv/bin/python experiments/multidomain/run.py --variants a,e --preset tiny --epochs 2
    .venv/bin/python experiments/multidomain/run.py --variants e,g --seeds 1   # some of it
    .venv/bin/python experiments/multidomain/run.py --report-only    # README from results.json

Runs with disjoint --variants may go in parallel (each variant has its own directory;
results.json is updated under a lock); run --label-level first, it writes the alignments.

Variants (one MACE model each, same preset):
  a   inorganic-mini only (the GPAW PBE target scale of datasets/README.md)
  b   organic-mini only (its own ωB97M/def2-SVP scale; energies without D3(BJ), as stored)
  c   both, no alignment: organic energies as they are, the target's isolated atoms as E0s
  d   both, ICEA only (tealign fit --model icea)
  e   both, TEA with the single factor (tealign fit --model scale)
  e2  both, TEA with the model `--model auto` picks
  f   both, per-source fitted linear element references instead of TEA (E − Σ n·ε fitted by
      least squares on each source's training split; E0s zero) — how fairchem/UMA and
      SevenNet-MF handle mixed data
  g   a MACE multi-head model, one head per source, each on its own scale (mace-torch heads)
Test sets: organic-mini's test split (4 molecules, 24 conformers; the bridge molecules are all
in training) and one crystal family held out whole (SiC: its elements are trained on in Si and
diamond, the crystal never; model_level.prepare_inorganic). Evaluation:
- per domain in original units: each variant's own inverse transform applied to its predictions
  (TEA/ICEA: the alignment's inverse; f: the linear references added back);
- per domain in target units (model_level): against GPAW for the organic test conformers
  (datasets/bridge-mini/organic-test-pbe.extxyz), the 40 calib-qm9 molecules the alignments were
  not fitted on, and SiC;
- cross-domain items of datasets/bridge-mini (reactions, adsorption, lattice energies) from the
  model's energy of every bridge frame; the multi-head model (g) with its target head for every
  frame and with each frame on its own domain's head;
- the label level (label_level.py, `--label-level`): each alignment against GPAW with no model.
Metrics: energy MAE per atom, MAE of relative energies between conformers of one mol_id
(organic; each molecule's energies centred on their mean), force MAE. (a) and (b) are evaluated
on their own domain only (and on the items whose elements they know).

Everything goes through tealign's own commands (fit, merge, train), each recorded with its
wall time in RUN/results.json; the tables land in experiments/multidomain/README.md. Reruns
resume: finished trainings (RUN/<variant>/train/model.model) are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bridge_v2
import numpy as np
from model_level import (
    HELD_OUT_CRYSTAL,
    TARGET_HEAD,
    bridge_energies,
    cross_items,
    cross_summary,
    cross_table_lines,
    cross_verdict_lines,
    oracle_lines,
    prepare_inorganic,
    seed_paired,
    sparse_items,
    target_errors,
    target_table_lines,
)
from paired import table_lines as paired_table_lines

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VARIANTS = ["a", "b", "c", "d", "e", "e2", "f", "g", "eo", "o"]
TITLES = {
    "a": "inorganic only", "b": "organic only",
    "c": "both, no alignment (straw man: all-electron totals, valence-only E0s)",
    "d": "both, ICEA only", "e": "both, TEA (single factor a)",
    "e2": "both, TEA (model chosen by --model auto)",
    "f": "both, per-source linear element references", "g": "multi-head (one head per source)",
    "eo": "both, TEA (single factor a), on the oracle's organic subset",
    "o": "oracle: the organic subset recomputed at the target level (GPAW)",
}
#: the oracle's organic frames (oracle/select_subset.py, oracle/regenerate.sh): a stated subset
#: of organic-mini's training and validation frames, with their ωB97M labels and, after
#: regenerate.sh, their GPAW labels (energy_pbe, forces_pbe) in a second file
ORACLE_SUBSET = HERE / "oracle" / "organic-subset.extxyz"
ORACLE_SUBSET_PBE = HERE / "oracle" / "organic-subset-pbe.extxyz"


class Run:
    def __init__(self, out: Path, datasets: Path) -> None:
        self.out, self.ds = out, datasets
        self.log: list[dict] = []

    def tealign(self, *args: str, cwd: Path | None = None) -> dict:
        cmd = [sys.executable, "-m", "tealign", *map(str, args)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        shown = "tealign " + shlex.join(map(str, args))
        self.log.append({"command": shown, "cwd": str(cwd or Path.cwd()), "wall_s": wall,
                         "exit": proc.returncode})
        print(f"[{wall:7.1f} s] {shown}", flush=True)
        if proc.returncode != 0:
            raise SystemExit(f"failed: {shown}")
        return json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}

    # ------------------------------------------------------------------ inputs
    @property
    def files(self) -> dict[str, Path]:
        d = self.ds
        return {"calib": d / "calib-qm9/calib-qm9.extxyz",
                "calib_src": d / "calib-qm9/calib-qm9.atoms_wb97m.json",
                "calib_tgt": d / "calib-qm9/calib-qm9.atoms_pbe.json",
                "organic": d / "organic-mini/organic-mini.extxyz",
                "organic_e0": d / "organic-mini/organic-mini.atoms_wb97m.json",
                # inorganic-mini with one crystal family held out as its test split
                "inorganic": self.out / "data" / "inorganic-mini.heldout.extxyz",
                "inorganic_src": d / "inorganic-mini/inorganic-mini.extxyz",
                "bridge": d / "bridge-mini/bridge-mini.extxyz",
                "organic_test_pbe": d / "bridge-mini/organic-test-pbe.extxyz",
                "heldout_qm9": d / "bridge-mini/heldout-qm9.extxyz",
                "target_e0": d / "inorganic-mini/inorganic-mini.atoms_pbe.json",
                # the oracle's organic frames: ωB97M labels (eo) and GPAW labels (o)
                "oracle_eo": ORACLE_SUBSET, "oracle_o": ORACLE_SUBSET_PBE}

    def alignments(self) -> dict[str, Path]:
        f = self.files
        out = {}
        for model in ("icea", "scale", "auto"):
            path = self.out / "alignments" / f"{model}.json"
            if not path.exists():
                self.tealign("fit", f["calib"], "--source-key", "energy_wb97m", "--target-key",
                             "energy_pbe", "--source-e0", f["calib_src"], "--target-e0",
                             f["calib_tgt"], "--model", model, "-o", path, "--json")
            out[model] = path
        return out

    def prepare_data(self) -> None:
        """Write the derived training files ``files`` names (here: inorganic-mini with SiC
        held out); a subclass that trains on other data builds its own."""
        f = self.files
        prepare_inorganic(f["inorganic_src"], f["inorganic"])

    def linear_references(self) -> dict[str, Path]:
        """Per-source element references ε by least squares on the training split, written
        as isolated-atom tables, and an ICEA 'alignment' from each onto a table of zeros."""
        from tealign.align import TotalEnergyAlignment
        from tealign.io import read_batch
        from tealign.io.outputs import write_json
        from tealign.methods import load_table

        f = self.files
        out = {}
        elements = set()
        fits = {}
        self.prepare_data()
        for name, key in (("organic", "energy_wb97m"), ("inorganic", "energy_pbe")):
            b = read_batch(f[name])
            e = np.asarray(b.info[key], float)
            train = np.asarray(b.info["split"]).astype(str) == "train"
            zs = sorted(set(b.numbers.tolist()))
            fa = b.frame_of_atom()
            counts = np.zeros((b.n_frames, len(zs)))
            np.add.at(counts, (fa, np.searchsorted(zs, b.numbers)), 1)
            eps, *_ = np.linalg.lstsq(counts[train], e[train], rcond=None)
            from ase.data import chemical_symbols

            fits[name] = {chemical_symbols[z]: float(v) for z, v in zip(zs, eps)}
            elements |= set(fits[name])
        zero = self.out / "linref" / "zero.json"
        zero.parent.mkdir(parents=True, exist_ok=True)
        write_json(zero, {"name": "zero", "units": "eV",
                          "energies": dict.fromkeys(sorted(elements), 0.0)})
        out["zero"] = zero
        for name, eps in fits.items():
            table = self.out / "linref" / f"{name}.json"
            eps = stored_fit_if_same(table, eps)
            write_json(table, {
                "name": f"linref-{name}", "units": "eV", "energies": eps,
                "method": "least-squares element references on the training split"})
            # a fixed shift, E' = E − Σ n·ε (ICEA from the ε table onto zeros): nothing to fit
            tea = TotalEnergyAlignment.icea_only(
                load_table(str(table)), load_table(str(zero)),
                note=f"linear element references of {f[name].name}, least squares on its "
                     "training split")
            path = self.out / "linref" / f"{name}.alignment.json"
            tea.save(path)
            out[name] = path
            out[f"{name}_table"] = table
        return out

    # ------------------------------------------------------------------ variants
    def toml(self, v: str, al: dict, lr: dict) -> tuple[str, bool]:
        f = self.files
        org = (f'[[source]]\nname = "organic"\npath = "{f["organic"]}"\n'
               'energy_key = "energy_wb97m"\nforces_key = "forces_wb97m"\n'
               'config_type = "organic"\n')
        inorg = (f'[[source]]\nname = "inorganic"\npath = "{f["inorganic"]}"\n'
                 'energy_key = "energy_pbe"\nforces_key = "forces_pbe"\n'
                 'stress_key = "stress_pbe"\nconfig_type = "inorganic"\n')
        # the GPAW atoms of both datasets (same atom settings): one target-scale table
        target = (f'[target]\ne0 = ["{f["calib_tgt"]}", "{f["target_e0"]}"]\n'
                  'r_max = 4.5\n\n')
        if v == "a":
            return target + inorg + 'alignment = "target"\n', False
        if v == "b":
            return (f'[target]\ne0 = "{f["organic_e0"]}"\nr_max = 4.5\n\n' + org
                    + 'alignment = "target"\n'), False
        if v == "c":
            # the straw man puts ωB97M totals on GPAW's atoms on purpose: merge's provenance
            # check would refuse exactly that
            return (target + org + 'alignment = "target"\nallow_method_mismatch = true\n\n'
                    + inorg + 'alignment = "target"\n'), False
        if v in ("d", "e", "e2"):
            model = {"d": "icea", "e": "scale", "e2": "auto"}[v]
            return (target + org + f'alignment = "{al[model]}"\n\n' + inorg
                    + 'alignment = "target"\n'), False
        if v == "f":
            # the ε tables are fitted references, not isolated atoms of any level: merge's
            # provenance check (isolated atoms of the data's method) does not apply to them
            fitted = "allow_method_mismatch = true\n"
            return (f'[target]\ne0 = "{lr["zero"]}"\nr_max = 4.5\n\n' + org
                    + f'alignment = "{lr["organic"]}"\n' + fitted + "\n" + inorg
                    + f'alignment = "{lr["inorganic"]}"\n' + fitted), False
        if v in ("eo", "o"):
            # the same frames for both: TEA-aligned ωB97M labels (eo) or GPAW's (o)
            sub = org.replace(str(f["organic"]), str(f["oracle_eo"] if v == "eo"
                                                     else f["oracle_o"]))
            if v == "eo":
                return (target + sub + f'alignment = "{al["scale"]}"\n\n' + inorg
                        + 'alignment = "target"\n'), False
            sub = sub.replace("energy_wb97m", "energy_pbe").replace("forces_wb97m", "forces_pbe")
            return target + sub + 'alignment = "target"\n\n' + inorg + 'alignment = "target"\n', \
                False
        if v == "g":
            return (target + org + f'alignment = "target"\ne0 = "{f["organic_e0"]}"\n\n'
                    + inorg + 'alignment = "target"\n'), True
        raise ValueError(v)

    def train(self, v: str, preset: str, epochs: int | None, al, lr, seed: int = 1,
              device: str = "cpu", merge_only: bool = False,
              mace_args: tuple[str, ...] = (), extend_to: int | None = None) -> Path:
        """Merge (once per variant) and train; seed 1 (the presets' own) trains into
        ``<variant>/train``, another seed into ``<variant>/train_seed<N>``. ``merge_only``:
        stop after the merge (trainings then run elsewhere, oracle/train_on_device.sh).
        ``mace_args``: further mace_run_train options (after ``--``), part of the request a
        finished model must match. ``extend_to``: a finished training asked for ``epochs``
        is continued to this many (`tealign train --epochs`, which resumes mace-torch from
        its latest checkpoint, appending to train.log); requested.json then records
        ``extended_to``, and a training already extended that far is reused."""
        d = self.out / v
        run_dir = d / ("train" if seed == 1 else f"train_seed{seed}")
        model = run_dir / "model.model"
        asked = {"preset": preset, "epochs": epochs,
                 **({"mace_args": list(mace_args)} if mace_args else {})}
        marker = run_dir / "requested.json"

        def train_args(n_epochs: int | None) -> list:
            args = ["train", "--preset", preset, "--data", d / "merged", "-o", run_dir,
                    "--device", device, "--json"]
            if n_epochs:
                args[-1:-1] = ["--epochs", str(n_epochs)]
            if seed != 1:
                args[-1:-1] = ["--seed", str(seed)]
            return args + (["--", *mace_args] if mace_args else [])

        if model.exists():
            had = json.loads(marker.read_text()) if marker.exists() else None
            if {k: x for k, x in (had or {}).items() if k != "extended_to"} != asked:
                # never reuse a model trained to other settings
                raise SystemExit(f"{model} was trained with {had}, not {asked}: move "
                                 f"{run_dir} away to retrain it")
            if extend_to is None or extend_to <= (had.get("extended_to") or epochs or 0):
                return model
            self.tealign(*train_args(extend_to))
            marker.write_text(json.dumps({**had, "extended_to": extend_to}))
            return model
        d.mkdir(parents=True, exist_ok=True)
        text, per_source = self.toml(v, al, lr)
        if not (d / "merged" / "report.json").exists() or \
                not (d / "merge.toml").exists() or (d / "merge.toml").read_text() != text:
            (d / "merge.toml").write_text(text)
            self.tealign("merge", d / "merge.toml", "-o", d / "merged", "--json",
                         *(["--per-source"] if per_source else []))
        if merge_only:
            return model
        run_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(asked))
        self.tealign(*train_args(epochs))
        return model

    def training_wall(self, model: Path, log: list[dict]) -> dict:
        """``train_wall_s`` of the training behind ``model``: its `tealign train` command in
        ``log`` (this run's commands since the training began), else, for a model trained
        elsewhere (oracle/train_on_device.sh), its own device_wall.json record (then also
        ``trained_on``, and the command joins this run's log). {} when neither is there."""
        trained = [c for c in log if c["command"].startswith("tealign train")]
        if trained:
            return {"train_wall_s": trained[-1]["wall_s"]}
        if not (model.parent / "device_wall.json").exists():
            return {}
        dev = json.loads((model.parent / "device_wall.json").read_text())
        self.log.append({"command": dev["command"], "cwd": "(device machine)",
                         "wall_s": dev["wall_s"], "exit": 0,
                         "note": f"on {dev['device']}, beside {dev['beside']} other trainings"})
        return {"train_wall_s": dev["wall_s"], "trained_on": dev["device"]}

    # ------------------------------------------------------------------ evaluation
    def domain_errors(self, m, v: str, b, dom: str, al: dict, lr: dict) -> dict:
        """The model's errors on frames ``b`` of domain ``dom`` in that domain's original
        units: predictions on the variant's head, mapped back through the variant's
        alignment (d, e, e2, eo on organic frames; f's linear references on either), against
        the frames' own labels (energy_wb97m / energy_pbe, their forces)."""
        from tealign.align import TotalEnergyAlignment
        from tealign.evaluate import Predictions, metrics, predict

        ek, fk = ("energy_wb97m", "forces_wb97m") if dom == "organic" else \
            ("energy_pbe", "forces_pbe")
        e_ref = np.asarray(b.info[ek], float)
        f_ref = np.asarray(b.arrays[fk], float)
        # energy_wb97m is already dispersion-free (tealign stores D3 apart): no subtraction
        head = dom if v == "g" else None
        p = predict(m, b, head=head, compute_stress=False)
        e, f = p.energy, p.forces
        inverse = None
        if dom == "organic" and v in ("d", "e", "e2", "eo"):
            inverse = TotalEnergyAlignment.load({"d": al["icea"], "e": al["scale"],
                                                 "e2": al["auto"], "eo": al["scale"]}[v])
        if v == "f":
            inverse = TotalEnergyAlignment.load(lr[dom])
        if inverse is not None:
            pb = b.copy()
            pb.info["REF_energy"] = e
            pb.arrays["REF_forces"] = f
            back = inverse.inverse_transform(pb, "pred_energy", "pred_forces")
            e, f = np.asarray(back.info["pred_energy"]), np.asarray(back.arrays["pred_forces"])
        ref = b.copy()
        ref.info["REF_energy"], ref.arrays["REF_forces"] = e_ref, f_ref
        row = metrics(ref, Predictions(energy=e, forces=f, stress=None))
        if dom == "organic":
            ids = np.asarray(b.info["mol_id"]).astype(str)
            rel = []
            for mol in np.unique(ids):
                k = ids == mol
                if k.sum() > 1:
                    rel.extend(((e[k] - e[k].mean()) - (e_ref[k] - e_ref[k].mean())).tolist())
            row["relative_energy_mae_meV"] = float(np.mean(np.abs(rel)) * 1000) if rel \
                else None
        return row

    def evaluate(self, v: str, model: Path, al: dict, lr: dict) -> dict:
        files = self.files
        from tealign.evaluate import load_model
        from tealign.io import read_batch

        m = load_model(model)
        res = {}
        # the oracle has no ωB97M-scale organic predictions to score in original units
        domains = {"a": ["inorganic"], "b": ["organic"], "o": ["inorganic"]}.get(
            v, ["organic", "inorganic"])
        for dom in domains:
            b = read_batch(self.files[dom])
            b = b.select(np.asarray(b.info["split"]).astype(str) == "test")
            res[dom] = self.domain_errors(m, v, b, dom, al, lr)
        # on the target scale, against GPAW: the organic test molecules (energies, forces),
        # the 40 calib-qm9 molecules no alignment was fitted on, the held-out crystal family
        tea, eps = al["scale"], lr["inorganic_table"]
        if v != "a":
            res["organic_target"] = target_errors(m, v, files["organic_test_pbe"], tea, eps)
            org = read_batch(files["organic"])  # held out = never trained or validated on
            trained = set(np.asarray(org.info["mol_id"]).astype(str)[
                np.asarray(org.info["split"]).astype(str) != "test"])
            res["heldout_target"] = target_errors(m, v, files["heldout_qm9"], tea, eps,
                                                  forces=False, exclude_mol_ids=trained)
        res["cross"] = {}
        for mode, heads in cross_modes(v).items():
            energies = bridge_energies(m, v, files["bridge"], tea, eps, heads=heads)
            res["cross"][mode] = cross_items(energies, files["bridge"])
        return res


def stored_fit_if_same(table: Path, eps: dict[str, float], tol_eV: float = 1e-9
                       ) -> dict[str, float]:
    """The element references (eV) already stored in ``table`` when they are the same
    elements and agree with the new fit ``eps`` to ``tol_eV`` each, else ``eps``. The least
    squares moves in its last bits with the BLAS thread count (up to 1e-11 eV on S and Cl
    here); rewriting the table for that would change the sha256 of every merge input that
    reads it, and a finished model would then be refused as trained on other data."""
    if not table.exists():
        return eps
    stored = json.loads(table.read_text()).get("energies", {})
    if set(stored) == set(eps) and all(abs(stored[k] - v) <= tol_eV for k, v in eps.items()):
        return {k: float(stored[k]) for k in eps}
    return eps


def cross_modes(v: str) -> dict[str, dict[str, str] | None]:
    """The ways a variant's bridge frames are predicted, {mode: heads} (``heads``: frame
    config_type -> model head, as model_level.bridge_energies takes it; None: the one head).
    The multi-head model (g): every frame on its target head, and each frame on its own
    domain's head; the first mode is the variant's single answer."""
    if v == "g":
        return {"target head": dict.fromkeys(("organic", "inorganic", "bridge"), TARGET_HEAD),
                "own heads (organic head + TEA)": {"organic": "organic",
                                                   "inorganic": TARGET_HEAD,
                                                   "bridge": TARGET_HEAD}}
    return {"model": None}


def si_lattice_check(model: Path, si_ev: Path) -> dict:
    """The paper's "organic data does not deteriorate inorganic accuracy", on bulk Si: the
    model's relaxed lattice constant against GPAW's (Birch–Murnaghan fit of si_ev.extxyz)."""
    from ase.build import bulk

    from tealign.bench import eos
    from tealign.bench.calculators import get_calculator
    from tealign.bench.lattice import relax_lattice_constant

    a_model, converged = relax_lattice_constant(bulk("Si", "diamond", a=5.47 * 1.02),
                                                "diamond", get_calculator(str(model)))
    a_gpaw = eos.fit(eos.GRID, eos.load_reference(si_ev))["a0_A"]
    return {"a_model_A": a_model, "a_gpaw_A": a_gpaw, "difference_A": a_model - a_gpaw,
            "converged": converged}


def by_seed(entry: dict | None) -> dict[str, dict]:
    """{seed: {"errors", "train_wall_s", "si_lattice"}} of one variant ({} if not run)."""
    return (entry or {}).get("by_seed", {})


def mean_sd(entry: dict | None, dom: str, key: str) -> tuple[float | None, float | None, int]:
    """Mean and sample standard deviation over seeds of one metric; (None, None, 0) if absent."""
    vals = [r["errors"][dom][key] for r in by_seed(entry).values()
            if (r.get("errors", {}).get(dom) or {}).get(key) is not None]
    if not vals:
        return None, None, 0
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return float(np.mean(vals)), sd, len(vals)


#: what each variant does to the data, and what the numbers can and cannot say
READING = [
    "- **(c) no alignment** (a straw man, labelled so): organic-mini's totals are "
    "all-electron ωB97M energies (about −1030 eV per carbon atom) while the E0s are GPAW's "
    "valence-only PAW atoms (about −1.3 eV per carbon). The model must absorb a core energy "
    "of ~10³ eV per atom through its readout; it cannot, and the organic energies are off by "
    "tens of eV per atom. Forces, which do not see the offset, suffer less. No one would mix "
    "data this way; it shows the size of the problem TEA removes.",
    "- **(d) ICEA only** shifts each organic total by the isolated-atom differences; the "
    "atomization energies stay on the ωB97M scale, which differs from PBE's by the factor a "
    "of the alignments below, so the merged set holds two slightly different surfaces.",
    "- **(e) TEA** adds the atomization-energy correction (E_at scaled by a, forces by a); "
    "(e2) uses the correction model `tealign fit --model auto` chose on calib-qm9.",
    "- **(f) linear element references** fit per-element offsets to each source's own training "
    "energies (no isolated atoms, no calibration set); the model's energies then have no "
    "physical anchor, and the offsets absorb part of each source's composition dependence.",
    "- **(g) multi-head** shares the descriptor and keeps one readout per source, each on its "
    "own scale with its own E0s: no alignment, but also no single potential-energy surface "
    "to run MD on across domains.",
]

def alignment_lines(runs: Path) -> list[str]:
    """The alignments the variants used, as fitted on calib-qm9 (runs/alignments/*.json)."""
    fitted = [json.loads(f.read_text()) for f in sorted((runs / "alignments").glob("*.json"))]
    n = sorted({str(d.get("calibration", {}).get("n", "?")) for d in fitted}) or ["?"]
    out = ["The alignments (ωB97M/def2-SVP → GPAW PBE, `tealign fit` on calib-qm9, "
           f"{'/'.join(n)} molecules):", "", "| variant | `--model` | chosen | a (95 % CI) | "
           "element offsets (eV) | RMSE ICEA → fitted (eV) |", "|---|---|---|---|---|---|"]
    for v, name in (("d", "icea"), ("e", "scale"), ("e2", "auto")):
        f = runs / "alignments" / f"{name}.json"
        if not f.exists():
            continue
        d = json.loads(f.read_text())
        m, ci, met = d["model"], d.get("a_ci95") or [None, None], d.get("metrics", {})
        offs = ", ".join(f"{k} {x:+.3f}" for k, x in m.get("offsets_eV", {}).items()) or "–"
        a = f"{m['a']:.5f}" + (f" ({ci[0]:.5f}–{ci[1]:.5f})" if ci[0] is not None and
                                m["name"] != "icea" else "")
        rmse = (f"{met['rmse_icea_eV']:.3f} → {met['rmse_tea_eV']:.3f}"
                if met.get("rmse_tea_eV") is not None else "–")
        out.append(f"| ({v}) | {name} | {m['name']} | {a} | {offs} | {rmse} |")
    return out


#: the metrics compared, (domain, key, label); lower is better for all
METRICS = [("organic", "energy_mae_meV_per_atom", "organic energy MAE"),
           ("organic", "relative_energy_mae_meV", "organic relative-energy MAE"),
           ("organic", "forces_mae_meV_per_A", "organic force MAE"),
           ("inorganic", "energy_mae_meV_per_atom", "inorganic energy MAE"),
           ("inorganic", "forces_mae_meV_per_A", "inorganic force MAE")]
MIXED = ["c", "d", "e", "e2", "f", "g"]


def verdict(results: dict) -> list[str]:
    """Plain statements, from the numbers: TEA (e) against the other ways of mixing and
    against the specialist of each domain."""
    var = results["variants"]

    def get(v, dom, key):
        return mean_sd(var.get(v), dom, key)[0]

    out = []
    if "e" not in var:
        return ["(variant e not trained yet)"]
    for dom, key, label in METRICS:
        vals = {v: get(v, dom, key) for v in MIXED if get(v, dom, key) is not None}
        if "e" not in vals:
            continue
        rank = sorted(vals, key=vals.get)
        best = rank[0]
        spec = "b" if dom == "organic" else "a"
        s_val = get(spec, dom, key)
        line = f"- **{label}**: TEA (e) {vals['e']:.1f}"
        sd_e = mean_sd(var["e"], dom, key)[1]
        if sd_e is not None:
            line += f" ± {sd_e:.1f}"
        if best == "e":
            line += f", the best of the {len(vals)} mixed variants"
            if len(rank) > 1:
                line += f" (next: ({rank[1]}) {vals[rank[1]]:.1f})"
                if sd_e is not None and vals[rank[1]] - vals["e"] < sd_e:
                    line += ", a lead smaller than the seed-to-seed spread"
        else:
            line += (f", rank {rank.index('e') + 1} of {len(vals)} mixed variants; best "
                     f"({best}) {TITLES[best]}: {vals[best]:.1f}")
        if s_val is not None:
            ratio = vals["e"] / s_val if s_val else float("inf")
            line += (f"; the {dom} specialist ({spec}): {s_val:.1f} "
                     f"(TEA/specialist = {ratio:.2f})")
        out.append(line + ".")
    return out


def learning_curves(results: dict, out: Path, png: Path) -> str | None:
    """Validation energy and force MAE per epoch of every trained variant (mace-torch's
    results/*_train.txt); returns the figure's path relative to the README."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tealign.report.html import training_curves

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    drawn = 0
    for v in results["variants"]:
        heads = training_heads(v)  # as in Run.evaluate
        for head in heads:
            c = training_curves(out / v / "train", head=head)
            if not c.get("epoch"):
                continue
            lab, ls = (f"({v}) {head} head", "--") if head else (f"({v})", "-")
            color = plt.cm.tab20(drawn % 20)  # more lines than the default cycle has colours
            axes[0].plot(c["epoch"], np.multiply(c["mae_e_per_atom"], 1000), ls, label=lab,
                         color=color)
            axes[1].plot(c["epoch"], np.multiply(c["mae_f"], 1000), ls, label=lab, color=color)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    for ax, lab in zip(axes, ("validation energy MAE (meV/atom)", "validation force MAE (meV/Å)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(lab)
        ax.set_yscale("log")
    axes[1].legend(fontsize=7, ncol=2)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png.name


#: the plateau rule (both drivers; run_v2.py states it): a training reached its plateau when
#: its best validation energy MAE over the last PLATEAU_WINDOW epochs is less than
#: PLATEAU_DROP (relative) below the best of the PLATEAU_WINDOW epochs before, or when early
#: stopping ended it (training_record)
PLATEAU_WINDOW = 50
PLATEAU_DROP = 0.05
#: the glance table flags a training whose kept checkpoint's validation energy MAE exceeds its
#: best epoch's by more than this factor (the model assessed is then not the training's best)
KEPT_OVER_BEST = 1.25
_EPOCH_LINE = re.compile(r"Epoch (\d+): head: (\S+), loss=\s*([-+0-9.eE]+), "
                         r"MAE_E_per_atom=\s*([-+0-9.eE]+) meV")
_STAGE_TWO_LINE = "Changing loss based on Stage Two Weights"
_KEPT_LINE = re.compile(r"Loading checkpoint: \S*_epoch-(\d+)(?:_swa)?\.pt")


def validation_curve(train_dir: Path, head: str | None = None) -> dict[int, tuple[float, float]]:
    """Epoch -> (validation loss, validation energy MAE in eV/atom) of one training: from
    mace-torch's results/*_train.txt, or, where those are gone (they are not kept), from the
    per-epoch lines of its train.log (MAE logged in meV/atom, 2 decimals). ``head``: that
    head's lines only (a multi-head model logs one line per head and epoch). A resumed
    training's repeated epoch keeps its last line."""
    from tealign.report.html import training_curves

    c = training_curves(train_dir, head=head)
    ep, loss, mae = c.get("epoch") or [], c.get("loss") or [], c.get("mae_e_per_atom") or []
    if ep and len(ep) == len(loss) == len(mae):
        return {int(e): (float(x), float(m)) for e, x, m in zip(ep, loss, mae)}
    out: dict[int, tuple[float, float]] = {}
    log = train_dir / "train.log"
    for line in (log.read_text(errors="replace").splitlines() if log.exists() else []):
        m = _EPOCH_LINE.search(line)
        if m and head in (None, m.group(2)):
            out[int(m.group(1))] = (float(m.group(3)), float(m.group(4)) / 1000)
    return out


def _train_settings(train_dir: Path) -> dict[str, int]:
    """--max_num_epochs and --patience of the mace-torch command tealign_train.json records."""
    path = train_dir / "tealign_train.json"
    cmd = json.loads(path.read_text()).get("command", []) if path.exists() else []
    out = {}
    for flag, key in (("--max_num_epochs", "max_epochs"), ("--patience", "patience")):
        if flag in cmd[:-1]:
            out[key] = int(cmd[cmd.index(flag) + 1])
    return out


def training_heads(v: str) -> list[str | None]:
    """The heads whose training records a variant has: (g) one per source, else the one
    model (None)."""
    return ["organic", "inorganic"] if v == "g" else [None]


def training_record(train_dir: Path, head: str | None = None, last: int = PLATEAU_WINDOW
                    ) -> dict | None:
    """One training's convergence in numbers (None when it logged no epoch):

    - ``epochs_run``, ``best_epoch`` (lowest validation energy MAE), ``kept_epoch`` (the
      checkpoint mace-torch loaded at the end: its lowest validation loss; None if not
      logged), ``best_valid_energy_mae_meV_per_atom``;
    - ``drop``: 1 − (best energy MAE of the last ``last`` epochs) / (best of the ``last``
      before them), a fraction (None with fewer than 2·``last`` epochs);
    - ``stopped_early``: fewer epochs than ``--max_num_epochs`` ran (early stopping ended
      it; counted by the last epoch logged, since a Stage Two run logs no line for its first
      Stage Two epoch); ``patience_exhausted``: the last ``--patience`` epochs or more
      brought no lower validation loss, mace-torch's early-stopping condition, reported but
      not part of the rule: mace-torch 0.3.16 on one process logs "Stopping optimization"
      then and trains on to the last epoch (with Stage Two: starts it there), and its loss
      (forces weighted 10:1 in the presets) stalls while the energy error still falls (29 of
      round one's 33 trainings exhausted it, 9 of them with the energy MAE still falling by
      more than 5 %). A multi-head model: each head's own loss;
    - ``stage_one_epochs``: with Stage Two, the epochs before it (None without); the
      drop's windows are the last logged epochs, Stage Two's and Stage One's alike;
    - ``reached_plateau``: ``drop`` < PLATEAU_DROP or ``stopped_early`` (the rule of
      PLATEAU_DROP)."""
    curve = validation_curve(train_dir, head)
    if not curve:
        return None
    epochs = sorted(curve)
    loss = np.array([curve[k][0] for k in epochs])
    mae = np.array([curve[k][1] for k in epochs])
    settings = _train_settings(train_dir)
    drop = None
    if mae.size >= 2 * last:
        drop = float(1 - mae[-last:].min() / mae[-2 * last:-last].min())
    kept = None
    log = train_dir / "train.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    found = _KEPT_LINE.findall(text)
    kept = int(found[-1]) if found else None
    # Stage Two (mace-torch --swa) starts at --start_swa or, earlier, when Stage One's
    # patience runs out; mace-torch then moves its epoch counter on to --start_swa + 1, so
    # the epochs trained are the lines logged, not the last epoch's number
    switch = text.find(_STAGE_TWO_LINE)
    two_from = None
    if switch >= 0:
        after = [int(m.group(1)) for m in _EPOCH_LINE.finditer(text[switch:])]
        two_from = after[0] if after else None
    stage_one = len([k for k in epochs if two_from is None or k < two_from])
    patience, max_epochs = settings.get("patience"), settings.get("max_epochs")
    # the loss of the last stage only: Stage Two's weights change its scale
    last_stage = [i for i, k in enumerate(epochs) if two_from is None or k >= two_from]
    lo = last_stage[int(np.argmin(loss[last_stage]))]
    exhausted = bool(patience is not None and epochs[-1] - epochs[lo] >= patience)
    early = bool(max_epochs is not None and epochs[-1] + 1 < max_epochs)
    return {"epochs_run": len(epochs), "max_epochs": max_epochs, "patience": patience,
            "stage_one_epochs": stage_one if two_from is not None else None,
            "best_epoch": epochs[int(np.argmin(mae))], "kept_epoch": kept,
            "best_valid_energy_mae_meV_per_atom": float(mae.min() * 1000),
            "kept_valid_energy_mae_meV_per_atom": (float(curve[kept][1] * 1000)
                                                   if kept in curve else None),
            "window": last, "drop": drop, "stopped_early": early,
            "patience_exhausted": exhausted,
            "reached_plateau": bool((drop is not None and drop < PLATEAU_DROP) or early)}


def plateau_line(results: dict, runs: Path, last: int = PLATEAU_WINDOW) -> str:
    """Whether each training's validation energy error had flattened: the best validation
    energy MAE of its last ``last`` epochs against the best of the ``last`` before them
    (training_record's ``drop``), over every variant and seed."""
    drops = {}
    for v in results["variants"]:
        for d in sorted((runs / v).glob("train*")):
            heads = training_heads(v)
            for head in heads:
                rec = training_record(d, head=head, last=last)
                if rec is None or rec["drop"] is None:
                    continue
                drops[f"{v}/{d.name}" + (f"/{head}" if head else "")] = rec["drop"]
    if not drops:
        return ""
    falling = sorted(k for k, x in drops.items() if x > PLATEAU_DROP)
    vals = np.array(list(drops.values()))
    return (f"- **Plateau**: over the last {last} epochs the best validation energy MAE fell "
            f"by {100 * np.median(vals):.0f} % (median over {vals.size} trainings; range "
            f"{100 * vals.min():+.0f} % to {100 * vals.max():+.0f} %) against the {last} epochs "
            f"before; still falling by more than {100 * PLATEAU_DROP:.0f} %: {len(falling)} of "
            f"{vals.size} "
            f"({', '.join(falling) if falling else 'none'}). Force errors are flat (the "
            "figure). Longer training would lower the energy errors of those runs; it is not "
            "known whether it would change the comparisons.")


def write_readme(results: dict, path: Path, runs: Path = HERE / "runs") -> None:
    import run_v2

    lines = ["# Multi-domain experiment: one MACE model on organic + inorganic data", "",
             "Generated by `experiments/multidomain/run.py --report-only` from the results "
             "files: round one's models and label level in `runs/results.json` (the commands "
             "it ran, with their wall times on this 2-core CPU, are listed at the end), the "
             "bridge-v2 label level in `runs/bridge_v2/results.json`, the bond-aware "
             "correction in `runs/bond_correction/results.json`, round two in "
             f"`{run_v2.REPORTED.name}/results.json` (its commands in its own log).", ""]
    lines += glance_section(results, runs)
    if results.get("label_level"):
        lines += label_section(results["label_level"])
    lines += bridge_v2.readme_section(runs)
    import run_v2  # it subclasses Run: imported here, not at the top

    lines += run_v2.readme_section()
    if not results["variants"]:
        lines += ["## Model level", "",
                  "Not redone yet on the corrected data (PW 800 eV target, D3 counted once): the "
                  "model-level tables (variants a–g, three seeds, the oracle, the held-out "
                  "crystal family) come with the next run of `run.py`.", ""]
        lines += commands_section(results)
        path.write_text("\n".join(lines) + "\n")
        return
    intro = ("Test-split errors in each domain's original units (organic: ωB97M/def2-SVP "
             "without D3(BJ); inorganic: GPAW PBE at the target settings of "
             "datasets/README.md).")
    seeds = sorted({k for r in results["variants"].values() for k in by_seed(r)}, key=int)
    n_test = {dom: r["errors"][dom]["n"] for e in results["variants"].values()
              for r in by_seed(e).values() for dom in ("organic", "inorganic")
              if dom in r.get("errors", {})}
    if n_test:
        intro += (" Test sets (by molecule / crystal, never seen in training): "
                  + ", ".join(f"{k} {v} frames" for k, v in sorted(n_test.items()))
                  + "; differences of a few meV are within what another split or seed "
                  "would move.")
    if len(seeds) > 1:
        intro += (f" Each cell: mean ± sample standard deviation over the training seeds "
                  f"{', '.join(seeds)} (same data, same split; the seed sets the initial "
                  "weights and the batch order).")
    lines += ["## Model level, per domain in original units", "",
              f"MACE preset `{results['preset']}` (`tealign train --preset "
              f"{results['preset']}`). " + intro, "",
              "| variant | organic E MAE (meV/atom) | organic relative E MAE (meV) | organic F MAE "
              "(meV/Å) | inorganic E MAE (meV/atom) | inorganic F MAE (meV/Å) | train wall (s) |",
              "|---|---|---|---|---|---|---|"]

    def cell(entry, dom, key):
        m, sd, _ = mean_sd(entry, dom, key)
        return "N/A" if m is None else f"{m:.1f}" + (f" ± {sd:.1f}" if sd is not None else "")

    for v in results["variants"]:
        r = results["variants"][v]
        walls = [x["train_wall_s"] for x in by_seed(r).values() if "train_wall_s" in x]
        lines.append(f"| ({v}) {TITLES[v]} | {cell(r, 'organic', 'energy_mae_meV_per_atom')} | "
                     f"{cell(r, 'organic', 'relative_energy_mae_meV')} | "
                     f"{cell(r, 'organic', 'forces_mae_meV_per_A')} | "
                     f"{cell(r, 'inorganic', 'energy_mae_meV_per_atom')} | "
                     f"{cell(r, 'inorganic', 'forces_mae_meV_per_A')} | "
                     f"{np.mean(walls) if walls else 0:.0f} |")
    si = [(v, seed, x["si_lattice"]) for v, r in results["variants"].items()
          for seed, x in by_seed(r).items() if "si_lattice" in x]
    if si:
        lines += ["", "Inorganic sanity check (the paper's \"integrating organic data does not "
                  "deteriorate inorganic accuracy\"): bulk Si relaxed with FrechetCellFilter.", "",
                  "| variant | seed | a model (Å) | a GPAW PBE (Å, BM fit of si_ev) | "
                  "difference (Å) |", "|---|---|---|---|---|"]
        for v, seed, r in si:
            lines.append(f"| ({v}) {TITLES[v]} | {seed} | {r['a_model_A']:.4f} | "
                         f"{r['a_gpaw_A']:.4f} | {r['difference_A']:+.4f} |")
    cross = cross_table_lines(results, TITLES)
    drop = _sparse(runs)
    if cross:
        lines += ["", "## Model level, cross-domain items (datasets/bridge-mini)", "",
                  "Each trained model's energies of every bridge frame (one single point each, "
                  "on the target scale as `model_level.to_target` says), combined into the "
                  "items, against GPAW. MAE over items (mean ± SD over seeds); per kind: MAE "
                  "of the seed-averaged |error|.", "", *cross,
                  "", "Paired by seed and by molecule (`paired.py`, as round two below; these "
                  "are the verdicts): D = mean over seeds of MAE_s(variant) − MAE_s(TEA), its "
                  "95 % t interval over seeds, the bootstrap over the 7 gas molecules and the "
                  "joint seed × molecule bootstrap; a verdict only where the t interval and the "
                  "joint bootstrap both exclude zero.", "",
                  *paired_table_lines(seed_paired(results, TITLES, by_kind=True))]
    if drop:
        n_left = max((r["n_items"] for r in cross_summary(results, drop=drop)), default=0)
        lines += ["", f"The same, on the {n_left} items without a gas molecule that "
                  "organic-mini trains on at most twice (HF: 1 frame, H2: 2; the section on "
                  "where the error comes from shows every model missing H2, and every model "
                  "trained on both domains missing HF, by far more than their labels do; "
                  "chosen after seeing the per-frame errors). " + _label_floor(results, drop),
                  "",
                  *cross_table_lines(results, TITLES, drop=drop)]
    lines += ["", "## Model level, per domain in target units", "",
              "Against GPAW PBE/PW800 at the same geometries: the organic test molecules "
              "(bridge-mini/organic-test-pbe.extxyz), the 40 calib-qm9 molecules the alignments "
              "were not fitted on less the 5 whose QM9 minimum organic-mini trains or validates "
              "on (bridge-mini/heldout-qm9.extxyz) and the held-out crystal "
              f"family ({HELD_OUT_CRYSTAL}, never trained on). Mean ± SD over seeds; in brackets "
              "the paired difference against TEA (e) over common seeds, 95 % t interval.", "",
              *target_table_lines(results, TITLES)]
    from frame_errors import section_lines

    lines += ["", *section_lines(runs / "frame_errors.json")]
    lines += ["", "## Where TEA wins and where it does not", "",
              "Computed from the table by `verdict()` in run.py (lower is better; ± is the "
              "seed-to-seed standard deviation where there is more than one seed):", ""]
    lines += verdict(results) + cross_verdict_lines(results, TITLES)
    seeds_run = sorted({k for r in results["variants"].values() for k in by_seed(r)}, key=int)
    caveat = (plateau_line(results, runs) + "\n" +
              f"- **Caveats**: small models (`{results['preset']}`, "
              f"{results.get('epochs') or 'the preset’s'} epochs; see the learning curves for "
              f"whether they flattened), small test sets, one split; seeds {', '.join(seeds_run)}."
              " Differences within the intervals above are not resolved.")
    lines += ["", "## Reading the table", "", *READING, caveat, "", *alignment_lines(runs)]
    lines += oracle_section(results)
    if results.get("curves_png"):
        lines += ["", "## Learning curves", "",
                  "Validation errors per epoch as mace-torch logged them (each variant's own "
                  "validation split, in its training scale; (g): one line per head).", "",
                  f"![learning curves]({results['curves_png']})"]
    lines += [""] + commands_section(results)
    path.write_text("\n".join(lines) + "\n")


#: the comparisons of the verdicts-at-a-glance table: (what, bridge_v2.py's label-level
#: variant, round two's model variant, round one's model variant, reference of the model rows)
GLANCE = [("ICEA only", "icea", "d", "d", "e"),
          ("per-source linear element references", "linref", "f", "f", "e"),
          ("multi-head, one head per source (target head)", None, "g", "g, target head", "e"),
          ("multi-head, each frame on its own domain's head (organic head + TEA)", None,
           "g, own heads (organic head + TEA)", "g, own heads (organic head + TEA)", "e"),
          ("TEA, correction model chosen by --model auto", "auto", None, "e2", "e"),
          ("no alignment (straw man)", "none", None, "c", "e"),
          ("oracle: organic data recomputed at the target level", None, "o", "o", "eo")]


def glance_section(results: dict, runs: Path = HERE / "runs") -> list[str]:
    """Every alternative against TEA (single factor) at both levels, one row each, with the
    verdicts as the sections below compute them: the label level on bridge-v2 (molecule
    bootstrap, bridge_v2.py), the model level on bridge-v2 (round two) and on bridge-mini
    (round one), both paired by seed and molecule (paired.py). [] before any of them exists."""
    import paired
    import run_v2

    label = runs / "bridge_v2" / "results.json"
    label = json.loads(label.read_text())["variants"] if label.exists() else {}
    two = run_v2.REPORTED / "results.json"
    rows2: dict[str, dict] = {}
    res2_variants: dict = {}
    if two.exists():
        res2 = json.loads(two.read_text())
        res2_variants = res2["variants"]
        per_seed, titles2 = run_v2.paired_input(res2)
        if "e" in per_seed:
            bridge = ROOT / "datasets" / "bridge-v2" / "bridge.json"
            from tealign.bench import cross

            mols = paired.item_molecules(bridge)
            kinds = {it["id"]: it["kind"]
                     for it in cross.items_of(json.loads(bridge.read_text()))}
            for r in (paired.verdict_rows(per_seed, "e", titles2, mols, kinds=kinds)
                      + paired.oracle_rows(per_seed, titles2, mols, kinds=kinds)):
                rows2[r["variant"] + ("" if r["kind"] == "all" else f"/{r['kind']}")] = r
    rows1: dict[str, dict] = {}
    if results.get("variants"):
        for ref in ("e", "eo"):
            for r in seed_paired(results, TITLES, reference=ref, by_kind=True):
                if (r["variant"] == "o") == (ref == "eo"):
                    rows1[r["variant"] + ("" if r["kind"] == "all" else f"/{r['kind']}")] = r
    if not (label or rows2 or rows1):
        return []

    def iv(lo, hi):
        return f"[{1e3 * lo:+.0f}, {1e3 * hi:+.0f}]"

    def label_cell(v):
        d = (label.get(v) or {}).get("vs_reference_eV") if v else None
        if not d:
            return "–"
        word = ("unresolved" if not d["resolved"] else "worse" if d["lo"] > 0 else "better")
        n = f", {d['n']} items" if d.get("n") != len(label["scale"]["item_error_eV"]) else ""
        return f"{word} ({1e3 * d['mean']:+.0f} {iv(d['lo'], d['hi'])}{n})"

    def assessed_records(variant):
        """Round two's (seed, training records of its assessed head: the target head for
        (g), every head otherwise)."""
        v = variant.split(",")[0]
        head = TARGET_HEAD if v == "g" and "," not in variant else None
        for s, one in (res2_variants.get(v) or {}).items():
            recs = one.get("training") or {}
            yield s, [t for t in ([recs.get(head)] if head else list(recs.values())) if t]

    def short_of_plateau(variant):
        """Round two's seeds whose assessed head missed the plateau."""
        return [s for s, recs in assessed_records(variant)
                if any(not t.get("reached_plateau") for t in recs)]

    def kept_far_from_best(variant):
        """Round two's seeds whose assessed head's kept checkpoint (mace-torch's lowest
        validation loss) has a validation energy MAE more than KEPT_OVER_BEST times its
        best epoch's: at the plateau, but the model assessed is not its best."""
        out = []
        for s, recs in assessed_records(variant):
            far = [t for t in recs if t.get("kept_valid_energy_mae_meV_per_atom")
                   and t["kept_valid_energy_mae_meV_per_atom"]
                   > KEPT_OVER_BEST * t["best_valid_energy_mae_meV_per_atom"]]
            out += [f"{s} ({t['kept_valid_energy_mae_meV_per_atom']:.2f} vs "
                    f"{t['best_valid_energy_mae_meV_per_atom']:.2f} meV/atom)" for t in far]
        return out

    def training_flags(variant):
        """Round two's warnings on a variant's trainings: seeds short of the plateau, seeds
        whose kept checkpoint is far from their best epoch."""
        short, far = short_of_plateau(variant), kept_far_from_best(variant)
        return ([f"seed {', '.join(short)} short of the plateau"] if short else []) + (
            [f"kept checkpoint's validation energy MAE well above the best epoch's for seed "
             f"{', '.join(far)}"] if far else [])

    def model_cell(r, level=1):
        if r is None:
            return "not run"
        if r["mean_eV"] is None:
            return "–"
        j = "–" if r["joint"] is None else iv(r["joint"]["lo"], r["joint"]["hi"])
        cell = (f"{r['verdict']} ({1e3 * r['mean_eV']:+.0f} {j}, {r['n_seeds']} seeds, "
                f"{r['n_items']} items)")
        for flag in training_flags(r["variant"]) if level == 2 else []:
            cell += f"; {flag} (trainings table)"
        return cell

    lines = ["## Verdicts at a glance", "",
             "Each alternative against TEA (single factor a), as the sections below compute "
             "it; the oracle against TEA trained on the same organic frames (eo). Cell: verdict "
             "(D in meV, its 95 % interval): D = MAE(alternative) − MAE(TEA), positive: TEA is "
             "better. Label level: the aligned labels against GPAW on bridge-v2 (no model), "
             "bootstrap over the gas molecules. Model level: trained models, paired by seed and "
             "by molecule, the joint seed × molecule bootstrap shown; a verdict only where it and "
             "the t interval over seeds both exclude zero. Round two trains on frames of every "
             "bridge-v2 species and is judged on bridge-v2; round one is the first design "
             "(bridge-mini's 23 items made of 7 molecules).", "",
             "| alternative to TEA | label level, bridge-v2 | model level, round two "
             "(bridge-v2) | model level, round one (bridge-mini) |", "|---|---|---|---|"]
    for what, lv, v2, v1, _ in GLANCE:
        if what.startswith("oracle"):
            lcell = "– (its labels are the truth)"
        elif lv is None:
            lcell = "– (no single scale)"
        else:
            lcell = label_cell(lv)
        lines.append(f"| {what} | {lcell} | "
                     f"{model_cell(rows2.get(v2), 2) if v2 else 'not trained'} | "
                     f"{model_cell(rows1.get(v1))} |")
    ref_notes = [f"({ref}) " + "; ".join(flags)
                 for ref in dict.fromkeys(r for *_, r in GLANCE)
                 if (flags := training_flags(ref))]
    if ref_notes:
        lines += ["", "The references of round two's cells, flagged as the cells flag the "
                  "alternatives (trainings table): " + "; ".join(ref_notes) + "."]
    kind_only = []
    for level, rows in (("round two", rows2), ("round one", rows1)):
        for key, r in rows.items():
            whole = rows.get(key.split("/")[0])
            if "/" in key and r["verdict"] != "unresolved" and whole is not None \
                    and whole["verdict"] != r["verdict"]:
                kind_only.append(f"{level}, ({r['variant']}) {r['title']} on the "
                                 f"{r['n_items']} {r['kind']} items: "
                                 f"{model_cell(r, 2 if level == 'round two' else 1)}")
    if kind_only:
        lines += ["", "Exploratory, not corrected for multiplicity (about 40 variant × kind "
                  "tests at 95 %; a kind with one item and one molecule has only the seeds to "
                  "resample): resolved on one kind of item where all items together are not (or "
                  "differently): " + "; ".join(kind_only) + "."]
    bond = runs / "bond_correction" / "results.json"
    if bond.exists():
        b = json.loads(bond.read_text())
        lines += ["", f"The bond-aware correction (`bond_correction.py`, below): {b['verdict']}."]
    return lines + [""]


def _label_floor(results: dict, drop: set[str]) -> str:
    """The label level's MAE on the items left after ``drop``, per alignment, in words."""
    label = (results.get("label_level") or {}).get("variants", {})
    parts = []
    for name, title in (("scale", "TEA (single factor)"), ("icea", "ICEA only"),
                        ("auto", "TEA (auto)")):
        errs = [abs(x["error_eV"]) for x in label.get(name, {}).get("items", [])
                if x["id"] not in drop]
        if errs:
            parts.append(f"{title} {1000 * np.mean(errs):.0f}")
    if not parts:
        return ""
    return ("On these items the labels alone (label level, no model) reach " + ", ".join(parts)
            + " meV: where a model row sits far above its labels' floor, the model's own error "
            "(solids and slabs included, see the per-role table) decides the row, not the "
            "alignment.")


def _sparse(runs: Path) -> set[str]:
    """The bridge items with a sparsely trained gas molecule (frame_errors.json's counts)."""
    fe = runs / "frame_errors.json"
    if not fe.exists():
        return set()
    return sparse_items(ROOT / "datasets/bridge-mini/bridge-mini.extxyz",
                        json.loads(fe.read_text())["training_frames"])


def oracle_cost(store: Path = HERE / "oracle" / "jobs.snapshot.sqlite") -> dict | None:
    """Frames and core-seconds of the oracle's GPAW runs (its job store's snapshot)."""
    import sqlite3

    if not store.exists():
        return None
    with contextlib.closing(sqlite3.connect(store)) as db:
        n, sec = db.execute("select count(*), sum(seconds) from jobs where status = 'done' "
                            "and forces is not null").fetchone()
    out = {"frames": int(n), "core_hours": float(sec or 0) / 3600}
    # organic training frames of the oracle and of (e), from their merges' reports
    for v in ("o", "e"):
        rep = HERE / "runs" / v / "merged" / "report.json"
        if rep.exists():
            split = json.loads(rep.read_text())["sources"]["organic"]["by_split"]
            out[f"organic_train_{v}"], out[f"organic_valid_{v}"] = split["train"], split["valid"]
    return out


def oracle_section(results: dict) -> list[str]:
    """The oracle: what it is, what it cost, and its comparison with TEA (or why not yet)."""
    head = ["", "## The oracle: the organic data recomputed at the target level", ""]
    if "o" not in results["variants"]:
        return head + ["Not run yet: a model trained on organic-mini recomputed at the target "
                       "level (oracle/select_subset.py states the subset, oracle/regenerate.sh "
                       "computes it)."]
    cost = results.get("oracle_cost") or {}
    spent = (f"Its {cost['frames']} GPAW frames (energies and forces) took "
             f"{cost['core_hours']:.1f} core-hours (oracle/regenerate.sh's job store); all 337 "
             "training and validation frames of organic-mini would take about "
             f"{cost['core_hours'] * 337 / max(cost['frames'], 1):.1f}. ") if cost else ""
    return head + [
        "(o) is trained like every other variant, on inorganic-mini (SiC held out) and a stated "
        "subset of organic-mini's training and validation frames, recomputed with GPAW at the "
        "target settings (oracle/select_subset.py: every frame of the seven gas molecules of "
        "the cross-domain items, two conformers of every other training molecule, one of every "
        f"validation molecule; {cost.get('organic_train_o', '?')} training and "
        f"{cost.get('organic_valid_o', '?')} validation frames). " + spent + "(eo) trains "
        "on exactly those frames with their ωB97M labels aligned by TEA (single factor), so "
        "(o) − (eo) isolates the labels. The oracle bounds what recomputation buys at this "
        "data size; it is not an upper bound for (e), which trains on "
        f"{cost.get('organic_train_e', '?')} organic frames.",
        "", *oracle_lines(results, TITLES, drop=_sparse(HERE / "runs"))]


def label_section(res: dict) -> list[str]:
    """The label-level table and its verdicts (label_level.py computed both)."""
    from label_level import table_lines, verdict_lines

    return ["## Label level: each alignment against the GPAW truth (no model)", "",
            "The organic domain's ωB97M/def2-SVP labels put on the GPAW PBE/PW800 scale by each "
            "alignment, against GPAW itself at the same geometries (datasets/bridge-mini). "
            "Cross-domain items: the molecules take their aligned energy, every periodic frame "
            "its GPAW energy. Each cell: MAE, and in brackets the paired difference "
            "mean(|err| − |err_TEA|) with its 95 % bootstrap interval over items (conformers "
            "resampled by molecule); negative means better than TEA (single factor). "
            "No model is involved: this is the floor under any model trained on these labels. "
            "At this level the periodic frames are exact, so every item's error is a sum of "
            "the label errors of the 7 gas molecules (bridge-mini/README.md): the 23 items are "
            "not independent, and the item bootstrap is narrower than 7 molecules warrant.",
            "", *table_lines(res), "", "Verdicts, written by `label_level.verdict_lines` from "
            "the numbers above (a win or a loss needs the bootstrap interval and the "
            "leave-one-molecule-out range on the same side of zero):", "",
            *verdict_lines(res), "", "Read with:", "",
            "- **Forces go the other way.** TEA scales forces by a = 1.022, but a least-squares "
            "fit of GPAW's forces on ωB97M's over the organic test conformers gives "
            f"{_force_ratio(ROOT / 'datasets/bridge-mini/organic-test-pbe.extxyz'):.3f}: the "
            "factor that corrects atomization energies worsens forces and conformer energies "
            "(the last two columns).",
            "- **What is unseen.** By design the bridge set's gas molecules, solids and clean "
            "slabs are in the training data (datasets/*/add_bridge_species.py); the "
            "cross-domain quantities, the adsorbate–slab complexes and the molecular crystals "
            "are not. One organic test frame (the QM9 minimum of qm9_000044) is also a "
            "calib-qm9 frame the alignments are fitted on, and 6 of the 40 held-out calib-qm9 "
            "molecules have their QM9 minimum in organic-mini (qm9_000013, 015, 019, 028, 031, "
            "047; 019 in its test split, the other 5 trained or validated on); at the label "
            "level this does not matter (no model), at the model level those 5 are left out "
            "of the held-out scores.", ""]


def _force_ratio(path: Path) -> float:
    """Least-squares factor c of forces_pbe ≈ c · forces_wb97m over every atom of ``path``."""
    from tealign.io import read_batch

    b = read_batch(path)
    fp = np.asarray(b.arrays["forces_pbe"], float).ravel()
    fw = np.asarray(b.arrays["forces_wb97m"], float).ravel()
    return float(fp @ fw / (fw @ fw))


def commands_section(results: dict) -> list[str]:
    total = sum(c["wall_s"] for c in results["log"])
    lines = ["## Commands and wall times", "",
             f"{len(results['log'])} commands, {total / 60:.0f} min in all. Each training ran "
             "on one thread (`OMP_NUM_THREADS=1`) beside one to four other jobs on the 2 cores "
             "(other trainings, GPAW runs), so a training's wall time is not its cost on a free "
             "core: the oracle's three seeds ran side by side, two of (eo)'s beside them, and "
             "(eo) seed 1 beside the oracle's GPAW runs.", "", "```"]
    for c in results["log"]:
        lines.append(f"{c['wall_s']:8.1f} s  {c['command'].replace(str(ROOT) + '/', '')}")
        if c.get("note"):
            lines.append(f"            ({c['note']})")
    return lines + ["```", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--preset", default="small-cpu")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", default="1,2,3",
                    help="training seeds, comma-separated (1 = the presets' own)")
    ap.add_argument("--datasets", type=Path, default=ROOT / "datasets")
    ap.add_argument("--out", type=Path, default=HERE / "runs")
    ap.add_argument("--readme", type=Path, default=HERE / "README.md")
    ap.add_argument("--label-level", action="store_true",
                    help="only the label level (no model): every alignment against the GPAW "
                         "truth of datasets/bridge-mini (label_level.py)")
    ap.add_argument("--device", default="cpu", help="tealign train --device (cpu, cuda)")
    ap.add_argument("--merge-only", action="store_true",
                    help="merge each variant's data and stop: the trainings then run elsewhere "
                         "(oracle/train_on_device.sh); a later run evaluates the models they "
                         "bring back")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite README.md and the learning curves from runs/results.json")
    args = ap.parse_args()
    if args.report_only:
        had = json.loads((args.out / "results.json").read_text())
        if "o" in had["variants"]:
            # what this checkout can recount replaces the record; what it cannot (the merge
            # reports are not kept) stays as it was
            record(args.out / "results.json", {}, extra={"oracle_cost": {
                **(had.get("oracle_cost") or {}), **(oracle_cost() or {})}})
        results = json.loads((args.out / "results.json").read_text())
        png = args.readme.parent / "learning_curves.png"
        # mace-torch's per-epoch files are not kept: without them the committed figure stays
        results["curves_png"] = learning_curves(results, args.out.resolve(), png) or (
            png.name if png.exists() else None)
        write_readme(results, args.readme, args.out)
        return
    run = Run(args.out.resolve(), args.datasets.resolve())
    run.out.mkdir(parents=True, exist_ok=True)
    base = {"preset": args.preset, "epochs": args.epochs, "variants": {}, "log": []}
    results_path = run.out / "results.json"
    if args.label_level:
        from label_level import label_level

        bridge = run.ds / "bridge-mini"
        n_log = len(run.log)
        res = label_level(run, bridge / "bridge-mini.extxyz", bridge / "organic-test-pbe.extxyz",
                          bridge / "heldout-qm9.extxyz")
        results = record(results_path, base, log=run.log[n_log:], label=res)
        write_readme(results, args.readme, args.out)
        return
    al = run.alignments()
    lr = run.linear_references()
    for seed in (int(x) for x in args.seeds.split(",")):
        for v in args.variants.split(","):
            n_log = len(run.log)
            model = run.train(v, args.preset, args.epochs, al, lr, seed=seed,
                              device=args.device, merge_only=args.merge_only)
            if args.merge_only:
                continue
            one = run.training_wall(model, run.log[n_log:])
            one["errors"] = run.evaluate(v, model, al, lr)
            if v in ("a", "e"):
                one["si_lattice"] = si_lattice_check(model,
                                                     run.ds / "inorganic-mini/si_ev.extxyz")
            # the oracle's GPAW cost, from its job store's snapshot, kept with its results
            extra = {"oracle_cost": oracle_cost()} if v == "o" else None
            record(results_path, base, v, seed, one, run.log[n_log:], extra=extra)
            print(json.dumps({v: {"seed": seed, **one["errors"]}}), flush=True)
    if args.merge_only:
        return
    results = record(results_path, base)
    results["curves_png"] = learning_curves(results, run.out,
                                            args.readme.parent / "learning_curves.png")
    write_readme(results, args.readme, args.out)


def update_results(path: Path, base: dict, change: Callable[[dict], None]) -> dict:
    """Read ``path`` (``base`` when it does not exist yet), apply ``change`` to it in place and
    write it back atomically (tealign.io.outputs.write_json), all under a lock on
    ``path``.lock: runs with different --variants or --seeds may share the file. Returns the
    file's new contents."""
    from tealign.io.outputs import write_json

    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cur = json.loads(path.read_text()) if path.exists() else dict(base)
        change(cur)
        write_json(path, cur)
    return cur


def record(path: Path, base: dict, v: str | None = None, seed: int | None = None,
           one: dict | None = None, log: list | None = None,
           label: dict | None = None, extra: dict | None = None) -> dict:
    """Add one training's results (or the label level) to ``path`` (update_results);
    returns the file's contents."""
    def change(cur: dict) -> None:
        cur.update(extra or {})
        if label is not None:
            cur["label_level"] = label
            cur["log"] = cur.get("log", []) + (log or [])
        if v is not None:
            seeds = by_seed(cur["variants"].get(v))
            previous = seeds.get(str(seed), {})
            seeds[str(seed)] = {**previous, **one}  # a resumed run keeps its train wall time
            cur["variants"][v] = {"title": TITLES[v], "by_seed": seeds}
            cur["log"] = cur.get("log", []) + (log or [])
        cur["variants"] = {k: cur["variants"][k] for k in VARIANTS if k in cur["variants"]}

    return update_results(path, base, change)

if __name__ == "__main__":
    main()
