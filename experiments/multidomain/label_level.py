"""Label level of the multi-domain experiment: each way of putting the organic domain's ωB97M
labels onto the GPAW target scale, scored against GPAW itself. No model is trained; the error
of a variant here is the floor under any model trained on its labels.

Truth is the target level computed for the same geometries (datasets/bridge-mini):

- cross-domain items (`tealign bench cross --alignment`): gas–solid reactions, adsorption and
  molecular-crystal lattice energies, where the molecules take their aligned ωB97M energy and
  every periodic frame its GPAW energy;
- molecules on the target scale: organic-mini's test split (24 conformers of 4 molecules, with
  forces) and the 40 calib-qm9 molecules the alignments were not fitted on. Per molecule, the
  aligned total energy minus GPAW's (which is minus the atomization-energy error); per
  conformer family, energies relative to the family's mean; forces, a·F(ωB97M) against F(GPAW).

Variants: none (ωB97M totals as they are: all-electron against valence-only, the straw man of
model variant c), ICEA, TEA with the single factor, TEA with the model `--model auto` picks,
and per-source linear element references (each domain's ε by least squares on its own training
split; a molecule then carries E − Σn·ε_organic + Σn·ε_inorganic, which is what a model trained
on both sets of residuals predicts for a cross-domain difference; an element one domain's
training data lacks has ε = 0 there).

Paired differences against TEA (single factor): the mean over items of |err_variant| −
|err_TEA|, with a 95 % percentile interval from 10 000 bootstrap resamples of the items.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VARIANTS = ["none", "icea", "scale", "auto", "linref"]
TITLES = {"none": "none (ωB97M totals as they are; straw man)", "icea": "ICEA only",
          "scale": "TEA (single factor a)", "auto": "TEA (--model auto)",
          "linref": "per-source linear element references"}
REFERENCE = "scale"
N_BOOT = 10_000


def paired_interval(err: np.ndarray, err_ref: np.ndarray, groups: np.ndarray | None = None,
                    n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Mean of |err| − |err_ref| over items and its 95 % bootstrap interval; ``groups``
    resamples whole groups (the conformers of one molecule) instead of single items."""
    d = np.abs(np.asarray(err, float)) - np.abs(np.asarray(err_ref, float))
    rng = np.random.default_rng(seed)
    if groups is None:
        idx = rng.integers(0, d.size, size=(n_boot, d.size))
        boots = d[idx].mean(axis=1)
    else:
        g = np.asarray(groups).astype(str)
        keys = np.unique(g)
        sums = np.array([d[g == k].sum() for k in keys])
        counts = np.array([(g == k).sum() for k in keys])
        pick = rng.integers(0, keys.size, size=(n_boot, keys.size))
        boots = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean_eV": float(d.mean()), "lo_eV": float(lo), "hi_eV": float(hi),
            "n": int(d.size)}


def leave_one_molecule_out(items: list[dict], ref_items: list[dict]) -> dict | None:
    """At the label level an item's error is a sum of its gas molecules' label errors, so the
    items are not independent. For each molecule, the paired mean difference over the items
    without it: the range says whether one molecule decides the comparison."""
    mols = sorted({m for it in items for m in it.get("molecules", [])})
    if not mols:
        return None
    d = np.array([abs(a["error_eV"]) - abs(b["error_eV"]) for a, b in zip(items, ref_items)])
    means = {}
    for m in mols:
        keep = np.array([m not in it.get("molecules", []) for it in items])
        if keep.any():
            means[m] = float(d[keep].mean())
    if not means:
        return None
    return {"min_eV": min(means.values()), "max_eV": max(means.values()), "by_molecule": means,
            "n_molecules": len(mols)}


def alignment_files(run, out: Path) -> dict[str, Path]:
    """alignment.json per variant: ICEA / scale / auto from `tealign fit` on calib-qm9
    (Run.alignments), the identity for none, and the per-source linear references as an ICEA
    from the organic ε table onto the inorganic one."""
    from tealign.align import TotalEnergyAlignment
    from tealign.io.outputs import write_json
    from tealign.methods import load_table

    files = dict(run.alignments())
    f = run.files
    out.mkdir(parents=True, exist_ok=True)
    src = load_table(str(f["calib_src"]))
    none = out / "none.alignment.json"
    TotalEnergyAlignment.icea_only(src, src, note="identity: the source totals as they are"
                                   ).save(none)
    files["none"] = none
    lr = run.linear_references()
    fitted = Path(lr["zero"]).parent  # Run.linear_references writes <domain>.json there
    org = json.loads((fitted / "organic.json").read_text())
    ino = json.loads((fitted / "inorganic.json").read_text())
    elements = sorted(set(org["energies"]) | set(ino["energies"]))
    tables = {}
    for name, t in (("organic", org), ("inorganic", ino)):
        p = out / f"linref_{name}_all_elements.json"
        write_json(p, {
            "name": t["name"], "units": "eV", "method": t["method"] + "; 0 for an element "
            "this domain's training split lacks",
            "energies": {el: t["energies"].get(el, 0.0) for el in elements}})
        tables[name] = load_table(str(p))
    linref = out / "linref.alignment.json"
    TotalEnergyAlignment.icea_only(
        tables["organic"], tables["inorganic"],
        note="per-source linear element references: organic ε onto inorganic ε").save(linref)
    files["linref"] = linref
    return files


