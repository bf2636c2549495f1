"""Benchmarks (``tealign bench lattice|eos|torsion|reactions|water``,
``bench/<name>/results.json``): each benchmark's numbers for the calculator its results name,
the shipped model's row where ``bench_mini/`` holds one, the paper's published figures beside
them, and the benchmarks the demo could not run. Reference data are named as the benchmark
data registry names them (:mod:`tealign.bench.registry`). The benchmarks, their order and
summary cards are the benchmark registry's (:mod:`tealign.bench.benchmarks`)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from tealign import rundir as rd
from tealign.bench.benchmarks import Benchmark, in_section
from tealign.report.page import E, Page, Section, commands, table
from tealign.report.sections.bench_parts import (
    bench_figures,
    left_out,
    mini_rows,
    model_of,
    models_table,
    run_model,
)


def cards(page: Page) -> list[tuple[str, str]]:
    """The headline number of every benchmark run, the run's results first, then the shipped
    model's."""
    items = []
    for mini in (False, True):
        for b in in_section("benchmarks"):
            h = b.headline
            rel = rd.bench_results(b.name, mini=mini)
            if h is not None and page.load(rel):
                items.append((f"{model_of(page, rel, mini).short} · {h.label}",
                               page.num(rel, h.key, h.fmt, h.unit)))
    return items


def _reference(name: str, field: str) -> str:
    """What the benchmark data registry says of dataset ``name`` (its ``field``)."""
    from tealign.bench.registry import REGISTRY

    return E(str(getattr(REGISTRY[name], field)))


class Part(NamedTuple):
    """A benchmark's part of the section: heading, a note under it and the tables."""

    heading: str
    note: str
    body: str


def _lattice(page: Page, rel: str, d: dict) -> Part:
    note = (f"Cell relaxed with FrechetCellFilter to fmax 0.01 eV/Å; {page.num(rel, 'n', 'd')} "
            f"crystals inside the first-shell limit; r_max "
            f"{page.num(rel, 'r_max_A', '.2f', ' Å')}. Crystals the model has no elements "
            f"for are skipped ({len(d.get('skipped', []))}).")
    body = models_table(page, "lattice", ["model", "MAE vs PBE (Å)"], [("mae_A", ".4f")],
                        d.get("published_mae_A"))
    by = d.get("mae_by_structure", {})
    if by:
        body += table(["structure", "MAE vs PBE (Å)"],
                      [[E(k), page.num(rel, ["mae_by_structure", k], ".4f")] for k in by])
    crow = [[E(c["name"]), E(c["structure"]), page.num(rel, ["crystals", i, "a_A"], ".4f"),
             page.num(rel, ["crystals", i, "a_pbe"], ".4f"),
             page.num(rel, ["crystals", i, "error_vs_pbe_A"], "+.4f")]
            for i, c in enumerate(d.get("crystals", []))]
    if crow:
        body += table(["crystal", "structure", "a (Å)", "a PBE (Å)", "error (Å)"], crow,
                      numeric_from=2)
    return Part("Lattice constants (cubic crystals)", note, body)


def _eos(page: Page, rel: str, d: dict) -> Part:
    cells = [("a0_A", ".4f"), ("b0_GPa", ".1f"), ("rmse_vs_reference_meV_per_atom", ".2f")]
    return Part("Si energy–volume curve", "", table(
        ["", "a₀ (Å)", "B₀ (GPa)", "RMSE vs reference (meV/atom)"], [
            [run_model(page, rel).long, *(page.num(rel, k, f) for k, f in cells)],
            *mini_rows(page, "eos", cells),
            [f"reference: {E(Path(str(d.get('reference', ''))).name)}",
             page.num(rel, "reference_a0_A", ".4f"), page.num(rel, "reference_b0_GPa", ".1f"),
             ""]]))


def _torsion_limits(page: Page, rel: str, d: dict) -> str:
    """Scan points that hit the step limit, and where the shared force-call cap bit."""
    s = ""
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
    return s


def _torsion(page: Page, rel: str, d: dict) -> Part:
    note = (f"{page.num(rel, 'n', 'd')} molecules, relaxed scans every "
            f"{page.num(rel, 'step_deg', 'g', '°')}; reference: "
            f"{_reference('biaryl-csv', 'citation')}; "
            f"{E(str(d.get('published_label', '')))}.")
    body = models_table(page, "torsion",
                        ["model", "barrier MAE (kcal/mol)", "profile MAE (kcal/mol)"],
                        [("barrier_mae_kcal_mol", ".3f"), ("profile_mae_kcal_mol", ".3f")],
                        d.get("published_barrier_mae_kcal_mol"))
    body += _torsion_limits(page, rel, d) + left_out("Molecules", d.get("skipped"), "molid")
    return Part("Biaryl torsions", note, body)


def _reactions(page: Page, rel: str, d: dict) -> Part:
    note = (f"{page.num(rel, 'n', 'd')} reactions ({_reference('reactions', 'description')}), "
            "forward barrier E(TS) − E(R) against the reference barriers: MAE of "
            f"{run_model(page, rel).short} {page.num(rel, 'mae_kcal_mol', '.2f', ' kcal/mol')}.")
    return Part("Reaction barriers", note, models_table(
        page, "reactions", ["model", "barrier MAE (eV)"], [("mae_eV", ".3f")],
        d.get("published_transition1x_barrier_mae_eV"), badge="published, Transition1x",
        suffix=" (RDB7 barriers)"))


def _water(page: Page, rel: str, d: dict) -> Part:
    row = [run_model(page, rel).long, *(page.num(rel, key, ".3f")
                                        for key in ("peak_r_A", "peak_g", "rmsd_vs_exp"))]
    return Part("Liquid water O–O RDF", "", table(
        ["", "first peak r (Å)", "g(r) at peak", "RMSD vs experiment"], [row]))


#: the benchmarks with a part of their own; any other shows :func:`_generic`
PARTS = {"lattice": _lattice, "eos": _eos, "torsion": _torsion, "reactions": _reactions,
         "water": _water}


def _generic(b: Benchmark):
    """The part of a benchmark without one of its own: its title and a table of its
    ``columns`` for this run's calculator and the shipped model."""
    def build(page: Page, rel: str, d: dict) -> Part:
        return Part(E(b.title), "", models_table(
            page, b.name, ["model", *(E(c.heading) for c in b.columns)],
            [(c.key, c.fmt) for c in b.columns]))
    return build


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
    for b in in_section("benchmarks"):
        name, caption = b.name, b.caption
        rel = rd.bench_results(name)
        d = page.load(rel)
        if d:
            part = PARTS.get(name, _generic(b))(page, rel, d)
            note = f"<p class='muted'>{part.note}</p>" if part.note else ""
            parts.append(f"<h3>{part.heading}</h3>{note}{part.body}"
                         + bench_figures(page, name, d, caption)
                         + commands(page, [f"bench_{name}"]))
    parts.append(_not_run(page))
    if not "".join(parts):
        return ""
    return ("<p class='lead'>The paper's section IV benchmarks on the models each row names; "
            "per-crystal and per-item tables are those of the run's own results (bench/). "
            "Rows marked <span class='badge'>published</span> are the paper's Tables I–IV, "
            "computed on the paper's own reference data with full-size models; they are "
            "context, not a like-for-like comparison.</p>" + "".join(parts))


SECTION = Section("benchmarks", "Benchmarks",
                  tuple(b.kind for b in in_section("benchmarks")), render, cards)
