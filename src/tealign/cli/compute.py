"""Reference calculations: ``compute atoms`` and ``compute calib``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign.cli._common import JsonOpt, cmd, compute_app, err, out, progress, show
from tealign.compute.spec import parse_spec

StoreOpt = Annotated[Path | None, typer.Option(help="Job store directory (default: beside "
                                               "the output). Rerunning resumes.")]
WorkersOpt = Annotated[int, typer.Option(help="Local worker processes.")]
SchedulerOpt = Annotated[str | None, typer.Option(help="Dask scheduler address "
                                                  "(tcp://host:port).")]


@cmd(compute_app, "atoms")
def compute_atoms(
    elements: Annotated[str, typer.Option(help="Comma-separated symbols, e.g. H,C,N,O.")],
    method: Annotated[str, typer.Option(help="[LABEL=]SPEC, e.g. pyscf:wb97m-d3bj/def2-tzvppd "
                                        "or gpaw:pbe/pw800.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Isolated-atom table JSON "
                                         "(docs/architecture.md §4.4) to write.")]
    = Path("atoms.json"),
    store: StoreOpt = None,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compute spin-polarised ground-state isolated atoms and write an isolated-atom table.

    Example: tealign compute atoms --method pyscf:wb97m-d3bj/def2-tzvppd --elements H,C,N,O
    -o atoms.json
    """
    with progress(f"{parse_spec(method).label} atoms", counter=True) as update:
        res = api.compute_atoms(method, elements, output, store=store, workers=workers,
                                scheduler=scheduler, progress=update)
    show(res, as_json, _render_atoms)


def _render_atoms(res) -> None:
    t = Table("element", "E0 (eV)", "E0 (hartree)", title=f"{res.label}: {res.spec.spec}")
    for sym, e in res.energies.items():
        t.add_row(sym, f"{e:.6f}", f"{res.energies_hartree[sym]:.8f}")
    out().print(t)
    err.print(f"wrote {res['table']} ({res.computed} computed, {res.skipped} from the store)")


@cmd(compute_app, "calib")
def compute_calib(
    molecules: Annotated[str, typer.Option(help="qm9:N (seeded pick spread over sizes and "
                                           "elements) or a dataset file.")],
    method: Annotated[list[str], typer.Option(help="[LABEL=]SPEC; give it once per method.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration extxyz.")]
    = Path("calib.extxyz"),
    store: StoreOpt = None,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the QM9 pick and of the splits.")] = 0,
    forces: Annotated[bool, typer.Option(help="Compute forces too (--no-forces: energies "
                                         "only, all a calibration needs, much cheaper for "
                                         "hybrid functionals).")] = True,
    strict: Annotated[bool, typer.Option(help="Failed calculations become setup errors.")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Compute a calibration set: every method on every molecule, plus isolated atoms.

    Example: tealign compute calib --molecules qm9:90 --method pbe=gpaw:pbe/pw800
    --method wb97m=pyscf:wb97m-d3bj/def2-svp -o calib.extxyz
    """
    with progress(f"calib {molecules} × {len(method)} methods", counter=True) as update:
        res = api.compute_calib(molecules, method, output, store=store, workers=workers,
                                scheduler=scheduler, seed=seed, forces=forces, strict=strict,
                                progress=update)
    show(res, as_json, _render_calib)


def _render_calib(res) -> None:
    err.print(f"wrote {res.frames} calibration frames to {res.output}; {res.computed} "
              f"jobs computed, {res.skipped} from the store, {res.failed} failed")
    for label, path in res.tables.items():
        err.print(f"  isolated atoms {label}: {path}")
    for r in res.rejects:
        err.print(f"  rejected: {r.line()}", highlight=False)
