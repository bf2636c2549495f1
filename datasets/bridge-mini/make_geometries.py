"""Geometries and definition of bridge-mini: quantities that mix the organic and inorganic
domains (DESIGN 8), for `tealign bench cross`.

    python make_geometries.py                       # molecules.extxyz, periodic.extxyz, bridge.json
    python make_geometries.py --combine A.extxyz B.extxyz -o bridge-mini.extxyz

Three kinds of item, each a linear combination of frame energies (bridge.json):
- gas–solid reactions between molecules of the organic domain and ionic solids of Li, Na, Mg,
  written per formula unit: E_rxn = sum_s nu_s * E(frame s) / Z_s (Z_s formula units per frame);
- adsorption on rocksalt (001) slabs: E_ads = E(complex) - E(slab) - E(molecule); the complex is
  the clean slab plus the gas molecule moved rigidly (no relaxation), so E_ads is the interaction
  energy at fixed geometries;
- molecular crystals: E_latt = E(crystal) / Z - E(isolated molecule), Z molecules per cell.

Every geometry is fixed (experimental crystal structures, ASE's G2 molecules); the benchmark
compares energies at identical geometries, so no relaxation at any level enters the numbers.
Frames carry ``mol_id`` (= species id), ``species``, ``role``, ``formula_units``,
``config_type`` (organic: molecules; inorganic: solids and clean slabs; bridge: complexes and
molecular crystals) and, for periodic frames, a fixed Γ-centred k-mesh ``kpts``
(tealign.compute.kpoints.mesh_from_density at KPT_DENSITY, 1 along a slab's vacuum direction).

Lattice parameters are facts from the cited experiments (comment beside each number).
"""

from __future__ import annotations

import argparse
import itertools
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import make_supercell, molecule
from ase.spacegroup import crystal

HERE = Path(__file__).resolve().parent
#: k-point density (Å) of every periodic frame: above the 2.5 Å that converges MgO, LiF and NaCl
#: to 1 meV/atom at the target settings (datasets/inorganic-mini/kpoints.json)
KPT_DENSITY = 3.0
#: vacuum on each side of a slab (Å), the molecules' 5 Å (calib-qm9's SPEC): 10 Å between
#: periodic images of the clean slab, >= 5.7 Å above the highest adsorbate atom (CH3OH).
#: 7.5 Å would cost ~45 % more plane waves per slab frame, which are most of the set's cost.
SLAB_VACUUM = 5.0

# --------------------------------------------------------------------------- molecules
#: species id -> ASE G2 name; geometries as ASE ships them (ase.collections.g2)
MOLECULES = {"H2O_g": "H2O", "CO2_g": "CO2", "HF_g": "HF", "CH4_g": "CH4", "H2_g": "H2",
             "NH3_g": "NH3", "CH3OH_g": "CH3OH",
             # datasets/bridge-v2's further gas species (not in bridge-mini's items)
             "O2_g": "O2", "N2_g": "N2", "CO_g": "CO", "NO_g": "NO", "H2S_g": "SH2",
             "SO2_g": "SO2", "HCl_g": "HCl", "Cl2_g": "Cl2", "C2H2_g": "C2H2",
             "C2H4_g": "C2H4", "C2H6_g": "C2H6", "HCN_g": "HCN", "HCOOH_g": "HCOOH",
             "CH2O_g": "H2CO", "N2H4_g": "N2H4", "H2O2_g": "H2O2"}
#: ground-state multiplicity 2S+1 of the open-shell gas species (the rest are singlets):
#: O2 X ³Σg⁻, NO X ²Π
MULTIPLICITY = {"O2_g": 3, "NO_g": 2}


def gas(species: str) -> Atoms:
    a = molecule(MOLECULES[species])
    a.center()
    a.cell = np.zeros((3, 3))
    a.pbc = False
    return a


# --------------------------------------------------------------------------- ionic solids
def _cubic(a):
    return [a, a, a, 90, 90, 90]


def _hexagonal(a, c):
    return [a, a, c, 90, 90, 120]


def _oh_length() -> float:
    """O-H length (Å) of ASE's gas-phase H2O (0.969 Å): where experiment leaves a hydroxide H
    poorly fixed, it is put at this distance from its O, as in the ice."""
    w = gas("H2O_g")
    return float(np.linalg.norm(w.positions[1] - w.positions[0]))


