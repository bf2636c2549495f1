"""Model level of the multi-domain experiment: what a trained model predicts on the target
scale, against the GPAW truth, and how each variant compares with TEA (variant e).

- Held-out crystal family: every frame of one crystal (SiC, whose elements Si and C the
  training set holds in Si and diamond) is the inorganic test split; no SiC frame is trained
  on. The other crystals keep inorganic-mini's train/valid splits (its former test frames are
  trained on).
- Target-scale predictions per variant (``to_target``): models trained on target-scale labels
  (a, c, d, e, e2, and g's inorganic head) as they are; the organic specialist (b) through the
  TEA single-factor alignment after the fact; the linear-reference model (f) plus Σ n·ε of the
  inorganic domain (the ε its inorganic labels had removed; 0 for an element without one).
- Cross-domain items of datasets/bridge-mini from the predicted energies of every bridge frame
  (one single point each), and, for the multi-head model, a second set with each frame on its
  own domain's head (molecules on the organic head, put on the target scale by the same TEA
  alignment; periodic frames on the inorganic head).
- Intervals: per-domain metrics as mean ± sample SD over seeds and the paired difference
  against TEA per seed (mean, 95 % t interval over seeds). Cross-domain items: the tables show
  the item's |error| averaged over seeds with a 95 % bootstrap interval over items (descriptive
  only: it ignores the seed-to-seed spread and that items sharing a gas molecule share its
  error); every verdict comes from ``paired.py`` (paired by seed and by molecule, ``seed_paired``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HELD_OUT_CRYSTAL = "SiC"
#: the cross-domain items of round one
BRIDGE_MINI = Path(__file__).resolve().parents[2] / "datasets" / "bridge-mini" / "bridge.json"
TARGET_HEAD = "inorganic"


def prepare_inorganic(src: Path, out: Path, crystal: str = HELD_OUT_CRYSTAL) -> Path:
    """A copy of inorganic-mini with every frame of ``crystal`` in the test split and the
    former test frames in training; rewritten only when the source changed."""
    from tealign.io import read_batch
    from tealign.io.extxyz import write_extxyz

    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    b = read_batch(src)
    if b.rejects:
        raise SystemExit(f"{src}: {len(b.rejects)} frames rejected on reading")
    split = np.asarray(b.info["split"]).astype(object)
    fam = np.asarray(b.info["crystal"]).astype(str) == crystal
    if not fam.any():
        raise SystemExit(f"{src}: no frame of crystal {crystal}")
    split[split == "test"] = "train"
    split[fam] = "test"
    b.info["split"] = split
    out.parent.mkdir(parents=True, exist_ok=True)
    write_extxyz(out, [b])
    return out


def linref_offsets(path: Path, numbers: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Σ_i ε(Z_i) per frame from an ε table JSON (eV); 0 for an element it lacks."""
    import json

    from ase.data import atomic_numbers

    eps = {atomic_numbers[el]: float(v)
           for el, v in json.loads(path.read_text())["energies"].items()}
    per_atom = np.array([eps.get(int(z), 0.0) for z in numbers])
    frame = np.repeat(np.arange(n_atoms.size), n_atoms)
    return np.bincount(frame, weights=per_atom, minlength=n_atoms.size)


