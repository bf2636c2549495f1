"""Label level on bridge-v2 (issue 31): 23 gas species in 37 gas–solid reactions, each
alignment of the organic domain's ωB97M/def2-SVP labels scored against GPAW PBE/PW800 at the
same geometries, with the uncertainty from a bootstrap over MOLECULES.

    python experiments/multidomain/bridge_v2.py        # runs/bridge_v2/results.json + tables

At the label level every solid is exact (its GPAW energy), so a reaction's error is a sum of
its gas molecules' label residuals, e_r = Σ_m ν_rm δ_m with δ_m = E_aligned(m) − E_GPAW(m).
The items are therefore not independent, and resampling items (as bridge-mini's analysis did)
is overconfident. Here the molecules are the sampled units: a replicate draws the 23 molecules
with replacement (counts w_m) and weighs each reaction by the product of its molecules' counts,
Π_{m∈r} w_m — the pigeonhole bootstrap for items crossed with several random factors (A. B.
Owen, Ann. Appl. Stat. 1, 246 (2007)); a reaction whose molecule was not drawn drops out of
that replicate. MAE* = Σ_r W_r |e_r| / Σ_r W_r; a paired difference uses the same weights.

Variants: none (the identity: ωB97M totals as they are), ICEA, TEA with the single factor a and
TEA with the model ``--model auto`` picks, each fitted on calib-qm9 exactly as the multidomain
run fits them (same a), but with isolated-atom tables extended by bridge-v2's S and Cl atoms
(computed at the same settings; the shared elements agree to 1e-6 eV); and the per-source
linear element references of the multidomain run. A variant that cannot align a molecule (an
element its tables or offsets lack) does not score the reactions that need it; comparisons are
over the reactions both variants score.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = ROOT / "datasets" / "bridge-v2"
CALIB = ROOT / "datasets" / "calib-qm9"
OUT = HERE / "runs" / "bridge_v2"
VARIANTS = ["none", "icea", "scale", "auto", "linref"]
#: the per-source linear element references of round two (run_v2.py: least squares on each
#: source's training split, bridge-v2's training frames of every gas species and solid
#: included, so S and Cl have their ε), the labels model (f) of round two trains on. Round
#: one's fit (runs/label/alignments) had no organic frame with S or Cl: its ε for them is a
#: placeholder 0, which would score those molecules against nothing.
LINREF = HERE / "runs_v2_redrawn" / "label" / "linref.alignment.json"
TITLES = {"none": "none (ωB97M totals as they are; straw man)", "icea": "ICEA only",
          "scale": "TEA (single factor a)", "auto": "TEA (--model auto)",
          "linref": "per-source linear element references"}
REFERENCE = "scale"
N_BOOT = 10_000


# --------------------------------------------------------------------------- the bootstrap
def molecule_bootstrap_weights(items: list[list[str]], molecules: list[str], n_boot: int = N_BOOT,
                               seed: int = 0) -> np.ndarray:
    """(n_boot, n_items) weights: per replicate, the molecules drawn with replacement (counts
    w_m) and each item weighted by Π_{m in item} w_m (Owen's pigeonhole bootstrap)."""
    rng = np.random.default_rng(seed)
    col = {m: j for j, m in enumerate(molecules)}
    draws = rng.integers(0, len(molecules), size=(n_boot, len(molecules)))
    counts = np.zeros((n_boot, len(molecules)))
    np.add.at(counts, (np.repeat(np.arange(n_boot), len(molecules)), draws.ravel()), 1)
    weights = np.ones((n_boot, len(items)))
    for i, mols in enumerate(items):
        for m in set(mols):
            weights[:, i] *= counts[:, col[m]]
    return weights


def weighted_interval(values: np.ndarray, weights: np.ndarray) -> dict:
    """Mean of ``values`` and the 95 % percentile interval of Σ w v / Σ w over the replicates
    (replicates with Σ w = 0, where no item survives, are left out and counted)."""
    values = np.asarray(values, float)
    tot = weights.sum(axis=1)
    ok = tot > 0
    boots = (weights[ok] @ values) / tot[ok]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": float(values.mean()), "lo": float(lo), "hi": float(hi),
            "n": int(values.size), "empty_replicates": int((~ok).sum())}


