"""Geometries and definition of bridge-v2's gas–solid reactions (issue 31): 23 gas species
(bridge-mini's 7 and 16 more) in 36 balanced reactions with 16 ionic solids of Li, Na and Mg.

    python make_geometries.py        # molecules.extxyz, periodic.extxyz, bridge.json

The species catalogue (ASE's G2 molecules, the experimental crystal structures with their
citations) is bridge-mini's (``../bridge-mini/make_geometries.py``); this file only chooses the
items. Every geometry is fixed: a reaction energy here compares the two levels of theory at
identical geometries (E_rxn = Σ_s ν_s E_s / Z_s, eV per reaction as written), so a label's
error is the alignment's error and nothing else. Open-shell molecules carry their ground-state
``multiplicity`` (O2 3, NO 2), which both levels use.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
from ase import Atoms

HERE = Path(__file__).resolve().parent


def catalogue():
    """bridge-mini's make_geometries module (the species and the assembly it builds)."""
    path = HERE.parent / "bridge-mini" / "make_geometries.py"
    spec = importlib.util.spec_from_file_location("bridge_mini_geometries", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: (id, equation as written, {species id: coefficient per formula unit}); reactants negative.
#: bridge-mini's 12 first, then one or more reactions for each further gas species.
NEW_REACTIONS = [
    ("MgO+H2S", "MgO(s) + H2S(g) -> MgS(s) + H2O(g)",
     {"MgO_s": -1, "H2S_g": -1, "MgS_s": 1, "H2O_g": 1}),
    ("Li2O+H2S", "Li2O(s) + H2S(g) -> Li2S(s) + H2O(g)",
     {"Li2O_s": -1, "H2S_g": -1, "Li2S_s": 1, "H2O_g": 1}),
    ("Na2O+H2S", "Na2O(s) + H2S(g) -> Na2S(s) + H2O(g)",
     {"Na2O_s": -1, "H2S_g": -1, "Na2S_s": 1, "H2O_g": 1}),
    ("Mg(OH)2+H2S", "Mg(OH)2(s) + H2S(g) -> MgS(s) + 2 H2O(g)",
     {"MgOH2_s": -1, "H2S_g": -1, "MgS_s": 1, "H2O_g": 2}),
    ("MgO+SO2", "MgO(s) + SO2(g) -> MgS(s) + 3/2 O2(g)",
     {"MgO_s": -1, "SO2_g": -1, "MgS_s": 1, "O2_g": 1.5}),
    ("MgO+2HCl", "MgO(s) + 2 HCl(g) -> MgCl2(s) + H2O(g)",
     {"MgO_s": -1, "HCl_g": -2, "MgCl2_s": 1, "H2O_g": 1}),
    ("Li2O+2HCl", "Li2O(s) + 2 HCl(g) -> 2 LiCl(s) + H2O(g)",
     {"Li2O_s": -1, "HCl_g": -2, "LiCl_s": 2, "H2O_g": 1}),
    ("Na2O+2HCl", "Na2O(s) + 2 HCl(g) -> 2 NaCl(s) + H2O(g)",
     {"Na2O_s": -1, "HCl_g": -2, "NaCl_s": 2, "H2O_g": 1}),
    ("LiOH+HCl", "LiOH(s) + HCl(g) -> LiCl(s) + H2O(g)",
     {"LiOH_s": -1, "HCl_g": -1, "LiCl_s": 1, "H2O_g": 1}),
    ("LiF+HCl", "LiF(s) + HCl(g) -> LiCl(s) + HF(g)",
     {"LiF_s": -1, "HCl_g": -1, "LiCl_s": 1, "HF_g": 1}),
    ("NaF+HCl", "NaF(s) + HCl(g) -> NaCl(s) + HF(g)",
     {"NaF_s": -1, "HCl_g": -1, "NaCl_s": 1, "HF_g": 1}),
    ("Li2O+Cl2", "Li2O(s) + Cl2(g) -> 2 LiCl(s) + 1/2 O2(g)",
     {"Li2O_s": -1, "Cl2_g": -1, "LiCl_s": 2, "O2_g": 0.5}),
    ("Na2O+Cl2", "Na2O(s) + Cl2(g) -> 2 NaCl(s) + 1/2 O2(g)",
     {"Na2O_s": -1, "Cl2_g": -1, "NaCl_s": 2, "O2_g": 0.5}),
    ("2Li3N+3/2O2", "2 Li3N(s) + 3/2 O2(g) -> 3 Li2O(s) + N2(g)",
     {"Li3N_s": -2, "O2_g": -1.5, "Li2O_s": 3, "N2_g": 1}),
    ("2Li3N+3NO", "2 Li3N(s) + 3 NO(g) -> 3 Li2O(s) + 5/2 N2(g)",
     {"Li3N_s": -2, "NO_g": -3, "Li2O_s": 3, "N2_g": 2.5}),
    ("2Li3N+6H2O", "2 Li3N(s) + 6 H2O(g) -> 6 LiOH(s) + N2H4(g) + H2(g)",
     {"Li3N_s": -2, "H2O_g": -6, "LiOH_s": 6, "N2H4_g": 1, "H2_g": 1}),
    ("Li2O+H2O2", "Li2O(s) + H2O2(g) -> 2 LiOH(s) + 1/2 O2(g)",
     {"Li2O_s": -1, "H2O2_g": -1, "LiOH_s": 2, "O2_g": 0.5}),
    ("MgCO3+H2", "MgCO3(s) + H2(g) -> MgO(s) + CO(g) + H2O(g)",
     {"MgCO3_s": -1, "H2_g": -1, "MgO_s": 1, "CO_g": 1, "H2O_g": 1}),
    ("MgCO3+2H2", "MgCO3(s) + 2 H2(g) -> MgO(s) + CH2O(g) + H2O(g)",
     {"MgCO3_s": -1, "H2_g": -2, "MgO_s": 1, "CH2O_g": 1, "H2O_g": 1}),
    ("MgO+HCOOH", "MgO(s) + HCOOH(g) -> MgCO3(s) + H2(g)",
     {"MgO_s": -1, "HCOOH_g": -1, "MgCO3_s": 1, "H2_g": 1}),
    ("MgCO3+3H2", "MgCO3(s) + 3 H2(g) -> MgO(s) + CH3OH(g) + H2O(g)",
     {"MgCO3_s": -1, "H2_g": -3, "MgO_s": 1, "CH3OH_g": 1, "H2O_g": 1}),
    ("MgCO3+NH3+H2", "MgCO3(s) + NH3(g) + H2(g) -> MgO(s) + HCN(g) + 2 H2O(g)",
     {"MgCO3_s": -1, "NH3_g": -1, "H2_g": -1, "MgO_s": 1, "HCN_g": 1, "H2O_g": 2}),
    ("2MgCO3+5H2", "2 MgCO3(s) + 5 H2(g) -> 2 MgO(s) + C2H2(g) + 4 H2O(g)",
     {"MgCO3_s": -2, "H2_g": -5, "MgO_s": 2, "C2H2_g": 1, "H2O_g": 4}),
    ("2MgCO3+6H2", "2 MgCO3(s) + 6 H2(g) -> 2 MgO(s) + C2H4(g) + 4 H2O(g)",
     {"MgCO3_s": -2, "H2_g": -6, "MgO_s": 2, "C2H4_g": 1, "H2O_g": 4}),
    ("2MgCO3+7H2", "2 MgCO3(s) + 7 H2(g) -> 2 MgO(s) + C2H6(g) + 4 H2O(g)",
     {"MgCO3_s": -2, "H2_g": -7, "MgO_s": 2, "C2H6_g": 1, "H2O_g": 4}),
]


def reactions(cat=None) -> list:
    cat = cat or catalogue()
    return list(cat.REACTIONS) + NEW_REACTIONS


def molecules_of(crystal: Atoms) -> list[Atoms]:
    """The molecules of a molecular crystal as whole gas-phase frames (bonded by ASE's natural
    cutoffs across the periodic boundary, each unwrapped about its first atom)."""
    from ase.neighborlist import NeighborList, natural_cutoffs

    nl = NeighborList(natural_cutoffs(crystal), self_interaction=False, bothways=True)
    nl.update(crystal)
    seen: set[int] = set()
    out = []
    for start in range(len(crystal)):
        if start in seen:
            continue
        pos = {start: crystal.positions[start]}
        todo = [start]
        while todo:
            i = todo.pop()
            idx, offsets = nl.get_neighbors(i)
            for j, off in zip(idx, offsets):
                if j in pos:
                    continue
                # j's image bonded to i: its position relative to i's, through the cell
                shift = crystal.positions[j] + off @ crystal.cell - crystal.positions[i]
                pos[int(j)] = pos[i] + shift
                todo.append(int(j))
        seen |= set(pos)
        order = sorted(pos)
        out.append(Atoms([crystal[k].symbol for k in order],
                         positions=[pos[k] for k in order]))
    return out


def adsorption_items(cat) -> tuple[list[Atoms], list[dict]]:
    """The relaxed adsorbate–slab complexes of relax_adsorbates.py (relax/ID.relaxed.extxyz)
    whose clean slab is relaxed too, with those slabs: (periodic frames, adsorption items).
    A complex joins bridge.json only once both are relaxed."""
    from ase.io import read

    relax = HERE / "relax"
    frames: dict[str, Atoms] = {}
    items = []
    for path in sorted(relax.glob("*_on_*.relaxed.extxyz")):
        cid = path.name.removesuffix(".relaxed.extxyz")
        mol, surface = cid.split("_on_")
        slab_id = f"{surface}_slab3"
        slab_path = relax / f"{slab_id}.relaxed.extxyz"
        if not slab_path.exists():
            continue
        for sid, p, role in ((slab_id, slab_path, "slab"), (cid, path, "complex")):
            if sid in frames:
                continue
            a = read(p)
            a.info = {"mol_id": sid, "species": sid, "role": role,
                      "config_type": "inorganic" if role == "slab" else "bridge",
                      "formula_units": 1, "kpts": np.asarray(a.info["kpts"], int),
                      "relax_fmax_eV_A": float(a.info["relax_fmax_eV_A"])}
            frames[sid] = a
        items.append({"id": f"{mol} on {surface}", "complex": cid, "slab": slab_id,
                      "molecule": f"{mol}_g"})
    return list(frames.values()), items


def write(out_dir: Path = HERE) -> dict:
    """molecules.extxyz, periodic.extxyz, adsorption.extxyz and bridge.json, every reaction
    checked for balance:
    the reactions; bridge-mini's three molecular crystals (lattice energies per molecule; each
    crystal's molecules also as gas-phase frames at their crystal geometry, role
    ``molecule_in_crystal``, for the strain term E_strain = mean E(molecule at crystal
    geometry) − E(gas molecule), reported apart); the adsorbates relaxed so far."""
    from ase.io import write as ase_write

    cat = catalogue()
    molecules, periodic, definition = cat.build(reactions=reactions(cat), adsorption=[],
                                                lattice=cat.LATTICE)
    for item in definition["lattice"]:
        crystal = next(a for a in periodic if a.info["species"] == item["crystal"])
        inside = molecules_of(crystal)
        if len(inside) != item["molecules_per_cell"]:
            raise SystemExit(f"{item['crystal']}: {len(inside)} molecules found, "
                             f"{item['molecules_per_cell']} expected")
        names = []
        for k, m in enumerate(inside):
            sid = f"{item['molecule'].removesuffix('_g')}_in_{item['crystal']}_{k}"
            if m.get_chemical_formula() != cat.gas(item["molecule"]).get_chemical_formula():
                raise SystemExit(f"{item['crystal']}: molecule {k} is "
                                 f"{m.get_chemical_formula()}")
            m.info.update({"mol_id": sid, "species": sid, "role": "molecule_in_crystal",
                           "config_type": "organic", "formula_units": 1})
            molecules.append(m)
            definition["species"][sid] = {"formula_units": 1, "role": "molecule_in_crystal",
                                          "formula": m.get_chemical_formula(mode="hill"),
                                          "natoms": len(m)}
            names.append(sid)
        item["molecules_in_crystal"] = names
    slabs_and_complexes, ads = adsorption_items(cat)
    definition["adsorption"] = ads
    for a in slabs_and_complexes:
        definition["species"][a.info["species"]] = {
            "formula_units": 1, "role": a.info["role"],
            "formula": a.get_chemical_formula(mode="hill"), "natoms": len(a),
            "kpts": [int(k) for k in a.info["kpts"]]}
    for a in molecules:
        mult = cat.MULTIPLICITY.get(a.info["species"])
        if mult is not None:
            a.info["multiplicity"] = mult
    frames = {a.info["species"]: a for a in molecules + periodic}
    z = {s: e["formula_units"] for s, e in definition["species"].items()}
    for r in definition["reactions"]:
        bad = cat.imbalance(r["coefficients"], frames, z)
        if bad:
            raise SystemExit(f"reaction {r['id']} does not balance: {bad}")
    definition["name"] = "bridge-v2"
    definition["description"] = (
        "gas-solid reaction energies per reaction as written (eV; fixed geometries): 23 gas "
        "species, 16 solids; lattice energies per molecule E(crystal)/Z - E(molecule) of three "
        "molecular crystals at their X-ray geometries (strain term from the molecules at "
        "crystal geometry); adsorption energies E(complex) - E(slab) - E(molecule) on relaxed "
        "3-layer rocksalt (001) slabs (relax_adsorbates.py)")
    ase_write(out_dir / "molecules.extxyz", molecules, format="extxyz")
    ase_write(out_dir / "periodic.extxyz", periodic, format="extxyz")
    # the relaxed slabs and complexes apart: regenerate.sh computes them with forces, the
    # check that each relaxed pose is a stationary point at the target level
    adsorption = out_dir / "adsorption.extxyz"
    if slabs_and_complexes:
        ase_write(adsorption, slabs_and_complexes, format="extxyz")
    else:
        adsorption.unlink(missing_ok=True)
    (out_dir / "bridge.json").write_text(json.dumps(definition, indent=1) + "\n")
    return definition


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    d = write()
    print(f"{len(d['reactions'])} reactions, "
          f"{sum(e['role'] == 'molecule' for e in d['species'].values())} gas species, "
          f"{sum(e['role'] == 'solid' for e in d['species'].values())} solids")
