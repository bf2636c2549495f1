"""Relaxed adsorption geometries on three-layer rocksalt (001) slabs (issue 31, item 2).

    python relax_adsorbates.py poses            # CHGNet pose search (minutes)
    python relax_adsorbates.py gpaw [ID ...]    # GPAW refinement at the target level (hours;
                                                # resumes from relax/ID.traj, BFGS's
                                                # Hessian replayed from it) →
                                                # relax/ID.relaxed.extxyz once converged

Slabs: MgO, LiF, NaF and NaCl (001), three layers, 2x2 primitive surface cells (24 atoms), the
bulk's experimental lattice constant, 5 Å of vacuum on each side, the bottom layer fixed. A
rocksalt (001) slab is not polar (each layer is neutral), so no dipole correction is applied;
an adsorbate's own dipole across 10 Å of vacuum is left uncorrected and is part of what the
two levels compute alike.

Pose search (stated, seeded): for each adsorbate and slab, four sites of the top layer (atop
the cation nearest the cell centre, atop the anion, the bridge between them, the hollow), and
at each the hand-drawn pose of bridge-mini where it has one plus three random orientations
(``scipy.spatial.transform.Rotation.random``, seed 31), the molecule's lowest atom put 2.0 Å
above the top layer. Every candidate is relaxed with CHGNet 0.3 (the universal potential fitted
to MPtrj PBE, shipped with the chgnet package; a pre-screen, not a reference: its energies are
not used) to 0.1 eV/Å or 200 steps; the lowest CHGNet energy is refined with ASE's BFGS to a
maximum force below ``FMAX`` on every free atom, first at 400 eV on a mesh halved in-plane
(``PRE``, the same settings otherwise: a cheaper path to the basin) and then at the target
level (GPAW PBE PW800, the SPEC of bridge-mini, each slab on its fixed k-mesh), which alone
decides convergence. The clean slabs are refined the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np
from ase import Atoms

HERE = Path(__file__).resolve().parent
RELAX = HERE / "relax"
LAYERS = 3
REPEAT = 2
FMAX = 0.05  # eV/Å, every free atom, target level
SCREEN_FMAX = 0.1
SCREEN_STEPS = 200
N_RANDOM = 3
CLEARANCE = 2.0  # Å between the lowest adsorbate atom and the top layer, before relaxing
TARGET = "pbe=gpaw:pbe/pw800;vacuum=5.0;smearing=0.1"
PRE = "pbe=gpaw:pbe/pw400;vacuum=5.0;smearing=0.1"  # the first BFGS stage only
#: the order the refinement takes (MgO first: three adsorbates share its slab)
ORDER = ["MgO(001)_slab3", "H2O_on_MgO(001)", "NH3_on_MgO(001)", "CO2_on_MgO(001)"]
#: slab species -> adsorbates
SURFACES = {
    "MgO_s": ["H2O_g", "NH3_g", "CO2_g"],
    "LiF_s": ["H2O_g"],
    "NaF_s": ["H2O_g"],
    "NaCl_s": ["H2O_g"],
}


def catalogue():
    sys.path.insert(0, str(HERE))
    from make_geometries import catalogue as cat

    return cat()


def slab_of(cat, bulk: str) -> Atoms:
    from tealign.compute.kpoints import mesh_from_density

    slab = cat.rocksalt_slab(bulk, REPEAT, layers=LAYERS)
    mesh = list(mesh_from_density(slab.cell, cat.KPT_DENSITY))
    mesh[2] = 1
    slab.info.update({"species": bulk.replace("_s", "(001)_slab3"), "kpts": np.array(mesh)})
    return slab


def fix_bottom(atoms: Atoms) -> None:
    from ase.constraints import FixAtoms

    z = atoms.positions[:, 2]
    atoms.set_constraint(FixAtoms(indices=np.flatnonzero(z < z.min() + 0.1)))


def sites(slab: Atoms, cation: str, anion: str) -> dict[str, np.ndarray]:
    top_c = top_site_xy(slab, cation)
    top_a = top_site_xy(slab, anion, near=top_c)
    zmax = slab.positions[:, 2].max()
    # the hollow of a rocksalt (001) face: the centre of two cations and two anions
    perp = np.array([-(top_a - top_c)[1], (top_a - top_c)[0], 0.0])
    hollow = top_c + 0.5 * (top_a - top_c) + 0.5 * perp
    out = {"cation": top_c, "anion": top_a, "bridge": 0.5 * (top_c + top_a), "hollow": hollow}
    for v in out.values():
        v[2] = zmax
    return out


def top_site_xy(slab: Atoms, element: str, near: np.ndarray | None = None) -> np.ndarray:
    z = slab.positions[:, 2]
    sym = np.array(slab.get_chemical_symbols())
    top = np.flatnonzero((z > z.max() - 0.1) & (sym == element))
    ref = near if near is not None else 0.5 * (slab.cell[0] + slab.cell[1])
    d = np.linalg.norm(slab.positions[top, :2] - ref[:2], axis=1)
    return slab.positions[top[np.argmin(d)]].copy()


def candidates(cat, species: str, slab: Atoms, cation: str, anion: str) -> list[tuple[str, Atoms]]:
    """(label, adsorbate placed on the slab) for every pose of the search."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(31)
    zmax = slab.positions[:, 2].max()
    out = []
    with contextlib.suppress(KeyError):
        out.append(("hand-drawn", cat.adsorbate_pose(species, slab, cation, anion)))
    mol = cat.gas(species)
    mol.positions -= mol.get_center_of_mass()
    for name, site in sites(slab, cation, anion).items():
        rots = Rotation.random(N_RANDOM, random_state=int(rng.integers(2**31)))
        for k, rot in enumerate(rots):
            m = mol.copy()
            m.positions = rot.apply(mol.positions)
            m.positions += [site[0], site[1], 0.0]
            m.positions[:, 2] += zmax + CLEARANCE - m.positions[:, 2].min()
            out.append((f"{name} random #{k}", m))
    return out