# --------------------------------------------------------------------------- alignments
def extended_tables(out: Path) -> tuple[Path, Path]:
    """calib-qm9's isolated-atom tables joined with bridge-v2's (S, Cl), both levels."""
    from tealign.methods import load_table, union_tables

    paths = []
    for label in ("wb97m", "pbe"):
        t = union_tables([load_table(str(CALIB / f"calib-qm9.atoms_{label}.json")),
                          load_table(str(DATA / f"bridge-molecules.atoms_{label}.json"))])
        p = out / f"atoms_{label}.json"
        t.save(p)
        paths.append(p)
    return paths[0], paths[1]


def alignments(out: Path) -> dict[str, Path]:
    """alignment.json per variant (fitted with `tealign fit`, as the multidomain run)."""
    from tealign.align import TotalEnergyAlignment
    from tealign.methods import load_table

    out.mkdir(parents=True, exist_ok=True)
    src, tgt = extended_tables(out)
    files: dict[str, Path] = {}
    tealign = Path(sys.executable).with_name("tealign")
    for model in ("icea", "scale", "auto"):
        path = out / f"{model}.alignment.json"
        path.unlink(missing_ok=True)  # refitted from the committed calib-qm9 every run
        subprocess.run([str(tealign), "fit", str(CALIB / "calib-qm9.extxyz"), "--source-key",
                        "energy_wb97m", "--target-key", "energy_pbe", "--source-e0", str(src),
                        "--target-e0", str(tgt), "--model", model, "-o", str(path), "--json"],
                       check=True, capture_output=True)
        files[model] = path
    none = out / "none.alignment.json"
    table = load_table(str(src))
    TotalEnergyAlignment.icea_only(table, table, note="identity: the source totals as they "
                                   "are").save(none)
    files["none"] = none
    files["linref"] = LINREF
    return files


def residuals(alignment: Path, molecules: Path) -> dict[str, float | None]:
    """δ_m = aligned ωB97M − GPAW total energy (eV) per gas species; None where the alignment
    cannot align it (the reason is the transform's reject)."""
    from tealign.align import TotalEnergyAlignment
    from tealign.io import read_batch

    batch = read_batch(molecules)
    tea = TotalEnergyAlignment.load(alignment)
    res = tea.transform(batch, energy_key="energy_wb97m", forces_key=None, stress_key=None,
                        virials_key=None, file=str(molecules), allow_realign=False)
    names = np.asarray(batch.info["species"]).astype(str)
    out: dict[str, float | None] = {str(n): None for n in names}
    got = np.asarray(res.info["species"]).astype(str)
    delta = np.asarray(res.info["REF_energy"], float) - np.asarray(res.info["energy_pbe"], float)
    for n, d in zip(got, delta):
        out[str(n)] = float(d)
    return out


