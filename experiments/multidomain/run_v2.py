"""Round two of the model-level multi-domain experiment (issue 31, item 3): models that fit
their own data, so that a model's error and its labels' alignment error can be told apart.

    .venv/bin/python experiments/multidomain/run_v2.py                     # a..o, seeds 1,2,3
    .venv/bin/python experiments/multidomain/run_v2.py --variants e,d --seeds 1
    .venv/bin/python experiments/multidomain/run_v2.py --variants e,d --preset tiny \\
        --epochs 2 --seeds 1 --out /tmp/runs_v2_smoke --bridge-solids /tmp/x/solids.extxyz
    .venv/bin/python experiments/multidomain/run_v2.py --report-only      # runs_v2/tables.md
    .venv/bin/python experiments/multidomain/run_v2.py --epochs 200 --stage-two 130 \
        --extend-to 300 --out experiments/multidomain/runs_v2_redrawn  # past the plateau

What changes from round one (run.py, whose Run this subclasses; everything else is the same):

- Training data. Every bridge species gets at least 10 training frames (the first round had
  1 to 5 per gas molecule, 2 per solid): organic = organic-mini + the 230 frames of
  datasets/bridge-v2/training-molecules-wb97m.extxyz (10 per gas molecule, source level);
  inorganic = inorganic-mini with SiC held out (model_level.prepare_inorganic) + the 160
  frames of training-solids-pbe.extxyz (10 per solid, target level, with stress); the oracle
  pair: eo = oracle/organic-subset.extxyz + the molecules at the source level, o =
  oracle/organic-subset-pbe.extxyz + the same molecules at the target level
  (training-molecules-pbe.extxyz). Every added frame is put in the training split (compute
  drew its own splits). An added file must follow the conventions of the file it joins (keys,
  ``d3_in_energy_<label> = F``, the recorded method and its isolated-atom table): the run
  stops and says what differs otherwise. A variant whose input is not there stops the run
  with the file and the command that makes it (datasets/bridge-v2/regenerate.sh).
- Isolated-atom tables and alignments. S and Cl (H2S, SO2, HCl, Cl2; MgS, Li2S, Na2S, MgCl2,
  LiCl, NaCl) are new: the alignments are fitted exactly as round one's (`tealign fit` on
  calib-qm9, the same a) but with calib-qm9's tables joined to bridge-v2's S and Cl atoms
  (bridge_v2.extended_tables), into RUN/alignments; the run checks that a (and the offsets)
  equal round one's (runs/alignments). ``--model auto`` fits element offsets on calib-qm9,
  which has no S or Cl: it cannot align their molecules, so (e2) trains without those four
  gas species (the own-data table shows 0 frames for them). The target's E0s add
  bridge-v2's S atom; the organic head of (b) and (g) adds S and Cl at the source level.
- Training: preset small-cpu, --epochs (300 by default; the reported run, runs_v2_redrawn,
  used 200 with --stage-two 130), seeds 1, 2, 3; resumable as run.py (a finished model is
  kept, one trained with another preset, epoch count or mace options is refused, and so is
  one trained on other input data: each merge.toml starts with the sha256 of everything it
  reads). ``--stage-two EPOCH`` adds mace-torch's Stage Two (stage_two_args): without it the
  models missed their own frames of rare bond types by up to 440 meV/atom (runs_v2).
- Plateau rule (run.training_record, shared with run.py): a training reached its plateau
  when its best validation energy MAE over the last 50 logged epochs is less than 5 % below
  the best of the 50 before, or when early stopping ended it. mace-torch 0.3.16 trained on
  one process does not stop at its patience: it logs "Stopping optimization" and trains on
  (with Stage Two: starts Stage Two there and moves its epoch counter on to the Stage Two
  start), keeping the checkpoint of lowest validation loss; so the first clause decides.
  Whether the patience was exhausted at the end (no lower validation loss of the last stage
  in the last 15 epochs) is recorded beside it but is not part of the rule. Per training:
  epochs run (of which Stage One), best epoch, the epoch of the checkpoint kept, the best
  validation energy MAE and the drop, per head for (g).
- ``--extend-to EPOCHS``: a finished training short of that plateau is continued in its own
  run directory to EPOCHS epochs (run.Run.train's ``extend_to``: `tealign train` resumes
  mace-torch from its latest checkpoint, the one of lowest validation loss, so the epochs
  after it are trained again; train.log is appended to and a repeated epoch keeps its last
  line), then assessed again; the rule then reads the extended run (its windows are its last
  logged epochs, its epochs asked the extended count). runs_v2_redrawn extended every
  training short of the plateau at 200 epochs to 300, those still short there to 400, and
  those still short at 400 to 500 (e seed 1, eo seed 3, g seed 1); runs_v2_stage2 extended
  o and eo seed 3 to 400 and g seed 3 to 500. A resumed mace-torch starts again from its lowest-loss
  checkpoint and keeps the lowest-loss one after it, so an extension may end with the model
  it started from plus one re-trained epoch: the plateau is the validation curve's, the kept
  epoch (trainings table) says which model was assessed.

Evaluation of every trained model (results.json, variants[v][seed]):

- ``items``: the signed error (predicted − GPAW, eV) of every cross-domain item of
  datasets/bridge-v2 (bridge.json: every reaction, adsorption and lattice item whose frames
  bridge-v2.extxyz holds) — the shape paired.py reads (results["variants"] goes in as its
  ``results``). For (g) the target head; its own-heads items are in ``errors.cross``.
- ``own_fit``: per bridge species (gas and solid; training frames matched by mol_id X or
  bridge_X), the model's energy MAE (meV/atom), mean signed energy error and force MAE
  (meV/Å) on its own training frames of that species, against the labels it trained on (the
  merged data's REF_ keys, in its training scale; (g): the head of the frame's source).
  Next to it, in the tables: the label residual δ = aligned label − GPAW of the gas molecule
  at its bridge geometry (this run's own alignments, computed as bridge_v2.residuals does;
  ``label_residual_eV``, ``label_of``), and ``bridge_frame_error_eV``, the model's predicted
  − GPAW energy of the bridge frame itself. A model that fits its data has a small own-data
  MAE, and then its bridge-frame error is close to the label residual: what is left is the
  alignment's.
- ``errors``: run.py's per-domain metrics (Run.evaluate with this run's files: organic test
  split, SiC, the organic test molecules and held-out calib-qm9 against GPAW, and the
  cross-domain items by head mode).
- ``training``, ``train_wall_s``; every command and evaluation with its wall time in ``log``.

RUN (default experiments/multidomain/runs_v2): data/ (built inputs), alignments/, label/,
linref/, <variant>/merge.toml, merged/ and train*/; results.json (written atomically under a
lock, as run.py's) and tables.md (--report-only). Large outputs are git-ignored
(experiments/multidomain/.gitignore).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the experiment's modules import each other by name
    sys.path.insert(0, str(HERE))

from model_level import bridge_energies, prepare_inorganic  # noqa: E402
from run import (  # noqa: E402
    ORACLE_SUBSET,
    ORACLE_SUBSET_PBE,
    PLATEAU_DROP,
    PLATEAU_WINDOW,
    TITLES,
    VARIANTS,
    Run,
    cross_modes,
    training_heads,
    training_record,
    update_results,
)

ROOT = HERE.parents[1]
BRIDGE = ROOT / "datasets" / "bridge-v2"
REGENERATE = "datasets/bridge-v2/regenerate.sh"
#: the in-distribution inorganic test set (item 5): the training crystals at an unseen strain
#: draw and in CHGNet MD at 900 K and 300 K, GPAW labels (datasets/inorganic-mini/regenerate.sh)
INDIST = ROOT / "datasets" / "inorganic-mini" / "indist_test.extxyz"
OUT = HERE / "runs_v2"
#: round two as reported: Stage Two on (``--stage-two``), on the training frames with CO's,
#: NO's and seven other species' near-duplicates redrawn (datasets/bridge-v2/README.md).
#: runs_v2_stage2 is the same protocol on the first generation of frames; OUT holds the
#: Stage One trainings
REPORTED = HERE / "runs_v2_redrawn"
#: a species the model misses by more than this on its own training frames is listed
OWN_FIT_LIMIT = 20.0  # meV/atom
ROUND_ONE = HERE / "runs"
#: a bridge species is well sampled with at least this many training frames
MIN_FRAMES = 10
#: the added inputs (option, default path)
INPUTS = {"molecules": BRIDGE / "training-molecules-wb97m.extxyz",
          "solids": BRIDGE / "training-solids-pbe.extxyz",
          "molecules_pbe": BRIDGE / "training-molecules-pbe.extxyz"}
#: the added inputs each variant trains on
NEEDS = {"a": ["solids"], "b": ["molecules"], "c": ["molecules", "solids"],
         "d": ["molecules", "solids"], "e": ["molecules", "solids"],
         "e2": ["molecules", "solids"], "f": ["molecules", "solids"],
         "g": ["molecules", "solids"], "eo": ["molecules", "solids"],
         # o also reads the organic data for its held-out list (Run.evaluate)
         "o": ["molecules_pbe", "solids", "molecules"]}
#: the label-level alignment that puts each variant's gas-molecule labels on the target
#: scale (label_level.alignment_files names; None: GPAW's own labels, δ = 0; a: no molecules).
#: (b) and (g)'s organic head learn ωB97M totals, put on the target scale by TEA afterwards.
LABEL_OF = {"a": None, "b": "scale", "c": "none", "d": "icea", "e": "scale", "e2": "auto",
            "f": "linref", "g": "scale", "eo": "scale", "o": None}
ROLES = ("molecule", "solid")


class RunV2(Run):
    """run.Run on round two's data (module docstring): the files it trains and evaluates on,
    the data it builds, alignments with S and Cl, and the own-data evaluation."""

    def __init__(self, out: Path, inputs: dict[str, Path], datasets: Path = ROOT / "datasets"
                 ) -> None:
        super().__init__(out, datasets)
        self.inputs = {k: Path(v).resolve() for k, v in inputs.items()}

    # ------------------------------------------------------------------ inputs
    @property
    def files(self) -> dict[str, Path]:
        f = super().files
        data, al = self.out / "data", self.out / "alignments"
        f.update({
            # the sources as they are
            "organic_mini": f["organic"], "oracle_eo_src": ORACLE_SUBSET,
            "oracle_o_src": ORACLE_SUBSET_PBE,
            "organic_mini_e0": f["organic_e0"], "inorganic_mini_e0": f["target_e0"],
            "oracle_o_e0": _sibling(ORACLE_SUBSET_PBE, "pbe"),
            "bridge_molecules_e0": BRIDGE / "bridge-molecules.atoms_wb97m.json",
            "bridge_molecules_pbe_e0": BRIDGE / "bridge-molecules.atoms_pbe.json",
            "bridge_periodic_e0": BRIDGE / "bridge-periodic.atoms_pbe.json",
            # what this run builds from them (prepare_data) and trains on, each built file
            # with its isolated-atom table beside it (what tealign's provenance check reads)
            "organic": data / "organic.extxyz", "organic_e0": data / "organic.atoms_wb97m.json",
            "inorganic_heldout": data / "inorganic-mini.heldout.extxyz",
            "inorganic": data / "inorganic.extxyz",
            "target_e0": data / "inorganic.atoms_pbe.json",
            "oracle_eo": data / "oracle-organic.extxyz",
            "oracle_o": data / "oracle-organic-pbe.extxyz",
            # calib-qm9's tables with bridge-v2's S and Cl (alignments)
            "calib_src": al / "atoms_wb97m.json", "calib_tgt": al / "atoms_pbe.json",
            # evaluation
            "bridge": BRIDGE / "bridge-v2.extxyz", "bridge_json": BRIDGE / "bridge.json",
            "bridge_molecules": BRIDGE / "bridge-molecules.extxyz",
            **self.inputs})
        return f

    def check_inputs(self, variants: list[str]) -> None:
        """Stop, one line per missing file, when a variant's added input is not there."""
        missing: dict[str, list[str]] = {}
        for v in variants:
            for key in NEEDS[v]:
                if not self.inputs[key].exists():
                    missing.setdefault(key, []).append(v)
        if missing:
            raise SystemExit("\n".join(
                f"variant{'s' if len(vs) > 1 else ''} {','.join(vs)}: missing "
                f"{_shown(self.inputs[key])} (made by {REGENERATE}; still computing?)"
                for key, vs in missing.items()))

    def prepare_data(self) -> None:
        """Build every training file whose inputs are there (module docstring): each added
        file checked against the one it joins, then appended to it in the training split."""
        f = self.files
        prepare_inorganic(f["inorganic_src"], f["inorganic_heldout"])
        for out, base, added, label, tables in (
                ("organic", "organic_mini", "molecules", "wb97m",
                 ["organic_mini_e0", "bridge_molecules_e0"]),
                ("inorganic", "inorganic_heldout", "solids", "pbe",
                 ["inorganic_mini_e0", "bridge_periodic_e0"]),
                ("oracle_eo", "oracle_eo_src", "molecules", "wb97m",
                 ["organic_mini_e0", "bridge_molecules_e0"]),
                ("oracle_o", "oracle_o_src", "molecules_pbe", "pbe",
                 ["oracle_o_e0", "bridge_molecules_pbe_e0"])):
            union_table([f[t] for t in tables], _sibling(f[out], label))
            if not f[added].exists():
                continue
            # the held-out copy carries no method record: check against inorganic-mini itself
            reference = f["inorganic_src"] if base == "inorganic_heldout" else f[base]
            problems = check_conventions(f[added], reference, label)
            if problems:
                raise SystemExit(f"{_shown(f[added])} does not follow the conventions of "
                                 f"{_shown(reference)}: " + "; ".join(problems))
            append_training_frames(f[base], f[added], f[out])

    def alignments(self) -> dict[str, Path]:
        """Round one's alignments refitted with S and Cl in the tables (Run.alignments on
        the extended tables); stops when a or an offset differs from round one's."""
        import bridge_v2

        (self.out / "alignments").mkdir(parents=True, exist_ok=True)
        bridge_v2.extended_tables(self.out / "alignments")
        out = super().alignments()
        for name, path in out.items():
            old = ROUND_ONE / "alignments" / f"{name}.json"
            if not old.exists():
                continue
            mine, theirs = ({"a": d["model"]["a"], **d["model"].get("offsets_eV", {})}
                            for d in (json.loads(p.read_text()) for p in (path, old)))
            if mine.keys() != theirs.keys() or any(abs(mine[k] - theirs[k]) > 1e-9
                                                   for k in mine):
                raise SystemExit(f"{_shown(path)}: a and offsets {mine}, round one's "
                                 f"({_shown(old)}) {theirs}: not the same alignment")
        return out

    # ------------------------------------------------------------------ training
    def toml(self, v: str, al: dict, lr: dict) -> tuple[str, bool]:
        """run.Run.toml, headed by the sha256 of everything it reads (the input check of
        ``train``)."""
        text, per_source = super().toml(v, al, lr)
        h = hashlib.sha256(text.encode())
        for p in sorted(set(re.findall(r'"(/[^"]+)"', text))):
            h.update(Path(p).read_bytes() if Path(p).is_file() else b"(missing)")
        return f"# inputs sha256 {h.hexdigest()}\n" + text, per_source

    def train(self, v: str, preset: str, epochs: int | None, al, lr, seed: int = 1,
              device: str = "cpu", merge_only: bool = False,
              mace_args: tuple[str, ...] = (), extend_to: int | None = None) -> Path:
        """run.Run.train (``extend_to`` included), refusing a finished model whose merge read
        other inputs."""
        d = self.out / v
        merged_toml = d / "merge.toml"
        if merged_toml.exists() and list(d.glob("train*/model.model")):
            now = self.toml(v, al, lr)[0].splitlines()[0]
            if merged_toml.read_text().splitlines()[0] != now:
                raise SystemExit(f"{_shown(d)}: its models were trained on other input data "
                                 f"than {_shown(self.out / 'data')} holds now: move {_shown(d)} "
                                 "away to retrain")
        return super().train(v, preset, epochs, al, lr, seed=seed, device=device,
                             merge_only=merge_only, mace_args=mace_args, extend_to=extend_to)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, v: str, model: Path, al: dict, lr: dict) -> dict:
        """run.Run.evaluate, plus ``inorganic_indist`` (every variant with inorganic data,
        once the in-distribution labels exist): the errors on all 20 frames and on each
        sampling (strained_rattled_unseen, md_900K, md_300K) apart."""
        res = super().evaluate(v, model, al, lr)
        if v != "b" and INDIST.exists():
            res["inorganic_indist"] = self.indist_errors(v, model, al, lr)
        return res

    def indist_errors(self, v: str, model: Path, al: dict, lr: dict) -> dict:
        from tealign.evaluate import load_model
        from tealign.io import read_batch

        m = load_model(model)
        b = read_batch(INDIST)
        out = {"all": self.domain_errors(m, v, b, "inorganic", al, lr)}
        kind = np.asarray(b.info["sampling"]).astype(str)
        for k in sorted(set(kind)):
            out[k] = self.domain_errors(m, v, b.select(kind == k), "inorganic", al, lr)
        return out

    def bridge_species(self) -> dict[str, str]:
        """Species -> role of every bridge species with training frames (gas and solid)."""
        species = json.loads(self.files["bridge_json"].read_text())["species"]
        return {s: e["role"] for s, e in species.items() if e["role"] in ROLES}

    def own_fit(self, v: str, model) -> dict[str, dict]:
        """Per bridge species, the model's errors on its own training frames of that species
        against the labels it trained on (the merged data's REF_energy, REF_forces): n_frames,
        energy_mae_meV_per_atom, energy_mean_error_meV_per_atom, forces_mae_meV_per_A (None
        without frames). (g): each source's frames on its own head."""
        from tealign.evaluate import predict
        from tealign.io import read_batch

        merged = self.out / v / "merged"
        parts = ([(merged / s / "merged.extxyz", s) for s in ("organic", "inorganic")]
                 if v == "g" else [(merged / "merged.extxyz", None)])
        roles = self.bridge_species()
        out = {s: {"role": r, "n_frames": 0, "energy_mae_meV_per_atom": None,
                   "energy_mean_error_meV_per_atom": None, "forces_mae_meV_per_A": None}
               for s, r in roles.items()}
        for path, head in parts:
            b = read_batch(path)
            ids = species_of(b)
            train = np.asarray(b.info["split"]).astype(str) == "train"
            for s in roles:
                keep = train & (ids == s)
                if not keep.any():
                    continue
                sub = b.select(keep)
                p = predict(model, sub, head=head, compute_stress=False)
                de = (np.asarray(p.energy, float) - np.asarray(sub.info["REF_energy"], float)
                      ) / sub.n_atoms
                df = np.asarray(p.forces, float) - np.asarray(sub.arrays["REF_forces"], float)
                out[s].update(n_frames=int(keep.sum()),
                              energy_mae_meV_per_atom=float(np.mean(np.abs(de)) * 1000),
                              energy_mean_error_meV_per_atom=float(np.mean(de) * 1000),
                              forces_mae_meV_per_A=float(np.mean(np.abs(df)) * 1000))
        return out

    def bridge_frame_errors(self, v: str, model, al: dict, lr: dict) -> dict[str, dict]:
        """{mode: {species: predicted − GPAW energy of its bridge frame (eV)}}, the modes of
        run.cross_modes (the model's energies as the items use them)."""
        from tealign.io import read_batch

        bridge = self.files["bridge"]
        b = read_batch(bridge)
        ref = dict(zip(np.asarray(b.info["species"]).astype(str),
                       np.asarray(b.info["energy_pbe"], float)))
        out = {}
        for mode, heads in cross_modes(v).items():
            e = bridge_energies(model, v, bridge, al["scale"], lr.get("inorganic_table"),
                                heads=heads)
            out[mode] = {s: float(x - ref[s]) for s, x in e.items()}
        return out

    def label_residuals(self, al: dict) -> dict[str, dict[str, float | None]]:
        """δ = aligned label − GPAW (eV) of every gas molecule at its bridge geometry, per
        label-level alignment of this run (label_level.alignment_files: none, icea, scale,
        auto, linref; linref needs both domains' data), computed as bridge_v2.residuals."""
        from bridge_v2 import residuals
        from label_level import alignment_files

        f = self.files
        files = (alignment_files(self, self.out / "label") if
                 f["organic"].exists() and f["inorganic"].exists() else dict(al))
        return {name: residuals(path, f["bridge_molecules"]) for name, path in files.items()}

    def assess(self, v: str, model_path: Path, al: dict, lr: dict, log: list[dict]) -> dict:
        """Everything recorded for one trained model (module docstring); ``log``: the
        commands this training ran (for its wall time; Run.training_wall)."""
        from tealign.evaluate import load_model

        one = self.training_wall(model_path, log)
        one["model_sha256"] = hashlib.sha256(model_path.read_bytes()).hexdigest()
        one["training"] = {h or "model": training_record(model_path.parent, head=h)
                           for h in training_heads(v)}
        t0 = time.perf_counter()
        one["errors"] = self.evaluate(v, model_path, al, lr)
        one["items"] = one["errors"]["cross"][next(iter(cross_modes(v)))]
        model = load_model(model_path)
        one["own_fit"] = self.own_fit(v, model)
        one["bridge_frame_error_eV"] = self.bridge_frame_errors(v, model, al, lr)
        self.log.append({"command": f"(in process) evaluate {_shown(model_path)}",
                         "cwd": str(Path.cwd()), "wall_s": time.perf_counter() - t0,
                         "exit": 0})
        return one