def screen(atoms: Atoms) -> tuple[float, int]:
    """Relax with CHGNet (bottom layer fixed); returns (energy eV, steps)."""
    from ase.optimize import FIRE
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    global _CHGNET
    if "_CHGNET" not in globals():
        _CHGNET = CHGNetCalculator(CHGNet.load(verbose=False), use_device="cpu")
    fix_bottom(atoms)
    atoms.calc = _CHGNET
    opt = FIRE(atoms, logfile=None)
    opt.run(fmax=SCREEN_FMAX, steps=SCREEN_STEPS)
    return float(atoms.get_potential_energy()), int(opt.nsteps)


def complexes() -> list[tuple[str, str, str]]:
    """(complex id, adsorbate species, slab species)."""
    return [
        # "_on_", not "@": ase.io.read takes "name@index" as an index into the file
        (f"{m.removesuffix('_g')}_on_{b.removesuffix('_s')}(001)", m, b)
        for b, ms in SURFACES.items()
        for m in ms
    ]


def poses() -> None:
    from ase.io import write

    cat = catalogue()
    RELAX.mkdir(exist_ok=True)
    for bulk in SURFACES:
        slab = slab_of(cat, bulk)
        path = RELAX / f"{slab.info['species']}.start.extxyz"
        if not path.exists():
            write(path, slab, format="extxyz")
    for cid, mol, bulk in complexes():
        out = RELAX / f"{cid}.pose_search.json"
        if out.exists():
            continue
        slab = slab_of(cat, bulk)
        cation, anion = cat.solid(bulk).get_chemical_symbols()
        results, best = [], None
        for label, m in candidates(cat, mol, slab, cation, anion):
            atoms = slab + m
            e, steps = screen(atoms)
            results.append({"pose": label, "chgnet_energy_eV": e, "steps": steps})
            print(f"{cid}: {label}: {e:.3f} eV ({steps} steps)", flush=True)
            if best is None or e < best[0]:
                best = (e, atoms.copy())
        start = best[1]
        start.set_constraint()
        start.info.update({"species": cid, "kpts": slab.info["kpts"]})
        write(RELAX / f"{cid}.start.extxyz", start, format="extxyz")
        out.write_text(
            json.dumps(
                {
                    "complex": cid,
                    "candidates": results,
                    "chosen": min(results, key=lambda r: r["chgnet_energy_eV"]),
                },
                indent=1,
            )
            + "\n"
        )