# --------------------------------------------------------------------------- the analysis
def analyse(files: dict[str, Path], bridge: Path = DATA / "bridge.json",
            molecules: Path = DATA / "bridge-molecules.extxyz",
            frames: Path = DATA / "bridge-v2.extxyz", n_boot: int = N_BOOT) -> dict:
    """Every item of ``bridge`` (reactions, adsorption, lattice energies) whose frames are all
    in ``frames``: its label error per variant, Σ_m c_m δ_m over its gas molecules (every
    other frame is GPAW's own energy), the MAE per kind and over all items with the molecule
    bootstrap, and each variant's paired difference against TEA."""
    from tealign.bench import cross
    from tealign.io import read_batch

    definition = json.loads(bridge.read_text())
    species = definition["species"]
    mols = sorted(s for s, e in species.items() if e["role"] == "molecule")
    batch = read_batch(molecules)
    natoms = dict(zip(np.asarray(batch.info["species"]).astype(str), batch.n_atoms.tolist()))
    have = set(np.asarray(read_batch(frames).info["species"]).astype(str)) \
        if frames.exists() else set()
    every = cross.items_of(definition)
    items = [it for it in every if set(it["terms"]) <= have]
    item_mols = [[s for s in it["terms"] if s in mols] for it in items]
    kinds = np.array([it["kind"] for it in items])
    weights = molecule_bootstrap_weights(item_mols, mols, n_boot)
    res: dict = {"bridge": str(bridge.relative_to(ROOT)), "n_boot": n_boot,
                 "molecules": mols, "natoms": natoms,
                 "items": [{"id": it["id"], "kind": it["kind"], "molecules": ms}
                           for it, ms in zip(items, item_mols)],
                 "items_not_computed": [it["id"] for it in every if it not in items],
                 "reactions": [it["id"] for it in items if it["kind"] == "reaction"],
                 "variants": {}}
    for v in VARIANTS:
        delta = residuals(files[v], molecules)
        err = []
        for it, ms in zip(items, item_mols):
            if any(delta[m] is None for m in ms):
                err.append(None)
                continue
            err.append(sum(float(it["terms"][m]) * delta[m] for m in ms))
        scored = np.array([e is not None for e in err])
        abs_err = np.array([abs(e) if e is not None else np.nan for e in err])
        entry = {"alignment": str(Path(files[v]).relative_to(ROOT)),
                 "residual_eV": {m: delta[m] for m in mols},
                 "item_error_eV": err, "n_scored": int(scored.sum()), "by_kind": {},
                 # the reactions alone, as before adsorption and lattice items joined
                 "reaction_error_eV": [e for e, k in zip(err, kinds) if k == "reaction"]}
        if scored.any():
            entry["mae_eV"] = weighted_interval(abs_err[scored], weights[:, scored])
        for kind in dict.fromkeys(kinds.tolist()):
            keep = scored & (kinds == kind)
            if keep.any():
                entry["by_kind"][kind] = weighted_interval(abs_err[keep], weights[:, keep])
        res["variants"][v] = entry
    ref = res["variants"][REFERENCE]
    for v in VARIANTS:
        if v == REFERENCE:
            continue
        e_v, e_r = res["variants"][v]["item_error_eV"], ref["item_error_eV"]
        both = np.array([a is not None and b is not None for a, b in zip(e_v, e_r)])
        if not both.any():
            continue
        d = np.array([abs(a) - abs(b) for a, b, k in zip(e_v, e_r, both) if k])
        iv = weighted_interval(d, weights[:, both])
        iv["resolved"] = bool(iv["lo"] > 0 or iv["hi"] < 0)
        res["variants"][v]["vs_reference_eV"] = iv
    res["lattice"] = lattice_terms(definition, molecules, frames)
    return res


def lattice_terms(definition: dict, molecules: Path, frames: Path) -> list[dict]:
    """Each molecular crystal's lattice energy per molecule at the target level, split into the
    intermolecular part E(crystal)/Z − mean E(molecule at crystal geometry) and the
    intramolecular strain mean E(molecule at crystal geometry) − E(gas molecule), the strain
    also at the source level (ωB97M, as computed: a difference at one composition, which ICEA
    leaves unchanged); eV per molecule. Crystals whose frames are not computed are left out."""
    from tealign.io import read_batch

    energies: dict[str, dict[str, float]] = {"pbe": {}, "wb97m": {}}
    for path in (molecules, frames):
        if not path.exists():
            continue
        b = read_batch(path)
        names = np.asarray(b.info["species"]).astype(str)
        for label in energies:
            if f"energy_{label}" in b.info:
                energies[label].update(zip(names, np.asarray(b.info[f"energy_{label}"], float)))
    out = []
    for item in definition.get("lattice", []):
        inside = item.get("molecules_in_crystal", [])
        pbe, src = energies["pbe"], energies["wb97m"]
        needed = [item["crystal"], item["molecule"], *inside]
        if not inside or any(s not in pbe for s in needed):
            continue
        at_crystal = float(np.mean([pbe[s] for s in inside]))
        row = {"id": item["id"],
               "lattice_eV": pbe[item["crystal"]] / item["molecules_per_cell"]
               - pbe[item["molecule"]],
               "intermolecular_eV": pbe[item["crystal"]] / item["molecules_per_cell"]
               - at_crystal,
               "strain_pbe_eV": at_crystal - pbe[item["molecule"]]}
        if all(s in src for s in [item["molecule"], *inside]):
            row["strain_wb97m_eV"] = float(np.mean([src[s] for s in inside])) \
                - src[item["molecule"]]
        out.append(row)
    return out


