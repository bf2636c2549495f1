"""Train and ship tealign's pretrained ``tealign-mini``.

The experiment's TEA variant (e) holds one crystal family (SiC) out of training to measure
transfer; a model that ships should know every bundled crystal. So this script trains the same
recipe (variant e: organic-mini aligned onto GPAW PBE/PW800 with calib-qm9's single-factor TEA
alignment, merged with inorganic-mini; same preset, epochs and seed as the experiment's run) on
all of inorganic-mini, copies the model into the package data (src/tealign/data/models/) and
writes its card, tealign-mini.json: the merge configuration, the training command, the learning
curve's last epochs, and test metrics recomputed here from committed files, so that
tests/test_pretrained.py can recompute them the same way:

- organic test molecules on the target scale: bridge-mini/organic-test-pbe.extxyz (organic-mini's
  test split recomputed with GPAW), energy MAE per atom and force MAE;
- inorganic-mini's test split, energy MAE per atom and force MAE against GPAW.

    .venv/bin/python experiments/multidomain/run.py --label-level   # writes the alignments
    .venv/bin/python experiments/multidomain/ship_model.py          # merge, train, ship
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEST = ROOT / "src" / "tealign" / "data" / "models"
NAME = "tealign-mini"


def test_sets(root: Path = ROOT) -> dict[str, dict]:
    """The frames the recorded metrics are computed on: file, selection, keys."""
    return {
        "organic_test_target": {"file": "datasets/bridge-mini/organic-test-pbe.extxyz",
                                "select": {}, "energy_key": "energy_pbe",
                                "forces_key": "forces_pbe"},
        "inorganic_test": {"file": "datasets/inorganic-mini/inorganic-mini.extxyz",
                           "select": {"split": "test"}, "energy_key": "energy_pbe",
                           "forces_key": "forces_pbe"},
    }


MERGE_TOML = """[target]
e0 = ["../../../../datasets/calib-qm9/calib-qm9.atoms_pbe.json",
      "../../../../datasets/inorganic-mini/inorganic-mini.atoms_pbe.json"]
r_max = 4.5

[[source]]
name = "organic"
path = "../../../../datasets/organic-mini/organic-mini.extxyz"
energy_key = "energy_wb97m"
forces_key = "forces_wb97m"
config_type = "organic"
alignment = "../alignments/scale.json"