def molecule_errors(alignment: Path, path: Path, source_key: str = "energy_wb97m",
                    target_key: str = "energy_pbe", forces: bool = True) -> dict:
    """Aligned-source minus target, per frame (eV and eV/atom), per frame relative to its
    molecule's mean (eV), and per force component (eV/Å) when both levels have forces."""
    from tealign.align import TotalEnergyAlignment
    from tealign.io import read_batch

    batch = read_batch(path)
    if batch.rejects:
        raise SystemExit(f"{path}: {len(batch.rejects)} frames rejected on reading")
    tea = TotalEnergyAlignment.load(alignment)
    fkey = f"forces_{source_key.removeprefix('energy_')}" if forces else None
    res = tea.transform(batch, energy_key=source_key, forces_key=fkey, stress_key=None,
                        virials_key=None, file=str(path))
    if res.rejects:
        raise SystemExit(f"{path}: {res.rejects[0]}")
    e = np.asarray(res.info["REF_energy"], float) - np.asarray(res.info[target_key], float)
    mol = np.asarray(res.info["mol_id"]).astype(str)
    rel = e.copy()
    for m in np.unique(mol):
        rel[mol == m] -= e[mol == m].mean()
    out = {"mol_id": mol.tolist(), "energy_eV": e.tolist(),
           "energy_per_atom_eV": (e / res.n_atoms).tolist(), "relative_eV": rel.tolist()}
    if forces:
        tkey = f"forces_{target_key.removeprefix('energy_')}"
        df = np.asarray(res.arrays["REF_forces"]) - np.asarray(res.arrays[tkey])
        out["force_mae_eV_A"] = float(np.abs(df).mean())
        out["force_abs_err"] = np.abs(df).ravel().tolist()
        out["force_atom_mol"] = np.repeat(mol, 3 * res.n_atoms).tolist()  # per component
    return out


def label_level(run, bridge: Path, organic_test: Path, heldout: Path) -> dict:
    """Every variant on every label-level quantity; the dict that results.json stores."""
    out = run.out / "label"
    files = alignment_files(run, out / "alignments")
    res: dict = {"bridge": str(bridge), "organic_test": str(organic_test),
                 "heldout": str(heldout), "variants": {}}
    for v in VARIANTS:
        run.tealign("bench", "cross", "--alignment", files[v], "--data", bridge,
                    "-o", out / v, "--json")
        cross = json.loads((out / v / "results.json").read_text())  # items, per frame
        entry = {"alignment": str(files[v]), "a": cross.get("a"),
                 "items": [{**{k: it[k] for k in ("kind", "id", "error_eV")},
                            "molecules": sorted(s for s in it["terms"]
                                                if cross["frames"][s]["level"]
                                                == "aligned source")}
                           for it in cross["items"]],
                 "skipped": cross["skipped"]}
        entry["organic_test"] = molecule_errors(files[v], organic_test)
        entry["heldout"] = molecule_errors(files[v], heldout, forces=False)
        res["variants"][v] = entry
    res["summary"] = summary(res)
    return res


def _mae(x) -> float:
    return float(np.mean(np.abs(np.asarray(x, float))))


def summary(res: dict) -> dict:
    """MAE per variant and quantity, and the paired difference against TEA (single factor)."""
    ref = res["variants"][REFERENCE]
    out: dict = {}
    for v, e in res["variants"].items():
        s: dict = {}
        for kind in ("reaction", "adsorption", "lattice", "all"):
            err = [it["error_eV"] for it in e["items"] if kind in ("all", it["kind"])]
            err_ref = [it["error_eV"] for it in ref["items"] if kind in ("all", it["kind"])]
            if not err:
                continue
            s[kind] = {"mae_eV": _mae(err), "n": len(err)}
            if v != REFERENCE:
                s[kind]["minus_tea"] = paired_interval(np.array(err), np.array(err_ref))
                s[kind]["minus_tea"]["leave_one_molecule_out"] = leave_one_molecule_out(
                    [it for it in e["items"] if kind in ("all", it["kind"])],
                    [it for it in ref["items"] if kind in ("all", it["kind"])])
        for part, keys in (("organic_test", ("energy_per_atom_eV", "relative_eV")),
                           ("heldout", ("energy_per_atom_eV",))):
            for key in keys:
                name = f"{part}:{key}"
                err = np.array(e[part][key])
                s[name] = {"mae_eV": _mae(err), "n": int(err.size)}
                if v != REFERENCE:
                    s[name]["minus_tea"] = paired_interval(
                        err, np.array(ref[part][key]), groups=np.array(e[part]["mol_id"]))
        s["organic_test:forces"] = {"mae_eV_A": e["organic_test"]["force_mae_eV_A"]}
        if v != REFERENCE:
            s["organic_test:forces"]["minus_tea"] = paired_interval(
                np.array(e["organic_test"]["force_abs_err"]),
                np.array(ref["organic_test"]["force_abs_err"]),
                groups=np.array(e["organic_test"]["force_atom_mol"]))
        out[v] = s
    return out


