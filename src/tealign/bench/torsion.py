"""Biaryl torsion profiles (paper Fig. 2a, Table I).

For each fragment: the dihedral is the SDF atoms mapped 1-2-3-4; relaxed scans with that
dihedral fixed (ASE ``FixInternals``), all other coordinates relaxed to fmax 0.01 eV/Å. The
scan starts at the reference-grid point nearest the starting geometry and goes the full 360°
in each direction, each point starting from its neighbour's relaxed geometry; per angle the
lower energy of the two directions is kept. Relaxations that hit the step limit are flagged.
Errors against the reference profile (OpenFF B3LYP-D3(BJ)/DZVP; it includes dispersion, so
compare dispersion-free models with ``--d3``): barrier height (max − min on the reference
grid) and profile MAE after setting each profile's minimum to zero, in kcal/mol.
"""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from tealign import units
from tealign.bench.published import LABEL, TORSION_BARRIER_MAE_KCAL
from tealign.errors import SetupError


def read_sdf(path: str | Path) -> dict[str, tuple[Atoms, list[int]]]:
    """V2000 SDF → {record name: (Atoms, 0-based indices of atoms mapped 1, 2, 3, 4)}."""
    out = {}
    lines = Path(path).read_text().splitlines()
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        counts = lines[i + 3]
        n_atoms = int(counts[:3])
        symbols, pos, mapped = [], [], {}
        for k in range(n_atoms):
            f = lines[i + 4 + k].split()
            pos.append([float(f[0]), float(f[1]), float(f[2])])
            symbols.append(f[3])
            if len(f) > 13 and f[13] != "0":
                mapped[int(f[13])] = k
        if sorted(mapped)[:4] != [1, 2, 3, 4]:
            raise SetupError("record lacks atoms mapped 1-2-3-4", file=str(path), field=name)
        out[name] = (Atoms([atomic_numbers[s] for s in symbols], positions=pos),
                     [mapped[m] for m in (1, 2, 3, 4)])
        while i < len(lines) and lines[i].strip() != "$$$$":
            i += 1
        i += 1
    return out