def solid(species: str) -> Atoms:
    """The crystal of an inorganic species id (primitive cell), from experimental data."""
    if species == "MgO_s":
        # rocksalt; a = 4.188 Å, experiment corrected for zero-point anharmonic expansion
        # (Sol58LC set of Haas, Tran, Blaha, PRB 79, 085104 (2009), zero-point corrected
        # values of Hao, Fang, Sun, Csonka, Philipsen, Perdew, PRB 85, 014111 (2012);
        # tealign's cubic_crystals.csv, as inorganic-mini)
        return crystal(["Mg", "O"], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                       cellpar=_cubic(4.188), primitive_cell=True)
    if species == "LiF_s":
        # rocksalt; a = 3.974 Å (zero-point corrected: Hao et al. 2012, as MgO; cubic_crystals.csv)
        return crystal(["Li", "F"], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                       cellpar=_cubic(3.974), primitive_cell=True)
    if species == "NaF_s":
        # rocksalt; a = 4.570 Å (zero-point corrected: Hao et al. 2012, as MgO; cubic_crystals.csv;
        # room temperature 4.63 Å, V. T. Deshpande, Acta Cryst. 14, 794 (1961))
        return crystal(["Na", "F"], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                       cellpar=_cubic(4.570), primitive_cell=True)
    if species == "Li2O_s":
        # antifluorite Fm-3m, O 4a, Li 8c; a = 4.6114 Å at 293 K (neutron powder:
        # T. W. D. Farley et al., J. Phys.: Condens. Matter 3, 4761 (1991))
        return crystal(["O", "Li"], [(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=225,
                       cellpar=_cubic(4.6114), primitive_cell=True)
    if species == "Na2O_s":
        # antifluorite Fm-3m; a = 5.55 Å (E. Zintl, A. Harder, B. Dauth, Z. Elektrochem. 40,
        # 588 (1934))
        return crystal(["O", "Na"], [(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=225,
                       cellpar=_cubic(5.55), primitive_cell=True)
    if species == "MgF2_s":
        # rutile P4_2/mnm, Mg 2a, F 4f (x, x, 0); a = 4.6213 Å, c = 3.0519 Å, x = 0.30293
        # (W. H. Baur, Acta Cryst. B32, 2200 (1976); x = 0.3028 in W. H. Baur, A. A. Khan,
        # Acta Cryst. B27, 2133 (1971)); Mg-F 1.98 Å
        return crystal(["Mg", "F"], [(0, 0, 0), (0.30293, 0.30293, 0)], spacegroup=136,
                       cellpar=[4.6213, 4.6213, 3.0519, 90, 90, 90])
    if species == "MgOH2_s":
        # brucite P-3m1, Mg 1a, O and H 2d (1/3, 2/3, z); a = 3.149 Å, c = 4.769 Å,
        # z(O) = 0.2205 (A. P. Zhukhlistov et al., Kristallografiya 42, 841 (1997), electron
        # diffraction; as tabulated in the MINCRYST database; neutron at 1 bar: a = 3.1498 Å,
        # c = 4.7702 Å, z(O) = 0.2203, M. Catti et al., Phys. Chem. Miner. 22, 200 (1995)).
        # H is poorly fixed by experiment (z(H) = 0.43 in Zhukhlistov: O-H 1.00 Å; single-site
        # neutron z(D) = 0.413: O-H 0.92 Å, shortened by the H libration, B. C. Chakoumakos
        # et al., J. Phys. Chem. B 101, 9458 (1997)): H on the 3-fold axis above O at the O-H
        # length of ASE's gas-phase H2O (0.969 Å), as in the ice below; Mg-O 2.10 Å
        c = 4.769
        z_o = 0.2205
        return crystal(["Mg", "O", "H"], [(0, 0, 0), (1 / 3, 2 / 3, z_o),
                                          (1 / 3, 2 / 3, z_o + _oh_length() / c)],
                       spacegroup=164, cellpar=_hexagonal(3.149, c))
    if species == "MgCO3_s":
        # magnesite R-3c (hexagonal axes), Mg 6b, C 6a, O 18e (x, 0, 1/4); a = 4.6328 Å,
        # c = 15.0129 Å, x = 0.27762 (S. A. Markgraf, R. J. Reeder, Am. Mineral. 70, 590
        # (1985)); rhombohedral primitive cell, Z = 2
        return crystal(["Mg", "C", "O"], [(0, 0, 0), (0, 0, 0.25), (0.27762, 0, 0.25)],
                       spacegroup=167, cellpar=_hexagonal(4.6328, 15.0129), primitive_cell=True)
    if species == "LiOH_s":
        # P4/nmm (origin choice 2), Li 2a (3/4, 1/4, 0), O and H 2c (1/4, 1/4, z); a = 3.549 Å,
        # c = 4.334 Å, z(O) = 0.1934 (H. Dachs, Z. Kristallogr. 112, 60 (1959), neutron
        # diffraction); Z = 2. Dachs' z(H) = 0.4084 gives O-H 0.93 Å, shortened by the H
        # libration (no H bond in LiOH; the OH stretch is that of a free hydroxide): H on the
        # 4-fold axis above O at the O-H length of ASE's gas-phase H2O (0.969 Å), as in the ice
        # below (z(H) = 0.4170); Li-O 1.96 Å
        c = 4.334
        z_o = 0.1934
        return crystal(["Li", "O", "H"], [(0.75, 0.25, 0), (0.25, 0.25, z_o),
                                          (0.25, 0.25, z_o + _oh_length() / c)],
                       spacegroup=129, setting=2, cellpar=[3.549, 3.549, c, 90, 90, 90])
    if species == "Li3N_s":
        # alpha-Li3N P6/mmm, N 1a, Li 1b, Li 2c; a = 3.648 Å, c = 3.875 Å (H. Rabenau,
        # H. Schulz, J. Less-Common Met. 50, 155 (1976))
        return crystal(["N", "Li", "Li"], [(0, 0, 0), (0, 0, 0.5), (1 / 3, 2 / 3, 0)],
                       spacegroup=191, cellpar=_hexagonal(3.648, 3.875))
    # datasets/bridge-v2's further solids: room-temperature X-ray lattice constants as
    # tabulated by R. W. G. Wyckoff, Crystal Structures, 2nd ed., vol. 1 (Interscience, 1963)
    rocksalt = {"NaCl_s": ("Na", "Cl", 5.640), "LiCl_s": ("Li", "Cl", 5.130),
                "MgS_s": ("Mg", "S", 5.200)}
    if species in rocksalt:
        cation, anion, a = rocksalt[species]
        return crystal([cation, anion], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                       cellpar=_cubic(a), primitive_cell=True)
    antifluorite = {"Li2S_s": ("Li", 5.708), "Na2S_s": ("Na", 6.540)}
    if species in antifluorite:
        cation, a = antifluorite[species]
        return crystal(["S", cation], [(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=225,
                       cellpar=_cubic(a), primitive_cell=True)
    if species == "MgCl2_s":
        # CdCl2 type R-3m (hexagonal axes), Mg 3a, Cl 6c (0, 0, z); a = 3.6363 Å,
        # c = 17.6663 Å, z = 0.25808 (D. E. Partin, M. O'Keeffe, J. Solid State Chem. 95, 176
        # (1991)); rhombohedral primitive cell, Z = 1
        return crystal(["Mg", "Cl"], [(0, 0, 0), (0, 0, 0.25808)], spacegroup=166,
                       cellpar=_hexagonal(3.6363, 17.6663), primitive_cell=True)
    raise KeyError(species)


#: species id -> (formula per formula unit, formula units per frame)
SOLIDS = {"MgO_s": ("MgO", 1), "LiF_s": ("LiF", 1), "NaF_s": ("NaF", 1),
          "Li2O_s": ("Li2O", 1), "Na2O_s": ("Na2O", 1), "MgF2_s": ("MgF2", 2),
          "MgOH2_s": ("MgO2H2", 1), "MgCO3_s": ("MgCO3", 2), "LiOH_s": ("LiOH", 2),
          "Li3N_s": ("Li3N", 1),
          "NaCl_s": ("NaCl", 1), "LiCl_s": ("LiCl", 1), "MgS_s": ("MgS", 1),
          "Li2S_s": ("Li2S", 1), "Na2S_s": ("Na2S", 1), "MgCl2_s": ("MgCl2", 1)}

#: (id, equation as written, {species id: stoichiometric coefficient per formula unit});
#: negative coefficients are reactants
REACTIONS = [
    ("MgO+H2O", "MgO(s) + H2O(g) -> Mg(OH)2(s)",
     {"MgO_s": -1, "H2O_g": -1, "MgOH2_s": 1}),
    ("MgO+CO2", "MgO(s) + CO2(g) -> MgCO3(s)",
     {"MgO_s": -1, "CO2_g": -1, "MgCO3_s": 1}),
    ("MgO+2HF", "MgO(s) + 2 HF(g) -> MgF2(s) + H2O(g)",
     {"MgO_s": -1, "HF_g": -2, "MgF2_s": 1, "H2O_g": 1}),
    ("Mg(OH)2+2HF", "Mg(OH)2(s) + 2 HF(g) -> MgF2(s) + 2 H2O(g)",
     {"MgOH2_s": -1, "HF_g": -2, "MgF2_s": 1, "H2O_g": 2}),
    ("Mg(OH)2+CO2", "Mg(OH)2(s) + CO2(g) -> MgCO3(s) + H2O(g)",
     {"MgOH2_s": -1, "CO2_g": -1, "MgCO3_s": 1, "H2O_g": 1}),
    ("MgCO3+4H2", "MgCO3(s) + 4 H2(g) -> MgO(s) + CH4(g) + 2 H2O(g)",
     {"MgCO3_s": -1, "H2_g": -4, "MgO_s": 1, "CH4_g": 1, "H2O_g": 2}),
    ("Li2O+H2O", "Li2O(s) + H2O(g) -> 2 LiOH(s)",
     {"Li2O_s": -1, "H2O_g": -1, "LiOH_s": 2}),
    ("Li2O+2HF", "Li2O(s) + 2 HF(g) -> 2 LiF(s) + H2O(g)",
     {"Li2O_s": -1, "HF_g": -2, "LiF_s": 2, "H2O_g": 1}),
    ("LiOH+HF", "LiOH(s) + HF(g) -> LiF(s) + H2O(g)",
     {"LiOH_s": -1, "HF_g": -1, "LiF_s": 1, "H2O_g": 1}),
    ("Li3N+3H2O", "Li3N(s) + 3 H2O(g) -> 3 LiOH(s) + NH3(g)",
     {"Li3N_s": -1, "H2O_g": -3, "LiOH_s": 3, "NH3_g": 1}),
    ("Li3N+3HF", "Li3N(s) + 3 HF(g) -> 3 LiF(s) + NH3(g)",
     {"Li3N_s": -1, "HF_g": -3, "LiF_s": 3, "NH3_g": 1}),
    ("Na2O+2HF", "Na2O(s) + 2 HF(g) -> 2 NaF(s) + H2O(g)",
     {"Na2O_s": -1, "HF_g": -2, "NaF_s": 2, "H2O_g": 1}),
]


# --------------------------------------------------------------------------- slabs
def rocksalt_slab(bulk_species: str, repeat: int = 2, vacuum: float = SLAB_VACUUM,
                  layers: int = 2) -> Atoms:
    """A rocksalt (001) slab of ``layers`` layers (a/2 apart) whose surface cell is ``repeat``
    x ``repeat`` primitive (001) surface cells (a/sqrt2 each), from the bulk's lattice
    constant; z = surface normal, cation and anion alternate in each layer, bottom layer at
    z = vacuum."""
    prim = solid(bulk_species)
    a = float(np.linalg.norm(prim.cell[0])) * np.sqrt(2)  # conventional cubic a
    cation, anion = prim.get_chemical_symbols()
    conv = crystal([cation, anion], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                   cellpar=_cubic(a))
    # the conventional cell holds two (001) layers, at z = 0 and a/2; in-plane cell
    # (a/sqrt2)(1, 1), (a/sqrt2)(-1, 1) times repeat
    p = np.array([[0.5, 0.5, 0], [-0.5, 0.5, 0], [0, 0, 1]]) * np.array(
        [[repeat], [repeat], [(layers + 1) // 2]])
    slab = make_supercell(conv, p)
    slab.wrap()
    slab = slab[slab.positions[:, 2] < (layers - 1) * a / 2 + 0.01]
    slab.cell[2] = [0, 0, (layers - 1) * a / 2 + 2 * vacuum]  # vacuum on both sides
    slab.positions[:, 2] += vacuum
    slab.pbc = True
    order = np.lexsort((slab.positions[:, 1], slab.positions[:, 0], slab.positions[:, 2]))
    return slab[order]


def top_site(slab: Atoms, element: str) -> np.ndarray:
    """Position of the top-layer atom of ``element`` nearest the cell's in-plane centre."""
    z = slab.positions[:, 2]
    top = np.flatnonzero((z > z.max() - 0.1) & (np.array(slab.get_chemical_symbols()) == element))
    centre = 0.5 * (slab.cell[0] + slab.cell[1])
    d = np.linalg.norm(slab.positions[top, :2] - centre[:2], axis=1)
    return slab.positions[top[np.argmin(d)]].copy()


def _rotation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotation matrix taking unit vector u to unit vector v."""
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    c = float(np.dot(u, v))
    if c > 1 - 1e-12:
        return np.eye(3)
    if c < -1 + 1e-12:  # half turn about any axis normal to u
        n = np.cross(u, [1, 0, 0] if abs(u[0]) < 0.9 else [0, 1, 0])
        n /= np.linalg.norm(n)
        return 2 * np.outer(n, n) - np.eye(3)
    w = np.cross(u, v)
    k = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def place(mol: Atoms, anchor: int, site: np.ndarray, height: float, axis_from: np.ndarray,
          axis_to: np.ndarray, spin: float = 0.0) -> Atoms:
    """``mol`` moved rigidly: the molecule-frame vector ``axis_from`` turned onto ``axis_to``,
    then turned by ``spin`` degrees about z, atom ``anchor`` put ``height`` Å above ``site``."""
    m = mol.copy()
    pos = m.positions - m.positions[anchor]
    pos = pos @ _rotation(np.asarray(axis_from, float), np.asarray(axis_to, float)).T
    t = np.radians(spin)
    rz = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    m.positions = pos @ rz.T + site + [0, 0, height]
    return m


def adsorbate_pose(species: str, slab: Atoms, cation: str, anion: str) -> Atoms:
    """The gas molecule of ``species`` placed on the slab (starting geometries a chemist would
    draw: lone pair on a surface cation, H towards a surface anion; not relaxed)."""
    m = gas(species)
    sym = m.get_chemical_symbols()
    up = np.array([0.0, 0, 1])
    if species == "H2O_g":  # flat, O atop the cation, H atoms towards two anions
        o = sym.index("O")
        hs = [i for i, s in enumerate(sym) if s == "H"]
        flat = place(m, o, np.zeros(3), 0.0, np.cross(*(m.positions[hs] - m.positions[o])), up)
        bis = flat.positions[hs].mean(0) - flat.positions[o]
        ang = np.degrees(np.arctan2(bis[1], bis[0]))
        # surface anions of a rocksalt (001) face lie along the in-plane cubic axes from a cation:
        # the slab's cell vectors are along (1, 1) and (-1, 1), the cubic axes along x and y
        return place(flat, o, top_site(slab, cation), 2.2, up, up, spin=45.0 - ang)
    if species == "NH3_g":  # N atop the cation, C3 axis normal, H atoms up
        n = sym.index("N")
        h = m.positions[[i for i, s in enumerate(sym) if s == "H"]].mean(0) - m.positions[n]
        return place(m, n, top_site(slab, cation), 2.3, h, up)
    if species == "CH3OH_g":  # O atop the cation, O->C tilted ~27° off the normal, hydroxyl H
        o, c = sym.index("O"), sym.index("C")  # turned (60°) so it is >= 2.5 Å from any atom
        return place(m, o, top_site(slab, cation), 2.2, m.positions[c] - m.positions[o],
                     np.array([-0.5, 0, 1.0]), spin=60.0)
    if species == "CO2_g":  # flat over an anion, C 2.9 Å above it
        c, o = sym.index("C"), sym.index("O")
        return place(m, c, top_site(slab, anion), 2.9, m.positions[o] - m.positions[c],
                     np.array([1.0, 0, 0]))
    if species == "HF_g":  # H down onto a surface anion (hydrogen bond), F up
        h, f = sym.index("H"), sym.index("F")
        return place(m, h, top_site(slab, anion), 1.7, m.positions[f] - m.positions[h], up)
    raise KeyError(species)


#: (id, molecule species, slab species); the slab species id is "<bulk>(001)"
ADSORPTION = [
    ("H2O@MgO(001)", "H2O_g", "MgO_s"), ("NH3@MgO(001)", "NH3_g", "MgO_s"),
    ("CH3OH@MgO(001)", "CH3OH_g", "MgO_s"), ("CO2@MgO(001)", "CO2_g", "MgO_s"),
    ("H2O@LiF(001)", "H2O_g", "LiF_s"), ("HF@LiF(001)", "HF_g", "LiF_s"),
    ("H2O@NaF(001)", "H2O_g", "NaF_s"), ("NH3@NaF(001)", "NH3_g", "NaF_s"),
]


def slab_id(bulk_species: str) -> str:
    return bulk_species.replace("_s", "(001)_slab")


def complex_id(ads_id: str) -> str:
    return ads_id + "_complex"


# --------------------------------------------------------------------------- molecular crystals
def molecular_crystal(species: str) -> Atoms:
    if species == "CO2_Pa-3":
        # dry ice Pa-3, C 4a, O 8c (x, x, x); a = 5.624 Å at 150 K, x = 0.1185
        # (A. Simon, K. Peters, Acta Cryst. B36, 2750 (1980))
        return crystal(["C", "O"], [(0, 0, 0), (0.1185, 0.1185, 0.1185)], spacegroup=205,
                       cellpar=_cubic(5.624))
    if species == "NH3_P2_13":
        # ammonia I, P2_13, N 4a (u, u, u), H 12b; N u = 0.2127, D (0.3740, 0.2632, 0.1094)
        # (ND3 at 77 K, neutron: J. W. Reed, P. M. Harris, J. Chem. Phys. 35, 1730 (1961));
        # a = 5.073 Å (ND3 at 77 K: I. Olovsson, D. H. Templeton, Acta Cryst. 12, 832 (1959))
        return crystal(["N", "H"], [(0.2127, 0.2127, 0.2127), (0.3740, 0.2632, 0.1094)],
                       spacegroup=198, cellpar=_cubic(5.073))
    if species == "H2O_ice_XI":
        return proton_ordered_ice()
    raise KeyError(species)


def proton_ordered_ice() -> Atoms:
    """Ice Ih's oxygen lattice (P6_3/mmc, O 4f (1/3, 2/3, z), z = 1/16: ideal tetrahedra) at
    a = 4.4969 Å, c = 7.3211 Å (ice Ih at 10 K: K. Röttger, A. Endriss, J. Ihringer, S. Doyle,
    W. F. Kuhs, Acta Cryst. B50, 644 (1994)), with the protons ordered in the 4-molecule cell:
    of the ice-rule configurations (two H per O, one per O–O bond), the one with the largest
    polarisation along c and none in the plane: the ice XI arrangement (spglib finds Cmc2_1 at
    symprec 1e-3). The cell is ice Ih's, not ice XI's measured one. H atoms lie on
    the O–O lines at the O–H length of ASE's gas-phase H2O (so H–O–H is tetrahedral, 109.5°);
    12 atoms, Z = 4."""
    ox = crystal(["O"], [(1 / 3, 2 / 3, 1 / 16)], spacegroup=194,
                 cellpar=_hexagonal(4.4969, 7.3211))
    from ase.neighborlist import neighbor_list

    i, j, d, shift = neighbor_list("ijDS", ox, 3.0)
    bonds = [(a, b, vec) for a, b, vec, s in zip(i, j, d, shift)
             if a < b or (a == b and tuple(s) > (0, 0, 0))]
    assert len(bonds) == 2 * len(ox), "each O of ice has four O neighbours"
    w = gas("H2O_g")
    oh = float(np.linalg.norm(w.positions[1] - w.positions[0]))
    best = None
    for donors in itertools.product((0, 1), repeat=len(bonds)):
        count = np.zeros(len(ox), int)
        for (a, b, _), k in zip(bonds, donors):
            count[a if k == 0 else b] += 1
        if not (count == 2).all():
            continue
        dip = np.zeros(3)
        for (_, _, vec), k in zip(bonds, donors):
            dip += vec / np.linalg.norm(vec) * (1 if k == 0 else -1)
        score = (round(np.linalg.norm(dip[:2]), 6), -round(abs(dip[2]), 6))
        if best is None or score < best[0]:
            best = (score, donors)
    h = []
    for (a, _, vec), k in zip(bonds, best[1]):
        u = vec / np.linalg.norm(vec)
        h.append(ox.positions[a] + oh * u if k == 0 else ox.positions[a] + vec - oh * u)
    ice = ox + Atoms("H" * len(h), positions=h, cell=ox.cell, pbc=True)
    ice.wrap()
    return ice


#: (id, crystal species, molecule species, molecules per cell)
LATTICE = [("CO2 (Pa-3)", "CO2_Pa-3", "CO2_g", 4), ("NH3 (P2_13)", "NH3_P2_13", "NH3_g", 4),
           ("ice XI (Cmc2_1, Ih lattice)", "H2O_ice_XI", "H2O_g", 4)]


# --------------------------------------------------------------------------- assembly
def _tag(atoms: Atoms, species: str, role: str, config_type: str, z: int,
         slab_axis: int | None = None, density: float = KPT_DENSITY) -> Atoms:
    from tealign.compute.kpoints import mesh_from_density

    for key in ("spacegroup", "unit_cell", "occupancy"):  # ase.spacegroup.crystal's extras
        atoms.info.pop(key, None)
    atoms.arrays.pop("spacegroup_kinds", None)
    atoms.info.update({"mol_id": species, "species": species, "role": role,
                       "config_type": config_type, "formula_units": int(z)})
    if atoms.pbc.any():
        mesh = list(mesh_from_density(atoms.cell, density))
        if slab_axis is not None:
            mesh[slab_axis] = 1
        atoms.info["kpts"] = np.array(mesh, dtype=int)
    return atoms


def build(reactions=REACTIONS, adsorption=ADSORPTION, lattice=LATTICE, slab_repeat: int = 2,
          density: float = KPT_DENSITY) -> tuple[list[Atoms], list[Atoms], dict]:
    """(molecule frames, periodic frames, definition) for the given items."""
    mol_species: dict[str, None] = {}
    solid_species: dict[str, None] = {}
    for _, _, coeffs in reactions:
        for s in coeffs:
            (mol_species if s in MOLECULES else solid_species)[s] = None
    for _, m, _ in adsorption:
        mol_species[m] = None
    for _, _, m, _ in lattice:
        mol_species[m] = None
    molecules = [_tag(gas(s), s, "molecule", "organic", 1) for s in mol_species]
    periodic = [_tag(solid(s), s, "solid", "inorganic", SOLIDS[s][1], density=density)
                for s in solid_species]
    species = {s: {"formula_units": 1, "role": "molecule"} for s in mol_species}
    species |= {s: {"formula_units": SOLIDS[s][1], "role": "solid"} for s in solid_species}
    ads_items = []
    slabs: dict[str, Atoms] = {}
    for ads_id, mol, bulk in adsorption:
        if bulk not in slabs:
            slab = rocksalt_slab(bulk, slab_repeat)
            slabs[bulk] = slab
            periodic.append(_tag(slab.copy(), slab_id(bulk), "slab", "inorganic", 1,
                                 slab_axis=2, density=density))
            species[slab_id(bulk)] = {"formula_units": 1, "role": "slab"}
        slab = slabs[bulk]
        cation, anion = solid(bulk).get_chemical_symbols()
        cplx = slab + adsorbate_pose(mol, slab, cation, anion)
        periodic.append(_tag(cplx, complex_id(ads_id), "complex", "bridge", 1, slab_axis=2,
                             density=density))
        species[complex_id(ads_id)] = {"formula_units": 1, "role": "complex"}
        ads_items.append({"id": ads_id, "complex": complex_id(ads_id),
                          "slab": slab_id(bulk), "molecule": mol})
    latt_items = []
    for lid, cryst, mol, z in lattice:
        periodic.append(_tag(molecular_crystal(cryst), cryst, "molecular_crystal", "bridge", z,
                             density=density))
        species[cryst] = {"formula_units": z, "role": "molecular_crystal"}
        latt_items.append({"id": lid, "crystal": cryst, "molecule": mol,
                           "molecules_per_cell": z})
    frames = {a.info["species"]: a for a in molecules + periodic}
    for s, entry in species.items():
        entry["formula"] = frames[s].get_chemical_formula(mode="hill")
        entry["natoms"] = len(frames[s])
        if "kpts" in frames[s].info:
            entry["kpts"] = [int(k) for k in frames[s].info["kpts"]]
    definition = {
        "name": "bridge-mini",
        "description": "cross-domain quantities (DESIGN 8): gas-solid reaction energies per "
                       "reaction as written, adsorption energies E(complex) - E(slab) - "
                       "E(molecule), lattice energies per molecule E(crystal)/Z - "
                       "E(molecule); eV; fixed geometries",
        "species": species,
        "reactions": [{"id": r, "equation": eq, "coefficients": c} for r, eq, c in reactions],
        "adsorption": ads_items,
        "lattice": latt_items,
    }
    return molecules, periodic, definition


def imbalance(coefficients: dict[str, float], frames: dict[str, Atoms],
              formula_units: dict[str, int]) -> dict[str, Fraction]:
    """Element -> net count of sum_s nu_s * (atoms of frame s) / Z_s (all zero when balanced)."""
    net: dict[str, Fraction] = {}
    for s, nu in coefficients.items():
        for el in frames[s].get_chemical_symbols():
            net[el] = net.get(el, Fraction(0)) + Fraction(nu) / formula_units[s]
    return {el: v for el, v in net.items() if v != 0}


def write(out_dir: Path = HERE) -> dict:
    from ase.io import write as ase_write

    molecules, periodic, definition = build()
    frames = {a.info["species"]: a for a in molecules + periodic}
    z = {s: e["formula_units"] for s, e in definition["species"].items()}
    for r in definition["reactions"]:
        bad = imbalance(r["coefficients"], frames, z)
        if bad:
            raise SystemExit(f"reaction {r['id']} does not balance: {bad}")
    ase_write(out_dir / "molecules.extxyz", molecules, format="extxyz")
    ase_write(out_dir / "periodic.extxyz", periodic, format="extxyz")
    (out_dir / "bridge.json").write_text(json.dumps(definition, indent=1) + "\n")
    return definition


def combine(inputs: list[str], output: str) -> int:
    """One extxyz of the computed parts (molecules at both levels, periodic frames at the
    target level), through tealign's reader and writer: every key kept, absent where a part
    lacks it."""
    from tealign.io import concat_batches, read_batch
    from tealign.io.extxyz import write_extxyz

    batch = concat_batches([read_batch(p) for p in inputs])
    if batch.rejects:
        raise SystemExit(f"{len(batch.rejects)} frames rejected while reading {inputs}")
    write_extxyz(Path(output), [batch])
    return batch.n_frames


def select(path: str, output: str, split: str | None = None,
           not_in: str | None = None) -> int:
    """The frames of ``path`` in ``split`` (info ``split``), or whose ``mol_id`` is absent from
    ``not_in`` (the molecules an alignment was not fitted on), written to ``output`` with every
    key kept; SystemExit when none is left or a frame lacks the field."""
    from tealign.io import read_batch
    from tealign.io.extxyz import write_extxyz

    batch = read_batch(path)
    if batch.rejects:
        raise SystemExit(f"{len(batch.rejects)} frames rejected while reading {path}")
    keep = np.ones(batch.n_frames, bool)
    if split is not None:
        if "split" not in batch.info:
            raise SystemExit(f"{path}: no frame has info 'split'")
        keep &= np.asarray(batch.info["split"]).astype(str) == split
    if not_in is not None:
        fitted = set(np.asarray(read_batch(not_in).info["mol_id"]).astype(str))
        keep &= ~np.isin(np.asarray(batch.info["mol_id"]).astype(str), list(fitted))
    if not keep.any():
        raise SystemExit(f"{path}: no frame selected (split={split}, not in {not_in})")
    write_extxyz(Path(output), [batch.select(keep)])
    return int(keep.sum())


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--combine", nargs="+", metavar="EXTXYZ")
    ap.add_argument("--select", metavar="EXTXYZ",
                    help="write the frames of EXTXYZ in --split, or not in --not-in, to -o")
    ap.add_argument("--split", help="with --select: keep the frames of this split")
    ap.add_argument("--not-in", metavar="EXTXYZ",
                    help="with --select: keep the frames whose mol_id EXTXYZ does not hold")
    ap.add_argument("-o", "--output", default=str(HERE / "bridge-mini.extxyz"))
    args = ap.parse_args()
    if args.combine:
        n = combine(args.combine, args.output)
        print(f"wrote {n} frames to {args.output}")
    elif args.select:
        n = select(args.select, args.output, args.split, args.not_in)
        print(f"wrote {n} frames to {args.output}")
    else:
        d = write()
        print(f"{len(d['species'])} species, {len(d['reactions'])} reactions, "
              f"{len(d['adsorption'])} adsorption systems, {len(d['lattice'])} molecular "
              "crystals")