KINDS = {"reaction": "reactions", "adsorption": "adsorption", "lattice": "lattice energies"}


def _iv(m: dict | None, sign: str = "") -> str:
    return (f"{1e3 * m['mean']:{sign}.1f} [{1e3 * m['lo']:{sign}.1f}, {1e3 * m['hi']:{sign}.1f}]"
            if m else "–")


def table_lines(res: dict) -> list[str]:
    """The markdown tables of the README section: per variant (all items and per kind), per
    molecule, and the molecular crystals' strain terms."""
    items = res.get("items") or [{"id": r, "kind": "reaction"} for r in res["reactions"]]
    kinds = [k for k in KINDS if any(it["kind"] == k for it in items)]
    n_kind = {k: sum(it["kind"] == k for it in items) for k in kinds}
    lines = ["| variant | items scored | MAE, all items (meV) [95 % molecule bootstrap] | "
             + " | ".join(f"{KINDS[k]} (n={n_kind[k]})" for k in kinds)
             + " | mean(|err| − |err_TEA|) (meV) [95 %] | verdict vs TEA (single factor) |",
             "|---|---|---|" + "---|" * len(kinds) + "---|---|"]
    for v in VARIANTS:
        e = res["variants"][v]
        d = e.get("vs_reference_eV")
        if v == REFERENCE:
            dcell, verdict = "reference", "–"
        elif d:
            dcell = _iv(d, "+")
            verdict = ("unresolved" if not d["resolved"]
                       else "worse than TEA" if d["lo"] > 0 else "better than TEA")
        else:
            dcell, verdict = "–", "–"
        per_kind = [_iv(e.get("by_kind", {}).get(k)) for k in kinds]
        lines.append(f"| {TITLES[v]} | {e['n_scored']}/{len(items)} | {_iv(e.get('mae_eV'))} | "
                     + " | ".join(per_kind) + f" | {dcell} | {verdict} |")
    lines += ["", "Per molecule, the label residual δ = aligned ωB97M − GPAW (meV per molecule; "
              "meV/atom in brackets) and the items it enters:", "",
              "| molecule | atoms | items | " + " | ".join(TITLES[v] for v in VARIANTS) + " |",
              "|---|---|---|" + "---|" * len(VARIANTS)]
    n_in = {m: 0 for m in res["molecules"]}
    for it in items:
        for m in set(it.get("molecules", [])):
            n_in[m] += 1
    for m in res["molecules"]:
        cells = []
        for v in VARIANTS:
            d = res["variants"][v]["residual_eV"].get(m)
            cells.append("–" if d is None else
                         f"{1e3 * d:+.0f} ({1e3 * d / res['natoms'][m]:+.0f})")
        lines.append(f"| {m.removesuffix('_g')} | {res['natoms'][m]} | {n_in[m]} | "
                     + " | ".join(cells) + " |")
    if res.get("lattice"):
        lines += ["", "Molecular crystals at their X-ray geometries (meV per molecule, GPAW "
                  "unless marked): the lattice energy E(crystal)/Z − E(gas molecule) split into "
                  "the intermolecular part (against the same molecules cut out at their crystal "
                  "geometry) and the intramolecular strain (those molecules against the gas "
                  "molecule), the strain also at the source level:", "",
                  "| crystal | lattice energy | intermolecular | strain | strain (ωB97M) |",
                  "|---|---|---|---|---|"]
        for row in res["lattice"]:
            src = row.get("strain_wb97m_eV")
            lines.append(f"| {row['id']} | {1e3 * row['lattice_eV']:+.1f} | "
                         f"{1e3 * row['intermolecular_eV']:+.1f} | "
                         f"{1e3 * row['strain_pbe_eV']:+.1f} | "
                         + ("–" if src is None else f"{1e3 * src:+.1f}") + " |")
    if res.get("items_not_computed"):
        lines += ["", "Items defined but not yet computed (left out): "
                  + ", ".join(res["items_not_computed"]) + "."]
    return lines


