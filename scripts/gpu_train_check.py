#!/usr/bin/env python
"""Train a MACE model on the merged bundled data on the GPU and check that CPU and GPU agree.

Steps (all through tealign's own API): fit the demo's alignment on calib-qm9, merge
organic-mini (aligned) with inorganic-mini (the demo's merge config,
:func:`tealign.demo.merge_config`), train the preset (default ``osaka24-small``, the
paper's small recipe, 20 epochs; its GPU wall time is not measured yet) on ``--device``
(auto: CUDA when available, else CPU), then predict energies and forces of the test split
with the trained model twice, once on the CPU and once on the training device, and compare
them.

Agreement (float64, the dtype mace-torch trains and saves in): every frame's energy within
``--tol-energy`` eV per atom (default 1e-6) and every force component within ``--tol-forces``
eV/Å (default 1e-5). Summation order differs between CPU and CUDA kernels, so the two agree to
roughly 1e-10 relative; the tolerances leave room for that and nothing else. Without a GPU the
second prediction also runs on the CPU (the check is then that two CPU runs agree), and the
summary says so.

``--from MODEL`` fine-tunes MODEL (a file or ``tealign-mini``) instead (CI does that: it
is the API's fine-tuning run). ``--tiny`` is the CI configuration: every 6th organic and
every 3rd inorganic frame (89 frames), preset ``tiny`` (``small-cpu``'s training settings
with ``--from``), 1 epoch (about half a minute on 2 busy CPU cores).
Prints one JSON object (stdout); exit 0 when the predictions agree, 1 when they do not,
2 on a setup error.

    python scripts/gpu_train_check.py -o /tmp/gpu-check            # the real run
    python scripts/gpu_train_check.py -o /tmp/gpu-check --tiny --from tealign-mini   # CI
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def subset(src: Path, dst: Path, step: int) -> None:
    """Every ``step``-th frame of an extxyz file (ASE reads and writes them unchanged)."""
    import ase.io

    ase.io.write(dst, ase.io.read(src, index=f"::{step}"), format="extxyz")


def prepare(out: Path, datasets: str | None, tiny: bool) -> Path:
    """The merged directory (fit + merge, as the demo does); reused when already there."""
    from tealign import api, demo
    from tealign import rundir as rd

    ds = demo.locate_datasets(datasets)
    merged = out / "merged"
    if (merged / rd.MERGE_REPORT_FILE).exists():
        return merged
    if tiny:  # a datasets directory of the first frames of the two sources
        small = out / "datasets"
        for key, path in demo.DATASET_FILES.items():
            (small / path).parent.mkdir(parents=True, exist_ok=True)
            if key in ("organic", "inorganic"):
                subset(ds / path, small / path, 6 if key == "organic" else 3)
            elif (ds / path).exists():
                (small / path).write_bytes((ds / path).read_bytes())
        ds = small
    f = {k: str(ds / v) for k, v in demo.DATASET_FILES.items()}
    (out / Path(rd.ALIGNMENT).parent).mkdir(parents=True, exist_ok=True)
    api.fit(f["calib"], "energy_wb97m", "energy_pbe", f["calib_e0_source"],
            f["calib_e0_target"], out / rd.ALIGNMENT, model="auto")
    config = out / "merge.toml"
    config.write_text(demo.merge_config(ds))
    api.merge(config, merged)
    return merged


def compare(model_path: Path, data: Path, device: str) -> dict:
    """Energies (eV/atom) and forces (eV/Å) of the test split on the CPU and on ``device``."""
    import numpy as np

    from tealign.evaluate import load_model, predict
    from tealign.io import read_batch

    batch = read_batch(data)
    test = batch.select(np.asarray(batch.info["split"]).astype(str) == "test") \
        if "split" in batch.info else batch
    n_atoms = test.n_atoms
    runs = []
    for dev in ("cpu", device):
        model = load_model(model_path, device=dev)
        t0 = time.perf_counter()
        runs.append((predict(model, test, device=dev, compute_stress=False),
                     time.perf_counter() - t0))
    (a, ta), (b, tb) = runs
    de = np.abs(a.energy - b.energy) / n_atoms
    df = np.abs(a.forces - b.forces)
    return {"frames": int(len(a.energy)), "max_abs_energy_diff_eV_per_atom": float(de.max()),
            "max_abs_force_diff_eV_per_A": float(df.max()),
            "predict_s": {"cpu": ta, f"{device} (second run)": tb}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, required=True, help="work directory")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cuda, cpu")
    ap.add_argument("--preset", default=None, help="training preset (default osaka24-small; "
                    "tiny with --tiny)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="max_num_epochs (default 20; 1 with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="CI size: few frames, tiny, 1 epoch")
    ap.add_argument("--from", dest="from_model", default=None,
                    help="fine-tune this model (file or tealign-mini) instead of training "
                    "from scratch (the preset then gives the training settings only)")
    ap.add_argument("--datasets", default=None, help="bundled datasets directory")
    ap.add_argument("--tol-energy", type=float, default=1e-6, help="eV per atom")
    ap.add_argument("--tol-forces", type=float, default=1e-5, help="eV/Å")
    args = ap.parse_args(argv)

    import torch

    from tealign import api
    from tealign import rundir as rd
    from tealign.errors import SetupError

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    preset = args.preset or ("tiny" if args.tiny and not args.from_model else
                             "small-cpu" if args.tiny else "osaka24-small")
    epochs = args.epochs or (1 if args.tiny else 20)
    out = args.output
    try:
        out.mkdir(parents=True, exist_ok=True)
        merged = prepare(out, args.datasets, args.tiny)
        t0 = time.perf_counter()
        res = api.train(preset, merged, out / "train", device=device, epochs=epochs,
                        from_model=args.from_model)
        train_s = time.perf_counter() - t0
        cmp = compare(Path(res.model), merged / rd.MERGED_EXTXYZ_FILE, device)
    except SetupError as exc:
        print(f"gpu_train_check: error: {exc.line()}", file=sys.stderr)
        return 2
    ok = (cmp["max_abs_energy_diff_eV_per_atom"] <= args.tol_energy
          and cmp["max_abs_force_diff_eV_per_A"] <= args.tol_forces)
    summary = {"device": device, "gpu": torch.cuda.get_device_name(0)
               if device == "cuda" else None,
               "compared": f"cpu vs {device}" + ("" if device != "cpu" else
                                                 " (no GPU: two CPU runs)"),
               "preset": preset, "epochs": epochs, "train_wall_s": train_s,
               "from": res.to_json().get("from"), "finetuning": res.to_json().get("finetuning"),
               "model": res.model, **cmp, "tol_energy_eV_per_atom": args.tol_energy,
               "tol_forces_eV_per_A": args.tol_forces, "agree": ok,
               "torch": torch.__version__}
    print(json.dumps(summary, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
