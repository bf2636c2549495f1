"""Si energy–volume curve (paper Fig. 3c): energy per atom of diamond Si for a = 5.00 … 6.00 Å
in 0.01 Å steps, compared with a reference curve relative to each curve's own minimum (codes'
energy zeros differ). Equilibrium a and bulk modulus from a Birch–Murnaghan fit.

The reference is computed with a tealign compute backend (``--reference SPEC``, e.g.
``gpaw:pbe/pw800``; resumable job store) or read from a results.json of an earlier run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase.build import bulk

from tealign import rundir as rd
from tealign import units
from tealign.errors import RETRY_HINT, SetupError
from tealign.io.outputs import write_json

GRID = np.round(np.arange(5.00, 6.0001, 0.01), 2)
ATOMS_PER_CONVENTIONAL_CELL = 8
#: Å, diamond Si near the PBE minimum: the cell a GPAW reference curve's k-mesh is chosen from
A_EQUILIBRIUM = 5.47


def si(a: float):
    return bulk("Si", "diamond", a=float(a))


def curve(calculator, grid=GRID, progress=None) -> np.ndarray:
    """Energy per atom (eV) on the grid with a calculator (name or ASE object)."""
    from tealign.bench.calculators import get_calculator

    calc = get_calculator(calculator)
    out = np.empty(len(grid))
    for i, a in enumerate(grid):
        atoms = si(a)
        atoms.calc = calc
        out[i] = atoms.get_potential_energy() / len(atoms)
        if progress:
            progress(i + 1)
    return out


def reference_curve(spec: str, store_dir: Path, grid=GRID, workers: int = 1,
                    progress=None, retry_failed: bool = False) -> np.ndarray:
    """The same curve with a compute backend, through the resumable job store (a point the
    store holds as failed runs again only with ``retry_failed``; otherwise SetupError).

    A plane-wave (GPAW) curve uses one k-point mesh for every point, chosen from the cell at
    ``A_EQUILIBRIUM`` at the SPEC's ``kpt_density``: a mesh recomputed from each cell jumps
    where it changes (+19 meV/atom between 5.44 and 5.45 Å at 2.5 Å⁻¹)."""
    from tealign.compute.backends import BACKENDS
    from tealign.compute.runner import Job, run_jobs
    from tealign.compute.spec import parse_spec
    from tealign.compute.store import JobStore

    s = parse_spec(spec)
    mesh = None
    # one mesh for the whole curve, from the equilibrium cell (docs/architecture.md §7.5)
    if BACKENDS[s.code].kpoint_mesh:
        from tealign.compute.kpoints import mesh_from_density

        mesh = mesh_from_density(si(A_EQUILIBRIUM).cell[:], float(s.settings["kpt_density"]))
    jobs = [Job(spec=s, atoms=si(a), name=f"Si_a{a:.2f}", forces=False, kpts=mesh)
            for a in grid]
    with JobStore(store_dir) as store:
        run_jobs(jobs, store, workers=workers, progress=progress, retry_failed=retry_failed)
        out = []
        for j in jobs:
            got = store.get(j.key)
            if got is None or got.result is None:
                raise SetupError(f"reference point {j.name} failed: "
                                 f"{got.error if got else 'not run'}; {RETRY_HINT}",
                                 file=str(store_dir), field="--reference")
            out.append(got.result.energy / len(j.atoms))
    return np.array(out)


def load_reference(path: str | Path, energy_key: str | None = None) -> np.ndarray:
    """A reference curve from a results.json of this benchmark, or from an extxyz of the
    grid's Si cells carrying an ``energy_<label>`` (e.g. computed by ``tealign compute``)."""

    p = Path(path)
    if p.suffix == ".json":
        d = json.loads(p.read_text())
        if d.get("grid_A") != GRID.tolist():
            raise SetupError("reference curve is on another grid", file=str(p), field="grid_A")
        return np.array(d["e_per_atom_eV"])
    from tealign.io import read_batch

    b = read_batch(p)
    key = energy_key or next((k for k in b.info if k.startswith("energy")), None)
    if key is None:
        raise SetupError("no energy key in the reference frames", file=str(p), field="energy")
    a = (np.abs(np.linalg.det(b.cell)) * ATOMS_PER_CONVENTIONAL_CELL / b.n_atoms) ** (1 / 3)
    order = np.argsort(a)
    if len(a) != len(GRID) or not np.allclose(a[order], GRID, atol=1e-6):
        raise SetupError(f"reference frames are not the {len(GRID)} grid points 5.00-6.00 Å",
                         file=str(p), field="cell")
    return (np.asarray(b.info[key], float) / b.n_atoms)[order]


