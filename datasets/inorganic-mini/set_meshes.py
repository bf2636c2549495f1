"""Give every frame of the three geometry files its crystal's k-point mesh (``kpts`` info).

The mesh of each crystal comes from ``kpoints.json`` (``kpoint_convergence.py``: chosen once
from the crystal's equilibrium cell at the density that converges its energy to 1 meV/atom).
Strained, rattled, MD and E–V copies of a crystal all get that mesh, never one recomputed from
their own cell. Rerunning overwrites the meshes (the geometries are unchanged).

    python set_meshes.py
"""

import json

import numpy as np

from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

with open("kpoints.json") as fh:
    MESHES = {name: c["mesh"] for name, c in json.load(fh)["crystals"].items()}
for path in ("geometries.extxyz", "si_ev_geometries.extxyz", "stress_check_geometries.extxyz"):
    frames = read_batch(path).to_atoms()
    for a in frames:
        if a.info["crystal"] in MESHES:
            a.info["kpts"] = np.array(MESHES[a.info["crystal"]], dtype=int)
        elif "kpts" not in a.info:  # bridge-mini species bring their own (add_bridge_species)
            raise SystemExit(f"{path}: crystal {a.info['crystal']} has no mesh in kpoints.json "
                             "and the frame none of its own")
    write_extxyz(path, [FrameBatch.from_atoms(frames)])
    print(f"{path}: {len(frames)} frames, meshes set")
