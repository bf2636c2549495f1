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
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers

from tealign import rundir as rd
from tealign import units
from tealign.bench.published import LABEL, TORSION_BARRIER_MAE_KCAL
from tealign.errors import SetupError
from tealign.io.outputs import write_json


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


def _constrained(atoms: Atoms, idx: list[int], angle: float, mask: np.ndarray | None) -> Atoms:
    """A copy of ``atoms`` with the dihedral set to ``angle`` and held by FixInternals."""
    from ase.constraints import FixInternals

    a = atoms.copy()
    a.set_dihedral(*idx, angle, mask=_rotating_side(a, idx) if mask is None else mask)
    a.set_constraint(FixInternals(dihedrals_deg=[[angle, idx]]))
    return a


#: what a breakdown of a constrained relaxation raises (FixInternals, BFGS, the calculator)
_BREAKDOWN = (ValueError, RuntimeError, FloatingPointError, ZeroDivisionError,
              np.linalg.LinAlgError)


def _guard_reason(exc) -> str:
    """A runaway guard's stop as a point's reason: non-finite numbers are a breakdown (as
    before the guard), the rest a runaway."""
    kind = "breakdown" if exc.reason.startswith("non-finite") else "runaway"
    return f"{kind}: {exc.reason}"


def relax_at(atoms: Atoms, idx: list[int], angle: float, calc, fmax: float = 0.01,
             steps: int = 500, mask: np.ndarray | None = None,
             info: dict | None = None) -> tuple[Atoms, float, bool]:
    """Set the dihedral to ``angle`` (deg), relax everything else; (atoms, E in eV, converged).

    ``mask``: the atoms that turn with a4 (default: found from the bonds of ``atoms``).
    A relaxation that breaks down (FixInternals cannot hold the dihedral, the calculator
    returns non-finite energies or positions, or a runaway guard wrapped around ``calc``
    stops it) gives ``E = nan`` and ``converged = False``; ``info`` (a dict, if given)
    receives ``reason`` then. BFGS makes at most ``steps + 1`` force calls.
    """
    from ase.optimize import BFGS

    from tealign.bench.runaway import ForceCallCapReached, Runaway

    a = _constrained(atoms, idx, angle, mask)
    a.calc = calc
    try:
        # a breakdown shows as non-finite numbers, checked below: numpy need not warn on the way
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            converged = bool(BFGS(a, logfile=None).run(fmax=fmax, steps=steps))
            energy = float(a.get_potential_energy())
    except Runaway as exc:
        if info is not None:
            info["reason"] = _guard_reason(exc)
        return a, float("nan"), False
    except ForceCallCapReached as exc:
        if info is not None:
            info["reason"] = str(exc)
        return a, float("nan"), False
    except _BREAKDOWN as exc:
        if info is not None:
            info["reason"] = f"breakdown: {type(exc).__name__}: {exc}"
        return a, float("nan"), False
    if not (np.isfinite(energy) and np.isfinite(a.positions).all()):
        if info is not None:
            info["reason"] = "breakdown: non-finite energy or positions"
        return a, float("nan"), False
    return a, energy, converged


