"""The oracle's training molecules: a stated subset of organic-mini recomputed at the target
level (GPAW PBE PW800, bridge-mini's SPEC), since all 337 training and validation frames would
cost some 7 CPU-hours on the 2-core machine (80 s per frame with forces).

Subset, fixed before any computing (deterministic, no randomness):
- every frame of the seven gas-phase species of the cross-domain reactions (mol_id bridge_*),
  so that the oracle has seen every molecule of bridge-mini's items, as the other variants have;
- two frames of every other training molecule (its first and its middle conformer in file order);
- one frame of every validation molecule (its first).
The test split is never selected. Writes ``organic-subset.extxyz`` beside this file; every
frame keeps its organic-mini keys (energy_wb97m, forces_wb97m, split, mol_id, ...).

    .venv/bin/python experiments/multidomain/oracle/select_subset.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def select(path: Path) -> np.ndarray:
    """Indices of the oracle's frames of organic-mini (see the module docstring)."""
    from tealign.io import read_batch

    b = read_batch(path)
    ids = np.asarray(b.info["mol_id"]).astype(str)
    split = np.asarray(b.info["split"]).astype(str)
    keep: list[int] = []
    for mol in dict.fromkeys(ids):  # file order
        idx = np.flatnonzero(ids == mol)
        s = split[idx[0]]
        if s == "test":
            continue
        if mol.startswith("bridge_"):
            keep.extend(idx.tolist())
        elif s == "train":
            keep.extend(sorted({int(idx[0]), int(idx[len(idx) // 2])}))
        else:
            keep.append(int(idx[0]))
    return np.asarray(sorted(keep))


def main() -> None:
    from tealign.io import read_batch
    from tealign.io.extxyz import write_extxyz

    src = ROOT / "datasets/organic-mini/organic-mini.extxyz"
    keep = select(src)
    b = read_batch(src)
    out = HERE / "organic-subset.extxyz"
    mask = np.zeros(b.n_frames, bool)
    mask[keep] = True
    sub = b.select(mask)
    write_extxyz(out, [sub])
    split = np.asarray(sub.info["split"]).astype(str)
    print(f"{out}: {sub.n_frames} frames ({(split == 'train').sum()} train, "
          f"{(split == 'valid').sum()} valid), {int(sub.n_atoms.sum())} atoms")


if __name__ == "__main__":
    main()
