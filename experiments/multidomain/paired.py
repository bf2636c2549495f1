"""Seed-paired verdicts at the model level (issue 31, item 4): every comparison of two trained
variants paired by training seed AND by item, with an interval that samples both the seeds and
the gas molecules the items are made of.

Why. The earlier model-level intervals bootstrapped the items of seed-AVERAGED errors: they
ignored how much a result moves from one training seed to the next, and treated items as
independent although items that share a gas molecule share its error. In round one
(bridge-mini), paired by seed, the oracle − TEA difference was −164, +332, +296 meV for seeds
1, 2, 3 (95 % t interval [−532, +841] meV): unresolved, where the item bootstrap had called it
resolved. (Round two's oracle comparison is in runs_v2_redrawn/tables.md.)

The statistic. For two variants x and ref, over the seeds S both were trained with and the
items I both scored for every one of those seeds (anything else is dropped from both, never
compared unpaired),

    d_s,i = |e_x,s(i)| − |e_ref,s(i)|          (signed errors e = predicted − truth, eV)
    D_s   = mean_i d_s,i = MAE_s(x) − MAE_s(ref)
    D     = mean_s D_s                          (negative: x has the lower MAE, x is better)

and three 95 % intervals of D:

(a) Student t over the per-seed differences D_s (n_seeds − 1 degrees of freedom; None with
    fewer than two seeds). It sees the seed-to-seed spread but takes the items as fixed.
(b) molecule bootstrap: Owen's pigeonhole bootstrap over the gas molecules
    (``bridge_v2.molecule_bootstrap_weights``: each replicate draws the molecules with
    replacement and weighs an item by the product of its molecules' draw counts) applied to
    the seed-averaged d_i = mean_s d_s,i (``bridge_v2.weighted_interval``). It sees the
    molecule sampling but takes the seeds as fixed.
(c) joint two-level bootstrap: each replicate draws the seeds with replacement AND the
    molecules (the same pigeonhole weights W_b as (b)); D_b = mean over the drawn seeds of
    Σ_i W_b,i d_s,i / Σ_i W_b,i; the 2.5 and 97.5 percentiles of D_b (replicates where no item
    survives the molecule draw are left out and counted).

Verdict rule: "better" (D < 0) or "worse" (D > 0) only when BOTH (a) and (c) exclude zero on
the same side; otherwise "unresolved", and always "unresolved" with fewer than two common
seeds. Both are required because neither suffices alone: with 3 seeds a bootstrap over seeds
has only 10 distinct resamples and its percentile interval is too narrow (it cannot reach
beyond the most extreme seed), while the t interval, which widens properly for 3 seeds
(t_0.975,2 = 4.30), ignores that the items were sampled through a few molecules. (b) is
reported for reference; it does not enter the verdict.

Pure numpy (and scipy.stats for the t quantile); no torch. Energies are in eV inside, meV in
the tables.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the experiment's modules import each other by name
    sys.path.insert(0, str(HERE))

from bridge_v2 import molecule_bootstrap_weights, weighted_interval  # noqa: E402

N_BOOT = 10_000
GAS_SUFFIX = "_g"

#: {seed: {item id: signed error (eV)}}
SeedErrors = Mapping[int | str, Mapping[str, float]]


# --------------------------------------------------------------------------- items
def item_molecules(bridge_json: Path) -> dict[str, list[str]]:
    """Item id → the gas molecules it contains, for every item of a bridge definition.

    Items are read as ``tealign bench cross`` reads them (``cross.items_of``: reactions,
    adsorption energies, lattice energies; the same ids ``model_level.cross_items`` writes),
    and an item's gas molecules are its species whose id ends in ``_g`` (the species with
    role "molecule" in datasets/bridge-mini and bridge-v2). Each molecule is listed once per
    item, in the order of first appearance, however many times or with whatever coefficient
    it enters (the pigeonhole weight of an item counts a molecule once: Π over the distinct
    molecules)."""
    from tealign.bench import cross

    definition = cross.load_definition(Path(bridge_json))
    return {it["id"]: list(dict.fromkeys(s for s in it["terms"] if s.endswith(GAS_SUFFIX)))
            for it in cross.items_of(definition)}


def _by_int_seed(errs: SeedErrors) -> dict[int, dict[str, float]]:
    """Seed keys as int (JSON gives str), errors as float."""
    return {int(s): {str(i): float(e) for i, e in by_item.items()} for s, by_item in
            errs.items()}


# --------------------------------------------------------------------------- the comparison
def paired_comparison(err_x: SeedErrors, err_ref: SeedErrors,
                      item_mols: Mapping[str, list[str]], n_boot: int = N_BOOT,
                      seed: int = 0) -> dict:
    """Variant x against ref, paired by seed and by item (module docstring: statistic,
    intervals, verdict rule).

    ``err_x``, ``err_ref``: {seed: {item id: signed error, predicted − truth (eV)}}; seed keys
    int or str. Only the seeds present in both are used, and only the items present in both
    for every one of those seeds. ``item_mols``: item id → its gas molecules
    (``item_molecules``); every compared item must be in it (KeyError otherwise).

    Returns (energies in eV): ``seeds``, ``items``, ``molecules`` (the compared ones, sorted),
    ``n_seeds``, ``n_items``, ``n_molecules``, ``dropped_items`` (scored by one side or for
    some seeds only), ``mae_x_eV`` / ``mae_ref_eV`` (mean over seeds of the per-seed MAE),
    ``per_seed_eV`` (D_s, in ``seeds`` order), ``mean_eV`` (D), ``t`` (a), ``molecule`` (b),
    ``joint`` (c) — each ``{"lo", "hi"}`` (b and c with ``empty_replicates``), or None —,
    ``n_boot`` and ``verdict`` ("better" / "worse" / "unresolved", x relative to ref)."""
    from scipy import stats

    x, ref = _by_int_seed(err_x), _by_int_seed(err_ref)
    seeds = sorted(set(x) & set(ref))
    every = set().union(*(set(x[s]) | set(ref[s]) for s in seeds)) if seeds else set()
    items = sorted(set.intersection(*(set(x[s]) & set(ref[s]) for s in seeds))
                   if seeds else set())
    missing = [i for i in items if i not in item_mols]
    if missing:
        raise KeyError(f"items without a molecule list (item_mols): {missing}")
    mols_of = [list(dict.fromkeys(item_mols[i])) for i in items]
    molecules = sorted({m for ms in mols_of for m in ms})
    out: dict = {"seeds": seeds, "items": items, "molecules": molecules,
                 "n_seeds": len(seeds), "n_items": len(items), "n_molecules": len(molecules),
                 "dropped_items": sorted(every - set(items)), "n_boot": int(n_boot),
                 "mae_x_eV": None, "mae_ref_eV": None, "per_seed_eV": [], "mean_eV": None,
                 "t": None, "molecule": None, "joint": None, "verdict": "unresolved"}
    if not seeds or not items:
        return out
    ax = np.array([[abs(x[s][i]) for i in items] for s in seeds])
    ar = np.array([[abs(ref[s][i]) for i in items] for s in seeds])
    d = ax - ar                                   # (n_seeds, n_items)
    per_seed = d.mean(axis=1)
    mean = float(per_seed.mean())
    out.update(mae_x_eV=float(ax.mean(axis=1).mean()), mae_ref_eV=float(ar.mean(axis=1).mean()),
               per_seed_eV=per_seed.tolist(), mean_eV=mean)
    n = len(seeds)
    if n >= 2:
        half = float(stats.t.ppf(0.975, n - 1) * per_seed.std(ddof=1) / np.sqrt(n))
        out["t"] = {"lo": mean - half, "hi": mean + half}
    # (b) molecules resampled, seeds fixed
    w = molecule_bootstrap_weights(mols_of, molecules, n_boot, seed)
    b = weighted_interval(d.mean(axis=0), w)
    out["molecule"] = {"lo": b["lo"], "hi": b["hi"], "empty_replicates": b["empty_replicates"]}
    # (c) seeds and molecules resampled together (the seed draws from their own stream)
    tot = w.sum(axis=1)
    ok = tot > 0
    per_seed_w = (w[ok] @ d.T) / tot[ok, None]     # (replicates, n_seeds)
    rng = np.random.default_rng([seed, 1])
    pick = rng.integers(0, n, size=(n_boot, n))[ok]
    joint = np.take_along_axis(per_seed_w, pick, axis=1).mean(axis=1)
    lo, hi = np.percentile(joint, [2.5, 97.5])
    out["joint"] = {"lo": float(lo), "hi": float(hi), "empty_replicates": int((~ok).sum())}
    t = out["t"]
    if t is not None:
        if t["hi"] < 0 and hi < 0:
            out["verdict"] = "better"
        elif t["lo"] > 0 and lo > 0:
            out["verdict"] = "worse"
    return out


# --------------------------------------------------------------------------- tables
def _errors(results: Mapping, variant: str) -> dict[int, dict[str, float]]:
    """{seed: {item: error}} of one variant of ``results`` (shape: ``verdict_rows``)."""
    return _by_int_seed({s: r["items"] for s, r in results.get(variant, {}).items()})


def verdict_rows(results: Mapping, reference: str, titles: Mapping[str, str],
                 item_mols: Mapping[str, list[str]], kinds: Mapping[str, str] | None = None,
                 variants: Collection[str] | None = None, drop: Collection[str] = frozenset(),
                 n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """One ``paired_comparison`` per variant against ``reference``.

    ``results``: ``{variant: {seed: {"items": {item id: signed error (eV)}}}}`` — variant key
    as in ``titles`` (e.g. "e", "eo", "o"), seed an int or its str (as JSON stores it), and
    per seed a dict with key ``"items"`` mapping each scored item to predicted − truth in eV
    (other keys of the per-seed dict are ignored). ``kinds``: item id → kind ("reaction",
    "adsorption", "lattice"); when given, each variant also gets one row per kind over that
    kind's items. ``variants``: which to compare (default: every variant but the reference,
    in ``results`` order). ``drop``: item ids left out of every comparison.

    Each row is the comparison's dict plus ``variant``, ``title``, ``reference``,
    ``reference_title`` and ``kind`` ("all" or the kind)."""
    ref = _errors(results, reference)
    names = [v for v in results if v != reference] if variants is None else list(variants)
    groups: dict[str, set[str] | None] = {"all": None}
    if kinds:
        for kind in dict.fromkeys(kinds.values()):
            groups[kind] = {i for i, k in kinds.items() if k == kind}
    rows = []
    for v in names:
        mine = _errors(results, v)
        for kind, keep in groups.items():
            def sub(errs, keep=keep):
                return {s: {i: e for i, e in by.items() if i not in drop
                            and (keep is None or i in keep)} for s, by in errs.items()}

            row = paired_comparison(sub(mine), sub(ref), item_mols, n_boot, seed)
            if kind != "all" and row["n_items"] == 0:
                continue
            row.update(variant=v, title=titles.get(v, v), reference=reference,
                       reference_title=titles.get(reference, reference), kind=kind)
            rows.append(row)
    return rows


def oracle_rows(results: Mapping, titles: Mapping[str, str], item_mols: Mapping[str, list[str]],
                kinds: Mapping[str, str] | None = None, drop: Collection[str] = frozenset(),
                n_boot: int = N_BOOT, seed: int = 0) -> list[dict]:
    """The oracle (o: the organic subset recomputed at the target level) against TEA on the
    SAME organic subset (eo), not against TEA on all of organic-mini (e): the frames, model
    and seeds of o and eo are the same and only the organic labels differ, so this is the
    price of aligning instead of recomputing. [] when either was not evaluated."""
    if "o" not in results or "eo" not in results:
        return []
    return verdict_rows(results, "eo", titles, item_mols, kinds, variants=["o"], drop=drop,
                        n_boot=n_boot, seed=seed)


def _iv(d: dict | None) -> str:
    return "–" if d is None else f"[{1e3 * d['lo']:+.0f}, {1e3 * d['hi']:+.0f}]"


def table_lines(rows: list[dict]) -> list[str]:
    """The markdown table of ``verdict_rows`` / ``oracle_rows`` (meV)."""
    lines = ["| variant | against | kind | seeds | items | molecules | MAE (meV) | MAE reference "
             "(meV) | D (meV) | D per seed (meV) | t interval | molecule bootstrap | joint "
             "bootstrap | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def mev(key, r=r):
            return "–" if r[key] is None else f"{1e3 * r[key]:.0f}"

        d = "–" if r["mean_eV"] is None else f"{1e3 * r['mean_eV']:+.0f}"
        per = ", ".join(f"{1e3 * v:+.0f}" for v in r["per_seed_eV"]) or "–"
        lines.append(f"| ({r['variant']}) {r['title']} | ({r['reference']}) "
                     f"{r['reference_title']} | {r['kind']} | {r['n_seeds']} | {r['n_items']} | "
                     f"{r['n_molecules']} | {mev('mae_x_eV')} | {mev('mae_ref_eV')} | {d} | "
                     f"{per} | {_iv(r['t'])} | {_iv(r['molecule'])} | {_iv(r['joint'])} | "
                     f"{r['verdict']} |")
    return lines


def verdict_lines(results: Mapping, reference: str, titles: Mapping[str, str],
                  item_mols: Mapping[str, list[str]], kinds: Mapping[str, str] | None = None,
                  variants: Collection[str] | None = None, drop: Collection[str] = frozenset(),
                  n_boot: int = N_BOOT, seed: int = 0) -> list[str]:
    """``table_lines(verdict_rows(...))``: the markdown table, one row per variant (and per
    kind), D = mean over seeds of MAE_s(variant) − MAE_s(reference) in meV with its t,
    molecule-bootstrap and joint-bootstrap 95 % intervals and the verdict."""
    return table_lines(verdict_rows(results, reference, titles, item_mols, kinds, variants,
                                    drop, n_boot, seed))


# --------------------------------------------------------------------------- per molecule
def per_molecule(err_x: SeedErrors, err_ref: SeedErrors,
                 item_mols: Mapping[str, list[str]]) -> dict[str, dict]:
    """Per gas molecule, over the paired seeds and items (as ``paired_comparison``): the items
    containing it, and the mean over them of |err_x| − |err_ref| averaged over seeds
    (``mean_eV``, eV), with its value per seed (``per_seed_eV``)."""
    x, ref = _by_int_seed(err_x), _by_int_seed(err_ref)
    seeds = sorted(set(x) & set(ref))
    if not seeds:
        return {}
    items = sorted(set.intersection(*(set(x[s]) & set(ref[s]) for s in seeds)))
    out = {}
    for m in sorted({m for i in items for m in item_mols[i]}):
        its = [i for i in items if m in item_mols[i]]
        per_seed = [float(np.mean([abs(x[s][i]) - abs(ref[s][i]) for i in its]))
                    for s in seeds]
        out[m] = {"items": its, "n_items": len(its), "per_seed_eV": per_seed,
                  "mean_eV": float(np.mean(per_seed))}
    return out


def per_molecule_lines(results: Mapping, reference: str, titles: Mapping[str, str],
                       item_mols: Mapping[str, list[str]],
                       variants: Collection[str] | None = None,
                       drop: Collection[str] = frozenset()) -> list[str]:
    """Markdown table, one row per gas molecule, one column per variant: the seed-averaged
    mean over the items containing the molecule of |err_variant| − |err_reference| (meV;
    negative: the variant is closer to the truth there), with the number of items in
    brackets. ``results`` as in ``verdict_rows``."""
    ref = {s: {i: e for i, e in by.items() if i not in drop}
           for s, by in _errors(results, reference).items()}
    names = [v for v in results if v != reference] if variants is None else list(variants)
    cols = {}
    for v in names:
        mine = {s: {i: e for i, e in by.items() if i not in drop}
                for s, by in _errors(results, v).items()}
        cols[v] = per_molecule(mine, ref, item_mols)
    mols = sorted({m for c in cols.values() for m in c})
    lines = ["| molecule | " + " | ".join(f"({v}) {titles.get(v, v)}" for v in names) + " |",
             "|---|" + "---|" * len(names)]
    for m in mols:
        cells = [f"{1e3 * cols[v][m]['mean_eV']:+.0f} ({cols[v][m]['n_items']})"
                 if m in cols[v] else "–" for v in names]
        lines.append(f"| {m.removesuffix(GAS_SUFFIX)} | " + " | ".join(cells) + " |")
    return lines


def from_run_results(run_results: Mapping, mode: str = "model") -> dict:
    """``results`` in the shape of ``verdict_rows`` from run.py's runs/results.json
    (variants → by_seed → errors → cross → ``mode``); variants without that mode are left
    out. Modes there: "model" for every single-head variant; the multi-head variant (g) has
    "target head" and "own heads (organic head + TEA)" instead."""
    out: dict = {}
    for v, entry in run_results.get("variants", {}).items():
        for s, r in (entry or {}).get("by_seed", {}).items():
            errs = r.get("errors", {}).get("cross", {}).get(mode)
            if errs:
                out.setdefault(v, {})[int(s)] = {"items": dict(errs)}
    return out