class ForceBudget:
    """Shares a cap on force calls among the scan points of a benchmark.

    Each point, when it starts, is allowed ``min(per_point, free // points_left)`` force calls
    (``free``: the cap less what finished points used and what running points hold), so the
    calls of all points never exceed the cap, every point gets at least one call while the cap
    is at least the number of points, and what a fast point leaves unused goes to later ones.
    ``cap=None``: every point gets ``per_point``.
    """

    def __init__(self, cap: int | None, n_points: int, per_point: int) -> None:
        self.cap, self.left, self.per_point = cap, n_points, per_point
        self.used = self.reserved = 0

    def start(self) -> int:
        if self.cap is None:
            a = self.per_point
        else:
            free = self.cap - self.used - self.reserved
            a = min(self.per_point, free // max(self.left, 1))
        self.left -= 1
        self.reserved += a
        return a

    def finish(self, allowance: int, used: int) -> None:
        self.reserved -= allowance
        self.used += used


def _status(e: float, conv: bool, calls: int, allowance: int, per_point: int,
            reason: str | None) -> str:
    """converged | max_steps | cap (cut short by the force-call cap) | not_run (cap: no call
    left) | runaway | breakdown."""
    if allowance == 0:
        return "not_run"
    if not np.isfinite(e):
        return "runaway" if reason and reason.startswith("runaway") else "breakdown"
    if conv:
        return "converged"
    return "cap" if allowance < per_point else "max_steps"


def scan(atoms: Atoms, idx: list[int], grid: np.ndarray, calc, step: float, steps: int = 500,
         progress=None, budget: ForceBudget | None = None, points: list | None = None,
         counter=None) -> dict:
    """Relaxed scan over the full circle in both directions; the lower energy per angle.

    One constrained relaxation after the other (any ASE calculator). ``budget`` (a
    :class:`ForceBudget`) caps each point's force calls; ``points`` (a list, if given)
    receives one record per scan point (angle, direction, energy, status, force calls);
    ``counter`` (a :class:`~tealign.bench.runaway.ForceCounter` counting ``calc``'s calls)
    measures them.
    """
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
            allowance = budget.start() if budget is not None else steps + 1
            info: dict = {}
            before = counter.calls if counter is not None else 0
            if allowance == 0:
                e, conv = float("nan"), False
                info["reason"] = "force-call cap reached before this point"
            else:
                relaxed, e, conv = relax_at(current, idx, ang, calc, steps=allowance - 1,
                                            mask=mask, info=info)
            used = (counter.calls - before) if counter is not None else 0
            if budget is not None:
                budget.finish(allowance, used)
            # a point that broke down is not a start for its neighbour: the next one starts
            # again from the reference geometry
            current = relaxed if np.isfinite(e) else atoms
            key = round(ang, 6) % 360
            if key not in best or np.isnan(best[key][0]) or e < best[key][0]:
                best[key] = (e, conv)
            if points is not None:
                points.append({"angle_deg": key, "direction": direction, "energy_eV": e,
                               "status": _status(e, conv, used, allowance, steps + 1,
                                                 info.get("reason")),
                               "force_calls": used, "reason": info.get("reason")})
            if progress:
                progress()
    return best


class _PresetCalculator(Calculator):
    """Stands in as a scan point's calculator in the lock-step relaxation: it holds the results
    of the batched pass for the point's current positions and refuses any other geometry."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def preset(self, atoms, energy, forces):
        self.atoms = atoms.copy()
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        raise RuntimeError("lock-step relaxation: positions changed between passes")


def mace_evaluator(model_path, d3: str | None = None, batch_size: int = 64,
                   dtype: str = "float64"):
    """``evaluate(list of Atoms) -> list of (energy eV, forces eV/Å)``: batched MACE passes
    through :func:`tealign.evaluate.predict` (``batch_size`` structures per forward pass),
    plus D3(BJ) of ``d3`` structure by structure."""
    from tealign.evaluate import load_model, predict
    from tealign.io.frames import FrameBatch

    model = load_model(model_path, dtype=dtype)
    d3calc = None
    if d3 and d3 != "none":
        from tealign.bench.calculators import D3Calculator

        d3calc = D3Calculator(d3)

    def evaluate(atoms_list: list[Atoms]) -> list[tuple[float, np.ndarray]]:
        counts = [len(a) for a in atoms_list]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        batch = FrameBatch(
            numbers=np.concatenate([a.numbers for a in atoms_list]),
            positions=np.concatenate([a.positions for a in atoms_list]),
            offsets=offsets, cell=np.array([a.cell[:] for a in atoms_list]),
            pbc=np.array([a.pbc for a in atoms_list]))
        p = predict(model, batch, batch_size=batch_size, compute_stress=False)
        out = []
        for i, a in enumerate(atoms_list):
            e = float(p.energy[i])
            f = np.array(p.forces[offsets[i]:offsets[i + 1]], dtype=float)
            if d3calc is not None:
                b = a.copy()
                b.calc = d3calc
                e += float(b.get_potential_energy())
                f = f + b.get_forces(apply_constraint=False)
            out.append((e, f))
        return out

    return evaluate


def scan_lockstep(molecules: list[tuple[Atoms, list[int]]], step: float, evaluate,
                  steps: int = 500, fmax: float = 0.01, budget: ForceBudget | None = None,
                  counter=None, guards: list | None = None, progress=None
                  ) -> tuple[list[dict], list[list[dict]]]:
    """Relaxed scans of many molecules at once: :func:`scan`'s semantics, in lock-step.

    Each molecule and direction is a chain of scan points (each starting from its neighbour's
    relaxed geometry, or from the reference after a breakdown); one point of every chain is in
    flight at a time, and every BFGS step of all points in flight shares one call of
    ``evaluate`` (batched forward passes, see :func:`mace_evaluator`). Per point the same BFGS
    (ASE's, with FixInternals) as :func:`relax_at` runs, driven one step at a time. ``guards``:
    one :class:`~tealign.bench.runaway.RunawayGuard` per molecule (checked before each pass).

    Returns (per molecule the ``best`` dict of :func:`scan`, per molecule its point records).
    """
    from ase.optimize import BFGS

    from tealign.bench.runaway import Runaway

    n = int(round(360 / step))
    grid = np.arange(0, 360, step)
    chains = []
    for m, (atoms, idx) in enumerate(molecules):
        start = atoms.get_dihedral(*idx)
        a0 = float(grid[int(np.argmin(np.abs((grid - start + 180) % 360 - 180)))])
        mask = _rotating_side(atoms, idx)
        for direction in (+1, -1):
            chains.append({"m": m, "dir": direction, "a0": a0, "mask": mask, "k": 0,
                           "current": atoms, "point": None})
    records: list[list[dict]] = [[] for _ in molecules]
    per_point = steps + 1

    def finish(ch, pt, e, conv, reason=None):
        if budget is not None:
            budget.finish(pt["allowance"], pt["calls"])
        ok = np.isfinite(e)
        ch["current"] = pt["atoms"] if ok else molecules[ch["m"]][0]
        records[ch["m"]].append({
            "angle_deg": pt["key"], "direction": ch["dir"], "k": pt["k"], "energy_eV": e,
            "converged": bool(conv), "force_calls": pt["calls"], "reason": reason,
            "status": _status(e, conv, pt["calls"], pt["allowance"], per_point, reason)})
        ch["point"] = None
        ch["k"] += 1
        if progress:
            progress()

    while True:
        # every chain without a point in flight starts its next one
        for ch in chains:
            while ch["point"] is None and ch["k"] <= n:
                atoms, idx = molecules[ch["m"]]
                ang = (ch["a0"] + ch["dir"] * ch["k"] * step) % 360
                allowance = budget.start() if budget is not None else per_point
                pt = {"key": round(ang, 6) % 360, "k": ch["k"], "allowance": allowance,
                      "calls": 0, "atoms": None}
                if allowance == 0:
                    finish(ch, pt, float("nan"), False, "force-call cap reached before "
                                                        "this point")
                    continue
                try:
                    a = _constrained(ch["current"], idx, ang, ch["mask"])
                except _BREAKDOWN as exc:
                    finish(ch, pt, float("nan"), False,
                           f"breakdown: {type(exc).__name__}: {exc}")
                    continue
                a.calc = _PresetCalculator()
                opt = BFGS(a, logfile=None)
                opt.fmax = fmax  # what BFGS.run(fmax=...) sets
                pt["atoms"], pt["opt"] = a, opt
                ch["point"] = pt
        live = [ch for ch in chains if ch["point"] is not None]
        if not live:
            break
        batch = []
        for ch in live:
            pt = ch["point"]
            try:
                if guards is not None:
                    guards[ch["m"]].check(pt["atoms"])
            except Runaway as exc:
                finish(ch, pt, float("nan"), False, _guard_reason(exc))
                continue
            batch.append(ch)
        if not batch:
            continue
        if counter is not None:
            counter.take(len(batch))
        results = evaluate([ch["point"]["atoms"] for ch in batch])
        for ch, (e, f) in zip(batch, results):
            pt = ch["point"]
            pt["calls"] += 1
            a, opt = pt["atoms"], pt["opt"]
            if not (np.isfinite(e) and np.isfinite(f).all()):
                finish(ch, pt, float("nan"), False, "breakdown: non-finite energy or forces")
                continue
            a.calc.preset(a, e, f)
            try:
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    gradient = opt.optimizable.get_gradient()
                    if opt.gradient_converged(gradient):
                        finish(ch, pt, e, True)
                    elif opt.nsteps >= pt["allowance"] - 1:
                        finish(ch, pt, e, False)
                    else:
                        opt.step()  # takes the gradient from the preset results
                        opt.nsteps += 1
                        if not np.isfinite(a.positions).all():
                            finish(ch, pt, float("nan"), False,
                                   "breakdown: non-finite positions")
            except _BREAKDOWN as exc:
                finish(ch, pt, float("nan"), False, f"breakdown: {type(exc).__name__}: {exc}")
    bests = []
    for m in range(len(molecules)):
        best: dict[float, tuple[float, bool]] = {}
        # scan()'s order: direction +1 first, each direction from its start
        for r in sorted(records[m], key=lambda r: (-r["direction"], r["k"])):
            key, e = r["angle_deg"], r["energy_eV"]
            if key not in best or np.isnan(best[key][0]) or e < best[key][0]:
                best[key] = (e, r["converged"])
        bests.append(best)
    return bests, records


def _skip_reason(bad_angles: list[float], n_ref: int, points: list[dict]) -> str:
    """Why a molecule has no energy at some reference angles (from its point records)."""
    at = {round(a, 6) % 360 for a in bad_angles}
    sts = [p for p in points if p["angle_deg"] in at]
    kinds = {p["status"] for p in sts}
    bad = len(bad_angles)
    if kinds and kinds <= {"not_run"}:
        return (f"the force-call cap was spent before {bad} of {n_ref} reference angles could "
                "be relaxed (raise --max-force-calls)")
    if "runaway" in kinds:
        why = next(p["reason"] for p in sts if p["status"] == "runaway")
        return (f"the geometry ran away at {bad} of {n_ref} reference angles in both scan "
                f"directions ({why})")
    return (f"the relaxation broke down (non-finite energy or geometry, or FixInternals "
            f"could not hold the dihedral) at {bad} of {n_ref} reference angles in "
            "both scan directions")


def run(calculator, outdir: Path, csv_path: Path, sdf_path: Path, limit: int | None = None,
        step: float = 15.0, d3: str | None = None, steps: int = 500, progress=None,
        max_force_calls: int | None = None, batched: bool | None = None,
        batch_size: int = 64) -> dict:
    """The benchmark; writes ``results.json`` and the profile figure into ``outdir``.

    ``batched`` (default: for MACE model files) relaxes the scan points of all molecules
    together in lock-step (:func:`scan_lockstep`); other calculators relax one point after the
    other (:func:`scan`). Both share ``max_force_calls`` (None: no cap) among the points
    (:class:`ForceBudget`) and stop a molecule whose geometry runs away
    (:mod:`tealign.bench.runaway`).
    """
    import time

    from tealign.bench.calculators import get_calculator, model_r_max
    from tealign.bench.runaway import ForceCounter, GuardedCalculator, RunawayGuard

    if 15.0 % step:
        raise SetupError("--step must divide 15° (the reference grid)", field="--step")
    if max_force_calls is not None and max_force_calls < 1:
        raise SetupError("--max-force-calls must be at least 1", field="--max-force-calls")
    is_model = isinstance(calculator, (str, Path)) and Path(calculator).exists()
    batched = is_model if batched is None else batched
    if batched and not is_model:
        raise SetupError("batched scans need a MACE model file", field="--calculator")
    cutoff = model_r_max(calculator) if is_model else None
    geoms = read_sdf(sdf_path)
    skipped = []
    todo = []
    for prof in read_profiles(csv_path, limit):
        if prof["molid"] not in geoms:
            skipped.append({"molid": prof["molid"], "reason": "no geometry in the SDF"})
            continue
        todo.append(prof)
    n_per_chain = int(round(360 / step)) + 1
    budget = ForceBudget(max_force_calls, 2 * n_per_chain * len(todo), steps + 1)
    counter = ForceCounter(max_force_calls)
    mols = [geoms[p["molid"]] for p in todo]
    guards = [RunawayGuard(a, cutoff=cutoff) for a, _ in mols]
    t0 = time.perf_counter()
    if batched:
        evaluate = mace_evaluator(calculator, d3=d3, batch_size=batch_size)
        bests, records = scan_lockstep(mols, step, evaluate, steps=steps, budget=budget,
                                       counter=counter, guards=guards, progress=progress)
    else:
        calc = get_calculator(calculator, d3=d3)
        bests, records = [], []
        for (atoms, idx), guard in zip(mols, guards):
            pts: list[dict] = []
            bests.append(scan(atoms, idx, np.arange(0, 360, step),
                              GuardedCalculator(calc, guard, counter), step, steps=steps,
                              progress=progress, budget=budget, points=pts, counter=counter))
            records.append(pts)
    wall = time.perf_counter() - t0
    results = []
    cap_bit = []
    for prof, best, pts in zip(todo, bests, records):
        ref_angles = prof["angles"] % 360
        pred = np.array([best[round(a, 6) % 360][0] for a in ref_angles])
        flags = [not best[round(a, 6) % 360][1] for a in ref_angles]
        capped = [p for p in pts if p["status"] in ("cap", "not_run")]
        if capped:
            cap_bit.append({"molid": prof["molid"],
                            "points_cut_short": sum(p["status"] == "cap" for p in capped),
                            "points_not_run": sum(p["status"] == "not_run" for p in capped),
                            "angles_deg": sorted({p["angle_deg"] for p in capped})})
        runaways = [p for p in pts if p["status"] == "runaway"]
        if not np.isfinite(pred).all():
            bad = [float(a) for a, e in zip(ref_angles, pred) if not np.isfinite(e)]
            skipped.append({"molid": prof["molid"],
                            "reason": _skip_reason(bad, len(pred), pts)})
            continue
        pred_rel = (pred - pred.min()) / units.KCAL_PER_MOL_TO_EV
        ref_rel = prof["energy_kcal_mol"]
        barrier_pred = float(pred_rel.max() - pred_rel.min())
        barrier_ref = float(ref_rel.max() - ref_rel.min())
        status_at = {}
        for p in pts:  # the status of the point whose energy was kept at each angle
            kept = best[p["angle_deg"]][0]
            if p["energy_eV"] == kept or (np.isnan(kept) and np.isnan(p["energy_eV"])):
                status_at.setdefault(p["angle_deg"], p["status"])
        ref_status = [status_at.get(round(a, 6) % 360) for a in ref_angles]
        results.append({
            "molid": prof["molid"], "smiles": prof["smiles"],
            "angles_deg": prof["angles"].tolist(), "reference_kcal_mol": ref_rel.tolist(),
            "predicted_kcal_mol": pred_rel.tolist(),
            "barrier_ref_kcal_mol": barrier_ref, "barrier_pred_kcal_mol": barrier_pred,
            "barrier_error_kcal_mol": barrier_pred - barrier_ref,
            "profile_mae_kcal_mol": float(np.mean(np.abs(pred_rel - ref_rel))),
            "unconverged_points": int(sum(flags)),
            "unconverged_by_cap": int(sum(s == "cap" for s in ref_status)),
            "point_status": ref_status,
            "force_calls": int(sum(p["force_calls"] for p in pts)),
            "runaway_points": [{"angle_deg": p["angle_deg"], "direction": p["direction"],
                                "reason": p["reason"]} for p in runaways],
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
        "unconverged_by_cap": int(sum(r["unconverged_by_cap"] for r in results)),
        "max_steps": steps, "max_force_calls": max_force_calls,
        "force_calls": int(counter.calls), "cap_reached": bool(cap_bit), "cap_bit": cap_bit,
        "relaxation": ("batched lock-step (one forward pass per BFGS step of all points in "
                       "flight)" if batched else "one point after the other"),
        "relax_wall_s": wall, "molecules": results, "skipped": skipped,
        "published_barrier_mae_kcal_mol": TORSION_BARRIER_MAE_KCAL,
        "published_label": LABEL + "; Table I used CCSD(T) references",
    }
    outdir.mkdir(parents=True, exist_ok=True)
    _plot(results, str(calculator), outdir / "torsion_profiles.png")
    res["figures"] = ["torsion_profiles.png"]
    write_json(outdir / rd.RESULTS_FILE, res)
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
