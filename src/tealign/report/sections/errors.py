"""Per-domain errors (``tealign eval``, ``eval/eval.json``): the run's model on the held-out
test split, overall and per config_type, against the target scale the run's results name."""

from __future__ import annotations

from tealign import rundir as rd
from tealign.report.method_names import target_method
from tealign.report.page import E, Page, Section, commands, table

#: the eval metrics the table shows: key, column heading, format
METRICS = [("energy_mae_meV_per_atom", "E MAE (meV/atom)", ".2f"),
           ("energy_rmse_meV_per_atom", "E RMSE (meV/atom)", ".2f"),
           ("forces_mae_meV_per_A", "F MAE (meV/Å)", ".1f"),
           ("forces_rmse_meV_per_A", "F RMSE (meV/Å)", ".1f"),
           ("stress_mae_meV_per_A3", "σ MAE (meV/Å³)", ".2f")]


def cards(page: Page) -> list[tuple[str, str]]:
    """Energy and force MAE of each domain."""
    rel = rd.EVAL_JSON
    items = []
    for dom in (page.load(rel) or {}).get("by_config_type", {}):
        items.append((f"this run's model · test {E(dom)}: energy MAE", page.num(
            rel, ["by_config_type", dom, "energy_mae_meV_per_atom"], ".1f", " meV/atom")))
        items.append((f"this run's model · test {E(dom)}: force MAE", page.num(
            rel, ["by_config_type", dom, "forces_mae_meV_per_A"], ".0f", " meV/Å")))
    return items


def render(page: Page) -> str:
    """One row overall and one a domain."""
    rel = rd.EVAL_JSON
    ev = page.load(rel)
    if not ev:
        return ""
    rows = [["overall", page.num(rel, ["overall", "n"], "d"),
             *(page.num(rel, ["overall", k], f) for k, _, f in METRICS)]]
    for dom in ev.get("by_config_type", {}):
        rows.append([E(dom), page.num(rel, ["by_config_type", dom, "n"], "d"),
                     *(page.num(rel, ["by_config_type", dom, k], f) for k, _, f in METRICS)])
    target = target_method(page)
    scale = f"the target ({E(target)}) scale" if target else "the target scale"
    return (f"<p class='lead'>Errors on the held-out test split, on {scale}, "
            "per domain (config_type).</p>"
            + table(["set", "n", *(lab for _, lab, _ in METRICS)], rows)
            + commands(page, ["eval"]))


SECTION = Section("errors", "Per-domain errors", ("eval",), render, cards)