def _cell(s: dict, key: str, scale: float, fmt: str = "{:.1f}") -> str:
    if key not in s:
        return "–"
    val = s[key].get("mae_eV", s[key].get("mae_eV_A"))
    text = fmt.format(val * scale)
    d = s[key].get("minus_tea")
    if d is not None:
        text += (" (" + fmt.format(d["mean_eV"] * scale) + " [" + fmt.format(d["lo_eV"] * scale)
                 + ", " + fmt.format(d["hi_eV"] * scale) + "])")
    return text


def table_lines(res: dict) -> list[str]:
    """The label-level table for the README: MAE per quantity, and in brackets the paired
    difference against TEA (single factor) with its 95 % interval (negative: better than
    TEA)."""
    s = res["summary"]
    n = {k: s[REFERENCE][k]["n"] for k in s[REFERENCE] if "n" in s[REFERENCE][k]}
    head = ["variant", f"reactions (meV, n={n.get('reaction', 0)})",
            f"adsorption (meV, n={n.get('adsorption', 0)})",
            f"lattice energies (meV, n={n.get('lattice', 0)})",
            f"all cross-domain items (meV, n={n.get('all', 0)})",
            f"held-out calib-qm9 E (meV/atom, n={n.get('heldout:energy_per_atom_eV', 0)})",
            f"organic test E (meV/atom, n={n.get('organic_test:energy_per_atom_eV', 0)})",
            "organic test relative E (meV)", "organic test F (meV/Å)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in VARIANTS:
        if v not in s:
            continue
        x = s[v]
        row = [TITLES[v] + (" ← reference" if v == REFERENCE else "")]
        row += [_cell(x, k, 1000) for k in ("reaction", "adsorption", "lattice", "all")]
        row += [_cell(x, "heldout:energy_per_atom_eV", 1000),
                _cell(x, "organic_test:energy_per_atom_eV", 1000),
                _cell(x, "organic_test:relative_eV", 1000),
                _cell(x, "organic_test:forces", 1000)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


QUANTITIES = [("reaction", "gas–solid reaction energies", "meV"),
              ("adsorption", "adsorption energies", "meV"),
              ("lattice", "molecular-crystal lattice energies", "meV"),
              ("heldout:energy_per_atom_eV", "held-out calib-qm9 total energies", "meV/atom"),
              ("organic_test:energy_per_atom_eV", "organic test total energies", "meV/atom"),
              ("organic_test:relative_eV", "organic test conformer energies", "meV"),
              ("organic_test:forces", "organic test forces", "meV/Å")]


def verdict_lines(res: dict) -> list[str]:
    """One statement per quantity, from the numbers: TEA's MAE, the best variant, and each
    other variant's paired difference, called a win or a loss only when its 95 % interval
    excludes zero."""
    s = res["summary"]
    out = []
    for key, label, unit in QUANTITIES:
        if key not in s.get(REFERENCE, {}):
            continue

        def mae(v, key=key):
            return 1000 * s[v][key].get("mae_eV", s[v][key].get("mae_eV_A"))

        have = [v for v in VARIANTS if v in s and key in s[v]]
        best = min(have, key=mae)
        wins, losses, ties = [], [], []
        for v in have:
            if v == REFERENCE:
                continue
            d = s[v][key]["minus_tea"]
            text = (f"{TITLES[v]} {mae(v):.1f} ({1000 * d['mean_eV']:+.1f} "
                    f"[{1000 * d['lo_eV']:+.1f}, {1000 * d['hi_eV']:+.1f}]")
            lo, hi = d["lo_eV"], d["hi_eV"]
            loo = d.get("leave_one_molecule_out")
            if loo:  # one molecule must not decide it: the range joins the interval
                text += (f"; leaving one of {loo['n_molecules']} molecules out "
                         f"{1000 * loo['min_eV']:+.1f} to {1000 * loo['max_eV']:+.1f}")
                lo, hi = min(lo, loo["min_eV"]), max(hi, loo["max_eV"])
            text += ")"
            (wins if lo > 0 else losses if hi < 0 else ties).append(text)
        line = f"- **{label}** (MAE, {unit}): TEA {mae(REFERENCE):.1f}"
        line += "; best of all" if best == REFERENCE else f"; best {TITLES[best]} {mae(best):.1f}"
        out.append(line + outcome(wins, losses, ties) + ".")
    return out


def outcome(wins: list[str], losses: list[str], ties: list[str]) -> str:
    """The comparisons against TEA in words: better, worse, not resolved."""
    text = ""
    for what, items in (("TEA better than", wins), ("TEA worse than", losses),
                        ("no difference resolved from", ties)):
        if items:
            text += f"; {what} " + "; ".join(items)
    return text