# ---------------------------------------------------------------------- data building
def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def species_of(batch) -> np.ndarray:
    """Each frame's bridge species: its mol_id, without the ``bridge_`` prefix that
    organic-mini's and inorganic-mini's own bridge frames carry (add_bridge_species.py)."""
    ids = np.asarray(batch.info["mol_id"]).astype(str)
    return np.array([i.removeprefix("bridge_") for i in ids])


def union_table(tables: list[Path], out: Path, tol_eV: float = 1e-4) -> Path:
    """One isolated-atom table from tables computed at the same settings (an element in two
    must agree within ``tol_eV``: the source level's atoms of organic-mini and bridge-v2
    differ by up to 8e-6 eV, SCF noise); the first table's value is kept."""
    from tealign.methods import load_table, union_tables

    out.parent.mkdir(parents=True, exist_ok=True)
    union_tables([load_table(str(p)) for p in tables], tol_eV=tol_eV).save(out)
    return out


def _spec(path: Path, label: str, batch) -> str | None:
    """The level recorded for energy_<label>: the frames' method_energy_<label>, else the
    sibling isolated-atom table's settings.spec."""
    key = f"method_energy_{label}"
    if key in batch.info:
        vals = {str(x) for x, h in zip(batch.info[key], batch.has(key)) if h}
        if len(vals) == 1:
            return vals.pop()
        if vals:
            return " | ".join(sorted(vals))
    table = _sibling_table(path, label)
    return json.loads(table.read_text()).get("settings", {}).get("spec") if table else None


