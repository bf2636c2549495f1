"""``tealign alignments``: the shipped alignment cards (list, show, export)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign.cli._common import JsonOpt, app, cmd, command, emit_json, err, out, plain_help, show

alignments_app = typer.Typer(help="Alignment cards of public datasets onto the MPtrj scale "
                             "(apply with `tealign align DATA --alignment NAME`).",
                             invoke_without_command=True)
app.add_typer(alignments_app, name="alignments")


@alignments_app.callback()
@command
@plain_help
def alignments(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the alignment cards: source → target, model, a ± 95 % CI, held-out RMSE,
    elements.

    Example: tealign alignments; tealign alignments show spice-to-mptrj
    """
    if ctx.invoked_subcommand is not None:
        return
    show(api.alignments(), as_json, _render_list)


def _ci(a: float, ci) -> str:
    return f"{a:.4f} ({ci[0]:.4f}–{ci[1]:.4f})"


def _render_list(res) -> None:
    t = Table("name", "source → target", "model", "a (95 % CI)", "single factor a (95 % CI)",
              "held-out RMSE (eV/molecule)", "elements", title="alignment cards")
    for c in res.cards:
        rm = c["heldout_rmse_eV_by_model"]
        t.add_row(c["name"], f"{c['source']} → {c['target']}", c["model"],
                  _ci(c["a"], c["a_ci95"]), _ci(c["single_factor_a"],
                                                c["single_factor_a_ci95"]),
                  ", ".join(f"{k} {v:.3f}" for k, v in rm.items()),
                  " ".join(c["elements"]) + (" (--remove-d3)" if c["remove_d3"] else ""))
    out().print(t)


@cmd(alignments_app, "show")
def show_card(
    name: Annotated[str, typer.Argument(help="Card name (see `tealign alignments`).")],
    as_json: JsonOpt = False,
) -> None:
    """Show one card: everything on it.

    Methods, tables and citations, every model's held-out error, coverage, D3 and charge
    policies, transfer error, calibration command and cost, and the paper's Fig. 4 next to
    ours (spice, off23).
    """
    show(api.alignment_card(name), as_json, _render_card)


def _render_card(res) -> None:
    c = res.to_json()
    o = out()
    t = Table(show_header=False, title=f"{c['name']}: {c['title']}")
    t.add_row("dataset", f"{c['dataset']['name']} — {c['dataset']['citation']}")
    t.add_row("source", f"{c['source']['method']}; {c['source']['code']}")
    t.add_row("source table", f"{c['source']['table']['name']} — "
              f"{c['source']['table']['citation']}")
    t.add_row("fit table − shipped", ", ".join(f"{k} {-v:+.3f}" for k, v in
                                               c["source"]["shipped_minus_fit_meV"].items())
              + " meV")
    t.add_row("target", f"{c['target']['method']}; {c['target']['code']}")
    t.add_row("target table", f"{c['target']['table']['name']} — "
              f"{c['target']['table']['citation']}")
    m = c["model"]
    t.add_row("model", f"{m['chosen']} ({m['chosen_by']})")
    t.add_row("a", _ci(m["a"], m["a_ci95"]))
    if m["offsets_eV"]:
        t.add_row("offsets (eV)", ", ".join(f"{k} {v:+.4f}" for k, v in
                                            m["offsets_eV"].items()))
    for k, v in c["models"].items():
        t.add_row(f"  {k}", f"a {_ci(v['a'], v['a_ci95'])}; held-out RMSE "
                  f"{v['heldout_rmse_eV']:.3f} eV ({v['heldout_rmse_meV_per_atom']:.1f} "
                  f"meV/atom), calib RMSE {v['calib_rmse_eV']:.3f} eV")
    cal = c["calibration"]
    t.add_row("calibration", f"{cal['molecules']['calib']} molecules fitted, "
              f"{cal['molecules']['heldout']} held out; {cal['set']}")
    cost = cal["cost"]
    t.add_row("cost", "; ".join(f"{k}: {v['level']}, "
                                + (f"{v['jobs']} jobs, {v['job_wall_s'] / 3600:.2f} h job "
                                   "wall time, " if "jobs" in v else "") + v["where"]
                                for k, v in cost.items()))
    t.add_row("command", cal["command"])
    t.add_row("coverage", " ".join(c["coverage"]["elements"]) + " — "
              + c["coverage"]["policy"])
    t.add_row("D3", c["d3"]["policy"])
    ch = c["charge"]
    t.add_row("charge", ch["applied"] + (f"; {ch['note']}" if ch.get("note") else ""))
    te = c["transfer_error"]
    t.add_row("transfer error", "n/a: " + te["note"] if te.get("note") else
              f"{te['transfer_error_eV_per_molecule']} eV/molecule, "
              f"{te['transfer_error_meV_per_atom']} meV/atom")
    if "fig4" in c:
        f = c["fig4"]
        p, od = f["paper"], f["ours"]["d3_free"]
        t.add_row("Fig. 4", f"paper {p['icea']} → {p['tea']} eV; ours {od['rmse_icea_eV']:.3f} "
                  f"→ {od['rmse_tea_eV']:.3f} eV ({f['what']})")
        t.add_row("why", f["why_they_differ"])
    t.add_row("apply", c["application"]["command"])
    o.print(t)


@cmd(alignments_app, "export")
def export(
    name: Annotated[str, typer.Argument(help="Card name (`all`: every card, shift-scale "
                                        "only).")],
    fmt: Annotated[str, typer.Option("--format", help="mace-e0s (JSON for MACE's --E0s), "
                                     "fairchem (.npz element_references) or shift-scale "
                                     "(JSON: scale and per-element shifts).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    as_json: JsonOpt = False,
) -> None:
    """Export a card to what trainers read.

    Example: tealign alignments export spice-to-mptrj --format mace-e0s -o e0s.json
    """
    res = api.export_card(name, fmt, output)
    if as_json:
        emit_json(res.to_json())
    else:
        err.print(f"wrote {res.output} ({res.format}): {json.dumps(res.to_json())}")
