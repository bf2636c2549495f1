"""Where the models' cross-domain errors come from: each trained model's error on every
bridge-mini frame, by the frame's role.

A cross-domain item (reaction, adsorption, lattice energy) sums the energies of a few bridge
frames, so its error is a sum of frame errors. The roles say what the model saw: the gas
molecules, solids and clean slabs are in the training data (their labels at these very
geometries, the molecules' on the aligned ωB97M scale), the adsorbate–slab complexes and the
molecular crystals are not. For the molecules the script also gives the label's own error (the
aligned ωB97M energy against GPAW, from the alignment the variant was trained with), so that a
model error the size of the label error reads as "the model learned its labels".

    .venv/bin/python experiments/multidomain/frame_errors.py   # after run.py has trained

Writes runs/frame_errors.json (per variant, seed and frame: predicted − GPAW in eV; per role:
mean |error| per atom in meV/atom) and prints the per-role table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

ROLES = ("molecule", "solid", "slab", "complex", "molecular_crystal")
SEEN = {"molecule": True, "solid": True, "slab": True, "complex": False,
        "molecular_crystal": False}
#: the alignment each variant's organic labels went through (label error of the molecules)
LABEL_ALIGNMENT = {"b": "scale", "d": "icea", "e": "scale", "e2": "auto", "eo": "scale"}
#: (b) is trained on ωB97M and put on the target scale by TEA afterwards (model_level.to_target),
#: so its molecules' target-scale labels are (e)'s


def label_errors(bridge: Path, alignment: Path) -> dict[str, float]:
    """Species -> aligned ωB97M energy − GPAW energy (eV) for the bridge's molecules."""
    from tealign.align import TotalEnergyAlignment
    from tealign.io import read_batch

    b = read_batch(bridge)
    role = np.asarray(b.info["role"]).astype(str)
    mol = b.select(role == "molecule")
    res = TotalEnergyAlignment.load(alignment).transform(
        mol, energy_key="energy_wb97m", forces_key=None, stress_key=None, virials_key=None)
    e = np.asarray(res.info["REF_energy"], float) - np.asarray(mol.info["energy_pbe"], float)
    return dict(zip(np.asarray(mol.info["species"]).astype(str).tolist(), e.tolist()))


def oracle_label_errors(bridge: Path, subset: Path) -> dict[str, float]:
    """Species -> the oracle's GPAW label − the bridge's GPAW energy (eV) for the bridge's
    molecules: its training frame ``bridge_<species>`` at the same geometry (0 where the
    geometry and settings are the same; a geometry that differs is an error)."""
    from tealign.io import read_batch

    b, t = read_batch(bridge), read_batch(subset)
    ids = np.asarray(t.info["mol_id"]).astype(str)
    out = {}
    for i in np.flatnonzero(np.asarray(b.info["role"]).astype(str) == "molecule"):
        sp = str(b.info["species"][i])
        pos = b.positions[b.offsets[i]:b.offsets[i + 1]]
        for j in np.flatnonzero(ids == f"bridge_{sp}"):
            other = t.positions[t.offsets[j]:t.offsets[j + 1]]
            if other.shape == pos.shape and np.abs(other - pos).max() < 1e-6:
                out[sp] = float(t.info["energy_pbe"][j]) - float(b.info["energy_pbe"][i])
                break
        else:
            raise SystemExit(f"{subset}: no training frame of {sp} at the bridge's geometry")
    return out


def main() -> None:
    from model_level import TARGET_HEAD, bridge_energies
    from run import VARIANTS, Run

    from tealign.evaluate import load_model
    from tealign.io import read_batch
    from tealign.io.outputs import write_json

    run = Run(HERE / "runs", ROOT / "datasets")
    files = run.files
    bridge = files["bridge"]
    tea = HERE / "runs" / "alignments" / "scale.json"
    eps = HERE / "runs" / "linref" / "inorganic.json"
    b = read_batch(bridge)
    species = np.asarray(b.info["species"]).astype(str).tolist()
    role = dict(zip(species, np.asarray(b.info["role"]).astype(str).tolist()))
    n_at = dict(zip(species, b.n_atoms.tolist()))
    ref = dict(zip(species, np.asarray(b.info["energy_pbe"], float).tolist()))
    labels = {v: label_errors(bridge, HERE / "runs" / "alignments" / f"{al}.json")
              for v, al in LABEL_ALIGNMENT.items()}
    from run import ORACLE_SUBSET_PBE

    if ORACLE_SUBSET_PBE.exists():
        labels["o"] = oracle_label_errors(bridge, ORACLE_SUBSET_PBE)
    org = read_batch(files["organic"])
    ids = np.asarray(org.info["mol_id"]).astype(str)
    train = np.asarray(org.info["split"]).astype(str) == "train"
    n_train = {s: int(np.sum(train & (ids == f"bridge_{s}"))) for s in species
               if role[s] == "molecule"}
    out: dict = {"training_frames": n_train,
                 "units": {"frames": "eV, predicted − GPAW",
                           "by_role": "meV/atom, mean |predicted − GPAW| / n_atoms"},
                 "roles": role, "n_atoms": n_at, "label_errors": labels, "variants": {}}
    for v in VARIANTS:
        for d in sorted((HERE / "runs" / v).glob("train*/model.model")):
            seed = "1" if d.parent.name == "train" else d.parent.name.removeprefix("train_seed")
            model = load_model(d)
            heads = None
            if v == "g":
                heads = {"organic": TARGET_HEAD, "inorganic": TARGET_HEAD}
            energies = bridge_energies(model, v, bridge, tea, eps, heads=heads)
            frames = {s: energies[s] - ref[s] for s in energies}
            by_role = {}
            for r in ROLES:
                errs = [abs(e) / n_at[s] * 1000 for s, e in frames.items() if role[s] == r]
                if errs:
                    by_role[r] = float(np.mean(errs))
            out["variants"].setdefault(v, {})[seed] = {"frames": frames, "by_role": by_role}
            print(v, seed, {r: round(x, 1) for r, x in by_role.items()}, flush=True)
    write_json(HERE / "runs" / "frame_errors.json", out)


