"""The fitted state of a :class:`~tealign.align.TotalEnergyAlignment`, one object for all the
ways an alignment comes to be: ``fit``, ``load``/``from_dict``, ``compose`` and
``icea_only`` each build a :class:`FittedAlignment`, and the estimator exposes its fields
as the fitted attributes (``a_``, ``offsets_``, …). Energies in eV."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from tealign.align.calibration import CalibrationData
from tealign.align.models import AUTO, choose_auto, implausible, make_model
from tealign.errors import FrameError, SetupError
from tealign.methods import IsolatedAtomTable


@dataclass
class FittedAlignment:
    """What a fitted alignment holds; each field is the estimator's attribute ``<name>_``.

    a : AEC factor; offsets : per-element offsets (eV, nonzero ones only); a_ci95 : [lo, hi]
    of a (None for a chain); model : the model fitted (``chain`` for a composition);
    n, n_rejected : calibration structures used / rejected; rmse_icea, rmse_tea (eV),
    r2_icea, r2_tea : total-energy fit quality; cv_rmse : {model: eV} of ``auto``;
    calibration : where the calibration came from; chain : the composed links' saved forms;
    rejects : the rejected calibration frames (empty unless fitted here); parity : arrays
    for parity plots (only after ``fit``); source_table, target_table : isolated-atom tables.
    """

    a: float
    offsets: dict[str, float]
    a_ci95: list[float] | None
    model: str
    n: int | None
    n_rejected: int | None
    rmse_icea: float | None
    rmse_tea: float | None
    r2_icea: float | None
    r2_tea: float | None
    cv_rmse: dict[str, float] | None
    calibration: dict
    chain: list[dict]
    source_table: IsolatedAtomTable
    target_table: IsolatedAtomTable
    rejects: list[FrameError] = field(default_factory=list)
    parity: dict[str, np.ndarray] | None = None


#: the estimator's fitted attributes, one per field of :class:`FittedAlignment`
ATTRIBUTES = tuple(f.name + "_" for f in fields(FittedAlignment))


def _rmse(r: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(r))))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def fit_state(data: CalibrationData, src_t: IsolatedAtomTable, tgt_t: IsolatedAtomTable, *,
              model: str, alpha: float, n_bootstrap: int, cv_folds: int, random_state: int,
              fname: str, where: dict) -> FittedAlignment:
    """Fit ICEA + the correction ``model`` (a registry name or ``auto``) on ``data``;
    ``where`` (file, sha256, keys, split) opens the ``calibration`` record. A fitted factor
    or offset outside the plausible ranges is a setup error."""
    sum_src = data.counts @ np.array([src_t.energy(s) for s in data.elements])
    sum_tgt = data.counts @ np.array([tgt_t.energy(s) for s in data.elements])
    x = sum_src - data.source_energy  # source atomization energy
    y = sum_tgt - data.target_energy  # target atomization energy
    rng = np.random.default_rng(random_state)
    choice, cv_rmse = model, None
    if choice == AUTO:
        choice, cv_rmse = choose_auto(x, data.counts, y, data.groups, cv_folds, alpha, rng)
    fitted = make_model(choice, alpha).fit(x, data.counts, y)
    a, offsets = float(fitted.a_), fitted.offsets_
    a_ci95 = fitted.interval(x, data.counts, y, n_bootstrap, rng)
    nonzero = {s: float(c) for s, c in zip(data.elements, offsets) if c != 0.0}
    wrong = implausible(a, nonzero)
    if wrong:
        raise SetupError(f"fitted {wrong[1]}: check the energy keys, their units (eV) and "
                         "the isolated-atom tables", file=fname, field=wrong[0])
    e_icea = sum_tgt - x
    e_tea = sum_tgt - (a * x + data.counts @ offsets)
    n, n_rejected = len(x), len(data.rejects)
    return FittedAlignment(
        a=a, offsets=nonzero, a_ci95=a_ci95, model=choice, n=n, n_rejected=n_rejected,
        rmse_icea=_rmse(data.target_energy - e_icea), rmse_tea=_rmse(data.target_energy - e_tea),
        r2_icea=_r2(data.target_energy, e_icea), r2_tea=_r2(data.target_energy, e_tea),
        cv_rmse=cv_rmse, calibration={**where, "n": n, "n_rejected": n_rejected,
                                      "elements": data.elements},
        chain=[], source_table=src_t, target_table=tgt_t, rejects=data.rejects,
        parity={"target": data.target_energy, "icea": e_icea, "tea": e_tea,
                "x": x, "y": y, "n_atoms": data.counts.sum(axis=1)})


def icea_state(src_t: IsolatedAtomTable, tgt_t: IsolatedAtomTable,
               note: str = "") -> FittedAlignment:
    """Isolated-atom differences alone (a = 1, no offsets): nothing to fit."""
    return FittedAlignment(
        a=1.0, offsets={}, a_ci95=[1.0, 1.0], model="icea", n=0, n_rejected=0,
        rmse_icea=None, rmse_tea=None, r2_icea=None, r2_tea=None, cv_rmse=None,
        calibration={"note": note or "isolated-atom differences only; no calibration"},
        chain=[], source_table=src_t, target_table=tgt_t)


def check_chainable(first: FittedAlignment, second: FittedAlignment) -> None:
    """``first``'s target table must be ``second``'s source table (to 1e-9 eV)."""
    mid_a, mid_b = first.target_table, second.source_table
    common = set(mid_a.energies) & set(mid_b.energies)
    if not common or any(abs(mid_a.energies[s] - mid_b.energies[s]) > 1e-9 for s in common):
        raise SetupError(
            f"cannot chain: the first alignment's target table '{mid_a.name}' is not the "
            f"second's source table '{mid_b.name}'", field="chain")


def compose_state(first: FittedAlignment, second: FittedAlignment,
                  src_t: IsolatedAtomTable, tgt_t: IsolatedAtomTable,
                  links: list[dict]) -> FittedAlignment:
    """``first`` (3 → 2) then ``second`` (2 → 1) as one: a = a₂₁·a₃₂, c = a₂₁·c₃₂ + c₂₁
    (eV); ``links`` are the two saved forms, kept as ``chain``."""
    elements = set(first.offsets) | set(second.offsets)
    offsets = {s: second.a * first.offsets.get(s, 0.0) + second.offsets.get(s, 0.0)
               for s in elements}
    el1 = first.calibration.get("elements") or []
    el2 = second.calibration.get("elements") or []
    return FittedAlignment(
        a=first.a * second.a, offsets={s: c for s, c in offsets.items() if c != 0.0},
        a_ci95=None, model="chain", n=0, n_rejected=0, rmse_icea=None, rmse_tea=None,
        r2_icea=None, r2_tea=None, cv_rmse=None,
        calibration={"elements": sorted(set(el1) & set(el2)) if (el1 and el2) else []},
        chain=links, source_table=src_t, target_table=tgt_t)