def refine(ids: list[str]) -> None:
    """BFGS from the pose search's choice, at ``PRE`` then at ``TARGET``; resumable."""
    from ase.io import read, write

    names = [p.name.removesuffix(".start.extxyz") for p in RELAX.glob("*.start.extxyz")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for sid in names:
        if ids and sid not in ids:
            continue
        done = RELAX / f"{sid}.relaxed.extxyz"
        if done.exists():
            continue
        atoms = read(RELAX / f"{sid}.start.extxyz")
        kpts = tuple(int(k) for k in atoms.info["kpts"])
        pre = RELAX / f"{sid}.pre.extxyz"
        if not pre.exists():
            coarse = tuple(max(1, k // 2) for k in kpts)
            fmax = bfgs(atoms, PRE, coarse, RELAX / f"{sid}.pre")
            if fmax >= FMAX:
                continue
            write(pre, strip(atoms, sid, kpts, fmax, PRE), format="extxyz")
        atoms.positions = read(pre).positions
        fmax = bfgs(atoms, TARGET, kpts, RELAX / sid)
        if fmax < FMAX:
            write(done, strip(atoms, sid, kpts, fmax, TARGET), format="extxyz")
            print(f"{sid}: converged, max force {fmax:.3f} eV/Å", flush=True)


def bfgs(atoms: Atoms, spec_text: str, kpts: tuple[int, ...], stem: Path) -> float:
    """ASE BFGS at one level, resuming from ``stem``.traj; the final max force (eV/Å)."""
    from ase.io import read
    from ase.io.trajectory import Trajectory
    from ase.optimize import BFGS

    from tealign.compute.backends.gpaw import make_calculator
    from tealign.compute.spec import parse_spec

    traj = Path(f"{stem}.traj")
    done = read(traj, ":") if traj.exists() and traj.stat().st_size > 0 else []
    if done:
        atoms.positions = done[-1].positions
    fix_bottom(atoms)
    # symmetry off: a relaxation may break the slab's symmetry, which GPAW refuses mid-run
    atoms.calc = make_calculator(parse_spec(spec_text), {"size": kpts, "gamma": True},
                                 symmetry="off")
    opt = BFGS(atoms, trajectory=Trajectory(traj, "a", atoms), logfile=str(stem) + ".log")
    if len(done) > 1:  # rebuild BFGS's Hessian from the steps already taken
        opt.replay_trajectory(done)
    opt.run(fmax=FMAX, steps=200)
    f = atoms.get_forces()  # constrained: fixed atoms report zero
    return float(np.linalg.norm(f, axis=1).max())


def strip(atoms: Atoms, sid: str, kpts: tuple[int, ...], fmax: float, spec_text: str) -> Atoms:
    out = atoms.copy()
    out.set_constraint()
    out.calc = None
    out.info = {
        "species": sid,
        "kpts": np.array(kpts),
        "relax_fmax_eV_A": fmax,
        "relax_fixed": "bottom layer",
        "relax_level": spec_text,
    }
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["poses", "gpaw"])
    ap.add_argument("ids", nargs="*")
    args = ap.parse_args()
    if args.stage == "poses":
        poses()
    else:
        refine(args.ids)
