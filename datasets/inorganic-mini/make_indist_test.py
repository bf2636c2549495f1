"""An in-distribution inorganic test set (issue 31, item 5): crystals of the training families
at strains and temperatures no training frame has, beside the held-out family (SiC).

For each crystal of inorganic-mini the multidomain experiment trains on (every one but SiC):

- one strained and rattled 2-atom cell drawn as make_geometries.py draws them (±4 % normal,
  ±2 % shear strain, 0–0.12 Å Gaussian displacements) from a new seed (31), so the strain and
  the displacements are new draws from the training distribution;
- one snapshot of Langevin MD at 900 K and one at 300 K (the training MD ran at 600 K; 1 fs,
  CHGNet's MPtrj weights as the force field, seeded, the snapshot after 300 steps), kept only
  if it is more than 0.02 Å RMSD from the equilibrium cell (add_md_snapshots.py's rule).

Every frame gets its crystal's k-point mesh from kpoints.json, ``split=test`` and ``mol_id``
``<crystal>_indist``; GPAW computes them at the target SPEC (regenerate.sh):

    python make_indist_test.py   # writes indist_test_geometries.extxyz
"""

import json
import os
import sys

import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from tealign.bench.calculators import get_calculator
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from add_md_snapshots import MIN_RMSD, displacement_rmsd  # noqa: E402
from crystals import CRYSTALS, equilibrium_cell, random_strain  # noqa: E402

HELD_OUT = "SiC"  # the multidomain experiment's held-out family
TEMPERATURES = (900, 300)  # K; training MD: 600 K
MD_STEPS = 300

if __name__ == "__main__":
    with open("kpoints.json") as fh:
        meshes = {name: c["mesh"] for name, c in json.load(fh)["crystals"].items()}
    rng = np.random.default_rng(31)
    calc = get_calculator("chgnet")
    frames = []
    for name, (structure, _a) in CRYSTALS.items():
        if name == HELD_OUT:
            continue
        base = {"mol_id": f"{name}_indist", "config_type": "inorganic", "crystal": name,
                "structure": structure, "split": "test",
                "kpts": np.array(meshes[name], dtype=int)}
        atoms = equilibrium_cell(name)
        eps = random_strain(rng)
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
        atoms.positions += rng.normal(scale=rng.uniform(0.0, 0.12), size=atoms.positions.shape)
        atoms.info.update({**base, "sampling": "strained_rattled_unseen"})
        frames.append(atoms)
        for temp in TEMPERATURES:
            ref = equilibrium_cell(name)
            md = ref.copy()
            md.calc = calc
            MaxwellBoltzmannDistribution(md, temperature_K=temp, rng=rng)
            Langevin(md, 1.0 * units.fs, temperature_K=temp, friction=0.02,
                     rng=rng).run(MD_STEPS)
            snap = md.copy()
            snap.calc = None
            snap.info = {**base, "sampling": f"md_{temp}K", "md_step": MD_STEPS}
            rmsd = displacement_rmsd(snap, ref)
            if rmsd < MIN_RMSD:
                print(f"{name} {temp} K: skipped, {rmsd:.3f} Å RMSD from equilibrium")
                continue
            frames.append(snap)
        print(name, flush=True)
    write_extxyz("indist_test_geometries.extxyz", [FrameBatch.from_atoms(frames)])
    print(f"wrote {len(frames)} in-distribution test frames")