def to_target(v: str, batch, energy: np.ndarray, forces: np.ndarray | None, tea_path: Path,
              linref_inorganic: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Variant ``v``'s predictions on the target (GPAW) scale, see the module docstring."""
    if v == "b":
        from tealign.align import TotalEnergyAlignment

        pb = batch.copy()
        pb.info["pred_energy"] = np.asarray(energy, float)
        fk = None
        if forces is not None:
            pb.arrays["pred_forces"] = np.asarray(forces, float)
            fk = "pred_forces"
        res = TotalEnergyAlignment.load(tea_path).transform(
            pb, energy_key="pred_energy", forces_key=fk, stress_key=None, virials_key=None)
        if res.rejects:
            raise SystemExit(f"TEA transform of (b) predictions: {res.rejects[0]}")
        return (np.asarray(res.info["REF_energy"], float),
                None if forces is None else np.asarray(res.arrays["REF_forces"], float))
    if v == "f":
        return energy + linref_offsets(linref_inorganic, batch.numbers, batch.n_atoms), forces
    return energy, forces


def cross_items(energies: dict[str, float], bridge: Path) -> dict[str, float]:
    """Item id -> predicted − reference (eV) for every bridge item whose species all have a
    predicted energy, from bench cross's own definition and item algebra."""
    from tealign.bench import cross

    frames = cross.load_frames([bridge])
    items = cross.items_of(cross.load_definition(bridge.with_name("bridge.json")))
    out = {}
    for it in items:
        if not all(s in energies for s in it["terms"]):
            continue
        ref = sum(float(c) * float(frames[s].info["energy_pbe"]) for s, c in it["terms"].items())
        pred = sum(float(c) * energies[s] for s, c in it["terms"].items())
        out[it["id"]] = pred - ref
    return out


def bridge_energies(model, v: str, bridge: Path, tea_path: Path, linref_inorganic: Path,
                    heads: dict[str, str] | None = None) -> dict[str, float]:
    """Species -> target-scale energy predicted by ``model`` for every bridge frame whose
    elements the model knows. ``heads`` maps config_type to the head to use (multi-head
    model); molecules predicted on a non-target head are put on the target scale by TEA."""
    from tealign.evaluate import predict
    from tealign.io import read_batch

    b = read_batch(bridge)
    known = {int(z) for z in model.atomic_numbers}
    species = np.asarray(b.info["species"]).astype(str)
    ctype = np.asarray(b.info["config_type"]).astype(str)
    frame = np.repeat(np.arange(b.n_frames), b.n_atoms)
    ok = np.array([set(b.numbers[frame == k].tolist()) <= known for k in range(b.n_frames)])
    out: dict[str, float] = {}
    groups = {None: ok} if not heads else {
        h: ok & np.isin(ctype, [c for c, hh in heads.items() if hh == h])
        for h in set(heads.values())}
    for head, keep in groups.items():
        if not keep.any():
            continue
        sub = b.select(keep)
        p = predict(model, sub, head=head, compute_stress=False, compute_forces=False)
        e = np.asarray(p.energy, float)
        if heads and head != TARGET_HEAD:
            e, _ = to_target("b", sub, e, None, tea_path, linref_inorganic)
        else:
            e, _ = to_target(v, sub, e, None, tea_path, linref_inorganic)
        out.update(dict(zip(species[keep].tolist(), e.tolist())))
    return out


def target_errors(model, v: str, path: Path, tea_path: Path, linref_inorganic: Path,
                  split: str | None = None, forces: bool = True,
                  exclude_mol_ids: set[str] | None = None) -> dict:
    """Target-scale errors of the model on frames carrying GPAW labels (energy_pbe,
    forces_pbe): energy MAE per atom, conformer-relative energy MAE, force MAE. Frames whose
    mol_id is in ``exclude_mol_ids`` (molecules the model was trained on) are left out."""
    from tealign.evaluate import predict
    from tealign.io import read_batch

    b = read_batch(path)
    if split is not None:
        b = b.select(np.asarray(b.info["split"]).astype(str) == split)
    if exclude_mol_ids:
        b = b.select(~np.isin(np.asarray(b.info["mol_id"]).astype(str), list(exclude_mol_ids)))
    head = TARGET_HEAD if v == "g" else None
    p = predict(model, b, head=head, compute_stress=False, compute_forces=forces)
    e, f = to_target(v, b, np.asarray(p.energy, float),
                     np.asarray(p.forces, float) if forces else None, tea_path, linref_inorganic)
    err = e - np.asarray(b.info["energy_pbe"], float)
    out = {"n": int(b.n_frames),
           "energy_mae_meV_per_atom": float(np.mean(np.abs(err / b.n_atoms)) * 1000)}
    ids = np.asarray(b.info["mol_id"]).astype(str)
    rel = []
    for m in np.unique(ids):
        k = ids == m
        if k.sum() > 1:
            rel.extend((err[k] - err[k].mean()).tolist())
    if rel:
        out["relative_energy_mae_meV"] = float(np.mean(np.abs(rel)) * 1000)
    if forces:
        out["forces_mae_meV_per_A"] = float(
            np.mean(np.abs(f - np.asarray(b.arrays["forces_pbe"], float))) * 1000)
    return out


def seed_interval(values: list[float], reference: list[float]) -> dict | None:
    """Paired difference (values − reference) over common seeds: mean and 95 % t interval
    (None with fewer than two seeds)."""
    d = np.asarray(values, float) - np.asarray(reference, float)
    if d.size < 2:
        return None
    from scipy import stats

    half = float(stats.t.ppf(0.975, d.size - 1)) * d.std(ddof=1) / np.sqrt(d.size)
    return {"mean": float(d.mean()), "lo": float(d.mean() - half),
            "hi": float(d.mean() + half), "n_seeds": int(d.size)}


def _seeds(entry: dict | None) -> dict[str, dict]:
    return (entry or {}).get("by_seed", {})


def cross_rows(results: dict) -> list[tuple[str, str, dict[str, dict[str, float]]]]:
    """(variant, mode, {seed: {item: error}}) for every variant and head mode evaluated."""
    rows = []
    for v, entry in results["variants"].items():
        modes: dict[str, dict] = {}
        for seed, r in _seeds(entry).items():
            for mode, errs in r.get("errors", {}).get("cross", {}).items():
                if errs:
                    modes.setdefault(mode, {})[seed] = errs
        rows += [(v, mode, by_seed) for mode, by_seed in modes.items()]
    return rows


def sparse_items(bridge: Path, training_frames: dict[str, int], few: int = 2) -> set[str]:
    """Ids of the bridge items with a gas molecule that has at most ``few`` training frames
    in organic-mini (frame_errors.json's ``training_frames``): HF and H2 here."""
    from tealign.bench import cross

    sparse = {s for s, n in training_frames.items() if n <= few}
    items = cross.items_of(cross.load_definition(bridge.with_name("bridge.json")))
    return {it["id"] for it in items if sparse & set(it["terms"])}


def cross_summary(results: dict, reference: str = "e", drop: set[str] = frozenset()
                  ) -> list[dict]:
    """Per variant and mode: MAE over all items (less ``drop``) and per kind (mean ± SD over
    seeds), and the seed-averaged |error| paired against the reference variant over common
    items."""
    from label_level import paired_interval

    kinds = {}
    for r in results.get("label_level", {}).get("variants", {}).get("scale", {}).get("items", []):
        kinds[r["id"]] = r["kind"]
    rows = cross_rows(results)
    ref = next((by for v, _, by in rows if v == reference), None)
    out = []
    for v, mode, by in rows:
        items = sorted(set.intersection(*(set(e) for e in by.values())) - set(drop))
        per_seed = {s: np.array([e[i] for i in items]) for s, e in by.items()}
        maes = [float(np.mean(np.abs(x))) for x in per_seed.values()]
        row = {"variant": v, "mode": mode, "n_items": len(items), "n_seeds": len(by),
               "mae_eV": float(np.mean(maes)),
               "sd_eV": float(np.std(maes, ddof=1)) if len(maes) > 1 else None,
               "by_kind": {}}
        mean_abs = np.mean([np.abs(x) for x in per_seed.values()], axis=0)
        for kind in ("reaction", "adsorption", "lattice"):
            k = np.array([kinds.get(i) == kind for i in items])
            if k.any():
                row["by_kind"][kind] = float(mean_abs[k].mean())
        if ref is not None and v != reference:
            common = [i for i in items if all(i in e for e in ref.values())]
            mine = np.mean([[abs(e[i]) for i in common] for e in by.values()], axis=0)
            theirs = np.mean([[abs(e[i]) for i in common] for e in ref.values()], axis=0)
            row["minus_tea"] = paired_interval(mine, theirs)
        out.append(row)
    return out


def _fmt_interval(d: dict | None, scale: float, keys=("mean", "lo", "hi")) -> str:
    if not d:
        return ""
    m, lo, hi = (d[k] * scale for k in keys)
    return f" ({m:+.1f} [{lo:+.1f}, {hi:+.1f}])"


def cross_table_lines(results: dict, titles: dict[str, str], drop: set[str] = frozenset()
                      ) -> list[str]:
    rows = cross_summary(results, drop=drop)
    if not rows:
        return []
    lines = ["| variant | head | items | seeds | all items MAE (meV) | reactions | adsorption "
             "| lattice |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mae = f"{r['mae_eV'] * 1000:.0f}" + (f" ± {r['sd_eV'] * 1000:.0f}"
                                             if r["sd_eV"] is not None else "")
        kinds = [f"{r['by_kind'][k] * 1000:.0f}" if k in r["by_kind"] else "–"
                 for k in ("reaction", "adsorption", "lattice")]
        lines.append(f"| ({r['variant']}) {titles[r['variant']]} | {r['mode']} | "
                     f"{r['n_items']} | {r['n_seeds']} | {mae} | " + " | ".join(kinds) + " |")
    return lines


#: target-scale metrics: (part of the errors dict, key, column title)
TARGET_METRICS = [("organic_target", "energy_mae_meV_per_atom", "organic test E (meV/atom)"),
                  ("organic_target", "relative_energy_mae_meV", "organic test relative E (meV)"),
                  ("organic_target", "forces_mae_meV_per_A", "organic test F (meV/Å)"),
                  ("heldout_target", "energy_mae_meV_per_atom",
                   "held-out calib-qm9 E (meV/atom)"),
                  ("inorganic", "energy_mae_meV_per_atom", "held-out SiC E (meV/atom)"),
                  ("inorganic", "forces_mae_meV_per_A", "held-out SiC F (meV/Å)")]


def target_table_lines(results: dict, titles: dict[str, str], reference: str = "e") -> list[str]:
    """Per-domain errors in target units, mean ± SD over seeds, and in brackets the paired
    difference against TEA over common seeds with its 95 % t interval."""
    var = results["variants"]

    def vals(v, part, key):
        return {s: r["errors"][part][key] for s, r in _seeds(var.get(v)).items()
                if key in (r.get("errors", {}).get(part) or {})}

    lines = ["| variant | " + " | ".join(t for _, _, t in TARGET_METRICS) + " |",
             "|---|" + "---|" * len(TARGET_METRICS)]
    for v in var:
        cells = []
        for part, key, _ in TARGET_METRICS:
            x = vals(v, part, key)
            if not x:
                cells.append("–")
                continue
            arr = np.array(list(x.values()))
            c = f"{arr.mean():.1f}" + (f" ± {arr.std(ddof=1):.1f}" if arr.size > 1 else "")
            ref = vals(reference, part, key)
            common = sorted(set(x) & set(ref))
            if v != reference and common:
                c += _fmt_interval(seed_interval([x[s] for s in common],
                                                 [ref[s] for s in common]), 1.0)
            cells.append(c)
        lines.append(f"| ({v}) {titles[v]} | " + " | ".join(cells) + " |")
    return lines


def paired_inputs(results: dict, titles: dict[str, str]
                  ) -> tuple[dict, dict[str, str], dict[str, list[str]], dict[str, str]]:
    """Round one's cross-domain errors in the shape ``paired.verdict_rows`` reads: (per-seed
    errors keyed by variant, titles, item → gas molecules of datasets/bridge-mini, item →
    kind). A single-head variant keeps its key; each head mode of the multi-head variant gets
    its own key, "g, <mode>"."""
    import paired

    per_seed: dict = {}
    names: dict[str, str] = {}
    for v, mode, by in cross_rows(results):
        key = v if mode == "model" else f"{v}, {mode}"
        per_seed[key] = {int(s): {"items": dict(e)} for s, e in by.items()}
        names[key] = titles.get(v, v)
    kinds = {r["id"]: r["kind"] for r in results.get("label_level", {}).get("variants", {})
             .get("scale", {}).get("items", [])}
    return per_seed, names, paired.item_molecules(BRIDGE_MINI), kinds


def seed_paired(results: dict, titles: dict[str, str], reference: str = "e",
                variants: list[str] | None = None, drop: set[str] = frozenset(),
                by_kind: bool = False) -> list[dict]:
    """Every round-one variant (or ``variants``) against ``reference`` on the cross-domain
    items, paired by seed and by molecule (``paired.verdict_rows``: D = mean over seeds of
    MAE_s(x) − MAE_s(ref), its t interval over seeds and joint seed × molecule bootstrap, and
    the verdict, resolved only where both exclude zero). ``by_kind``: one more row per item
    kind. [] when the reference was not evaluated."""
    import paired

    per_seed, names, item_mols, kinds = paired_inputs(results, titles)
    if reference not in per_seed:
        return []
    variants = [v for v in (variants or per_seed) if v in per_seed and v != reference]
    return paired.verdict_rows(per_seed, reference, names, item_mols,
                               kinds=kinds if by_kind else None, variants=variants, drop=drop)


def _paired_text(r: dict) -> str:
    """'D [t lo, hi; joint lo, hi]' of a ``paired.verdict_rows`` row, meV."""
    def iv(d):
        return "–" if d is None else f"{1e3 * d['lo']:+.0f}, {1e3 * d['hi']:+.0f}"

    return (f"{1e3 * r['mean_eV']:+.0f} [t {iv(r['t'])}; joint {iv(r['joint'])}], "
            f"{r['n_seeds']} seeds")


def cross_verdict_lines(results: dict, titles: dict[str, str], reference: str = "e") -> list[str]:
    """Cross-domain statements: TEA's MAE, then each alternative called better or worse only
    where the seed- and molecule-paired comparison (``seed_paired``) resolves it."""
    rows = seed_paired(results, titles, reference)
    if not rows:
        return ["- cross-domain items: TEA (e) not evaluated yet."]
    head = max(rows, key=lambda r: r["n_items"])
    better, worse, tied = [], [], []
    for r in rows:
        text = f"({r['variant']}) {r['title']} {1e3 * r['mae_x_eV']:.0f} ({_paired_text(r)}"
        if r["n_items"] != head["n_items"]:
            text += (f"; over its {r['n_items']} items only, where TEA's MAE is "
                     f"{1e3 * r['mae_ref_eV']:.0f}")
        text += ")"
        {"worse": better, "better": worse}.get(r["verdict"], tied).append(text)
    line = (f"- **cross-domain items, model level** (MAE, meV, {head['n_items']} items; "
            "each alternative paired with TEA by seed and by molecule, `paired.py`: D, its "
            "t interval over seeds and its joint seed × molecule bootstrap): TEA (e) "
            f"{1e3 * head['mae_ref_eV']:.0f}")
    from label_level import outcome

    return [line + outcome(better, worse, tied) + "."]


def oracle_lines(results: dict, titles: dict[str, str], drop: set[str] = frozenset()
                 ) -> list[str]:
    """The oracle (o: the organic subset's GPAW labels) against TEA on the very same frames
    (eo: their ωB97M labels, TEA single factor) and against TEA on all of organic-mini (e):
    cross-domain MAE with the seed- and molecule-paired difference (``seed_paired``), and the
    target-units errors with the paired seed interval; then the verdicts, in words, as the
    paired comparison computed them. [] until (o) is evaluated."""
    var = results["variants"]
    if "o" not in var:
        return []
    lines = ["| compared | cross-domain MAE (meV) | D = MAE(o) − MAE(other), paired by seed and "
             "molecule (meV) [t interval; joint bootstrap] | D per seed (meV) | verdict | "
             "organic test E (meV/atom) | organic test F (meV/Å) | held-out calib-qm9 E "
             "(meV/atom) |", "|---|---|---|---|---|---|---|---|"]

    def target(v, part, key="energy_mae_meV_per_atom"):
        return {s: r["errors"][part][key] for s, r in _seeds(var.get(v)).items()
                if key in (r.get("errors", {}).get(part) or {})}

    def cells_of(r):
        per = ", ".join(f"{1e3 * x:+.0f}" for x in r["per_seed_eV"])
        return (f"{1e3 * r['mae_x_eV']:.0f} vs {1e3 * r['mae_ref_eV']:.0f} | "
                f"{_paired_text(r)} | {per} | {r['verdict']}")

    def words(r, where):
        word = {"better": "the oracle is better", "worse": "the oracle is worse"}.get(
            r["verdict"], "no difference resolved")
        return f"against ({r['reference']}){where}: {word} ({_paired_text(r)})"

    said = []
    for other in ("eo", "e"):
        rows = seed_paired(results, titles, reference=other, variants=["o"])
        if not rows:
            continue
        r = rows[0]
        cells = []
        for part, key in (("organic_target", "energy_mae_meV_per_atom"),
                          ("organic_target", "forces_mae_meV_per_A"),
                          ("heldout_target", "energy_mae_meV_per_atom")):
            o, x = target("o", part, key), target(other, part, key)
            if not o or not x:
                cells.append("–")
                continue
            common = sorted(set(o) & set(x))
            if not common:
                cells.append("–")
                continue
            iv = seed_interval([o[s] for s in common], [x[s] for s in common])
            cells.append(f"{np.mean([o[s] for s in common]):.1f} vs "
                         f"{np.mean([x[s] for s in common]):.1f}" + _fmt_interval(iv, 1.0))
        lines.append(f"| (o) against ({other}) {titles[other]} | {cells_of(r)} | "
                     + " | ".join(cells) + " |")
        said.append(words(r, " on the cross-domain items"))
    well = seed_paired(results, titles, reference="eo", variants=["o"], drop=drop) if drop else []
    if well and well[0]["n_items"]:
        r = well[0]
        lines.append(f"| (o) against (eo), the {r['n_items']} items without a sparsely sampled "
                     f"molecule | {cells_of(r)} | | | |")
        said.append(words(r, f" on the {r['n_items']} items without HF or H2"))
    cost = results.get("oracle_cost") or {}
    if said:
        lines += ["", "What recomputing the organic data buys, from the table (written by "
                  "`model_level.oracle_lines`; a verdict only where the t interval over seeds "
                  "and the joint seed × molecule bootstrap both exclude zero): "
                  + "; ".join(said) + ". Against (eo) the frames, model and seeds are the same "
                  "and only the organic labels differ (GPAW against TEA-aligned ωB97M), so that "
                  "row is the price of aligning instead of recomputing; against (e) the oracle "
                  f"also has {cost.get('organic_train_o', '?')} organic training frames instead "
                  f"of {cost.get('organic_train_e', '?')}. (A bootstrap over the items of "
                  "seed-averaged errors, used here before, ignores the seed-to-seed spread and "
                  "is no longer used for a verdict.)"]
    return lines