def read_profiles(path: str | Path, limit: int | None = None) -> list[dict]:
    """The CSV's reference profiles: molid, angles (deg), energies relative (kcal/mol)."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            angles = np.array(ast.literal_eval(row["angles"]), dtype=float)
            e = np.array(ast.literal_eval(row["energy"]), dtype=float)
            order = np.argsort(angles)
            angles, e = angles[order], e[order]
            rel = (e - e.min()) * units.HARTREE_TO_EV / units.KCAL_PER_MOL_TO_EV
            rows.append({"molid": row["molid"], "smiles": row["smiles"], "angles": angles,
                         "energy_kcal_mol": rel})
    return rows[:limit] if limit else rows


def _rotating_side(atoms: Atoms, idx: list[int]) -> np.ndarray:
    """Mask of the atoms on the a3/a4 side of the a2–a3 bond."""
    from tealign.bonds import bond_graph, side_of_bond

    a2, a3 = idx[1], idx[2]
    seen = side_of_bond(bond_graph(atoms, mult=1.1), a2, a3)
    if a2 in seen:
        raise SetupError("the dihedral's central bond is in a ring", field="torsion")
    mask = np.zeros(len(atoms), dtype=bool)
    mask[list(seen)] = True
    return mask


def relax_at(atoms: Atoms, idx: list[int], angle: float, calc, fmax: float = 0.01,
             steps: int = 500, mask: np.ndarray | None = None) -> tuple[Atoms, float, bool]:
    """Set the dihedral to ``angle`` (deg), relax everything else; (atoms, E in eV, converged).

    ``mask``: the atoms that turn with a4 (default: found from the bonds of ``atoms``).
    A relaxation that breaks down (FixInternals cannot hold the dihedral, or the calculator
    returns non-finite energies or positions) gives ``E = nan`` and ``converged = False``.
    """
    from ase.constraints import FixInternals
    from ase.optimize import BFGS

    a = atoms.copy()
    a.set_dihedral(*idx, angle, mask=_rotating_side(a, idx) if mask is None else mask)
    a.set_constraint(FixInternals(dihedrals_deg=[[angle, idx]]))
    a.calc = calc
    try:
        # a breakdown shows as non-finite numbers, checked below: numpy need not warn on the way
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            converged = bool(BFGS(a, logfile=None).run(fmax=fmax, steps=steps))
            energy = float(a.get_potential_energy())
    except (ValueError, RuntimeError, FloatingPointError, np.linalg.LinAlgError):
        return a, float("nan"), False
    if not (np.isfinite(energy) and np.isfinite(a.positions).all()):
        return a, float("nan"), False
    return a, energy, converged


def scan(atoms: Atoms, idx: list[int], grid: np.ndarray, calc, step: float, steps: int = 500,
         progress=None) -> dict:
    """Relaxed scan over the full circle in both directions; the lower energy per angle."""
    start = atoms.get_dihedral(*idx)
    grid = np.asarray(grid) % 360
    diffs = np.abs((grid - start + 180) % 360 - 180)
    a0 = float(grid[int(np.argmin(diffs))])
    n = int(round(360 / step))
    # the bonds of the reference geometry: a poor model may bring atoms of a relaxed point
    # close enough to look bonded, which must not change which side turns
    mask = _rotating_side(atoms, idx)
    best: dict[float, tuple[float, bool]] = {}
    for direction in (+1, -1):
        current = atoms
        for k in range(n + 1):
            ang = (a0 + direction * k * step) % 360
            relaxed, e, conv = relax_at(current, idx, ang, calc, steps=steps, mask=mask)
            # a point that broke down is not a start for its neighbour: the next one starts
            # again from the reference geometry
            current = relaxed if np.isfinite(e) else atoms
            key = round(ang, 6) % 360
            if key not in best or np.isnan(best[key][0]) or e < best[key][0]:
                best[key] = (e, conv)
            if progress:
                progress()
    return best


def run(calculator, outdir: Path, csv_path: Path, sdf_path: Path, limit: int | None = None,
        step: float = 15.0, d3: str | None = None, steps: int = 500, progress=None) -> dict:
    from tealign.bench.calculators import get_calculator

    if 15.0 % step:
        raise SetupError("--step must divide 15° (the reference grid)", field="--step")
    calc = get_calculator(calculator, d3=d3)
    geoms = read_sdf(sdf_path)
    results, skipped = [], []
    for prof in read_profiles(csv_path, limit):
        if prof["molid"] not in geoms:
            skipped.append({"molid": prof["molid"], "reason": "no geometry in the SDF"})
            continue
        atoms, idx = geoms[prof["molid"]]
        fine = np.arange(0, 360, step)
        best = scan(atoms, idx, fine, calc, step, steps=steps, progress=progress)
        ref_angles = prof["angles"] % 360
        pred = np.array([best[round(a, 6) % 360][0] for a in ref_angles])
        flags = [not best[round(a, 6) % 360][1] for a in ref_angles]
        if not np.isfinite(pred).all():
            bad = int((~np.isfinite(pred)).sum())
            skipped.append({"molid": prof["molid"], "reason": (
                f"the relaxation broke down (non-finite energy or geometry, or FixInternals "
                f"could not hold the dihedral) at {bad} of {len(pred)} reference angles in "
                "both scan directions")})
            continue
        pred_rel = (pred - pred.min()) / units.KCAL_PER_MOL_TO_EV
        ref_rel = prof["energy_kcal_mol"]
        barrier_pred = float(pred_rel.max() - pred_rel.min())
        barrier_ref = float(ref_rel.max() - ref_rel.min())
        results.append({
            "molid": prof["molid"], "smiles": prof["smiles"],
            "angles_deg": prof["angles"].tolist(), "reference_kcal_mol": ref_rel.tolist(),
            "predicted_kcal_mol": pred_rel.tolist(),
            "barrier_ref_kcal_mol": barrier_ref, "barrier_pred_kcal_mol": barrier_pred,
            "barrier_error_kcal_mol": barrier_pred - barrier_ref,
            "profile_mae_kcal_mol": float(np.mean(np.abs(pred_rel - ref_rel))),
            "unconverged_points": int(sum(flags)),
        })
    if not results:
        reasons = "; ".join(f"{s['molid']}: {s['reason']}" for s in skipped)
        raise SetupError(f"no torsion profile could be computed ({reasons})",
                         file=str(csv_path))
    res = {
        "benchmark": "torsion", "calculator": str(calculator), "d3": d3 or "none",
        "step_deg": step, "n": len(results),
        "barrier_mae_kcal_mol": float(np.mean([abs(r["barrier_error_kcal_mol"])
                                               for r in results])),
        "profile_mae_kcal_mol": float(np.mean([r["profile_mae_kcal_mol"] for r in results])),
        "unconverged_points": int(sum(r["unconverged_points"] for r in results)),
        "max_steps": steps, "molecules": results, "skipped": skipped,
        "published_barrier_mae_kcal_mol": TORSION_BARRIER_MAE_KCAL,
        "published_label": LABEL + "; Table I used CCSD(T) references",
    }
    outdir.mkdir(parents=True, exist_ok=True)
    _plot(results, str(calculator), outdir / "torsion_profiles.png")
    res["figures"] = ["torsion_profiles.png"]
    (outdir / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def _plot(results: list[dict], label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False,
                             constrained_layout=True)
    for ax, r in zip(axes.flat, results):
        ax.plot(r["angles_deg"], r["reference_kcal_mol"], "k-", label="reference")
        ax.plot(r["angles_deg"], r["predicted_kcal_mol"], "o-", ms=3, label=Path(label).name)
        ax.set_title(r["molid"], fontsize=8)
        ax.set_xlabel("dihedral (°)", fontsize=7)
        ax.set_ylabel("kcal/mol", fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.savefig(path, dpi=120)
    plt.close(fig)
