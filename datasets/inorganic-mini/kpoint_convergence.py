"""k-point convergence of every inorganic-mini crystal at the target settings.

For each crystal's equilibrium 2-atom cell (the cell ``make_geometries.py`` builds), the GPAW
energy per atom is computed on Γ-centred meshes from increasing k-point densities
(``tealign.compute.kpoints.mesh_from_density``). The chosen density is the smallest whose
energy and that of every denser mesh lie within 1 meV/atom of the densest one. The result,
``kpoints.json`` (density, mesh and the energies behind the choice, per crystal), is read by
``make_geometries.py``, which gives every frame of a crystal that one mesh.

    python kpoint_convergence.py [--spec SPEC] [--workers 2]   # writes kpoints.json
"""

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor

from tealign.compute.backends import run_calculation
from tealign.compute.kpoints import mesh_from_density
from tealign.compute.spec import parse_spec
from tealign.io.outputs import write_json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crystals import CRYSTALS, equilibrium_cell  # noqa: E402

DENSITIES = (2.5, 3.5, 4.5, 5.5, 7.0, 9.0)  # k-points per Å⁻¹
TOL = 1e-3  # eV/atom


def energy(args):
    spec_text, name, density = args
    atoms = equilibrium_cell(name)
    mesh = mesh_from_density(atoms.cell[:], density)
    res = run_calculation(parse_spec(spec_text), atoms, forces=False, kpts=mesh)
    return name, density, mesh, res.energy / len(atoms)


def choose(by_density: dict[float, dict]) -> dict:
    """The smallest density whose energy, and that of every denser mesh, is within TOL of the
    densest mesh's; with the evidence."""
    ref = by_density[DENSITIES[-1]]["energy_per_atom_eV"]
    chosen = DENSITIES[-1]
    for d in reversed(DENSITIES[:-1]):
        if abs(by_density[d]["energy_per_atom_eV"] - ref) <= TOL:
            chosen = d
        else:
            break
    return {"density": chosen, "mesh": by_density[chosen]["mesh"],
            "error_vs_densest_meV_per_atom": {
                str(d): 1e3 * (by_density[d]["energy_per_atom_eV"] - ref) for d in DENSITIES},
            "energy_per_atom_eV": {str(d): by_density[d]["energy_per_atom_eV"]
                                   for d in DENSITIES},
            "meshes": {str(d): by_density[d]["mesh"] for d in DENSITIES}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="pbe=gpaw:pbe/pw800;vacuum=5.0;smearing=0.1")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--crystals", default=",".join(CRYSTALS),
                    help="comma-separated; crystals already in the output are kept (resume)")
    ap.add_argument("-o", default="kpoints.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = {"spec": args.spec, "tolerance_eV_per_atom": TOL, "densities": list(DENSITIES),
           "crystals": {}}
    if os.path.exists(args.o):
        with open(args.o) as fh:
            old = json.load(fh)
        if old.get("spec") == args.spec:
            out["crystals"] = old["crystals"]
    todo = [n for n in args.crystals.split(",") if n not in out["crystals"]]
    tasks = [(args.spec, n, d) for n in todo for d in DENSITIES]
    rows: dict[str, dict] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, d, mesh, e in pool.map(energy, tasks):
            rows.setdefault(name, {})[d] = {"mesh": list(mesh), "energy_per_atom_eV": e}
            print(f"{name:5s} density {d:4.1f} mesh {mesh} E/atom {e:.6f}", flush=True)
            if len(rows[name]) == len(DENSITIES):
                out["crystals"][name] = choose(rows[name])
                write_json(args.o, out)  # after every crystal: a rerun resumes
    print(f"wrote {args.o}: " + ", ".join(f"{n} {c['mesh']}" for n, c in out["crystals"].items()))


if __name__ == "__main__":
    main()