def _sibling(path: Path, label: str) -> Path:
    """The isolated-atom table beside a data file, as tealign compute names it."""
    return path.with_name(f"{path.name.split('.')[0]}.atoms_{label}.json")


def _sibling_table(path: Path, label: str) -> Path | None:
    p = _sibling(path, label)
    return p if p.is_file() else None


def check_conventions(added: Path, reference: Path, label: str) -> list[str]:
    """What in ``added`` differs from ``reference``'s conventions for energy_<label> (empty
    when nothing): every frame carries each energy_/forces_/stress_/d3_ key of ``label`` that
    every frame of ``reference`` carries, with the same per-frame shape; d3_in_energy_<label>
    is False throughout both (D3(BJ) stored apart, tealign compute's convention); the level
    recorded (method_energy_<label>, else the sibling isolated-atom table's spec) is the same;
    the two sibling tables (where both exist) have the same settings and agree within 1e-4 eV
    on their shared elements."""
    from tealign.io import read_batch

    a, r = read_batch(added), read_batch(reference)
    out = []
    if a.rejects:
        out.append(f"{len(a.rejects)} frames rejected on reading ({a.rejects[0]})")
    wanted = re.compile(rf"^(energy|forces|stress|d3_energy|d3_forces|d3_in_energy)_{label}$")
    for cols, where in ((r.info, "info"), (r.arrays, "per-atom")):
        for key in sorted(k for k in cols if wanted.match(k) and r.has(k).all()):
            other = a.info if where == "info" else a.arrays
            if key not in other or not a.has(key).all():
                out.append(f"{where} key {key} missing in some frames")
            elif np.shape(other[key])[1:] != np.shape(cols[key])[1:]:
                out.append(f"{key} has per-frame shape {np.shape(other[key])[1:]}, not "
                           f"{np.shape(cols[key])[1:]}")
    flag = f"d3_in_energy_{label}"
    for b, name in ((a, "added"), (r, "reference")):
        vals = {str(x).lower() for x in b.info.get(flag, [])}
        if vals != {"false"}:
            out.append(f"{name} file's {flag} is {sorted(vals) or 'absent'}, not all False")
    sa, sr = _spec(added, label, a), _spec(reference, label, r)
    if sa is None:
        out.append(f"no method recorded for energy_{label}")
    elif sr is not None and sa != sr:
        out.append(f"energy_{label} is {sa}, not {sr}")
    ta, tr = _sibling_table(added, label), _sibling_table(reference, label)
    if ta and tr:
        da, dr = json.loads(ta.read_text()), json.loads(tr.read_text())
        sha = [d.get("settings", {}).get("settings_sha256") for d in (da, dr)]
        if sha[0] != sha[1]:
            out.append(f"isolated atoms computed with other settings ({ta.name}: {sha[0]}, "
                       f"{tr.name}: {sha[1]})")
        for el in sorted(set(da["energies"]) & set(dr["energies"])):
            if abs(da["energies"][el] - dr["energies"][el]) > 1e-4:
                out.append(f"isolated {el}: {da['energies'][el]} vs {dr['energies'][el]} eV")
    return out


