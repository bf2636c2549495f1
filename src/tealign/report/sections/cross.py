"""Cross-domain consistency (``tealign bench cross``): TEA's claim first, one energy surface
across domains, measured on reactions between molecules and crystals, adsorption and
molecular crystals. Each run is named from its results.json (aligned labels and the
alignment's model, or the calculator) and from where it sits (``bench_mini/``: the shipped
model)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from tealign import rundir as rd
from tealign.report.page import E, Page, Section, commands, table
from tealign.report.sections.bench_parts import Model, bench_figures, left_out, model_of


class CrossRun(NamedTuple):
    """One cross-domain result a run directory may hold."""

    results: str        #: its results.json, relative to the run directory
    step: str           #: the demo step that writes it
    mini: bool = False  #: a run of the shipped model (bench_mini/)


#: the cross-domain results, in the order the summary and the section show them
CROSS_RUNS = (
    CrossRun(rd.bench_results("cross_labels"), "bench_cross_labels"),
    CrossRun(rd.bench_results("cross_labels_icea"), "bench_cross_labels_icea"),
    CrossRun(rd.bench_results("cross"), "bench_cross"),
    CrossRun(rd.bench_results("cross", mini=True), "mini_bench_cross", mini=True))


def who(page: Page, run: CrossRun) -> Model:
    """What a run scored, as its results.json says: labels shifted by ICEA only, labels
    aligned by TEA (with the alignment's model and a), or a model."""
    d = page.load(run.results) or {}
    if d.get("mode") == "alignment":
        if d.get("alignment_model") == "icea":
            return Model("ICEA-only labels, no model", "Labels shifted by ICEA only, no model")
        detail = (f" ({E(str(d['alignment_model']))}, a = {float(d['a']):.4f})"
                  if d.get("alignment_model") is not None and d.get("a") is not None else "")
        return Model(f"TEA labels{detail}, no model", "Labels aligned by TEA, no model")
    return model_of(page, run.results, run.mini)


def cards(page: Page) -> list[tuple[str, str]]:
    """The cross-domain MAE of every run the directory holds."""
    return [(f"{who(page, run).short} · cross-domain MAE ({page.num(run.results, 'n', 'd')} "
             "items)", page.num(run.results, "mae_eV", ".3f", " eV"))
            for run in CROSS_RUNS if page.load(run.results)]


def _one(page: Page, run: CrossRun) -> str:
    """One `tealign bench cross` result: per-kind table, per-item table, figures, command."""
    from tealign.bench.benchmarks import get

    kind_titles = dict(get("cross").kinds)
    rel = run.results
    d = page.load(rel)
    if not d:
        return ""
    what = (f"the organic labels aligned by {E(Path(str(d.get('alignment'))).name)} "
            f"(a = {page.num(rel, 'a', '.4f')}), the crystals at the target level"
            if d.get("mode") == "alignment" else
            f"calculator {E(Path(str(d.get('calculator'))).name)}, one single point per frame")
    s = f"<h3>{who(page, run).long}</h3>"
    s += (f"<p class='muted'>{what}; reference: {E(str(d.get('target_key')))} of every frame. "
          "Errors are predicted − reference.</p>")
    rows = [[E(kind_titles[k]), page.num(rel, ["by_kind", k, "n"], "d"),
             page.num(rel, ["by_kind", k, "mae_eV"], ".3f"),
             page.num(rel, ["by_kind", k, "max_abs_eV"], ".3f")]
            for k in kind_titles if d.get("by_kind", {}).get(k, {}).get("n")]
    rows.append(["all", page.num(rel, "n", "d"), page.num(rel, "mae_eV", ".3f"),
                 page.num(rel, "max_abs_eV", ".3f")])
    s += table(["kind", "N", "MAE (eV)", "max |error| (eV)"], rows)
    irow = [[E(it["id"]), E(it["kind"]), page.num(rel, ["items", i, "reference_eV"], ".3f"),
             page.num(rel, ["items", i, "predicted_eV"], ".3f"),
             page.num(rel, ["items", i, "error_eV"], "+.3f")]
            for i, it in enumerate(d.get("items", []))]
    if irow:
        s += table(["item", "kind", "reference (eV)", "predicted (eV)", "error (eV)"],
                   irow, numeric_from=2)
    s += left_out("Items", d.get("skipped"), "id")
    s += bench_figures(page, Path(rel).parent.as_posix(), d,
                       "cross-domain parity and per-item errors")
    return s + commands(page, [run.step])


def render(page: Page) -> str:
    """Every cross-domain run the directory holds, labels first, then the models."""
    body = "".join(_one(page, run) for run in CROSS_RUNS)
    if not body:
        return ""
    return ("<p class='lead'>What the alignment is for: molecules and crystals on one "
            "energy scale. Each quantity mixes both domains (gas–solid reaction energies, "
            "adsorption energies, molecular-crystal lattice energies), so a scale error "
            "between the domains shows up here and nowhere else. First the aligned labels "
            "themselves (the floor under any model trained on them), then the model.</p>"
            + body)


SECTION = Section("cross", "Cross-domain consistency", ("bench_cross",), render, cards)
