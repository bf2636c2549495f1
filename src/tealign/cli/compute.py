"""Reference calculations: ``compute atoms`` and ``compute calib``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign.cli._common import (
    JsonOpt,
    RetryOpt,
    cmd,
    compute_app,
    err,
    out,
    progress,
    show,
)

StoreOpt = Annotated[Path | None, typer.Option(help="Job store directory (default: beside "
                                               "the output). Rerunning resumes.")]
WorkersOpt = Annotated[int, typer.Option(help="Local worker processes.")]
SchedulerOpt = Annotated[str | None, typer.Option(help="Dask scheduler address "
                                                  "(tcp://host:port).")]
ClusterOpt = Annotated[Path | None, typer.Option(help="Cluster TOML file (SLURM/PBS through "
                                                 "dask-jobqueue, or local); see "
                                                 "docs/external_codes.md.")]


def _scheduler(scheduler, cluster):
    """The --cluster file's Dask client (a context) or the --scheduler address."""
    import contextlib

    if cluster is None:
        return contextlib.nullcontext(scheduler)
    if scheduler is not None:
        from tealign.errors import SetupError

        raise SetupError("give --cluster or --scheduler, not both", field="--cluster")
    return api.cluster_client(cluster)


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
    cluster: ClusterOpt = None,
    retry_failed: RetryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Compute spin-polarised ground-state isolated atoms and write an isolated-atom table.

    Example: tealign compute atoms --method pyscf:wb97m-d3bj/def2-tzvppd --elements H,C,N,O
    -o atoms.json
    """
    with _scheduler(scheduler, cluster) as sched, \
            progress(f"{api.method_label(method)} atoms", counter=True) as update:
        res = api.compute_atoms(method, elements, output, store=store, workers=workers,
                                scheduler=sched, progress=update, retry_failed=retry_failed)
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
    cluster: ClusterOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the QM9 pick and of the splits.")] = 0,
    forces: Annotated[bool, typer.Option(help="Compute forces too (--no-forces: energies "
                                         "only, all a calibration needs, much cheaper for "
                                         "hybrid functionals).")] = True,
    strict: Annotated[bool, typer.Option(help="A failed calculation (a molecule's or an "
                                         "isolated atom's) or a rejected frame becomes a "
                                         "setup error (exit 2).")]
    = False,
    retry_failed: RetryOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Compute a calibration set: every method on every molecule, plus isolated atoms.

    Example: tealign compute calib --molecules qm9:90 --method pbe=gpaw:pbe/pw800
    --method wb97m=pyscf:wb97m-d3bj/def2-svp -o calib.extxyz
    """
    with _scheduler(scheduler, cluster) as sched, \
            progress(f"calib {molecules} × {len(method)} methods", counter=True) as update:
        res = api.compute_calib(molecules, method, output, store=store, workers=workers,
                                scheduler=sched, seed=seed, forces=forces, strict=strict,
                                progress=update, retry_failed=retry_failed)
    show(res, as_json, _render_calib)


def _render_calib(res) -> None:
    kept = f" ({res.failed_kept} of them kept failed)" if res.failed_kept else ""
    err.print(f"wrote {res.frames} calibration frames to {res.output}; {res.computed} "
              f"jobs computed ({res.failed} failed), {res.skipped} from the store{kept}")
    for label, path in res.tables.items():
        err.print(f"  isolated atoms {label}: {path}")
    for r in res.rejects:
        err.print(f"  rejected: {r.line()}", highlight=False)
    for a in res["failed_atoms"]:
        err.print(f"  isolated atom failed: {a}", highlight=False)
    if res["failed_atoms"] or any(r.failed for r in res.rejects):
        from tealign.errors import RETRY_HINT

        err.print(f"  {RETRY_HINT}")


@cmd(compute_app, "export")
def compute_export(
    molecules: Annotated[str, typer.Argument(help="qm9:N or a dataset file (the calibration "
                                             "geometries).")],
    method: Annotated[list[str], typer.Option(help="[LABEL=]SPEC of an external code: "
                                              f"{api.external_presets()}; once per method.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the jobs.")]
    = Path("jobs"),
    seed: Annotated[int, typer.Option(help="Seed of the QM9 pick and of the splits.")] = 0,
    forces: Annotated[bool, typer.Option(help="Forces too (--no-forces: energies only).")]
    = True,
    cluster: ClusterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one directory per job (input deck + job.json), run_job.sh and a job-array script.

    Example: tealign compute export calib.extxyz --method vasp:mptrj -o jobs/ ; cd jobs &&
    sbatch submit.slurm ; tealign compute import jobs/ -o calib_vasp.extxyz
    """
    res = api.compute_export(molecules, method, output, seed=seed, forces=forces,
                             cluster=cluster)
    show(res, as_json, lambda r: err.print(
        f"wrote {r.jobs} jobs ({r.molecules} molecules + isolated atoms × "
        f"{len(r.methods)} methods) to {r.directory}; submit {r.script} from there",
        highlight=False))


@cmd(compute_app, "import")
def compute_import(
    jobs: Annotated[Path, typer.Argument(help="Directory written by compute export, with the "
                                         "codes' outputs.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration extxyz.")]
    = Path("calib.extxyz"),
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read the outputs back into the job store (all or nothing) and write the calibration set.

    Every missing, crashed or unconverged job and every setting that differs from the preset
    is one line naming the job directory and the field; then nothing is imported (exit 2).
    Importing twice changes nothing. A job the store holds as failed (a local calculation
    that raised or did not converge) is replaced by the imported result.
    """
    from tealign.errors import SetupError

    try:
        with progress(f"import {jobs}", counter=True) as update:
            res = api.compute_import(jobs, output, store=store, progress=update)
    except SetupError as exc:
        for line in getattr(exc, "problems", [])[1:]:
            err.print(f"tealign: error: {line}", highlight=False)
        raise
    show(res, as_json, lambda r: err.print(
        f"imported {r.imported} jobs ({r.already} were in the store"
        + (f"; {r.replaced_failed} replace failed ones" if r.replaced_failed else "")
        + f") from {jobs}; wrote "
        f"{r.frames} calibration frames to {r.output} ({r.computed} jobs computed)",
        highlight=False))
