"""Batched vs one-by-one MACE inference on the reactions benchmark (first 300 RDB7 reactions).

Trains a MACE model of 64 channels, max_L 1, 2 interactions, r_max 4.5 Å for one brief epoch
(weights do not matter for timing) on 60 GFN2-xTB-labelled RDB7 frames, then computes the
energies of all frames of the first 300 reactions twice in the same run: batched through
mace-torch's DataLoader (what `tealign bench` does: energies only, no autograd, float64 like
the ASE side; then again in float32, ``--dtype float32``) and with one ``MACECalculator`` call
per structure (what a plain ASE loop does). Prints and writes JSON with the speed ratios.

    TEALIGN_DATA_DIR=../shared/data python benchmarks/batched_inference.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reactions", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json-out", type=Path, default=HERE / "results" / "batched_inference.json")
    args = ap.parse_args()

    from tealign.bench import reactions, registry
    from tealign.compute.backends import run_calculation
    from tealign.compute.spec import parse_spec
    from tealign.io.extxyz import write_extxyz
    from tealign.io.frames import FrameBatch

    work = Path(tempfile.mkdtemp(prefix="tealign-batched-"))
    batch, index, _ = reactions.load_reactions(registry.locate("reactions"), args.reactions)
    # a brief training set: 60 frames labelled with GFN2-xTB
    xtb = parse_spec("xtb:gfn2")
    train = batch.to_atoms()[:60]
    for a in train:
        r = run_calculation(xtb, a)
        a.info["REF_energy"] = r.energy
        a.arrays["REF_forces"] = r.forces
    write_extxyz(work / "train.extxyz", [FrameBatch.from_atoms(train[:50])])
    write_extxyz(work / "valid.extxyz", [FrameBatch.from_atoms(train[50:])])
    t0 = time.perf_counter()
    cmd = [str(Path(sys.executable).with_name("mace_run_train")), "--name", "bench",
           "--work_dir", str(work), "--train_file", str(work / "train.extxyz"),
           "--valid_file", str(work / "valid.extxyz"), "--energy_key", "REF_energy",
           "--forces_key", "REF_forces", "--E0s", "average", "--model", "MACE",
           "--num_channels", "64", "--max_L", "1", "--num_interactions", "2",
           "--r_max", "4.5", "--max_num_epochs", "1", "--batch_size", "10", "--device", "cpu",
           "--default_dtype", "float64", "--seed", "1"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    model_path = work / "bench.model"
    train_s = time.perf_counter() - t0

    from mace.calculators import MACECalculator

    from tealign.bench.energies import single_points

    # what `tealign bench reactions --calculator MODEL [--dtype float32]` does: energies only,
    # no backward pass (an ASE calculator always does one), batch_size structures per pass
    t0 = time.perf_counter()
    e_batched = single_points(str(model_path), batch, batch_size=args.batch_size)
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    e_batched32 = single_points(str(model_path), batch, batch_size=args.batch_size,
                                dtype="float32")
    batched32_s = time.perf_counter() - t0

    calc = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype="float64")
    t0 = time.perf_counter()
    e_single = []
    for atoms in batch.to_atoms():
        atoms.calc = calc
        e_single.append(atoms.get_potential_energy())
    single_s = time.perf_counter() - t0
    e_single = np.array(e_single)
    bar64, bar32 = (reactions.barriers(e, index) for e in (e_batched, e_batched32))
    result = {
        "reactions": len(index), "structures": batch.n_frames,
        "model": {"num_channels": 64, "max_L": 1, "num_interactions": 2, "r_max": 4.5,
                  "dtype": "float64"},
        "train_seconds": train_s, "batch_size": args.batch_size,
        "one_by_one_seconds": single_s,
        "batched_seconds": batched_s, "speedup": single_s / batched_s,
        "max_energy_difference_eV": float(np.max(np.abs(e_single - e_batched))),
        "batched_float32_seconds": batched32_s, "speedup_float32": single_s / batched32_s,
        "max_energy_difference_float32_eV": float(np.max(np.abs(e_single - e_batched32))),
        "max_barrier_difference_float32_kcal_mol": float(max(abs(bar64[r] - bar32[r])
                                                             for r in bar64)),
    }
    print(f"{batch.n_frames} structures: one by one (ASE, float64) {single_s:.1f} s; batched"
          f" float64 {batched_s:.1f} s → {result['speedup']:.1f}x (max |ΔE|"
          f" {result['max_energy_difference_eV']:.1e} eV); batched float32 {batched32_s:.1f} s"
          f" → {result['speedup_float32']:.1f}x (max |ΔE|"
          f" {result['max_energy_difference_float32_eV']:.1e} eV, max |Δbarrier|"
          f" {result['max_barrier_difference_float32_kcal_mol']:.1e} kcal/mol)")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
