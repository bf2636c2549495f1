"""Training frames of every bridge-v2 species (issue 31, item 3): ten per gas molecule and ten
per solid, so that a model trained on them can fit its own data and its error on a cross-domain
item separates from the alignment's.

    python make_training_frames.py      # training-molecules.extxyz, training-solids.extxyz

Per gas molecule (the organic domain, computed at the source level): five frames with every
interatomic distance scaled about the centre of mass by 0.94, 0.97, 1.03, 1.06, 1.09 (the bonds
stretched and compressed together; diatomics sample their potential curve), each with a 0.01 Å
Gaussian rattle, and five Gaussian rattles of 0.04 Å about the G2 geometry. Per solid (the
inorganic domain, computed at the target level): four isotropic strains (−2, −1, +1, +2 % in
length), one 1 % shear (ε_xy) and five 0.04 Å rattles of the experimental cell, every frame on
the solid's fixed k-mesh (``kpts``). Seeded (numpy ``default_rng(31)``), so the frames are
reproducible; ``mol_id`` is the species id, so a split by molecule keeps a species' frames
together.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms

HERE = Path(__file__).resolve().parent
SCALES = (0.94, 0.97, 1.03, 1.06, 1.09)
STRAINS = (-0.02, -0.01, 0.01, 0.02)
SHEAR = 0.01
RATTLE_STRETCHED = 0.01  # Å
RATTLE = 0.04  # Å
N_RATTLE = 5


def molecule_frames(mol: Atoms, rng: np.random.Generator) -> list[Atoms]:
    """Ten distorted copies of a gas molecule (see the module docstring)."""
    out = []
    com = mol.get_center_of_mass()
    for f in SCALES:
        a = mol.copy()
        a.positions = com + f * (mol.positions - com)
        a.positions += rng.normal(0, RATTLE_STRETCHED, a.positions.shape)
        a.info["distortion"] = f"scaled {f:.2f}"
        out.append(a)
    for k in range(N_RATTLE):
        a = mol.copy()
        a.positions += rng.normal(0, RATTLE, a.positions.shape)
        a.info["distortion"] = f"rattled {RATTLE} A #{k}"
        out.append(a)
    return out


def solid_frames(cryst: Atoms, rng: np.random.Generator) -> list[Atoms]:
    """Ten distorted copies of a crystal, on its fixed k-mesh."""
    out = []
    for e in STRAINS:
        a = cryst.copy()
        a.set_cell(cryst.cell[:] * (1 + e), scale_atoms=True)
        a.info["distortion"] = f"strain {100 * e:+.0f} %"
        out.append(a)
    a = cryst.copy()
    eps = np.eye(3)
    eps[0, 1] = eps[1, 0] = SHEAR / 2
    a.set_cell(cryst.cell[:] @ eps, scale_atoms=True)
    a.info["distortion"] = f"shear xy {SHEAR}"
    out.append(a)
    for k in range(N_RATTLE):
        a = cryst.copy()
        a.positions += rng.normal(0, RATTLE, a.positions.shape)
        a.info["distortion"] = f"rattled {RATTLE} A #{k}"
        out.append(a)
    return out


def build(molecules: Path = HERE / "molecules.extxyz", periodic: Path = HERE / "periodic.extxyz"
          ) -> tuple[list[Atoms], list[Atoms]]:
    from ase.io import read

    rng = np.random.default_rng(31)
    mols, solids = [], []
    for m in read(molecules, ":"):
        for i, a in enumerate(molecule_frames(m, rng)):
            a.info["mol_id"] = m.info["species"]
            a.info["frame_id"] = f"{m.info['species']}#{i}"
            mols.append(a)
    for s in read(periodic, ":"):
        if s.info.get("role") != "solid":
            continue
        for i, a in enumerate(solid_frames(s, rng)):
            a.info["mol_id"] = s.info["species"]
            a.info["frame_id"] = f"{s.info['species']}#{i}"
            solids.append(a)
    return mols, solids


if __name__ == "__main__":
    from ase.io import write

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args()
    mols, solids = build()
    write(HERE / "training-molecules.extxyz", mols, format="extxyz")
    write(HERE / "training-solids.extxyz", solids, format="extxyz")
    print(f"{len(mols)} molecule frames, {len(solids)} solid frames")
