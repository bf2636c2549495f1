"""Reaction barriers (paper Fig. 2c, Table II): single points on reactant, transition state
and product of each RDB7 reaction; forward barrier E_TS − E_R against the CCSD(T)-F12
``barrier_kcal_mol``. MAE in kcal/mol and eV; a violin plot of the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tealign import rundir as rd
from tealign import units
from tealign.bench.published import LABEL, TRANSITION1X_MAE_EV
from tealign.errors import SetupError
from tealign.io import read_batch
from tealign.io.outputs import write_json


def load_reactions(path: str | Path, limit: int | None = None):
    """Frames of the first ``limit`` reactions in ascending ``rxn`` order, grouped by rxn.

    Returns (batch, {rxn: {"r": i, "ts": j, "p": k}}, reference barriers in kcal/mol).
    """
    b = read_batch(path)
    for key in ("rxn", "role", "barrier_kcal_mol"):
        if key not in b.info:
            raise SetupError("reaction frames need rxn, role and barrier_kcal_mol",
                             file=str(path), field=key)
    rxns = sorted({int(r) for r in b.info["rxn"]})
    if limit is not None:
        rxns = rxns[:limit]
    keep = np.isin(b.info["rxn"].astype(int), rxns)
    b = b.select(keep)
    index: dict[int, dict[str, int]] = {}
    ref: dict[int, float] = {}
    for i in range(b.n_frames):
        r = int(b.info["rxn"][i])
        index.setdefault(r, {})[str(b.info["role"][i])] = i
        ref[r] = float(b.info["barrier_kcal_mol"][i])
    complete = [r for r in rxns if {"r", "ts"} <= set(index.get(r, {}))]
    return b, {r: index[r] for r in complete}, {r: ref[r] for r in complete}


def barriers(energies: np.ndarray, index: dict[int, dict[str, int]]) -> dict[int, float]:
    """Forward barriers E_TS − E_R in kcal/mol from per-frame energies in eV."""
    return {r: (energies[ix["ts"]] - energies[ix["r"]]) / units.KCAL_PER_MOL_TO_EV
            for r, ix in index.items()}


def run(calculator: str, data: Path, outdir: Path, limit: int | None = None,
        d3: str | None = None, progress=None, dtype: str | None = None) -> dict:
    from tealign.bench.energies import single_points

    batch, index, ref = load_reactions(data, limit)
    energies = single_points(calculator, batch, d3=d3, progress=progress, dtype=dtype)
    pred = barriers(energies, index)
    rxns = sorted(pred)
    err = np.array([pred[r] - ref[r] for r in rxns])
    result = {
        "benchmark": "reactions", "calculator": calculator, "d3": d3 or "none",
        "data": str(data), "n": len(rxns), "dtype": dtype,
        "mae_kcal_mol": float(np.mean(np.abs(err))),
        "mae_eV": float(np.mean(np.abs(err)) * units.KCAL_PER_MOL_TO_EV),
        "rmse_kcal_mol": float(np.sqrt(np.mean(err**2))),
        "per_reaction": [{"rxn": r, "barrier_ref_kcal_mol": ref[r],
                          "barrier_pred_kcal_mol": float(pred[r])} for r in rxns],
        "published_transition1x_barrier_mae_eV": {
            k: v[1] for k, v in TRANSITION1X_MAE_EV.items()},
        "published_label": LABEL,
    }
    outdir.mkdir(parents=True, exist_ok=True)
    _violin(err, calculator, outdir / "reactions_violin.png")
    result["figures"] = ["reactions_violin.png"]
    write_json(outdir / rd.RESULTS_FILE, result)
    return result


def _violin(err: np.ndarray, label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
    ax.violinplot([err * units.KCAL_PER_MOL_TO_EV], showmedians=True)
    ax.axhline(0, color="0.5", lw=1)
    ax.set_xticks([1], [Path(label).name])
    ax.set_ylabel("barrier error (eV)")
    ax.set_title(f"RDB7 forward barriers, N = {len(err)}\nMAE = "
                 f"{np.mean(np.abs(err)) * units.KCAL_PER_MOL_TO_EV:.3f} eV")
    fig.savefig(path, dpi=130)
    plt.close(fig)
