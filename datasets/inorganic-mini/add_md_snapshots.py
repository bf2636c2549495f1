"""Short-MD configurations of inorganic-mini, appended to geometries.extxyz.

For each crystal, the unstrained 2-atom cell of geometries.extxyz is run for 400 steps of
Langevin MD at 600 K (1 fs, CHGNet's MPtrj-trained weights as the force field, seeded), and
the snapshots after 200, 300 and 400 steps are kept unless within 0.02 Å RMSD of the
equilibrium cell (GPAW then computes them: regenerate.sh).
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

#: snapshots closer than this (Å, RMSD of the displacements from the equilibrium cell, the
#: common translation removed) add no information: SiC's step-300 frame was 0.010 Å away
MIN_RMSD = 0.02


def displacement_rmsd(a, ref) -> float:
    """RMSD (Å) of ``a``'s positions from ``ref``'s, same cell, common translation removed."""
    d = a.positions - ref.positions
    d -= d.mean(axis=0)
    return float(np.sqrt((d ** 2).sum(axis=1).mean()))


if __name__ == "__main__":
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
            if displacement_rmsd(snap, a) < MIN_RMSD:  # a near-copy of the equilibrium cell
                print(f"{a.info['crystal']} step {step}: skipped, within {MIN_RMSD} Å RMSD")
                continue
            added.append(snap)
        print(a.info["crystal"], flush=True)
    write_extxyz("geometries.extxyz", [FrameBatch.from_atoms(frames + added)])
    print(f"appended {len(added)} MD snapshots; {len(frames) + len(added)} in all")
