"""Ship the experiment's TEA model (variant e, seed 1) as tealign's pretrained ``tealign-mini``.

Copies runs/e/train/model.model into the package data (src/tealign/data/models/) and writes its
card, tealign-mini.json: the training command and data (from the run's own records), the
learning curve's last epochs, and test metrics recomputed here from committed files, so that
tests/test_pretrained.py can recompute them the same way:

- held-out crystal family (SiC, never trained on): every SiC frame of inorganic-mini, energy
  MAE per atom and force MAE against GPAW;
- organic test molecules on the target scale: bridge-mini/organic-test-pbe.extxyz (organic-mini's
  test split recomputed with GPAW), energy MAE per atom and force MAE.

    .venv/bin/python experiments/multidomain/ship_model.py
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
        "heldout_SiC": {"file": "datasets/inorganic-mini/inorganic-mini.extxyz",
                        "select": {"crystal": "SiC"}, "energy_key": "energy_pbe",
                        "forces_key": "forces_pbe"},
        "organic_test_target": {"file": "datasets/bridge-mini/organic-test-pbe.extxyz",
                                "select": {}, "energy_key": "energy_pbe",
                                "forces_key": "forces_pbe"},
    }


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


def main() -> None:
    from tealign.report.html import training_curves

    run = HERE / "runs" / "e" / "train"
    model = run / "model.model"
    if not model.exists():
        raise SystemExit(f"{model} not trained yet: run experiments/multidomain/run.py first")
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
                "inorganic-mini (variant e, seed 1, of experiments/multidomain)",
        "target_scale": "GPAW PBE, PW 800 eV, 0.1 eV Fermi-Dirac (valence-only PAW), no D3",
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "size_bytes": out.stat().st_size,
        "preset": train.get("preset"),
        "train_command": train.get("command"),
        "merge_config": (HERE / "runs" / "e" / "merge.toml").read_text(),
        "regenerate": "experiments/multidomain/run.py --variants e --seeds 1 (its README "
                      "gives the epochs), then experiments/multidomain/ship_model.py",
        "last_epochs": {k: v[-3:] for k, v in curves.items()} if curves else {},
        "test_sets": sets,
        "metrics": {name: metrics_on(out, spec) for name, spec in sets.items()},
    }
    from tealign.io.atomic import write_json

    write_json(DEST / f"{NAME}.json", card)
    print(json.dumps(card["metrics"], indent=1))
    print(f"wrote {out} ({card['size_bytes'] / 1e6:.2f} MB) and {NAME}.json")


if __name__ == "__main__":
    main()
