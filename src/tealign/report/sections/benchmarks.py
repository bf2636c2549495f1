"""Benchmarks (``tealign bench lattice|eos|torsion|reactions|water``,
``bench/<name>/results.json``): each benchmark's numbers for the calculator its results name,
the shipped model's row where ``bench_mini/`` holds one, the paper's published figures beside
them, and the benchmarks the demo could not run. Reference data are named as the benchmark
data registry names them (:mod:`tealign.bench.registry`)."""

from __future__ import annotations

from pathlib import Path

from tealign import rundir as rd
from tealign.report.page import E, Page, commands, table
from tealign.report.sections import Section
from tealign.report.sections.bench_parts import (
    bench_figures,
    left_out,
    mini_rows,
    model_of,
    pub_rows,
    run_model,
)

#: the headline number of each benchmark on the summary: name, key, label, format, unit
HEADLINES = (("lattice", "mae_A", "lattice MAE vs PBE", ".3f", " Å"),
             ("eos", "a0_A", "Si a₀", ".3f", " Å"),
             ("torsion", "barrier_mae_kcal_mol", "torsion barrier MAE", ".2f", " kcal/mol"),
             ("reactions", "mae_kcal_mol", "reaction barrier MAE", ".1f", " kcal/mol"),
             ("water", "peak_r_A", "water O–O first peak", ".2f", " Å"))


def cards(page: Page) -> list[tuple[str, str]]:
    """The headline number of every benchmark run, the run's results first, then the shipped
    model's."""
    items = []
    for mini in (False, True):
        for name, key, label, fmt, unit in HEADLINES:
            rel = rd.bench_results(name, mini=mini)
            if page.load(rel):
                items.append((f"{model_of(page, rel, mini).short} · {label}",
                               page.num(rel, key, fmt, unit)))
    return items


def _reference(name: str, field: str) -> str:
    """What the benchmark data registry says of dataset ``name`` (its ``field``)."""
    from tealign.bench.registry import REGISTRY

    return E(str(getattr(REGISTRY[name], field)))


def _lattice(page: Page, rel: str, d: dict) -> str:
    rows = [[run_model(page, rel).long, page.num(rel, "mae_A", ".4f")]]
    rows += mini_rows(page, "lattice", [("mae_A", ".4f")])
    pr, pc = pub_rows(d.get("published_mae_A", {}), ".3f")
    s = "<h3>Lattice constants (cubic crystals)</h3>"
    s += (f"<p class='muted'>Cell relaxed with FrechetCellFilter to fmax 0.01 eV/Å; "
          f"{page.num(rel, 'n', 'd')} crystals inside the first-shell limit; r_max "
          f"{page.num(rel, 'r_max_A', '.2f', ' Å')}. Crystals the model has no elements "
          f"for are skipped ({len(d.get('skipped', []))}).</p>")
    s += table(["model", "MAE vs PBE (Å)"], rows + pr, classes=[""] * len(rows) + pc)
    by = d.get("mae_by_structure", {})
    if by:
        s += table(["structure", "MAE vs PBE (Å)"],
                   [[E(k), page.num(rel, ["mae_by_structure", k], ".4f")] for k in by])
    crow = [[E(c["name"]), E(c["structure"]), page.num(rel, ["crystals", i, "a_A"], ".4f"),
             page.num(rel, ["crystals", i, "a_pbe"], ".4f"),
             page.num(rel, ["crystals", i, "error_vs_pbe_A"], "+.4f")]
            for i, c in enumerate(d.get("crystals", []))]
    if crow:
        s += table(["crystal", "structure", "a (Å)", "a PBE (Å)", "error (Å)"], crow,
                   numeric_from=2)
    return s + bench_figures(page, "lattice", d, "lattice-constant errors")


def _eos(page: Page, rel: str, d: dict) -> str:
    s = "<h3>Si energy–volume curve</h3>"
    s += table(["", "a₀ (Å)", "B₀ (GPa)", "RMSE vs reference (meV/atom)"], [
        [run_model(page, rel).long, page.num(rel, "a0_A", ".4f"),
         page.num(rel, "b0_GPa", ".1f"), page.num(rel, "rmse_vs_reference_meV_per_atom", ".2f")],
        *mini_rows(page, "eos", [("a0_A", ".4f"), ("b0_GPa", ".1f"),
                                 ("rmse_vs_reference_meV_per_atom", ".2f")]),
        [f"reference: {E(Path(str(d.get('reference', ''))).name)}",
         page.num(rel, "reference_a0_A", ".4f"), page.num(rel, "reference_b0_GPa", ".1f"),
         ""]])
    return s + bench_figures(page, "eos", d, "E–V curves relative to their minima")


