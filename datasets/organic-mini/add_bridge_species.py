"""The gas molecules of datasets/bridge-mini, appended to geometries.extxyz as training data.

bridge-mini's cross-domain items (gas–solid reactions, adsorption, molecular crystals) use
seven small molecules: H2O, CO2, HF, H2, CH4, NH3, CH3OH. A model scored on those items has to
have seen each molecule in its own domain, so each gets the five configurations every
organic-mini molecule has (the minimum as bridge-mini builds it, three GFN2-xTB Langevin MD
snapshots at 300/600/600 K, one 0.05 Å rattle; a configuration within 0.02 Å RMSD of an
earlier one after superposition is left out as a near-copy), ``mol_id`` ``bridge_<species>`` and
``split=train`` (never validation or test: these species are there to be learned). Rerunning
replaces the frames it added:

    python add_bridge_species.py   # after make_geometries.py and add_dihedrals.py
"""

import importlib.util
from pathlib import Path

import numpy as np

from tealign.bonds import kabsch_rmsd
from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bridge = _load("bridge_geometries", HERE.parent / "bridge-mini" / "make_geometries.py")
organic = _load("organic_geometries", HERE / "make_geometries.py")  # its conformers()

MIN_RMSD = 0.02  # Å after superposition: closer configurations of one molecule are near-copies
rng = np.random.default_rng(7)
frames = [a for a in read_batch(HERE / "geometries.extxyz").to_atoms()
          if not str(a.info.get("mol_id", "")).startswith("bridge_")]
added = []
for species in bridge.MOLECULES:
    base = bridge.gas(species)
    confs = organic.conformers(base, rng, "bridge_minimum")
    kept = []
    for kind, pos in confs:  # no near-copies: a diatomic's rattle can be mostly a rotation
        if all(kabsch_rmsd(pos, q) >= MIN_RMSD for _, q in kept):
            kept.append((kind, pos))
    for kind, pos in kept:
        a = base.copy()
        a.positions = pos
        a.info = {"mol_id": f"bridge_{species}", "config_type": "organic", "sampling": kind,
                  "split": "train"}
        added.append(a)
write_extxyz(HERE / "geometries.extxyz", [FrameBatch.from_atoms(frames + added)])
print(f"appended {len(added)} configurations of {len(bridge.MOLECULES)} bridge molecules "
      f"({len(frames)} others kept)")
