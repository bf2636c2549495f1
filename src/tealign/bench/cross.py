"""Cross-domain consistency (docs/architecture.md §8.3): quantities that mix molecules and
crystals, against target-level truth.

A bridge set (``datasets/bridge-mini``) is an extxyz of frames, one per species (``species``
info, else ``mol_id``), with the target-level energy (``--target-key``) of every frame and the
source-level energy (``--source-key``) of every molecule, plus a definition JSON
(``bridge.json``, default: beside the data) of three kinds of item, each a linear combination
of frame energies:

- ``reactions``: ``coefficients`` per species per formula unit; E = Σ ν_s E_s / Z_s, with Z_s
  the species' ``formula_units`` per frame;
- ``adsorption``: E(complex) − E(slab) − E(molecule);
- ``lattice``: E(crystal) / Z − E(molecule), Z = ``molecules_per_cell``.

Every item must conserve atoms (checked before any work). Two ways to get the predicted
energies:

- ``calculator``: any calculator of the other benchmarks (MACE model file, ``xtb``,
  ``chgnet``; ``d3`` adds D3(BJ)), one single point per frame;
- ``alignment``: no model, the label level: frames of the aligned domain (``config_type`` ==
  ``aligned_domain``, default organic: the molecules) take their source-level energy mapped
  onto the target scale by ``TotalEnergyAlignment.load(...).transform(...)``; every other
  frame keeps its target-level energy. The error of an item is then the alignment's own error
  on that cross-domain quantity.

Errors are predicted − reference (eV); MAE, RMSE and max |error| per kind and overall.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from tealign import rundir as rd
from tealign.bench.benchmarks import BENCHMARKS
from tealign.errors import SetupError
from tealign.keys import REF

#: the kinds of item (key → title), as the benchmark registry's entry lists them
KIND_TITLES = dict(BENCHMARKS["cross"].kinds)
KINDS = tuple(KIND_TITLES)
DEFAULT_DATA = Path("bridge-mini") / "bridge-mini.extxyz"


def locate_data(data: Sequence[str | os.PathLike] | None) -> list[Path]:
    """The bridge-set files: ``data`` if given, else ``bridge-mini/bridge-mini.extxyz`` where
    the registry looks (``$TEALIGN_DATA_DIR``, the user cache), under ``$TEALIGN_DATASETS`` or
    in the source checkout's ``datasets/``; SetupError saying how to compute it when it is
    nowhere."""
    if data:
        paths = [Path(p) for p in data]
        for p in paths:
            if not p.exists():
                raise SetupError("no such file", file=str(p), field="--data")
        return paths
    from tealign.bench import registry

    cands = registry.candidates("bridge-mini")
    if os.environ.get("TEALIGN_DATASETS"):
        cands.append(Path(os.environ["TEALIGN_DATASETS"]) / DEFAULT_DATA)
    cands.append(Path(__file__).resolve().parents[3] / "datasets" / DEFAULT_DATA)
    for c in cands:
        if c.exists():
            return [c]
    raise SetupError(
        f"bridge set not found (looked in {', '.join(map(str, cands))}); compute it with "
        "datasets/bridge-mini/regenerate.sh or pass --data PATH", field="--data")


def load_definition(path: str | os.PathLike) -> dict:
    """The definition JSON, validated: every item names its species, coefficients are
    finite numbers, formula units are positive integers."""
    import json

    p = Path(path)
    if not p.exists():
        raise SetupError("no such file (the bridge definition, bridge.json)", file=str(p),
                         field="--definition")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise SetupError(f"not JSON: {exc}", file=str(p), field="--definition") from None

    def bad(field, why):
        return SetupError(why, file=str(p), field=field)

    if not isinstance(d, dict) or not isinstance(d.get("species"), dict):
        raise bad("species", "needs an object 'species' (id -> {formula_units, ...})")
    for s, e in d["species"].items():
        z = e.get("formula_units") if isinstance(e, dict) else None
        if not isinstance(z, int) or isinstance(z, bool) or z < 1:
            raise bad(f"species/{s}/formula_units", "must be a positive integer")
    need = {"reactions": ("id", "coefficients"), "adsorption": ("id", "complex", "slab",
                                                                "molecule"),
            "lattice": ("id", "crystal", "molecule", "molecules_per_cell")}
    for section, keys in need.items():
        items = d.get(section, [])
        if not isinstance(items, list):
            raise bad(section, "must be a list")
        for k, item in enumerate(items):
            for key in keys:
                if not isinstance(item, dict) or key not in item:
                    raise bad(f"{section}/{k}/{key}", "missing")
            names = (list(item["coefficients"]) if section == "reactions" else
                     [item[key] for key in keys[1:3 if section == "lattice" else 4]])
            for s in names:
                if s not in d["species"]:
                    raise bad(f"{section}/{k}", f"species {s!r} is not in 'species'")
            if section == "reactions":
                for s, nu in item["coefficients"].items():
                    if not isinstance(nu, (int, float)) or isinstance(nu, bool) \
                            or not np.isfinite(nu) or nu == 0:
                        raise bad(f"reactions/{k}/coefficients/{s}",
                                  "must be a non-zero finite number")
            if section == "lattice":
                z = item["molecules_per_cell"]
                if not isinstance(z, int) or isinstance(z, bool) or z < 1:
                    raise bad(f"lattice/{k}/molecules_per_cell", "must be a positive integer")
    return d


def items_of(definition: dict) -> list[dict]:
    """Every item as ``{kind, id, label, terms}``; ``terms`` maps species to the coefficient
    of its frame energy (a Fraction)."""
    z = {s: e["formula_units"] for s, e in definition["species"].items()}
    out = []
    for r in definition.get("reactions", []):
        terms: dict[str, Fraction] = {}
        for s, nu in r["coefficients"].items():
            terms[s] = terms.get(s, Fraction(0)) + Fraction(nu).limit_denominator(10**6) / z[s]
        out.append({"kind": "reaction", "id": r["id"], "label": r.get("equation", r["id"]),
                    "terms": terms})
    for a in definition.get("adsorption", []):
        out.append({"kind": "adsorption", "id": a["id"],
                    "label": f"{a['molecule']} on {a['slab']}",
                    "terms": {a["complex"]: Fraction(1), a["slab"]: Fraction(-1),
                              a["molecule"]: Fraction(-1)}})
    for c in definition.get("lattice", []):
        out.append({"kind": "lattice", "id": c["id"],
                    "label": f"{c['crystal']} per {c['molecule']}",
                    "terms": {c["crystal"]: Fraction(1, c["molecules_per_cell"]),
                              c["molecule"]: Fraction(-1)}})
    return out


def imbalance(terms: dict[str, Fraction], frames: dict) -> dict[str, Fraction]:
    """Element → net atom count Σ c_s · (atoms of frame s); empty when the item conserves
    atoms."""
    net: dict[str, Fraction] = {}
    for s, c in terms.items():
        for el in frames[s].get_chemical_symbols():
            net[el] = net.get(el, Fraction(0)) + c
    return {el: v for el, v in net.items() if v != 0}


def load_frames(paths: Sequence[Path]) -> dict:
    """species id → ase.Atoms over every file (a species given twice is a setup error)."""
    from tealign.io import iter_batches

    frames: dict = {}
    for p in paths:
        for batch in iter_batches(p):
            if batch.rejects:
                raise batch.rejects[0].as_setup_error()
            for k, atoms in enumerate(batch.to_atoms()):
                s = atoms.info.get("species", atoms.info.get("mol_id"))
                if s is None:
                    raise SetupError("frame has neither 'species' nor 'mol_id'", file=str(p),
                                     frame=k, field="species")
                s = str(s)
                if s in frames:
                    raise SetupError(f"species {s!r} appears twice", file=str(p), frame=k,
                                     field="species")
                frames[s] = atoms
    return frames


def _energy(atoms, key: str) -> float | None:
    v = atoms.info.get(key)
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def aligned_energies(frames: dict, alignment: str | os.PathLike, source_key: str,
                     species: Sequence[str]) -> tuple[dict[str, float], dict[str, str], object]:
    """Source-level energies of ``species`` mapped onto the target scale (eV), the reasons
    for those that could not be (missing key), and the alignment."""
    from tealign.align.estimator import TotalEnergyAlignment
    from tealign.io.frames import FrameBatch

    tea = TotalEnergyAlignment.load(alignment)
    out: dict[str, float] = {}
    why: dict[str, str] = {}
    for s in species:
        batch = FrameBatch.from_atoms([frames[s]])
        res = tea.transform(batch, energy_key=source_key, forces_key=None, stress_key=None,
                            virials_key=None, file=s, check=False)
        if res.n_frames == 1:
            out[s] = float(res.info[REF.energy][0])
        else:
            why[s] = res.rejects[0].reason if res.rejects else f"no {source_key}"
    return out, why, tea


def run(outdir: Path, data: Sequence[str | os.PathLike] | None = None,
        definition: str | os.PathLike | None = None, calculator=None,
        alignment: str | os.PathLike | None = None, target_key: str = "energy_pbe",
        source_key: str = "energy_wb97m", aligned_domain: str = "organic",
        d3: str | None = None, dtype: str | None = None, progress=None) -> dict:
    """Score the bridge set; writes ``results.json`` and ``cross.png`` into ``outdir``."""
    from tealign.io.outputs import write_json

    if (calculator is None) == (alignment is None):
        raise SetupError("give exactly one of --calculator (model level) and --alignment "
                         "(label level)", field="--calculator/--alignment")
    paths = locate_data(data)
    def_path = Path(definition) if definition else paths[0].with_name("bridge.json")
    spec = load_definition(def_path)
    frames = load_frames(paths)
    items = items_of(spec)
    for it in items:
        for s in it["terms"]:
            if s not in frames:
                raise SetupError(f"item {it['id']!r} needs species {s!r}, which no frame of "
                                 "the data holds", file=str(paths[0]), field="species")
        bad = imbalance(it["terms"], frames)
        if bad:
            raise SetupError(f"item {it['id']!r} does not conserve atoms: "
                             + ", ".join(f"{el} {v}" for el, v in sorted(bad.items())),
                             file=str(def_path), field=it["kind"])
    needed = sorted({s for it in items for s in it["terms"]})
    reference = {s: _energy(frames[s], target_key) for s in needed}
    if all(v is None for v in reference.values()):
        raise SetupError(f"no frame has {target_key}", file=str(paths[0]), field="--target-key")
    predicted: dict[str, float] = {}
    level: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    result: dict = {"benchmark": "cross", "data": [str(p) for p in paths],
                    "definition": str(def_path), "target_key": target_key}
    if alignment is not None:
        domain = [s for s in needed if frames[s].info.get("config_type") == aligned_domain]
        if not domain:
            raise SetupError(f"no frame has config_type {aligned_domain!r} to align",
                             file=str(paths[0]), field="--aligned-domain")
        aligned, why, tea = aligned_energies(frames, alignment, source_key, domain)
        for s in needed:
            if s in domain:
                if s in aligned:
                    predicted[s], level[s] = aligned[s], "aligned source"
                else:
                    unavailable[s] = why[s]
            elif reference[s] is not None:
                predicted[s], level[s] = reference[s], "target"
        result |= {"mode": "alignment", "alignment": str(alignment),
                   "alignment_sha256": tea.sha256(), "alignment_model": tea.model_,
                   "a": tea.a_, "source_key": source_key, "aligned_domain": aligned_domain,
                   "calculator": None, "d3": "none"}
    else:
        from tealign.bench.calculators import model_elements
        from tealign.bench.energies import single_points
        from tealign.io.frames import FrameBatch

        known = model_elements(calculator)
        todo = []
        for s in needed:
            missing = (set() if known is None else
                       {int(z) for z in frames[s].numbers} - known)
            if missing:
                unavailable[s] = "calculator lacks elements " + ", ".join(
                    str(z) for z in sorted(missing))
            else:
                todo.append(s)
        if todo:
            batch = FrameBatch.from_atoms([frames[s] for s in todo])
            energies = single_points(str(calculator), batch, d3=d3, dtype=dtype,
                                     progress=progress)
            for s, e in zip(todo, energies):
                if np.isfinite(e):
                    predicted[s], level[s] = float(e), "calculator"
                else:
                    unavailable[s] = "non-finite energy"
        result |= {"mode": "calculator", "calculator": str(calculator), "d3": d3 or "none",
                   "dtype": dtype, "alignment": None}
    rows, skipped = [], []
    for it in items:
        lacking = [s for s in it["terms"] if reference[s] is None]
        if lacking:
            skipped.append({"kind": it["kind"], "id": it["id"],
                            "reason": f"no {target_key} for " + ", ".join(lacking)})
            continue
        lacking = [s for s in it["terms"] if s not in predicted]
        if lacking:
            skipped.append({"kind": it["kind"], "id": it["id"], "reason": "; ".join(
                f"{s}: {unavailable.get(s, 'no prediction')}" for s in lacking)})
            continue
        ref = float(sum(float(c) * reference[s] for s, c in it["terms"].items()))
        pred = float(sum(float(c) * predicted[s] for s, c in it["terms"].items()))
        rows.append({"kind": it["kind"], "id": it["id"], "label": it["label"],
                     "terms": {s: float(c) for s, c in it["terms"].items()},
                     "reference_eV": ref, "predicted_eV": pred, "error_eV": pred - ref})
    result |= summarise(rows)
    result |= {"items": rows, "skipped": skipped,
               "frames": {s: {"reference_eV": reference[s], "predicted_eV": predicted.get(s),
                              "level": level.get(s), "config_type":
                                  frames[s].info.get("config_type"),
                              "natoms": len(frames[s])} for s in needed}}
    outdir.mkdir(parents=True, exist_ok=True)
    if rows:
        label = (f"label level: {Path(str(alignment)).name}" if alignment is not None
                 else f"calculator: {Path(str(calculator)).name}")
        _plot(rows, label, outdir / "cross.png")
        result["figures"] = ["cross.png"]
    else:
        result["figures"] = []
    write_json(outdir / rd.RESULTS_FILE, result)
    return result


def _stats(err: np.ndarray) -> dict:
    if err.size == 0:
        return {"n": 0, "mae_eV": None, "rmse_eV": None, "max_abs_eV": None, "mean_eV": None}
    return {"n": int(err.size), "mae_eV": float(np.mean(np.abs(err))),
            "rmse_eV": float(np.sqrt(np.mean(err**2))), "max_abs_eV": float(np.abs(err).max()),
            "mean_eV": float(np.mean(err))}


def summarise(rows: list[dict]) -> dict:
    """Overall and per-kind error statistics (``by_kind``, ``<kind>_mae_eV``)."""
    err = np.array([r["error_eV"] for r in rows], dtype=float)
    overall = _stats(err)
    by_kind = {k: _stats(np.array([r["error_eV"] for r in rows if r["kind"] == k], float))
               for k in KINDS}
    out = {"n": overall["n"], "mae_eV": overall["mae_eV"], "rmse_eV": overall["rmse_eV"],
           "max_abs_eV": overall["max_abs_eV"], "by_kind": by_kind}
    for k in KINDS:
        out[f"{k}_mae_eV"] = by_kind[k]["mae_eV"]
    return out


def _plot(rows: list[dict], label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"reaction": "tab:blue", "adsorption": "tab:orange", "lattice": "tab:green"}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, max(4.2, 0.22 * len(rows) + 1.2)),
                                 constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1, 1.25]})
    ref = np.array([r["reference_eV"] for r in rows])
    pred = np.array([r["predicted_eV"] for r in rows])
    lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1)
    for k in KINDS:
        sub = [r for r in rows if r["kind"] == k]
        if sub:
            mae = np.mean([abs(r["error_eV"]) for r in sub])
            ax.scatter([r["reference_eV"] for r in sub], [r["predicted_eV"] for r in sub],
                       s=28, color=colours[k], label=f"{KIND_TITLES[k]} (MAE {mae:.3f} eV)")
    ax.set_xlabel("target-level reference (eV)")
    ax.set_ylabel("predicted (eV)")
    ax.set_title(f"Cross-domain quantities\n{label}", fontsize=10)
    ax.legend(fontsize=7)
    y = np.arange(len(rows))[::-1]
    bx.barh(y, [r["error_eV"] for r in rows], color=[colours[r["kind"]] for r in rows])
    bx.axvline(0, color="0.5", lw=1)
    bx.set_yticks(y, [r["id"] for r in rows], fontsize=7)
    bx.set_xlabel("error, predicted − reference (eV)")
    bx.set_title("per item", fontsize=10)
    fig.savefig(path, dpi=130)
    plt.close(fig)
