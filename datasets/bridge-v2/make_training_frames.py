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

No two frames of a species are near-duplicates: a molecule frame whose sorted interatomic
distances all lie within ``MIN_SEPARATION`` (0.01 Å, the smallest displacement the generator
applies on purpose) of an earlier frame's is drawn again, its noise from a stream of its own
(``default_rng([31, crc32(species), frame, attempt])``) and its ``distortion`` marked
"redraw N". The shared stream is consumed exactly as before, so every other frame keeps its
geometry (and its stored labels). For a diatomic a 0.04 Å rattle often lands on a bond length
a scaled frame already has: CO's "rattled #2" and "scaled 0.97" differed by 2e-5 Å before.
"""

from __future__ import annotations

import argparse
import zlib
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
SEED = 31
MIN_SEPARATION = RATTLE_STRETCHED  # Å, see the module docstring
MAX_REDRAWS = 1000


def distance_signature(atoms: Atoms) -> np.ndarray:
    """The sorted interatomic distances of a frame (Å): equal for frames that differ only by a
    rotation, a translation or a permutation of like atoms."""
    i, j = np.triu_indices(len(atoms), 1)
    return np.sort(atoms.get_all_distances()[i, j])


def separation(a: Atoms, b: Atoms) -> float:
    """Largest difference (Å) between the sorted interatomic distances of two frames of one
    species: below ``MIN_SEPARATION`` they are near-duplicates."""
    return float(np.abs(distance_signature(a) - distance_signature(b)).max())


def molecule_frames(mol: Atoms, rng: np.random.Generator, species: str) -> list[Atoms]:
    """Ten distorted copies of a gas molecule, no two near-duplicates (see the module
    docstring; ``species`` seeds the redraws)."""
    com = mol.get_center_of_mass()
    recipes = [(com + f * (mol.positions - com), RATTLE_STRETCHED, f"scaled {f:.2f}")
               for f in SCALES]
    recipes += [(mol.positions, RATTLE, f"rattled {RATTLE} A #{k}") for k in range(N_RATTLE)]
    out: list[Atoms] = []
    for index, (centre, sigma, label) in enumerate(recipes):
        a = mol.copy()
        a.positions = centre + rng.normal(0, sigma, centre.shape)
        a.info["distortion"] = label
        attempt = 0
        while any(separation(a, b) < MIN_SEPARATION for b in out):
            attempt += 1
            if attempt > MAX_REDRAWS:
                raise RuntimeError(f"{species}: frame {index} ({label}) stays within "
                                   f"{MIN_SEPARATION} Å of an earlier frame after {MAX_REDRAWS} "
                                   "redraws; lower MIN_SEPARATION or widen the distortions")
            own = np.random.default_rng([SEED, zlib.crc32(species.encode()), index, attempt])
            a.positions = centre + own.normal(0, sigma, centre.shape)
            a.info["distortion"] = f"{label} (redraw {attempt})"
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

    rng = np.random.default_rng(SEED)
    mols, solids = [], []
    for m in read(molecules, ":"):
        if m.info.get("role") != "molecule":  # the molecules cut from the crystals are not
            continue                            # gas species (and came after these frames)
        for i, a in enumerate(molecule_frames(m, rng, m.info["species"])):
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
