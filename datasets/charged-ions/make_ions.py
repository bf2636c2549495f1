"""Small closed-shell ions of H C N O F for the charged-molecule check (issue 28 item 6).

Starting geometries come from ase.build.molecule (G2 set) where a parent species exists,
with an atom removed or swapped, or from textbook bond lengths; each is then relaxed with
GFN2-xTB (tblite, the ion's charge, fmax 0.02 eV/Å, BFGS) so that both DFT levels see one
sensible geometry. Energies only are computed afterwards (regenerate.sh).

    python make_ions.py   ->  ions.extxyz  (info: mol_id, charge, smiles)
"""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.io import write
from ase.optimize import BFGS

HERE = Path(__file__).parent


def _swap(name: str, index: int, symbol: str) -> Atoms:
    a = molecule(name)
    a[index].symbol = symbol
    return a


def _drop(name: str, index: int) -> Atoms:
    a = molecule(name)
    del a[index]
    return a


def _index(a: Atoms, symbol: str, nth: int = 0) -> int:
    return [i for i, s in enumerate(a.get_chemical_symbols()) if s == symbol][nth]


def _carboxylate(acid: str) -> Atoms:
    """ASE's G2 ``acid`` without its hydroxyl H (the H nearest an O)."""
    a = molecule(acid)
    pos = a.positions
    hs = [i for i, s in enumerate(a.get_chemical_symbols()) if s == "H"]
    os_ = [i for i, s in enumerate(a.get_chemical_symbols()) if s == "O"]
    h_oh = min(hs, key=lambda i: min(np.linalg.norm(pos[i] - pos[o]) for o in os_))
    del a[h_oh]
    return a


def _formate() -> Atoms:
    return _carboxylate("HCOOH")


def _acetate() -> Atoms:
    return _carboxylate("CH3COOH")


def _planar3(center: str, ligand: str, r: float) -> Atoms:
    ang = np.deg2rad([90.0, 210.0, 330.0])
    pos = [[0, 0, 0]] + [[r * np.cos(t), r * np.sin(t), 0.0] for t in ang]
    return Atoms(center + ligand * 3, positions=pos)


def _bicarbonate() -> Atoms:
    a = _planar3("C", "O", 1.28)
    o = a.positions[3]
    a += Atoms("H", positions=[o + 0.97 * np.array([np.cos(np.deg2rad(-60)),
                                                     np.sin(np.deg2rad(-60)), 0.0])])
    return a


def _methylammonium() -> Atoms:
    a = molecule("C2H6")
    a[_index(a, "C", 1)].symbol = "N"
    return a


IONS: list[tuple[str, str, int, callable]] = [
    ("hydroxide", "[OH-]", -1, lambda: molecule("OH")),
    ("cyanide", "[C-]#N", -1, lambda: molecule("CN")),
    ("amide", "[NH2-]", -1, lambda: molecule("NH2")),
    ("hydronium", "[OH3+]", 1, lambda: _swap("NH3", 0, "O")),
    ("ammonium", "[NH4+]", 1, lambda: _swap("CH4", 0, "N")),
    ("nitrosonium", "[N+]#O", 1, lambda: molecule("NO")),
    ("formyl", "[CH+]=O", 1, lambda: molecule("HCO")),
    ("bifluoride", "F[H-]F", -1, lambda: Atoms("FHF", positions=[[-1.14, 0, 0], [0, 0, 0],
                                                                  [1.14, 0, 0]])),
    ("nitrite", "N(=O)[O-]", -1, lambda: molecule("NO2")),
    ("methoxide", "C[O-]", -1, lambda: molecule("CH3O")),
    ("formate", "C(=O)[O-]", -1, _formate),
    ("nitrate", "[N+](=O)([O-])[O-]", -1, lambda: _planar3("N", "O", 1.25)),
    ("methylammonium", "C[NH3+]", 1, _methylammonium),
    ("bicarbonate", "OC(=O)[O-]", -1, _bicarbonate),
    ("acetate", "CC(=O)[O-]", -1, _acetate),
]


def main() -> None:
    from tblite.ase import TBLite

    frames = []
    for name, smiles, charge, build in IONS:
        a = build()
        a.info = {}
        a.calc = TBLite(method="GFN2-xTB", charge=charge, multiplicity=1, verbosity=0)
        BFGS(a, logfile=None).run(fmax=0.02, steps=500)
        a.calc = None
        a.center()
        a.info = {"mol_id": name, "charge": charge, "smiles": smiles,
                  "geometry": "GFN2-xTB relaxed (tblite)"}
        frames.append(a)
        print(f"{name:15s} {a.get_chemical_formula():8s} charge {charge:+d}")
    write(HERE / "ions.extxyz", frames, format="extxyz")
    print(f"{len(frames)} ions -> ions.extxyz")


if __name__ == "__main__":
    main()
