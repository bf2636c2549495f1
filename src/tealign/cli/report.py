"""Commands over a whole run directory: ``report`` and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign.cli._common import JsonOpt, app, cmd, err, out, show


@cmd(app)
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (the layout `tealign demo` "
                                            "writes: fit/, merged/, train/, eval/, bench/).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file to write "
                                                "(default: RUN_DIR/report.html).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report (figures embedded) of a run directory.

    Example: tealign report tealign-demo
    """
    show(api.report(run_dir, output), as_json,
         lambda res: err.print(f"report written to {res.report} (open it in a browser)"))


@cmd(app)
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Run directory.")]
    = Path("tealign-demo"),
    datasets: Annotated[Path | None, typer.Option(help="Directory of the bundled mini "
                                                  "datasets (default: the repository's "
                                                  "datasets/, or $TEALIGN_DATASETS).")] = None,
    reactions: Annotated[int, typer.Option(help="RDB7 reactions to benchmark.")] = 100,
    torsions: Annotated[int, typer.Option(help="Biaryl torsion scans to run.")] = 3,
    water: Annotated[bool, typer.Option(help="Also run the water RDF benchmark.")] = False,
    water_ps: Annotated[float, typer.Option(help="Water run length (ps).")] = 0.5,
    epochs: Annotated[int | None, typer.Option(help="Override the tiny preset's epochs.")]
    = None,
    quick: Annotated[bool, typer.Option(help="Smoke-test sizes: 1 epoch, 1 torsion, 20 "
                                        "reactions.")] = False,
    torsion_max_force_calls: Annotated[int, typer.Option(
        help="Force-call cap of the torsion benchmark.")] = 6000,
    threads: Annotated[int | None, typer.Option(
        help="torch threads of every step (default: $TEALIGN_THREADS, else the cores this "
        "process may use).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole pipeline on the bundled mini datasets and write the HTML report.

    Fits the alignment on calib-qm9, aligns organic-mini and merges it with inorganic-mini,
    trains a tiny MACE model, evaluates it per domain, runs the lattice and Si E–V benchmarks
    (and torsions / reactions / water when their data is available) and writes
    OUTPUT/report.html. Needs no DFT code and no network. Rerunning resumes.

    Example: tealign demo -o tealign-demo
    """
    opts = api.demo_options(quick=quick, water=water, water_ps=water_ps, reactions=reactions,
                       torsions=torsions, epochs=epochs, threads=threads,
                       torsion_max_force_calls=torsion_max_force_calls)
    res = api.demo(output, datasets, opts,
                   log=lambda m: err.print(m, highlight=False, markup=False))
    show(res, as_json, _render_demo)


def _render_demo(res) -> None:
    t = Table("", "", title=f"tealign demo: {res.run_dir}", show_header=False)
    for k, v in res.rows:
        t.add_row(k, v)
    t.add_row("wall time", f"{res.wall_s:.0f} s")
    t.add_row("report", res.report)
    out().print(t)
