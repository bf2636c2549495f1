"""The molecules of the public-dataset calibration sets: calib-qm9's 90 and bridge-mini's 40
held-out QM9 molecules (130, 1–9 heavy atoms, H C N O F), geometry and QM9 ids only, sorted by
heavy-atom count so the cheapest finish first (a partial run is still spread over elements).

    python make_molecules.py   ->  molecules.extxyz, molecules-pbe.extxyz
"""

from pathlib import Path

from ase.io import read, write

HERE = Path(__file__).parent
KEEP = ("mol_id", "qm9_index", "smiles", "energy_qm9_b3lyp", "split")


def main() -> None:
    frames = []
    for name, split in (("calib-qm9/calib-qm9.extxyz", "calib"),
                        ("bridge-mini/heldout-qm9.extxyz", "heldout")):
        for a in read(HERE.parent / name, ":"):
            info = {k: a.info[k] for k in KEEP if k in a.info}
            info["subset"] = split
            a.calc = None
            a.info = info
            a.arrays = {k: v for k, v in a.arrays.items() if k in ("numbers", "positions")}
            frames.append(a)
    frames.sort(key=lambda a: (int((a.numbers > 1).sum()), len(a), a.info["qm9_index"]))
    write(HERE / "molecules.extxyz", frames, format="extxyz")
    print(f"{len(frames)} molecules -> molecules.extxyz")
    # every third molecule (44, 1-9 heavy atoms): PBE/def2-QZVPP against GPAW PBE/PW800 (item 3)
    write(HERE / "molecules-pbe.extxyz", frames[::3], format="extxyz")
    print(f"{len(frames[::3])} molecules -> molecules-pbe.extxyz")


if __name__ == "__main__":
    main()