[[source]]
name = "inorganic"
path = "../../../../datasets/inorganic-mini/inorganic-mini.extxyz"
energy_key = "energy_pbe"
forces_key = "forces_pbe"
stress_key = "stress_pbe"
config_type = "inorganic"
alignment = "target"
"""
#: the experiment's preset and epochs (experiments/multidomain/README.md)
PRESET, EPOCHS = "small-cpu", 200


def train_model(run: Path = HERE / "runs" / "ship") -> Path:
    """Merge (paths relative to the config) and train; a finished model is kept."""
    import subprocess
    import sys

    model = run / "train" / "model.model"
    if model.exists():
        return model
    run.mkdir(parents=True, exist_ok=True)
    (run / "merge.toml").write_text(MERGE_TOML)
    tealign = [sys.executable, "-m", "tealign"]
    if not (run / "merged" / "report.json").exists():
        subprocess.run([*tealign, "merge", "merge.toml", "-o", "merged"], cwd=run, check=True)
    subprocess.run([*tealign, "train", "--preset", PRESET, "--epochs", str(EPOCHS),
                    "--data", "merged", "-o", "train", "--device", "cpu"], cwd=run, check=True)
    return model


def metrics_on(model_file: Path, spec: dict, root: Path = ROOT) -> dict:
    """Energy MAE per atom (meV/atom) and force MAE (meV/Å) of the model on one test set."""
    from tealign.evaluate import load_model, predict
    from tealign.io import read_batch

    b = read_batch(root / spec["file"])
    keep = np.ones(b.n_frames, bool)
    for key, value in spec["select"].items():
        keep &= np.asarray(b.info[key]).astype(str) == value
    b = b.select(keep)
    p = predict(load_model(model_file), b, compute_stress=False)
    e = (np.asarray(p.energy) - np.asarray(b.info[spec["energy_key"]], float)) / b.n_atoms
    f = np.asarray(p.forces) - np.asarray(b.arrays[spec["forces_key"]], float)
    return {"n_frames": int(b.n_frames),
            "energy_mae_meV_per_atom": float(np.mean(np.abs(e)) * 1000),
            "forces_mae_meV_per_A": float(np.mean(np.abs(f)) * 1000)}


def shipped_epoch(curves: dict) -> dict | None:
    """The epoch whose checkpoint mace-torch keeps (lowest validation loss) and its errors."""
    if not curves or not curves.get("loss"):
        return None
    k = int(np.argmin(curves["loss"]))
    return {key: curves[key][k] for key in ("epoch", "loss", "mae_e_per_atom", "mae_f")
            if key in curves and len(curves[key]) > k}


def cross_domain(model: Path) -> dict:
    """`tealign bench cross` of the model and, for the floor under it, of the labels it was
    trained on (the single-factor TEA alignment, no model): MAE over the bridge items (eV)."""
    import subprocess
    import sys
    import tempfile

    bridge = ROOT / "datasets" / "bridge-mini" / "bridge-mini.extxyz"
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, opt in (("model", ["--calculator", str(model)]),
                          ("labels_floor", ["--alignment",
                                            str(HERE / "runs" / "alignments" / "scale.json")])):
            r = subprocess.run([sys.executable, "-m", "tealign", "bench", "cross", *opt,
                                "--data", str(bridge), "-o", f"{tmp}/{name}", "--json"],
                               check=True, capture_output=True, text=True)
            d = json.loads(r.stdout)
            out[name] = {k: d[k] for k in ("n", "mae_eV", "reaction_mae_eV",
                                           "adsorption_mae_eV", "lattice_mae_eV") if k in d}
    return out


def main() -> None:
    from tealign.report.html import training_curves

    model = train_model()
    run = model.parent
    train = json.loads((run / "tealign_train.json").read_text())
    curves = training_curves(run)
    DEST.mkdir(parents=True, exist_ok=True)
    out = DEST / f"{NAME}.model"
    shutil.copyfile(model, out)
    sets = test_sets()
    card = {
        "name": NAME,
        "what": "MACE (mace-torch ScaleShiftMACE) trained by tealign on organic-mini aligned "
                "onto GPAW PBE/PW800 with calib-qm9's single-factor TEA alignment, merged with "
                "all of inorganic-mini (the recipe of variant e of experiments/multidomain, "
                "which holds SiC out; this model trains on it)",
        "target_scale": "GPAW PBE, PW 800 eV, 0.1 eV Fermi-Dirac (valence-only PAW), no D3",
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "size_bytes": out.stat().st_size,
        "preset": train.get("preset"),
        "train_command": [str(c).replace(str(ROOT) + "/", "") for c in train.get("command", [])],
        "merge_config": MERGE_TOML,
        "regenerate": "experiments/multidomain/run.py --label-level (the alignments), then "
                      "experiments/multidomain/ship_model.py (merge, train, ship)",
        "last_epochs": {k: v[-3:] for k, v in curves.items()} if curves else {},
        "shipped_epoch": shipped_epoch(curves),
        "cross_domain": cross_domain(out),
        "test_sets": sets,
        "metrics": {name: metrics_on(out, spec) for name, spec in sets.items()},
    }
    from tealign.io.outputs import write_json

    write_json(DEST / f"{NAME}.json", card)
    print(json.dumps(card["metrics"], indent=1))
    print(f"wrote {out} ({card['size_bytes'] / 1e6:.2f} MB) and {NAME}.json")


if __name__ == "__main__":
    main()
