"""The solids and clean slabs of datasets/bridge-mini, appended to geometries.extxyz as training
data.

bridge-mini's cross-domain items combine gas molecules with eight ionic solids beyond the two
inorganic-mini already has (MgO and LiF, on their own meshes here) and with two rocksalt (001)
slabs. A model scored on those items has to have seen each solid and slab in its own domain, so:

- each solid: its bridge-mini cell (the experimental structure) and one copy strained (±2 %
  normal, ±1 % shear) and rattled (σ = 0.05 Å), on bridge-mini's fixed mesh for that solid;
- each clean slab: its bridge-mini geometry (forces, stress), on the slab's mesh.

Every frame gets ``mol_id`` ``bridge_<species>``, ``crystal`` = the species id (set_meshes.py
leaves a mesh that kpoints.json does not cover as it is) and ``split=train``: these species
are there to be learned, never validated or tested on. The adsorbate–slab complexes and the
molecular crystals stay out (the cross-domain quantities a model must not have seen). Rerunning
replaces the frames it added:

    python add_bridge_species.py   # after make_geometries.py and add_md_snapshots.py
"""

from pathlib import Path

import numpy as np
from ase.io import read

from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

HERE = Path(__file__).resolve().parent
ALREADY_HERE = {"MgO_s", "LiF_s"}  # MgO_rocksalt and LiF_rocksalt of crystals.py
rng = np.random.default_rng(11)
frames = [a for a in read_batch(HERE / "geometries.extxyz").to_atoms()
          if not str(a.info.get("mol_id", "")).startswith("bridge_")]
added = []
for src in read(HERE.parent / "bridge-mini" / "periodic.extxyz", ":"):
    species, role = src.info["species"], src.info["role"]
    if role not in ("solid", "slab") or species in ALREADY_HERE:
        continue
    kinds = ["equilibrium", "strained_rattled"] if role == "solid" else ["clean_slab"]
    for kind in kinds:
        a = src.copy()
        if kind == "strained_rattled":
            eps = np.diag(rng.uniform(-0.02, 0.02, 3))
            shear = rng.uniform(-0.01, 0.01, 3)
            eps[0, 1] = eps[1, 0] = shear[0]
            eps[0, 2] = eps[2, 0] = shear[1]
            eps[1, 2] = eps[2, 1] = shear[2]
            a.set_cell(a.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        a.info = {"mol_id": f"bridge_{species}", "config_type": "inorganic",
                  "crystal": species, "structure": role, "sampling": kind, "split": "train",
                  "kpts": np.asarray(src.info["kpts"], dtype=int)}
        added.append(a)
write_extxyz(HERE / "geometries.extxyz", [FrameBatch.from_atoms(frames + added)])
print(f"appended {len(added)} frames of bridge-mini solids and slabs ({len(frames)} others kept)")
