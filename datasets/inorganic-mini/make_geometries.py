"""Geometries of inorganic-mini: strained and rattled small cells of the lattice-benchmark
crystals (the MPtrj stand-in). ``mol_id`` groups five configurations of one crystal.

8 crystals (Si, C, Ge, SiC, GaAs, NaCl, LiF, MgO; crystals.py says why the metals are out),
5 configurations each (25 are drawn, so the seeded stream and the stress-check frames stay
those of the first design; the first 5, mol_id group 0, are kept: a rattled, symmetry-free
2-atom cell on its converged mesh costs 1 (NaCl, 5³) to 8 (GaAs, 11³) minutes of one core at
800 eV),
built with ASE at their experimental lattice constants (cubic_crystals.csv figures, package
data of tealign): 2-atom cells (primitive diamond/zincblende/rocksalt; fcc/bcc metals as a
2-atom cell) under random strain (±4 % normal, ±2 % shear) with thermal-like Gaussian
displacements of 0.00–0.12 Å. Energies, forces and stress are computed with tealign.

    python make_geometries.py   # writes geometries.extxyz, si_ev_ and stress_check_geometries
    python add_md_snapshots.py  # appends the MD frames
    python kpoint_convergence.py && python set_meshes.py   # one k-mesh per crystal
"""

import os
import sys

import numpy as np

from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crystals import CRYSTALS, equilibrium_cell, random_strain  # noqa: E402

N_PER_CRYSTAL = 25  # drawn per crystal (fixes the seeded stream)
N_KEPT = 5  # kept per crystal for training: mol_id group 0
rng = np.random.default_rng(0)
frames = []
for name, (structure, _a) in CRYSTALS.items():
    for k in range(N_PER_CRYSTAL):
        atoms = equilibrium_cell(name)
        eps = random_strain(rng)
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
kept = [a for k, a in enumerate(frames) if k % N_PER_CRYSTAL < N_KEPT]
write_extxyz("geometries.extxyz", [FrameBatch.from_atoms(kept)])
print(f"wrote {len(kept)} configurations of {len(CRYSTALS)} crystals")

# The Si E–V reference grid of the eos benchmark (a = 5.00 … 6.00 Å, 0.01 Å steps), computed
# at the same GPAW settings.
from tealign.bench.eos import GRID, si  # noqa: E402

ev = [si(a) for a in GRID]
for a, atoms in zip(GRID, ev):
    atoms.info.update({"mol_id": f"Si_ev_{a:.2f}", "config_type": "si_eos", "a": float(a),
                       "crystal": "Si"})
write_extxyz("si_ev_geometries.extxyz", [FrameBatch.from_atoms(ev)])
print(f"wrote {len(ev)} Si E–V cells")

# Stress check: each crystal's equilibrium frame and its first strained+rattled frame (copied
# here as "centre" frames, so the file stands alone), strained by ±0.5 % (isotropic, uniaxial
# zz, shear xy; fractional coordinates fixed). −dE/dε by central differences of their
# energies is compared with the centre frames' stress labels (tests/test_target_scale_physics).
DELTA = 0.005
STRAINS = {"iso": np.eye(3), "zz": np.diag([0.0, 0.0, 1.0]),
           "xy": np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])}
checks = []
for centre_index, centre in enumerate(frames):
    if centre_index % N_PER_CRYSTAL > 1:
        continue
    group = f"{centre.info['crystal']}_stresscheck_{centre_index}"
    c = centre.copy()
    c.info = {"mol_id": group, "config_type": "stress_check", "crystal": centre.info["crystal"],
              "sampling": centre.info["sampling"], "strain": "none", "strain_delta": 0.0}
    checks.append(c)
    for kind, direction in STRAINS.items():
        for sign in (+1, -1):
            c = centre.copy()
            c.set_cell(centre.cell[:] @ (np.eye(3) + sign * DELTA * direction),
                       scale_atoms=True)
            c.info = {"mol_id": group, "config_type": "stress_check",
                      "crystal": centre.info["crystal"], "sampling": centre.info["sampling"],
                      "strain": kind, "strain_delta": sign * DELTA}
            checks.append(c)
write_extxyz("stress_check_geometries.extxyz", [FrameBatch.from_atoms(checks)])
print(f"wrote {len(checks)} stress-check cells")
