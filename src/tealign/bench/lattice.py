"""Lattice constants of cubic crystals (paper Fig. 3a/b, Tables III/IV, appendix D).

Each crystal of the package table (published figures, ``data/lattice/SOURCES.md``) is built
with ASE as a primitive cell at 1.02 × its PBE lattice constant (so the fmax criterion cannot
stop on the reference itself), its volume relaxed with
``FrechetCellFilter`` (hydrostatic strain, cubic symmetry kept) to fmax 0.01 eV/Å, and the
cubic lattice constant read back from the volume. Errors vs all-electron PBE (``a_pbe``) and
vs experiment (``a_exp_zpae``); MAE per structure type.

Cutoff analysis (docs/architecture.md §8.2): a model with cutoff r_max sees no neighbour at
all once the nearest-neighbour distance exceeds r_max (bcc: a·√3/2 > r_max, i.e.
a > 2·r_max/√3), and a bcc crystal misses its second shell (at a) once a > r_max. Crystals
beyond the first-shell limit are excluded from ``mae_A`` and listed under ``excluded`` with
their errors; r_max comes from the model (MACE) or ``--r-max``; without either nothing is
excluded.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import numpy as np

from tealign import rundir as rd
from tealign.bench.published import LABEL, LATTICE_MAE_A, LATTICE_MAE_BY_STRUCTURE_A
from tealign.io.outputs import write_json

#: primitive-cell volume → conventional cubic a: a = (factor · V)^(1/3)
VOLUME_FACTOR = {"fcc": 4.0, "diamond": 4.0, "zincblende": 4.0, "rocksalt": 4.0, "bcc": 2.0}
#: nearest-neighbour distance / a
FIRST_SHELL = {"fcc": 2**-0.5, "diamond": 3**0.5 / 4, "zincblende": 3**0.5 / 4,
               "rocksalt": 0.5, "bcc": 3**0.5 / 2}


def crystals(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    if path is None:
        text = (resources.files("tealign") / "data" / "lattice" / "cubic_crystals.csv").read_text()
    else:
        text = Path(path).read_text()
    rows = list(csv.DictReader(text.splitlines()))
    for r in rows:
        r["a_pbe"] = float(r["a_pbe"]) if r["a_pbe"] else None
        r["a_exp_zpae"] = float(r["a_exp_zpae"]) if r["a_exp_zpae"] else None
    return rows[:limit] if limit else rows


def build(row: dict, a: float):
    from ase.build import bulk

    return bulk(row["formula"], row["structure"], a=a)


def relax_lattice_constant(atoms, structure: str, calc, fmax: float = 0.01,
                           steps: int = 300, cutoff: float | None = None) -> tuple[float, bool]:
    """Relax the volume; returns (cubic a in Å, converged).

    Every geometry passes the runaway guard (``tealign.bench.runaway``) before the calculator
    sees it: a cell whose volume leaves [V0/3, 3·V0] of the start (or whose neighbour count
    triples, or that turns non-finite) raises :class:`~tealign.bench.runaway.Runaway`.
    ``cutoff``: the model's r_max for the neighbour count (default 5 Å).
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    from tealign.bench.runaway import GuardedCalculator, RunawayGuard

    atoms.calc = GuardedCalculator(calc, RunawayGuard(atoms, cutoff=cutoff))
    filt = FrechetCellFilter(atoms, hydrostatic_strain=True)
    opt = BFGS(filt, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    a = (VOLUME_FACTOR[structure] * atoms.get_volume()) ** (1 / 3)
    return float(a), converged


def run(calculator, outdir: Path, limit: int | None = None, d3: str | None = None,
        r_max: float | None = None, data: Path | None = None, progress=None) -> dict:
    from ase.data import atomic_numbers

    from tealign.bench.calculators import get_calculator, model_elements, model_r_max
    from tealign.bench.runaway import Runaway

    calc = get_calculator(calculator, d3=d3)
    r_max = r_max if r_max is not None else model_r_max(calculator)
    known = model_elements(calculator)
    rows, skipped = [], []
    attempted = 0  # ``limit`` counts crystals the calculator runs on, not the ones it skips
    for row in crystals(data):
        from ase.formula import Formula

        if limit and attempted >= limit:
            break
        elements = list(Formula(row["formula"]).count())
        if known is not None and not {atomic_numbers[e] for e in elements} <= known:
            skipped.append({"name": row["name"], "reason": "calculator lacks an element"})
            continue
        attempted += 1
        k = attempted - 1
        # start 2 % off the reference so the fmax criterion cannot stop on it
        start = 1.02 * (row["a_pbe"] or row["a_exp_zpae"])
        try:
            a, converged = relax_lattice_constant(build(row, start), row["structure"], calc,
                                                  cutoff=r_max)
        except Runaway as exc:
            skipped.append({"name": row["name"], "reason": f"runaway: {exc.reason}"})
            continue
        except Exception as exc:  # a calculator failure is this crystal's, not the run's
            skipped.append({"name": row["name"], "reason": f"{type(exc).__name__}: {exc}"})
            continue
        d1 = a * FIRST_SHELL[row["structure"]]
        entry = {
            "name": row["name"], "structure": row["structure"], "a_A": a,
            "a_pbe": row["a_pbe"], "a_exp_zpae": row["a_exp_zpae"],
            "error_vs_pbe_A": None if row["a_pbe"] is None else a - row["a_pbe"],
            "error_vs_exp_A": None if row["a_exp_zpae"] is None else a - row["a_exp_zpae"],
            "converged": converged, "nearest_neighbour_A": d1,
            "beyond_first_shell": bool(r_max is not None and d1 > r_max),
            "misses_second_shell": bool(r_max is not None and row["structure"] == "bcc"
                                        and a > r_max),
        }
        rows.append(entry)
        if progress:
            progress(k + 1)
    inside = [r for r in rows if not r["beyond_first_shell"] and r["error_vs_pbe_A"] is not None]
    by_structure: dict[str, float] = {}
    for s in sorted({r["structure"] for r in inside}):
        errs = [abs(r["error_vs_pbe_A"]) for r in inside if r["structure"] == s]
        by_structure[s] = float(np.mean(errs))
    exp = [abs(r["error_vs_exp_A"]) for r in inside if r["error_vs_exp_A"] is not None]
    result = {
        "benchmark": "lattice", "calculator": str(calculator), "d3": d3 or "none",
        "r_max_A": r_max, "n": len(inside),
        "mae_A": float(np.mean([abs(r["error_vs_pbe_A"]) for r in inside])) if inside else None,
        "mae_exp_A": float(np.mean(exp)) if exp else None,
        "mae_by_structure": by_structure,
        "excluded": [{"name": r["name"], "a_A": r["a_A"], "error_vs_pbe_A": r["error_vs_pbe_A"],
                      "reason": f"nearest neighbour {r['nearest_neighbour_A']:.3f} Å > r_max"}
                     for r in rows if r["beyond_first_shell"]],
        "second_shell_missed": [r["name"] for r in rows if r["misses_second_shell"]],
        "skipped": skipped, "crystals": rows,
        "published_mae_A": LATTICE_MAE_A,
        "published_mae_by_structure_A": LATTICE_MAE_BY_STRUCTURE_A,
        "published_label": LABEL,
    }
    outdir.mkdir(parents=True, exist_ok=True)
    _plot(rows, r_max, str(calculator), outdir / "lattice_errors.png")
    result["figures"] = ["lattice_errors.png"]
    write_json(outdir / rd.RESULTS_FILE, result)
    return result


def _plot(rows: list[dict], r_max: float | None, label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    for s in sorted({r["structure"] for r in rows}):
        sub = [r for r in rows if r["structure"] == s and r["a_pbe"]]
        ax.scatter([r["a_pbe"] for r in sub], [abs(r["error_vs_pbe_A"]) for r in sub],
                   label=s, s=25)
        for r in sub:
            ax.annotate(r["name"], (r["a_pbe"], abs(r["error_vs_pbe_A"])), fontsize=7,
                        xytext=(3, 2), textcoords="offset points")
    if r_max:
        ax.axvline(2 * r_max / 3**0.5, ls="--", color="tab:blue",
                   label=f"bcc first-shell limit (r_max {r_max:g} Å)")
    ax.set_xlabel("PBE lattice constant (Å)")
    ax.set_ylabel("|a − a_PBE| (Å)")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_title(f"Lattice constants: {Path(label).name}")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=130)
    plt.close(fig)
