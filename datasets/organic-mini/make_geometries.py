"""Geometries of organic-mini: off-equilibrium conformers of small QM9 molecules.

60 QM9 molecules with at most 5 heavy atoms (seeded pick spread over sizes and elements by
tealign's own QM9 picker), 5 configurations each: the QM9 minimum, three snapshots of a short
GFN2-xTB Langevin MD (300 K and 600 K, 0.5 fs steps), and one with every atom displaced by
0.05 Å. Energies and forces are then computed with tealign (regenerate.sh).

    python make_geometries.py   # writes geometries.extxyz
"""

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from tblite.ase import TBLite

from tealign.compute.calib import pick_qm9, qm9_index, qm9_molecules
from tealign.io.extxyz import write_extxyz
from tealign.io.frames import FrameBatch, FrameRecord

N_MOLECULES = 60


def conformers(base: Atoms, rng: np.random.Generator, minimum: str) -> list[tuple[str, np.ndarray]]:
    """(kind, positions in Å) of one molecule's five configurations: ``base`` itself (kind
    ``minimum``), three GFN2-xTB Langevin MD snapshots (300 K 200 steps, 600 K 200 and 400
    steps; 0.5 fs) and one rattle of 0.05 Å per coordinate, drawing from ``rng`` in that order."""
    confs = [(minimum, base.positions.copy())]
    for temp, steps in ((300, 200), (600, 200), (600, 400)):
        a = base.copy()
        a.calc = TBLite(method="GFN2-xTB", verbosity=0)
        MaxwellBoltzmannDistribution(a, temperature_K=temp, rng=rng)
        Langevin(a, 0.5 * units.fs, temperature_K=temp, friction=0.02, rng=rng).run(steps)
        confs.append((f"xtb_md_{temp}K", a.positions.copy()))
    confs.append(("rattled", base.positions + rng.normal(scale=0.05, size=base.positions.shape)))
    return confs


def main() -> None:
    rng = np.random.default_rng(0)
    idx = qm9_index()
    heavy = dict(zip(idx[:, 0].tolist(), idx[:, 2:].sum(axis=1).tolist()))
    picked = [i for i in pick_qm9(3000, seed=1) if heavy[i] <= 5][:N_MOLECULES]
    records = []
    for k, rec in enumerate(qm9_molecules(picked)):
        mol_id = rec.info["mol_id"]
        base = Atoms(numbers=rec.numbers, positions=rec.positions)
        for kind, pos in conformers(base, rng, "qm9_minimum"):
            records.append(FrameRecord(numbers=rec.numbers, positions=pos, index=len(records),
                                       info={"mol_id": mol_id, "config_type": "organic",
                                             "sampling": kind, "smiles": rec.info["smiles"]}))
        print(k, mol_id, rec.info["smiles"], flush=True)
    write_extxyz("geometries.extxyz", [FrameBatch.from_records(records)])
    print(f"wrote {len(records)} configurations of {N_MOLECULES} molecules")


if __name__ == "__main__":
    main()
