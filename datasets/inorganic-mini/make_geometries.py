"""Geometries of inorganic-mini: strained and rattled small cells of the lattice-benchmark
crystals (the MPtrj stand-in). ``mol_id`` groups five configurations of one crystal.

12 crystals (Si, C, Ge, SiC, GaAs, Al, Cu, Li, Na, NaCl, LiF, MgO), 25 configurations each,
built with ASE at their experimental lattice constants (cubic_crystals.csv figures, package
data of tealign): 2-atom cells (primitive diamond/zincblende/rocksalt; fcc/bcc metals as a
2-atom cell) under random strain (±4 % normal, ±2 % shear) with thermal-like Gaussian
displacements of 0.00–0.12 Å. Energies, forces and stress are computed with tealign.

    python make_geometries.py   # writes geometries.extxyz
"""

import numpy as np
from ase.build import bulk

from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

CRYSTALS = {  # name: (ase structure, a in Å: experimental, zero-point corrected)
    "Si": ("diamond", 5.421), "C": ("diamond", 3.553), "Ge": ("diamond", 5.644),
    "SiC": ("zincblende", 4.346), "GaAs": ("zincblende", 5.637), "Al": ("fcc", 4.019),
    "Cu": ("fcc", 3.595), "Li": ("bcc", 3.451), "Na": ("bcc", 4.207),
    "NaCl": ("rocksalt", 5.565), "LiF": ("rocksalt", 3.972), "MgO": ("rocksalt", 4.188),
}
N_PER_CRYSTAL = 25
rng = np.random.default_rng(0)
frames = []
for name, (structure, a) in CRYSTALS.items():
    for k in range(N_PER_CRYSTAL):
        if structure in ("fcc", "bcc"):
            atoms = bulk(name, structure, a=a, cubic=False).repeat((2, 1, 1))
        else:
            atoms = bulk(name, structure, a=a)
        eps = np.diag(rng.uniform(-0.04, 0.04, 3))
        shear = rng.uniform(-0.02, 0.02, 3)
        eps[0, 1] = eps[1, 0] = shear[0]
        eps[0, 2] = eps[2, 0] = shear[1]
        eps[1, 2] = eps[2, 1] = shear[2]
        if k == 0:
            eps[:] = 0.0
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
        sigma = 0.0 if k == 0 else rng.uniform(0.0, 0.12)
        atoms.positions += rng.normal(scale=sigma, size=atoms.positions.shape)
        # five groups of five configurations per crystal: splits by group, not by crystal
        atoms.info.update({"mol_id": f"{name}_{structure}_{k // 5}", "config_type": "inorganic",
                           "crystal": name, "structure": structure,
                           "sampling": "equilibrium" if k == 0 else "strained_rattled"})
        frames.append(atoms)
write_extxyz("geometries.extxyz", [FrameBatch.from_atoms(frames)])
print(f"wrote {len(frames)} configurations of {len(CRYSTALS)} crystals")

# The Si E–V reference grid of the eos benchmark (a = 5.00 … 6.00 Å, 0.01 Å steps), computed
# at the same GPAW settings.
from tealign.bench.eos import GRID, si  # noqa: E402

ev = [si(a) for a in GRID]
for a, atoms in zip(GRID, ev):
    atoms.info.update({"mol_id": f"Si_ev_{a:.2f}", "config_type": "si_eos", "a": float(a)})
write_extxyz("si_ev_geometries.extxyz", [FrameBatch.from_atoms(ev)])
print(f"wrote {len(ev)} Si E–V cells")