def fit_birch_murnaghan(grid, e_per_atom) -> dict:
    """Birch–Murnaghan fit: a0 (Å), B0 (GPa), E0 (eV/atom)."""
    from ase.eos import EquationOfState

    v = np.asarray(grid) ** 3 / ATOMS_PER_CONVENTIONAL_CELL
    eos = EquationOfState(v, np.asarray(e_per_atom), eos="birchmurnaghan")
    v0, e0, b = eos.fit()
    return {"a0_A": float((v0 * ATOMS_PER_CONVENTIONAL_CELL) ** (1 / 3)),
            "b0_GPa": float(b * units.EV_PER_A3_TO_GPA), "e0_eV_per_atom": float(e0)}


#: The former name of :func:`fit_birch_murnaghan` (deprecated: ``tealign.fit`` is the
#: alignment fit).
fit = fit_birch_murnaghan


def rmse_relative(e1, e2) -> float:
    """RMSE (meV/atom) of two curves, each relative to its own minimum."""
    d = (np.asarray(e1) - np.min(e1)) - (np.asarray(e2) - np.min(e2))
    return float(np.sqrt(np.mean(d**2)) * 1000)


def run(calculator, outdir: Path, reference: str | None = None, reference_file: Path | None = None,
        store: Path | None = None, workers: int = 1, progress=None,
        retry_failed: bool = False) -> dict:
    from tealign.bench.calculators import model_elements

    known = model_elements(calculator)
    if known is not None and 14 not in known:
        raise SetupError("the model has no Si (atomic number 14); the E–V benchmark needs it",
                         file=str(calculator), field="--calculator")
    outdir.mkdir(parents=True, exist_ok=True)
    e = curve(calculator, progress=progress)
    result = {"benchmark": "eos", "calculator": str(calculator), "grid_A": GRID.tolist(),
              "e_per_atom_eV": e.tolist(), **fit_birch_murnaghan(GRID, e)}
    ref = None
    if reference:
        ref = reference_curve(reference, store or outdir / "reference.store", workers=workers,
                              retry_failed=retry_failed)
        result["reference"] = reference
    elif reference_file:
        ref = load_reference(reference_file)
        result["reference"] = str(reference_file)
    if ref is not None:
        result["reference_e_per_atom_eV"] = ref.tolist()
        rf = fit_birch_murnaghan(GRID, ref)
        result["reference_a0_A"], result["reference_b0_GPa"] = rf["a0_A"], rf["b0_GPa"]
        result["rmse_vs_reference_meV_per_atom"] = rmse_relative(e, ref)
    else:
        result["rmse_vs_reference_meV_per_atom"] = None
    _plot(e, ref, str(calculator), result.get("reference", ""), outdir / "eos.png")
    result["figures"] = ["eos.png"]
    write_json(outdir / rd.RESULTS_FILE, result)
    return result


def _plot(e, ref, label, ref_label, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), constrained_layout=True)
    ax.plot(GRID, (e - e.min()) * 1000, label=Path(label).name or label)
    if ref is not None:
        ax.plot(GRID, (ref - ref.min()) * 1000, "--", label=ref_label)
    ax.set_xlabel("Si lattice constant a (Å)")
    ax.set_ylabel("E − E_min (meV/atom)")
    ax.set_title("Si energy–volume curve")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=130)
    plt.close(fig)
