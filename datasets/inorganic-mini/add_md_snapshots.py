"""Short-MD configurations of inorganic-mini, appended to geometries.extxyz.

For each crystal, the unstrained 2-atom cell of geometries.extxyz is run for 400 steps of
Langevin MD at 600 K (1 fs, CHGNet's MPtrj-trained weights as the force field, seeded), and
the snapshots after 200, 300 and 400 steps are kept (GPAW then computes them: regenerate.sh).
Run after make_geometries.py:

    python add_md_snapshots.py   # appends 'md_600K' frames to geometries.extxyz
"""

import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from tealign.bench.calculators import get_calculator
from tealign.io import read_batch
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch

frames = read_batch("geometries.extxyz").to_atoms()
if any(a.info.get("sampling") == "md_600K" for a in frames):
    raise SystemExit("geometries.extxyz already holds MD snapshots")
rng = np.random.default_rng(1)
calc = get_calculator("chgnet")
added = []
for a in frames:
    if a.info.get("sampling") != "equilibrium":
        continue
    md = a.copy()
    md.calc = calc
    MaxwellBoltzmannDistribution(md, temperature_K=600, rng=rng)
    dyn = Langevin(md, 1.0 * units.fs, temperature_K=600, friction=0.02, rng=rng)
    for step in (200, 300, 400):
        dyn.run(100 if step > 200 else 200)
        snap = md.copy()
        snap.calc = None
        snap.info = {**a.info, "sampling": "md_600K", "md_step": step,
                     "mol_id": f"{a.info['crystal']}_{a.info['structure']}_md"}
        added.append(snap)
    print(a.info["crystal"], flush=True)
write_extxyz("geometries.extxyz", [FrameBatch.from_atoms(frames + added)])
print(f"appended {len(added)} MD snapshots; {len(frames) + len(added)} in all")