def _torsion(page: Page, rel: str, d: dict) -> str:
    rows = [[run_model(page, rel).long, page.num(rel, "barrier_mae_kcal_mol", ".3f"),
             page.num(rel, "profile_mae_kcal_mol", ".3f")]]
    pub = d.get("published_barrier_mae_kcal_mol", {})
    rows += [[E(k) + " <span class='badge'>published</span>", f"{v:.3f}", ""]
             for k, v in pub.items()]
    s = "<h3>Biaryl torsions</h3>"
    s += (f"<p class='muted'>{page.num(rel, 'n', 'd')} molecules, relaxed scans every "
          f"{page.num(rel, 'step_deg', 'g', '°')}; reference: "
          f"{_reference('biaryl-csv', 'citation')}; "
          f"{E(str(d.get('published_label', '')))}.</p>")
    s += table(["model", "barrier MAE (kcal/mol)", "profile MAE (kcal/mol)"], rows,
               classes=[""] + ["pub"] * len(pub))
    if d.get("unconverged_points"):
        s += (f"<p class='muted'>{page.num(rel, 'unconverged_points', 'd')} scan points "
              f"reached the step limit ({page.num(rel, 'max_steps', 'd')} BFGS steps) "
              "before fmax 0.01 eV/Å; they are kept (flagged in results.json).</p>")
    if d.get("cap_bit"):
        where = "; ".join(
            f"{E(str(c['molid']))}: {int(c['points_cut_short'])} points cut short, "
            f"{int(c['points_not_run'])} not run" for c in d["cap_bit"])
        s += (f"<p class='muted'>The cap of {page.num(rel, 'max_force_calls', 'd')} force "
              f"calls for all scans together bit ({page.num(rel, 'force_calls', 'd')} "
              f"used): {where}. Points cut short keep the energy they had reached (flagged in "
              "results.json).</p>")
    s += left_out("Molecules", d.get("skipped"), "molid")
    return s + bench_figures(page, "torsion", d, "torsion profiles vs reference")


def _reactions(page: Page, rel: str, d: dict) -> str:
    model = run_model(page, rel)
    rows = [[model.long + " (RDB7 barriers)", page.num(rel, "mae_eV", ".3f")]]
    rows += mini_rows(page, "reactions", [("mae_eV", ".3f")])
    own = [""] * len(rows)
    pub = d.get("published_transition1x_barrier_mae_eV", {})
    rows += [[E(k) + " <span class='badge'>published, Transition1x</span>", f"{v:.3f}"]
             for k, v in pub.items()]
    s = "<h3>Reaction barriers</h3>"
    s += (f"<p class='muted'>{page.num(rel, 'n', 'd')} reactions "
          f"({_reference('reactions', 'description')}), forward barrier E(TS) − E(R) against "
          f"the reference barriers: MAE of {model.short} "
          f"{page.num(rel, 'mae_kcal_mol', '.2f', ' kcal/mol')}.</p>")
    s += table(["model", "barrier MAE (eV)"], rows, classes=own + ["pub"] * len(pub))
    return s + bench_figures(page, "reactions", d, "barrier errors")


def _water(page: Page, rel: str, d: dict) -> str:
    row = [run_model(page, rel).long, *(page.num(rel, key, ".3f")
                                        for key in ("peak_r_A", "peak_g", "rmsd_vs_exp"))]
    return ("<h3>Liquid water O–O RDF</h3>"
            + table(["", "first peak r (Å)", "g(r) at peak", "RMSD vs experiment"], [row])
            + bench_figures(page, "water", d, "O–O RDF"))


#: each benchmark's part of the section, in the section's order
PARTS = (("lattice", _lattice), ("eos", _eos), ("torsion", _torsion),
         ("reactions", _reactions), ("water", _water))


def _not_run(page: Page) -> str:
    """The benchmark steps demo.json marks skipped or failed, with why."""
    demo = page.load(rd.DEMO_STATE) or {}
    skipped = [s for s in demo.get("steps", []) if s.get("status") in ("skipped", "failed")
               and s["name"].startswith("bench_")]
    if not skipped:
        return ""
    return "<h3>Not run</h3><ul>" + "".join(
        f"<li>{E(s['title'])}: {E(s.get('reason') or 'failed, exit ' + str(s.get('exit_code')))}"
        "</li>" for s in skipped) + "</ul>"


def render(page: Page) -> str:
    """Every benchmark the run directory holds, then those not run."""
    parts = []
    for name, part in PARTS:
        rel = rd.bench_results(name)
        d = page.load(rel)
        if d:
            parts.append(part(page, rel, d) + commands(page, [f"bench_{name}"]))
    parts.append(_not_run(page))
    if not "".join(parts):
        return ""
    return ("<p class='lead'>The paper's section IV benchmarks on the models each row names; "
            "per-crystal and per-item tables are those of the run's own results (bench/). "
            "Rows marked <span class='badge'>published</span> are the paper's Tables I–IV, "
            "computed on the paper's own reference data with full-size models; they are "
            "context, not a like-for-like comparison.</p>" + "".join(parts))


SECTION = Section("benchmarks", "Benchmarks",
                  tuple(f"bench_{name}" for name, _ in PARTS), render, cards)