def main() -> None:
    files = alignments(OUT)
    res = analyse(files)
    from tealign.io.outputs import write_json

    write_json(OUT / "results.json", res)
    text = "\n".join(table_lines(res)) + "\n"
    (OUT / "tables.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()


def _kind_counts(res: dict) -> dict[str, int]:
    """Items per kind of a results.json (reactions only for older files without items)."""
    items = res.get("items") or [{"kind": "reaction"} for _ in res["reactions"]]
    return {k: sum(it["kind"] == k for it in items) for k in KINDS
            if any(it["kind"] == k for it in items)}


def readme_section(runs: Path = HERE / "runs") -> list[str]:
    """The README's bridge-v2 section, from runs/bridge_v2/results.json and
    runs/bond_correction/results.json (empty when they are not computed)."""
    path = runs / "bridge_v2" / "results.json"
    if not path.exists():
        return []
    res = json.loads(path.read_text())
    n_mol = len(res["molecules"])
    n_items = len(res.get("items") or res["reactions"])
    lines = [f"## Label level on bridge-v2: {n_mol} gas molecules, {n_items} items "
             f"({len(res['reactions'])} gas–solid reactions), molecule bootstrap", "",
             "Written by `bridge_v2.py` into `runs/bridge_v2/` (datasets/bridge-v2: bridge-mini's "
             "12 reactions and 25 more over 16 ionic solids"
             + "".join(f", {n} {'adsorption' if k == 'adsorption' else 'lattice'} "
                       f"energ{'y' if n == 1 else 'ies'}" for k, n in _kind_counts(res).items()
                       if k != "reaction")
             + "; both methods at the same geometries, the adsorption poses relaxed at the "
             "target level, datasets/bridge-v2/README.md). A reaction's "
             "label error is a sum of its gas molecules' residuals (the solids are exact here), "
             "and an adsorption item's is minus its adsorbate's (slab and complex exist only "
             "at the target level), so at this level the adsorption items weigh their gas "
             "molecules again and say nothing about the surface; a model has to meet the "
             "surface, which is what the model level tests. "
             "so the interval resamples molecules, not reactions: Owen's pigeonhole bootstrap, "
             f"{res['n_boot']} replicates, each reaction weighted by the product of its "
             "molecules' draw counts. A verdict needs the interval on one side of zero. TEA's "
             "alignments are calib-qm9's (same a as above); S and Cl enter through isolated-atom "
             "tables extended at the same settings; `--model auto` has no offsets for S and Cl, "
             "so it scores fewer items (the comparison with TEA is over the items both score). "
             "The linear references are round two's (fitted on each source's training split "
             "with bridge-v2's training frames of every species, the labels model (f) trains "
             "on).", ""]
    lines += table_lines(res)
    bond = runs / "bond_correction" / "results.json"
    if bond.exists():
        b = json.loads(bond.read_text())
        h, v = b["heldout_qm9"], b["bridge_v2"]
        lines += ["", "### A correction that follows bonds (`bond_correction.py`)", "",
                  "E_at^[1] = a·E_at^[2] + Σ_pairs c_{Z_i Z_j} s(r_ij/R_ij): one coefficient per "
                  "element pair on a smooth bond count (force-consistent), ridge strength "
                  f"{b['alpha']} by 5-fold CV, fitted on calib-qm9's 90 molecules "
                  f"(a = {b['a']:.4f}).", "",
                  f"- held-out calib-qm9 ({h['n']} molecules): MAE "
                  f"{1e3 * h['mae_bond_eV_per_atom']:.1f} meV/atom against the single factor's "
                  f"{1e3 * h['mae_scale_eV_per_atom']:.1f} (paired "
                  f"{1e3 * h['diff_mean']:+.1f} [{1e3 * h['diff_ci95'][0]:+.1f}, "
                  f"{1e3 * h['diff_ci95'][1]:+.1f}] meV/atom);",
                  f"- bridge-v2 reactions: MAE {1e3 * v['mae_bond']['mean']:.0f} meV against "
                  f"{1e3 * v['mae_scale']['mean']:.0f} (paired {1e3 * v['diff']['mean']:+.0f} "
                  f"[{1e3 * v['diff']['lo']:+.0f}, {1e3 * v['diff']['hi']:+.0f}] meV, molecule "
                  "bootstrap); bond types the calibration set lacks (c = 0, the single factor): "
                  + ", ".join(v["bonds_without_coefficient"]) + ";",
                  f"- verdict: {b['verdict']}.", ""]
    return lines