def append_training_frames(base: Path, added: Path, out: Path) -> Path:
    """``base``'s frames as they are, then every frame of ``added`` in the training split;
    rewritten only when the inputs (their paths and contents: ``out``.inputs.sha256) changed."""
    from tealign.io import read_batch
    from tealign.io.extxyz import write_extxyz

    h = hashlib.sha256()
    for p in (base, added):
        h.update(str(p).encode() + b"\0" + p.read_bytes())
    stamp = out.with_name(out.name + ".inputs.sha256")
    if out.exists() and stamp.exists() and stamp.read_text().strip() == h.hexdigest():
        return out
    b, x = read_batch(base), read_batch(added)
    for batch, path in ((b, base), (x, added)):
        if batch.rejects:
            raise SystemExit(f"{_shown(path)}: {len(batch.rejects)} frames rejected on reading")
    x.info["split"] = np.full(x.n_frames, "train", dtype=object)
    x.missing.pop("split", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_extxyz(out, [b, x])
    stamp.write_text(h.hexdigest() + "\n")
    return out


def stage_two_args(start: int | None) -> tuple[str, ...]:
    """mace_run_train options for a Stage Two from epoch ``start`` (none when None): the energy
    weighted 1000 against forces 100 (mace-torch's defaults for it; Stage One of the presets
    has 1 against 10), the stress kept at the presets' 100, learning rate 1e-3. Rare species
    (10 frames of a bond type no other frame has) need it: with Stage One alone the models
    miss their own training frames of CO, H2O2 and N2H4 by 190 to 440 meV/atom."""
    if start is None:
        return ()
    return ("--swa", "--start_swa", str(start), "--swa_energy_weight", "1000",
            "--swa_forces_weight", "100", "--swa_stress_weight", "100", "--swa_lr", "1e-3")


def training_frames(path: Path, species: dict[str, str]) -> dict[str, int]:
    """Training-split frames per bridge species in a built file (mol_id X or bridge_X)."""
    from tealign.io import read_batch

    b = read_batch(path)
    ids = species_of(b)[np.asarray(b.info["split"]).astype(str) == "train"]
    return {s: int((ids == s).sum()) for s in species}


# ---------------------------------------------------------------------- tables
def _mean(values: list) -> float | None:
    vals = [x for x in values if x is not None]
    return float(np.mean(vals)) if vals else None


def _cell(x: float | None, fmt: str = ".1f") -> str:
    return "–" if x is None else format(x, fmt)


def _extended(results: dict) -> str:
    """', extended to N (k trainings short of the plateau)' when --extend-to continued some."""
    asked = [t.get("max_epochs") for seeds in results["variants"].values()
             for r in seeds.values() for t in (r.get("training") or {}).values() if t]
    more = sorted({n for n in asked if n and n > (results.get("epochs") or 0)})
    if not more:
        return ""
    runs = {(v, s) for v, seeds in results["variants"].items() for s, r in seeds.items()
            if any(t and (t.get("max_epochs") or 0) > (results.get("epochs") or 0)
                   for t in (r.get("training") or {}).values())}
    return (f", extended to {'/'.join(map(str, more))} for the {len(runs)} trainings short of "
            "the plateau there (--extend-to; the trainings table's epochs asked)")


def training_lines(results: dict) -> list[str]:
    """One row per training (and head): epochs, best and kept epoch, the best validation
    energy MAE, its drop over the last window, and whether it reached its plateau."""
    lines = ["| variant | seed | head | epochs asked | epochs run | of which Stage One | "
             "best epoch | kept epoch | best valid E MAE (meV/atom) | at the kept epoch | "
             f"drop, last {PLATEAU_WINDOW} vs {PLATEAU_WINDOW} before | patience exhausted | "
             "plateau |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for v, seeds in results["variants"].items():
        for seed, r in seeds.items():
            for head, t in (r.get("training") or {}).items():
                if not t:
                    continue
                drop = "–" if t["drop"] is None else f"{100 * t['drop']:+.1f} %"
                lines.append(f"| ({v}) | {seed} | {head} | {_cell(t.get('max_epochs'), 'd')} | "
                             f"{t['epochs_run']} | "
                             f"{_cell(t.get('stage_one_epochs'), 'd')} | {t['best_epoch']} | "
                             f"{_cell(t['kept_epoch'], 'd')} | "
                             f"{t['best_valid_energy_mae_meV_per_atom']:.2f} | "
                             f"{_cell(t.get('kept_valid_energy_mae_meV_per_atom'), '.2f')} | "
                             f"{drop} | "
                             f"{'yes' if t['patience_exhausted'] else 'no'} | "
                             f"{'yes' if t['reached_plateau'] else 'NO'} |")
    return lines


def own_fit_lines(results: dict, v: str) -> list[str]:
    """Variant ``v``'s own-data table: per bridge species, its training frames, the model's
    energy and force MAE on them (mean over seeds), the label residual at the bridge geometry
    and the model's error on the bridge frame (mean over seeds), meV/atom."""
    seeds = results["variants"].get(v, {})
    if not seeds:
        return []
    natoms = results.get("bridge_natoms", {})
    label = LABEL_OF[v]
    residual = (results.get("label_residual_eV") or {}).get(label, {}) if label else {}
    mode = next(iter(cross_modes(v)))
    lines = [f"({v}) {TITLES[v]}: {len(seeds)} seed(s); label residual from the "
             f"{label or 'GPAW (δ = 0)'} alignment; bridge-frame error on the {mode} mode.", "",
             "| species | role | training frames | E MAE own frames (meV/atom) | mean E error "
             "(meV/atom) | F MAE own frames (meV/Å) | label residual δ (meV/atom) | model − "
             "GPAW, bridge frame (meV/atom) |", "|---|---|---|---|---|---|---|---|"]
    first = next(iter(seeds.values()))
    for s, row in first.get("own_fit", {}).items():
        fits = [r["own_fit"][s] for r in seeds.values() if s in r.get("own_fit", {})]
        bridge = [r.get("bridge_frame_error_eV", {}).get(mode, {}).get(s)
                  for r in seeds.values()]
        n = natoms.get(s)
        if row["role"] == "solid" or label is None:
            delta = "0 (GPAW label)" if row["role"] == "solid" or v == "o" else "–"
        else:
            d = residual.get(s)
            delta = "– (not alignable)" if d is None or not n else f"{1000 * d / n:+.1f}"
        b_err = _mean(bridge)
        lines.append(
            f"| {s} | {row['role']} | {row['n_frames']} | "
            f"{_cell(_mean([x['energy_mae_meV_per_atom'] for x in fits]))} | "
            f"{_cell(_mean([x['energy_mean_error_meV_per_atom'] for x in fits]), '+.1f')} | "
            f"{_cell(_mean([x['forces_mae_meV_per_A'] for x in fits]))} | {delta} | "
            f"{_cell(None if b_err is None or not n else 1000 * b_err / n, '+.1f')} |")
    return lines


def write_tables(results: dict, path: Path) -> Path:
    """tables.md: the trainings and every variant's own-data table."""
    lines = ["# Round two: trainings and own-data fit", "",
             f"Preset `{results['preset']}`, --epochs {results['epochs']}"
             f"{_extended(results)}. Plateau rule: "
             f"{PLATEAU_RULE}", "", *training_lines(results)]
    if results.get("stage_two"):
        lines[2] += (f" Stage Two (mace-torch --swa) from epoch {results['stage_two']} at the "
                     "latest (mace-torch starts it as soon as Stage One's patience runs out, "
                     "then moves its epoch counter on: the Stage One column): "
                     f"`{' '.join(results.get('mace_args', []))}`; the Stage Two model is the "
                     "one assessed.")
    lines += [*stale_line(results), "", *verdict_section(results), "",
              *inorganic_lines(results)]
    for v in results["variants"]:
        lines += ["", *own_fit_lines(results, v)]
    path.write_text("\n".join(lines) + "\n")
    return path


def inorganic_lines(results: dict) -> list[str]:
    """The inorganic test sets per variant (mean over seeds, the seeds' range in brackets):
    the held-out family (SiC, never trained on) and the in-distribution set (the training
    crystals at an unseen strain and in MD at 900 K and 300 K), energy MAE in meV/atom and
    force MAE in meV/Å, each sampling apart."""
    cols: list[tuple[str, str, str]] = [("inorganic", "", "held-out family (SiC)")]
    kinds = sorted({k for entry in results["variants"].values() for one in entry.values()
                    if isinstance(one, dict)
                    for k in one.get("errors", {}).get("inorganic_indist", {})})
    cols += [("inorganic_indist", k, f"in-distribution: {k.replace('_', ' ')}") for k in kinds]
    if len(cols) == 1:
        return []
    head = "| variant | seeds | " + " | ".join(
        f"{t} E (meV/atom) | {t} F (meV/Å)" for _, _, t in cols) + " |"
    lines = ["## Inorganic test sets: the held-out family and the in-distribution set", "",
             "Mean over seeds, the seeds' range in brackets when more than one.", "", head,
             "|" + "---|" * (2 + 2 * len(cols))]

    def cell(vals: list[float]) -> str:
        if not vals:
            return "–"
        return f"{np.mean(vals):.1f}" + (f" [{min(vals):.1f}, {max(vals):.1f}]"
                                          if len(vals) > 1 else "")

    for v, entry in results["variants"].items():
        seeds = [one for one in entry.values() if isinstance(one, dict) and "errors" in one]
        row = []
        for key, sub, _ in cols:
            rows = [one["errors"].get(key, {}) for one in seeds]
            rows = [r.get(sub) if sub else r for r in rows]
            rows = [r for r in rows if r]
            row += [cell([r["energy_mae_meV_per_atom"] for r in rows]),
                    cell([r["forces_mae_meV_per_A"] for r in rows])]
        lines.append(f"| ({v}) {TITLES[v]} | {len(seeds)} | " + " | ".join(row) + " |")
    outside = indist_outside_training()
    if outside:
        lines += ["", "In-distribution frames outside their crystal's training range (energy "
                  "above the equilibrium frame, meV/atom, against the highest training frame "
                  "of that crystal): " + "; ".join(
                      f"{c} {k.replace('_', ' ')} {de:.0f} (training ≤ {top:.0f})"
                      for c, k, de, top in outside)
                  + ". Those are extrapolation, not in-distribution, and weigh on the mean."]
    return lines


def indist_outside_training(inorganic: Path = ROOT / "datasets" / "inorganic-mini"
                            / "inorganic-mini.extxyz") -> list[tuple[str, str, float, float]]:
    """(crystal, sampling, energy above equilibrium, highest training frame's), meV/atom, of
    each in-distribution frame above every training frame of its crystal."""
    from ase.io import read

    if not INDIST.exists() or not inorganic.exists():
        return []
    train = read(inorganic, ":")
    out = []
    for a in read(INDIST, ":"):
        mine = [t for t in train if t.info.get("crystal") == a.info["crystal"]]
        eq = [t for t in mine if t.info.get("sampling") == "equilibrium"]
        if not eq:
            continue
        e0 = eq[0].info["energy_pbe"] / len(eq[0])
        top = max(t.info["energy_pbe"] / len(t) - e0 for t in mine if t.info.get(
            "split") == "train") * 1000
        de = (a.info["energy_pbe"] / len(a) - e0) * 1000
        if de > top:
            out.append((a.info["crystal"], a.info["sampling"], de, top))
    return out


def record_assessment(cur: dict, v: str, seed: int, one: dict, log: list[dict],
                      extended: bool = False) -> None:
    """Put a new assessment of (``v``, ``seed``) into the results ``cur``: it replaces the old
    record whole (no key of an earlier assessment, or a note written beside it, outlives it);
    after an extension ``train_wall_s`` is the sum of both trainings' walls. ``log`` (this
    run's commands) is appended to the run's log."""
    entry = cur["variants"].setdefault(v, {})
    before = entry.get(str(seed), {})
    if extended and "train_wall_s" in one and "train_wall_s" in before:
        one = {**one, "train_wall_s": before["train_wall_s"] + one["train_wall_s"]}
    entry[str(seed)] = one
    cur["variants"] = {k: cur["variants"][k] for k in VARIANTS if k in cur["variants"]}
    cur["log"] = cur.get("log", []) + log


def paired_input(results: dict) -> tuple[dict, dict[str, str]]:
    """The per-seed item errors of every assessed variant in the shape paired.verdict_rows
    reads, and their titles: each variant's ``items`` (for (g) its target head), and for (g)
    also its other head mode (errors.cross), keyed "g, <mode>" as round one's
    model_level.paired_inputs keys it."""
    per_seed: dict = {}
    titles = dict(TITLES)
    for v, entry in results["variants"].items():
        seeds = {s: e for s, e in entry.items() if isinstance(e, dict) and "items" in e}
        if seeds:
            per_seed[v] = seeds
        for mode in list(cross_modes(v))[1:]:
            other = {s: {"items": e["errors"]["cross"][mode]} for s, e in seeds.items()
                     if e.get("errors", {}).get("cross", {}).get(mode)}
            if other:
                per_seed[f"{v}, {mode}"] = other
                titles[f"{v}, {mode}"] = TITLES[v]
    return per_seed, titles


def verdict_section(results: dict, bridge: Path = ROOT / "datasets" / "bridge-v2" / "bridge.json"
                    ) -> list[str]:
    """Every variant against TEA (e) and the oracle against TEA on its own subset (eo) on the
    bridge-v2 items, paired by seed and by molecule (paired.py's rule: a verdict only where
    the seed t interval and the joint seed × molecule bootstrap agree)."""
    import paired

    from tealign.bench import cross

    per_seed, titles = paired_input(results)
    if "e" not in per_seed or len(per_seed) < 2:  # nothing to compare TEA with yet
        return []
    item_mols = paired.item_molecules(bridge)
    kinds = {it["id"]: it["kind"] for it in cross.items_of(json.loads(bridge.read_text()))}
    out = ["## Model level on bridge-v2, paired by seed and by molecule", "",
           *paired.verdict_lines(per_seed, "e", titles, item_mols, kinds=kinds)]
    oracle = paired.oracle_rows(per_seed, titles, item_mols, kinds=kinds)
    if oracle:
        out += ["", "The oracle against TEA on the same organic subset:", "",
                *paired.table_lines(oracle)]
    out += ["", "Per molecule (seed-averaged |err| − |err_TEA| over the items it enters):", "",
            *paired.per_molecule_lines(per_seed, "e", titles, item_mols)]
    return out


def own_fit_summary(results: dict) -> list[str]:
    """Per variant and seed: how well the model fits its own training frames of the bridge
    species (median and worst species energy MAE, the species above OWN_FIT_LIMIT), and how
    its error at the bridge frames splits: mean |model − GPAW| over the gas molecules against
    mean |δ| (the labels' own alignment error at the same frames), meV/atom."""
    lines = ["| variant | seed | species | E MAE own frames, median (meV/atom) | worst | "
             f"species above {OWN_FIT_LIMIT:.0f} meV/atom | gas molecules: mean |model − GPAW| "
             "at the bridge frame | mean |δ| of the labels (meV/atom) |",
             "|---|---|---|---|---|---|---|---|"]
    natoms = results.get("bridge_natoms", {})
    for v, seeds in results["variants"].items():
        label = LABEL_OF[v]
        residual = (results.get("label_residual_eV") or {}).get(label, {}) if label else {}
        mode = next(iter(cross_modes(v)))
        for seed, r in seeds.items():
            fit = {k: x["energy_mae_meV_per_atom"] for k, x in r.get("own_fit", {}).items()
                   if x["energy_mae_meV_per_atom"] is not None}
            if not fit:
                continue
            worst = max(fit, key=fit.get)
            above = ", ".join(f"{k.removesuffix('_g').removesuffix('_s')} {x:.0f}"
                              for k, x in sorted(fit.items(), key=lambda kv: -kv[1])
                              if x > OWN_FIT_LIMIT) or "none"
            gas = [k for k, x in r.get("own_fit", {}).items() if x["role"] == "molecule"
                   and natoms.get(k)]
            frame = r.get("bridge_frame_error_eV", {}).get(mode, {})
            model_err = _mean([abs(frame[k]) * 1000 / natoms[k] for k in gas
                               if frame.get(k) is not None])
            if v == "o":
                delta = 0.0
            else:
                delta = _mean([abs(residual[k]) * 1000 / natoms[k] for k in gas
                               if residual.get(k) is not None])
            lines.append(f"| ({v}) | {seed} | {len(fit)} | {np.median(list(fit.values())):.1f} "
                         f"| {worst.removesuffix('_g').removesuffix('_s')} {fit[worst]:.0f} | "
                         f"{above} | {_cell(model_err)} | {_cell(delta)} |")
    return lines


def readme_section(reported: Path = REPORTED, stage_one: Path = OUT) -> list[str]:
    """The experiment README's round-two section, from ``reported``/results.json (and the
    Stage One trainings in ``stage_one``/results.json, for what Stage Two changed); [] before
    any round-two training."""
    path = reported / "results.json"
    if not path.exists():
        return []
    res = json.loads(path.read_text())
    if not res["variants"]:
        return []
    counts = res.get("training_frames", {})
    n_mol, n_sol = len(counts.get("organic", {})), len(counts.get("inorganic", {}))
    fewest = min((n for by in counts.values() for n in by.values()), default=0)
    lines = ["## Round two: models that fit their own data, verdicts paired by seed and "
             "molecule (`run_v2.py`)", "",
             f"Written by `run_v2.py` into `{_shown(reported)}/` (tables.md has every table in "
             f"full). Training data as in round one plus training frames of every bridge "
             f"species ({n_mol} gas molecules at the source level, {n_sol} solids at the "
             f"target level, at least {fewest} frames each: rattled and bond-stretched, "
             f"datasets/bridge-v2/make_training_frames.py; no two frames of a gas "
             f"molecule within 0.01 Å of each other: datasets/bridge-v2/README.md)"
             + (". `experiments/multidomain/runs_v2_stage2/` is the same protocol on the "
                "first generation of those frames, 24 of which lay within 0.01 Å of another "
                "(its own tables.md)" if reported.name == "runs_v2_redrawn" else "")
             + f". Preset `{res['preset']}`, "
             f"{res['epochs']} epochs{_extended(res)}"
             + (f", mace-torch's Stage Two from epoch {res['stage_two']} at the latest "
                "(earlier where Stage One's patience ran out: the trainings table's Stage One "
                f"column; `{' '.join(res.get('mace_args', []))}`)" if res.get("stage_two")
                else "")
             + ". Plateau rule: " + PLATEAU_RULE, ""]
    one = stage_one / "results.json"
    if res.get("stage_two") and one.exists():
        first = json.loads(one.read_text())
        missed = []
        for v, seeds in first["variants"].items():
            for seed, r in seeds.items():
                bad = {k: x["energy_mae_meV_per_atom"] for k, x in r.get("own_fit", {}).items()
                       if (x["energy_mae_meV_per_atom"] or 0) > OWN_FIT_LIMIT}
                if bad:
                    missed.append(f"({v}) seed {seed}: " + ", ".join(
                        f"{k.removesuffix('_g')} {x:.0f}" for k, x in
                        sorted(bad.items(), key=lambda kv: -kv[1])))
        if missed:
            lines += ["Why Stage Two: the same trainings with Stage One only "
                      f"({first['epochs']} epochs, `{_shown(stage_one)}/`) reached their "
                      "plateau but missed their own training frames of bond types no other "
                      f"frame has (meV/atom, species above {OWN_FIT_LIMIT:.0f}): "
                      + "; ".join(missed) + ". Forces weighted 10:1 over energies leave a "
                      "rare bond's energy offset to a few frames' share of the loss; Stage "
                      "Two weights the energy 1000:100.", ""]
    lines += ["### Trainings", "", *training_lines(res), *stale_line(res), "",
              "### Own-data fit: model error apart from alignment error", "",
              "Each model on its own training frames of the bridge species, and at the bridge "
              "frames (the gas molecules of the items) against GPAW beside the labels' own "
              "error there (δ = aligned label − GPAW): where the model fits its data, its "
              "error at the bridge frames is δ; full per-species tables in tables.md.", "",
              *own_fit_summary(res), ""]
    verdicts = verdict_section(res)
    if verdicts:
        verdicts[0] = "### Model level on bridge-v2, paired by seed and by molecule"
        lines += [*verdicts, ""]
    inorg = inorganic_lines(res)
    if inorg:
        inorg[0] = "### Inorganic test sets: the held-out family and the in-distribution set"
        lines += [*inorg, ""]
    return lines


# ---------------------------------------------------------------------- main
PLATEAU_RULE = (f"reached when the best validation energy MAE of the last {PLATEAU_WINDOW} "
                f"epochs is less than {100 * PLATEAU_DROP:.0f} % below the best of the "
                f"{PLATEAU_WINDOW} before (the logged epochs, so with Stage Two the windows "
                "may straddle its start, where the loss weights change), or when early "
                "stopping ended the training (its last epoch number below the epochs asked: "
                "--epochs, or --extend-to for a training continued past it; "
                "mace-torch 0.3.16 on one process only logs its stop when the patience is "
                "exhausted and trains on to --epochs, keeping the lowest-loss checkpoint: "
                "'patience exhausted' is shown, not used).")


def refresh_training_records(out: Path) -> Callable[[dict], None]:
    """A change for update_results: every training's record recomputed by training_record
    from the train.log its run directory keeps (``<variant>/train`` for seed 1,
    ``<variant>/train_seed<N>`` otherwise; run.Run.train), so that the records follow the
    current rule; a training whose directory is gone keeps its stored record, and so does one
    whose mace-torch results/ are gone (a fresh checkout: train.log logs the MAE to 2
    decimals only, and the stored record was computed at full precision) unless the rule
    stated beside the records changed."""
    def change(cur: dict) -> None:
        same_rule = cur.get("plateau_rule") == PLATEAU_RULE
        cur["plateau_rule"] = PLATEAU_RULE
        for v, seeds in cur.get("variants", {}).items():
            heads = training_heads(v)
            for seed, one in seeds.items():
                d = out / v / ("train" if seed == "1" else f"train_seed{seed}")
                full = (d / "results").is_dir() or not one.get("training") or not same_rule
                if (d / "train.log").exists() and full:
                    one["training"] = {h or "model": training_record(d, head=h) for h in heads}
                model = d / "model.model"
                one.pop("assessment_stale", None)
                if one.get("model_sha256") and model.exists() and one["model_sha256"] != \
                        hashlib.sha256(model.read_bytes()).hexdigest():
                    one["assessment_stale"] = True
    return change


def stale_line(results: dict) -> list[str]:
    """A warning naming the trainings whose model changed after their assessment (an
    extension run but not yet assessed again): their training records describe the new
    model, their errors the old one. [] when there is none."""
    stale = [f"({v}) seed {s}" for v, seeds in results["variants"].items()
             for s, one in seeds.items() if one.get("assessment_stale")]
    if not stale:
        return []
    return ["", "**Not assessed again yet**: " + ", ".join(stale) + ": the model in the run "
            "directory is not the one these errors were computed with (rerun run_v2.py for "
            "them); their training records already describe the new one.", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--preset", default="small-cpu")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seeds", default="1,2,3",
                    help="training seeds, comma-separated (1 = the presets' own)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--device", default="cpu", help="tealign train --device (cpu, cuda)")
    ap.add_argument("--stage-two", type=int, default=None, metavar="EPOCH",
                    help="mace-torch's Stage Two from EPOCH on (--swa: energy weight 1000, "
                         "forces 100, stress 100, lr 1e-3); the Stage Two model is the one "
                         "assessed")
    for key, path in INPUTS.items():
        ap.add_argument(f"--bridge-{key.replace('_', '-')}", type=Path, default=path,
                        dest=key, help=f"default {_shown(path)}")
    ap.add_argument("--merge-only", action="store_true",
                    help="build the data, merge each variant and stop (trainings elsewhere)")
    ap.add_argument("--report-only", action="store_true",
                    help="write RUN/tables.md from RUN/results.json")
    ap.add_argument("--extend-to", type=int, default=None, metavar="EPOCHS",
                    help="continue every finished training (of --variants, --seeds) that has "
                         "not reached the plateau rule's plateau to EPOCHS epochs (mace-torch "
                         "resumes from its latest checkpoint), then assess it again")
    args = ap.parse_args()
    results_path = args.out.resolve() / "results.json"
    if args.report_only:
        results = update_results(results_path, {}, refresh_training_records(args.out.resolve()))
        print(write_tables(results, results_path.with_name("tables.md")))
        return
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {','.join(VARIANTS)}")
    run = RunV2(args.out.resolve(), {k: getattr(args, k) for k in INPUTS})
    run.check_inputs(variants)
    run.out.mkdir(parents=True, exist_ok=True)
    if results_path.exists():
        had = json.loads(results_path.read_text())
        if (had.get("preset"), had.get("epochs"), had.get("stage_two")) != \
                (args.preset, args.epochs, args.stage_two):
            raise SystemExit(f"{_shown(results_path)} holds a run with preset "
                             f"{had.get('preset')}, --epochs {had.get('epochs')}, --stage-two "
                             f"{had.get('stage_two')}: use another --out")
    f = run.files
    al = run.alignments()
    run.prepare_data()
    both = f["organic"].exists() and f["inorganic"].exists()
    lr = run.linear_references() if both else {"inorganic_table": None}
    roles = run.bridge_species()
    counts = {dom: training_frames(f[dom], {s: r for s, r in roles.items() if r == want})
              for dom, want in (("organic", "molecule"), ("inorganic", "solid"))
              if f[dom].exists()}
    for dom, by in counts.items():
        few = {s: n for s, n in by.items() if n < MIN_FRAMES}
        if few:
            print(f"warning: {dom}: bridge species with fewer than {MIN_FRAMES} training "
                  f"frames: {few}", flush=True)
    from tealign.io import read_batch

    bb = read_batch(f["bridge"])
    mace_args = stage_two_args(args.stage_two)
    base = {"preset": args.preset, "epochs": args.epochs, "stage_two": args.stage_two,
            "mace_args": list(mace_args), "plateau_rule": PLATEAU_RULE,
            "titles": TITLES, "label_of": LABEL_OF, "variants": {}, "log": []}
    extra = {"inputs": {k: {"path": _shown(p), "sha256": hashlib.sha256(
                 p.read_bytes()).hexdigest()} for k, p in run.inputs.items() if p.exists()},
             "training_frames": counts,
             "bridge_natoms": dict(zip(np.asarray(bb.info["species"]).astype(str),
                                       bb.n_atoms.tolist())),
             "label_residual_eV": run.label_residuals(al)}

    def setup(cur: dict) -> None:  # the fits this run made before any training
        cur.update(extra)
        cur["log"] = cur.get("log", []) + run.log

    update_results(results_path, base, setup)
    for seed in (int(x) for x in args.seeds.split(",")):
        for v in variants:
            n_log = len(run.log)
            extend = None
            if args.extend_to:
                run_dir = run.out / v / ("train" if seed == 1 else f"train_seed{seed}")
                if not (run_dir / "model.model").exists():
                    print(f"skipped: ({v}) seed {seed}: no finished training to extend",
                          flush=True)
                    continue
                records = [training_record(run_dir, head=h) for h in training_heads(v)]
                if all(r and r["reached_plateau"] for r in records):
                    print(f"skipped: ({v}) seed {seed}: at its plateau", flush=True)
                    continue
                extend = args.extend_to
            model = run.train(v, args.preset, args.epochs, al, lr, seed=seed,
                              device=args.device, merge_only=args.merge_only,
                              mace_args=mace_args, extend_to=extend)
            if args.merge_only:
                continue
            one = run.assess(v, model, al, lr, run.log[n_log:])
            log = run.log[n_log:]

            def add(cur: dict, v=v, seed=seed, one=one, log=log, extend=extend) -> None:
                record_assessment(cur, v, seed, one, log, extended=bool(extend))

            update_results(results_path, base, add)
            own = [x["energy_mae_meV_per_atom"] for x in one["own_fit"].values()
                   if x["energy_mae_meV_per_atom"] is not None]
            print(json.dumps({v: {"seed": seed, "items": len(one["items"]),
                                  "items_mae_meV": 1000 * float(np.mean(np.abs(
                                      list(one["items"].values())))) if one["items"] else None,
                                  "own_fit_worst_E_meV_per_atom": max(own, default=None),
                                  "training": one["training"]}}), flush=True)
    if not args.merge_only:
        write_tables(json.loads(results_path.read_text()), results_path.with_name("tables.md"))


if __name__ == "__main__":
    main()