if __name__ == "__main__":
    main()


def section_lines(path: Path) -> list[str]:
    """The README section from runs/frame_errors.json (empty when it is not there)."""
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    n_at, roles = d["n_atoms"], d["roles"]
    seen = ", ".join(r for r in ROLES if SEEN[r])
    lines = ["## Where the model-level cross-domain error comes from", "",
             "Each model's error on every bridge-mini frame (predicted − GPAW), mean |error| per "
             f"atom by the frame's role (meV/atom). Roles in the training data: {seen} (the "
             "molecules with their aligned ωB97M labels); never trained on: the adsorbate–slab "
             "complexes and the molecular crystals. Written by `frame_errors.py` into "
             "`runs/frame_errors.json`.", "",
             "| variant | seed | " + " | ".join(ROLES) + " |",
             "|---|---|" + "---|" * len(ROLES)]
    for v, seeds in d["variants"].items():
        for seed, r in sorted(seeds.items(), key=lambda kv: int(kv[0])):
            cells = [f"{r['by_role'][k]:.1f}" if k in r["by_role"] else "–" for k in ROLES]
            lines.append(f"| ({v}) | {seed} | " + " | ".join(cells) + " |")
    mols = [s for s, r in roles.items() if r == "molecule"]
    lines += ["", "The gas molecules, label error (aligned ωB97M − GPAW) against the model's error "
              "(predicted − GPAW), meV/atom; a model that learned its labels repeats the label's "
              "error:", "",
              "| variant | what | " + " | ".join(mols) + " |", "|---|---|" + "---|" * len(mols)]
    if d.get("training_frames"):
        lines.append("| all | frames in organic-mini's training split | "
                     + " | ".join(str(d["training_frames"].get(s, "–")) for s in mols) + " |")
    for v, le in d["label_errors"].items():
        if v not in d["variants"]:
            continue
        lines.append(f"| ({v}) | label | "
                     + " | ".join(f"{le[s] / n_at[s] * 1000:+.0f}" for s in mols) + " |")
        for seed, r in sorted(d["variants"][v].items(), key=lambda kv: int(kv[0])):
            lines.append(f"| ({v}) | model, seed {seed} | " + " | ".join(
                f"{r['frames'][s] / n_at[s] * 1000:+.0f}" if s in r["frames"] else "–"
                for s in mols) + " |")
    lines += ["", *fit_gap_lines(d)]
    return lines + [""]


def fit_gap_lines(d: dict, few: int = 2) -> list[str]:
    """How far each model sits from its own labels on the gas molecules, split by how many
    training frames the molecule has (computed, meV/atom)."""
    n_train, n_at = d.get("training_frames") or {}, d["n_atoms"]
    if not n_train:
        return []
    gaps: dict[bool, list[float]] = {True: [], False: []}
    for v, le in d["label_errors"].items():
        for r in d["variants"].get(v, {}).values():
            for s, lab in le.items():
                if s in r["frames"]:
                    gaps[n_train.get(s, 0) <= few].append(
                        abs(r["frames"][s] - lab) / n_at[s] * 1000)
    if not gaps[True] or not gaps[False]:
        return []
    sparse = ", ".join(s for s, n in n_train.items() if n <= few)
    named = ", ".join(f"({v})" for v in d["label_errors"] if v in d["variants"])
    return [f"Model − label on the gas molecules, mean |difference| over variants {named} "
            f"and their seeds: {np.mean(gaps[True]):.0f} meV/atom for the molecules with at "
            f"most {few} training frames ({sparse}), {np.mean(gaps[False]):.0f} meV/atom for "
            "the others. Where the first is much larger, the model-level cross-domain errors "
            "measure how well the model learned a few sparsely sampled species, not the "
            "alignment: the items that contain them carry errors the "
            "label level does not have."]
