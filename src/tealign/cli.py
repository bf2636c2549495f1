"""The ``tealign`` command line: a thin Typer layer over the library.

Every command prints a human summary, or with ``--json`` exactly one JSON object on stdout;
progress bars, logs and warnings go to stderr. Setup errors print one line naming file,
frame and field and exit with code 2 (docs/architecture.md §5.1, §6.1).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tealign import __version__
from tealign.errors import SetupError

app = typer.Typer(
    name="tealign",
    help="Total Energy Alignment (TEA) of quantum-chemistry datasets for universal MLIPs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
e0_app = typer.Typer(help="Isolated-atom energy tables (built-in and user JSON).",
                     no_args_is_help=True)
app.add_typer(e0_app, name="e0")
compute_app = typer.Typer(help="Reference calculations (PySCF, GPAW, xTB) through a resumable "
                          "job store.", no_args_is_help=True)
app.add_typer(compute_app, name="compute")
data_app = typer.Typer(help="Benchmark datasets: registry, download, verification.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
CALCULATOR_HELP = ("MACE model file, tealign-mini (the model that ships with tealign), xtb "
                   "or chgnet.")


def _pretrained(value: str | None) -> str | None:
    """--calculator: a shipped model's name becomes its file path."""
    from tealign.train.pretrained import resolve

    try:
        return resolve(value)
    except SetupError as exc:
        raise typer.BadParameter(exc.line()) from None


bench_app = typer.Typer(help="Benchmarks of any calculator (paper section IV).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

err = Console(stderr=True)
_stdout = [sys.stdout]


def out() -> Console:
    """Console on the real stdout (library output is diverted to stderr while commands run)."""
    return Console(file=_stdout[0])


def command(fn):
    """Turn SetupError into one line on stderr and exit code 2; warnings go to stderr."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        def show(message, category, filename, lineno, file=None, line=None):
            err.print(f"[yellow]warning:[/] {message}", highlight=False)

        warnings.showwarning = show
        _stdout[0] = sys.stdout
        previous = _terminate_as_exit()
        try:
            # libraries that print (mace-torch, pyscf) must not pollute --json output
            with contextlib.redirect_stdout(sys.stderr):
                return fn(*args, **kwargs)
        except SetupError as exc:
            print(f"tealign: error: {exc.line()}", file=sys.stderr)
            raise typer.Exit(2) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _terminate_as_exit():
    """SIGTERM raises SystemExit(143) in the main process, so that temporary outputs are
    removed on the way out (SIGKILL cannot be caught: the next run removes those)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _sigterm_to_exit)
    except ValueError:
        return None


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)


def _default_sigterm_in_child() -> None:
    # forked workers (multiprocessing pools) keep the default action: the pool's terminate()
    # must kill them even where they never run Python code again
    if signal.getsignal(signal.SIGTERM) is _sigterm_to_exit:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_default_sigterm_in_child)


def emit_json(obj: dict) -> None:
    """Print ``obj`` as strict JSON (NaN and Infinity become null)."""
    from tealign.io.atomic import dumps

    _stdout[0].write(dumps(obj, indent=2) + "\n")
    _stdout[0].flush()


def check_output(output: Path, inputs=(), kind: str = "file") -> None:
    """Before any work: the output must not be an input, and a file output must not be an
    existing directory (docs/architecture.md §6.4: outputs never destroy what tealign did not
    write)."""
    from tealign.io.atomic import check_not_input, check_replaceable

    check_not_input(output, inputs)
    target = Path(os.path.abspath(output))
    check_replaceable(target, shown=str(output), writing_dir=(kind == "dir"))


def progress_bar() -> Progress:
    """A rich progress bar on stderr (hidden when stderr is not a terminal and CI is quiet)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} frames"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")]
    = False,
) -> None:
    if version:
        print(f"tealign {__version__}")
        raise typer.Exit(0)


# ----------------------------------------------------------------------------- info
@app.command()
@command
def info(
    data: Annotated[str, typer.Argument(help="Dataset: .xyz/.extxyz, .db, .h5 (MACE or SPICE), "
                                        "MPtrj .json, MACE shard directory, or qm9:N.")],
    energy_key: Annotated[str | None, typer.Option(help="Energy key to summarise (default "
                                                   "REF_energy, then energy).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Force a reader: extxyz, asedb, "
                                            "mace-h5, spice, mptrj, qm9.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Inspect a dataset: frames, elements, energies per atom, charges, units sanity.

    Example: tealign info train.extxyz --json
    """
    from tealign.summary import summarize

    with progress_bar() as bar:
        task = bar.add_task(f"reading {data}", total=None)
        summary = summarize(data, energy_key=energy_key, fmt=fmt,
                            progress=lambda n: bar.update(task, completed=n))
    result = summary.as_json()
    if as_json:
        emit_json(result)
        return
    t = Table(title=f"{data}", show_header=False)
    t.add_row("frames", str(result["frames"]))
    t.add_row("atoms", str(result["atoms"]))
    t.add_row("periodic frames", str(result["periodic_frames"]))
    t.add_row("elements", ", ".join(f"{k} {v}" for k, v in result["elements"].items()))
    t.add_row("properties", ", ".join(result["properties"]))
    if result["properties_missing"]:
        t.add_row("frames lacking", ", ".join(
            f"{k} {v}" for k, v in result["properties_missing"].items()))
    e = result["energy_per_atom_eV"]
    if e["mean"] is not None:
        t.add_row(f"{result['energy_key']} per atom (eV)",
                  f"min {e['min']:.6g}  mean {e['mean']:.6g}  max {e['max']:.6g}")
    t.add_row("charges", ", ".join(f"{k}: {v}" for k, v in result["charges"].items()))
    t.add_row("units", result["units_verdict"])
    t.add_row("rejected frames", str(result["frames_rejected"]))
    out().print(t)
    for line in result["rejects"]:
        err.print(f"rejected: {line}", highlight=False)


# ----------------------------------------------------------------------------- convert
@app.command()
@command
def convert(
    data: Annotated[str, typer.Argument(help="Input dataset (any format tealign reads).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output .extxyz file, or a "
                                         "directory for MACE sharded HDF5.")],
    to: Annotated[str | None, typer.Option(help="extxyz or mace-h5 (default: from -o: a name "
                                           "ending in .xyz/.extxyz is extxyz).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Force the input reader.")] = None,
    energy_key: Annotated[str, typer.Option(help="Key of the energy (eV) for MACE.")]
    = "REF_energy",
    forces_key: Annotated[str, typer.Option(help="Key of the forces (eV/Å).")] = "REF_forces",
    stress_key: Annotated[str, typer.Option(help="Key of the stress (eV/Å³).")] = "REF_stress",
    e0: Annotated[str | None, typer.Option(help="Isolated-atom table (name or JSON) for MACE "
                                           "statistics.json; without it none is written.")]
    = None,
    r_max: Annotated[float, typer.Option(help="Cutoff (Å) for statistics.json.")] = 4.5,
    strict: Annotated[bool, typer.Option(help="Treat frame errors as setup errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Convert a dataset to extxyz or to MACE's sharded HDF5 (+ statistics.json).

    Example: tealign convert spice.hdf5 -o spice.extxyz;
    tealign convert train.extxyz -o mace_train --e0 vasp-pbe-mp
    """
    from tealign.io import iter_batches
    from tealign.io.atomic import write_rejects
    from tealign.io.extxyz import write_extxyz
    from tealign.io.mace_h5 import write_mace_h5, write_statistics
    from tealign.keys import REF
    from tealign.methods import load_table

    target = to or ("extxyz" if output.suffix in (".xyz", ".extxyz") else "mace-h5")
    if target not in ("extxyz", "mace-h5"):
        raise SetupError(f"--to must be extxyz or mace-h5, not {to!r}", field="--to")
    check_output(output, [data, e0], kind="file" if target == "extxyz" else "dir")
    table = load_table(e0) if e0 else None
    rejects = []
    present: set[int] = set()
    counted = {"in": 0}

    def batches():
        with progress_bar() as bar:
            task = bar.add_task(f"converting {data}", total=None)
            for batch in iter_batches(data, fmt):
                counted["in"] += batch.n_frames + len(batch.rejects)
                if batch.rejects and strict:
                    raise batch.rejects[0].as_setup_error()
                rejects.extend(batch.rejects)
                if table is not None and batch.n_frames:
                    table.check_covers(batch.numbers, file=data)
                    present.update(int(z) for z in set(batch.numbers.tolist()))
                bar.update(task, advance=batch.n_frames)
                yield batch

    if target == "extxyz":
        n = write_extxyz(output, batches())
    else:
        n = write_mace_h5(batches(), output,
                          keys=REF.replace(energy=energy_key, forces=forces_key,
                                           stress=stress_key))
        if table is not None:
            from ase.data import atomic_numbers

            e0s = {atomic_numbers[s]: e for s, e in table.energies.items()
                   if atomic_numbers[s] in present}
            write_statistics(output, e0s,
                             output.with_name(output.name + ".statistics.json"), r_max=r_max)
    rpath = write_rejects(output, rejects)
    result = {"frames_in": counted["in"], "frames_out": n, "frames_rejected": len(rejects),
              "rejects_file": str(rpath) if rpath else None, "output": str(output)}
    if as_json:
        emit_json(result)
    else:
        err.print(f"wrote {n} frames to {output}"
                  + (f"; {len(rejects)} rejected, see {rpath}" if rejects else ""))


# ----------------------------------------------------------------------------- fit
@app.command()
@command
def fit(
    calib: Annotated[str, typer.Argument(help="Calibration set: structures with both methods' "
                                         "dispersion-free total energies (eV).")],
    source_key: Annotated[str, typer.Option(help="Key of the source (method 2) energy, e.g. "
                                            "energy_wb97m_svp.")],
    target_key: Annotated[str, typer.Option(help="Key of the target (method 1) energy, e.g. "
                                            "energy_gpaw_pbe.")],
    source_e0: Annotated[str, typer.Option(help="Source isolated-atom table: built-in name or "
                                           "JSON file (e.g. calib.atoms_<label>.json).")],
    target_e0: Annotated[str, typer.Option(help="Target isolated-atom table.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="alignment.json to write.")]
    = Path("alignment.json"),
    model: Annotated[str, typer.Option(help="scale (the paper's single factor), "
                                       "scale+elements, icea (no AEC) or auto (pick by "
                                       "K-fold CV RMSE).")] = "scale",
    split: Annotated[str | None, typer.Option(help="Use only frames whose 'split' is this "
                                              "(train/valid/test); default: every frame.")]
    = None,
    plot: Annotated[Path | None, typer.Option(help="Directory for Fig. 4-style parity plots.")]
    = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95 % interval of "
                                           "a.")] = 1000,
    folds: Annotated[int, typer.Option(help="Folds for --model auto.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of bootstrap and folds.")] = 0,
    strict: Annotated[bool, typer.Option(help="Treat frame errors as setup errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit ICEA + AEC on a calibration set computed with both methods.

    Example: tealign fit calib.extxyz --source-key energy_wb97m --target-key energy_pbe
    --source-e0 calib.atoms_wb97m.json --target-e0 calib.atoms_pbe.json -o alignment.json
    """
    from tealign.align import TotalEnergyAlignment
    from tealign.io.atomic import write_rejects
    from tealign.methods import load_table

    if model not in ("scale", "scale+elements", "icea", "auto"):
        raise SetupError(f"unknown model {model!r}; choose scale, scale+elements, icea or auto",
                         field="--model")
    check_output(output, [calib, source_e0, target_e0])
    if plot is not None:
        from tealign.io.atomic import check_not_input

        check_not_input(plot, [calib, source_e0, target_e0], field="--plot")
    src, tgt = load_table(source_e0), load_table(target_e0)
    tea = TotalEnergyAlignment(src, tgt, model=model, n_bootstrap=bootstrap, cv_folds=folds,
                               random_state=seed)
    tea.check_params()
    tea.fit(calib, source_key=source_key, target_key=target_key, split=split, strict=strict)
    sha = tea.save(output)
    rpath = write_rejects(output, tea.rejects_)
    plots = []
    if plot is not None:
        from tealign.report.parity import parity_plots

        p = tea.parity_
        plots = [str(x) for x in parity_plots(p["target"], p["icea"], p["tea"], plot, tea.a_,
                                              src.name, tgt.name, tea.model_)]
    result = {
        "model": tea.model_, "a": tea.a_, "a_ci95": tea.a_ci95_, "n": tea.n_,
        "n_rejected": tea.n_rejected_, "rmse_icea_eV": tea.rmse_icea_,
        "rmse_tea_eV": tea.rmse_tea_, "r2_icea": tea.r2_icea_, "r2_tea": tea.r2_tea_,
        "offsets_eV": tea.offsets_, "alignment": str(output), "sha256": sha,
        "rejects_file": str(rpath) if rpath else None, "plots": plots,
        "source_method": src.method_description, "target_method": tgt.method_description,
    }
    if tea.cv_rmse_ is not None:
        result["cv_rmse_eV"] = tea.cv_rmse_
    if as_json:
        emit_json(result)
        return
    t = Table(title=f"TEA fit: {src.name} → {tgt.name}", show_header=False)
    t.add_row("model", tea.model_)
    t.add_row("a", f"{tea.a_:.6f}  (95 % CI {tea.a_ci95_[0]:.6f} – {tea.a_ci95_[1]:.6f})")
    t.add_row("structures", f"{tea.n_} used, {tea.n_rejected_} rejected")
    t.add_row("RMSE after ICEA", f"{tea.rmse_icea_:.4f} eV  (R² {tea.r2_icea_:.6f})")
    t.add_row("RMSE after ICEA+AEC", f"{tea.rmse_tea_:.4f} eV  (R² {tea.r2_tea_:.6f})")
    if tea.cv_rmse_:
        t.add_row("CV RMSE", ", ".join(f"{k} {v:.4f} eV" for k, v in tea.cv_rmse_.items()))
    if tea.offsets_:
        t.add_row("offsets (eV)", ", ".join(f"{k} {v:+.4f}" for k, v in tea.offsets_.items()))
    t.add_row("written", str(output) + (f"; plots in {plot}" if plot else ""))
    out().print(t)
    if rpath:
        err.print(f"{tea.n_rejected_} calibration frames rejected: see {rpath}")


# ----------------------------------------------------------------------------- align
@app.command()
@command
def align(
    data: Annotated[str, typer.Argument(help="Dataset on the source scale (any format).")],
    alignment: Annotated[Path, typer.Option(help="alignment.json from `tealign fit`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output extxyz.")],
    energy_key: Annotated[str, typer.Option(help="Source energy key (eV); with --inverse, the "
                                            "key to write it to.")] = "energy",
    forces_key: Annotated[str, typer.Option(help="Source forces key (eV/Å).")] = "forces",
    stress_key: Annotated[str, typer.Option(help="Source stress key (eV/Å³).")] = "stress",
    virials_key: Annotated[str, typer.Option(help="Source virials key (eV).")] = "virials",
    remove_d3: Annotated[str | None, typer.Option(help="Subtract D3(BJ) of this functional "
                                                  "(e.g. wb97m) first; with --inverse, add it "
                                                  "back.")] = None,
    source_name: Annotated[str | None, typer.Option(help="Value of the 'source' key (default: "
                                                    "the input file's stem).")] = None,
    inverse: Annotated[bool, typer.Option(help="Undo the alignment: REF_* back to the source "
                                          "scale.")] = False,
    strict: Annotated[bool, typer.Option(help="Treat frame errors as setup errors.")] = False,
    fmt: Annotated[str | None, typer.Option("--format", help="Force the input reader.")] = None,
    workers: Annotated[int, typer.Option(help="Processes formatting the output while the "
                                         "input is read (default: CPU count, at most 4).")]
    = 0,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address: its workers "
                                                  "format the output batches.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Put a dataset on the target scale: energies, forces, stress, virials (streamed).

    Example: tealign align spice.hdf5 --alignment alignment.json --remove-d3 wb97m
    -o spice_on_pbe.extxyz
    """
    from tealign.align import TotalEnergyAlignment
    from tealign.io import iter_batches
    from tealign.io.atomic import write_rejects
    from tealign.io.extxyz import write_extxyz

    check_output(output, [data, alignment])
    if workers < 0:
        raise SetupError(f"--workers must be ≥ 0 (got {workers})", field="--workers")
    tea = TotalEnergyAlignment.load(alignment)
    name = source_name or Path(data).name.split(".")[0]
    rejects = []
    counts = {"in": 0, "seen_key": False, "forces": False, "stress": False}
    needed = "REF_energy" if inverse else energy_key
    others = {"forces": set(), "stress": set()}

    def batches():
        with progress_bar() as bar:
            task = bar.add_task(f"aligning {data}", total=None)
            for batch in iter_batches(data, fmt):
                counts["in"] += batch.n_frames + len(batch.rejects)
                counts["seen_key"] |= bool(batch.has(needed).any())
                if not inverse:
                    _watch_keys(batch, forces_key, stress_key, counts, others)
                if inverse:
                    res = tea.inverse_transform(batch, energy_key, forces_key, stress_key,
                                                virials_key, file=data, add_d3=remove_d3)
                else:
                    res = tea.transform(batch, energy_key, forces_key, stress_key, virials_key,
                                        source_name=name, file=data, remove_d3=remove_d3)
                if res.rejects and strict:
                    raise res.rejects[0].as_setup_error()
                rejects.extend(res.rejects)
                bar.update(task, advance=batch.n_frames)
                yield res
            if not counts["seen_key"]:
                raise SetupError("no frame has this energy key", file=data, field=needed)
            if not inverse:
                _check_unused_keys(data, forces_key, stress_key, counts, others)

    # computed forces (a·F) may be rounded at 1e-12 eV/Å; copied columns stay exact
    computed = frozenset({forces_key} if inverse else {"REF_forces"})
    if scheduler:
        from tealign.io.shards import Executor, write_extxyz_on

        with Executor(scheduler=scheduler) as ex:
            n = write_extxyz_on(ex, output, batches(), rounded=computed)
    else:
        n = write_extxyz(output, batches(), rounded=computed,
                         workers=workers or min(4, os.cpu_count() or 1))
    rpath = write_rejects(output, rejects)
    result = {"frames_in": counts["in"], "frames_out": n, "frames_rejected": len(rejects),
              "rejects_file": str(rpath) if rpath else None, "output": str(output),
              "a": tea.a_, "inverse": inverse}
    if as_json:
        emit_json(result)
    else:
        err.print(f"wrote {n} frames to {output}"
                  + (f"; {len(rejects)} rejected, see {rpath}" if rejects else ""))


def _watch_keys(batch, forces_key, stress_key, counts, others) -> None:
    from tealign.io.frames import forces_like, tensor_kind

    counts["forces"] |= bool(batch.has(forces_key).any())
    counts["stress"] |= bool(batch.has(stress_key).any())
    others["forces"].update(k for k in batch.arrays if forces_like(k) and k != forces_key)
    others["stress"].update(k for k in batch.info if tensor_kind(k) == "stress"
                            and k != stress_key)
    if batch.n_frames:
        _check_unused_keys(None, forces_key, stress_key, counts, others, final=False)


def _check_unused_keys(data, forces_key, stress_key, counts, others, final=True) -> None:
    """A --forces-key/--stress-key that no frame has, while frames carry forces or stress
    under another key, would leave them unscaled beside aligned energies: a setup error."""
    for kind, key, option in (("forces", forces_key, "--forces-key"),
                              ("stress", stress_key, "--stress-key")):
        found = sorted(k for k in others[kind] if not k.startswith(("REF_", "orig_", "d3_")))
        if not counts[kind] and found:
            raise SetupError(f"no frame has {kind} key '{key}', but frames carry {kind} under "
                             f"{', '.join(repr(k) for k in found)}; pass {option} "
                             f"{found[0]} (they would stay unscaled beside aligned energies)",
                             file=data, field=option)


# ----------------------------------------------------------------------------- merge
@app.command()
@command
def merge(
    config: Annotated[Path, typer.Argument(help="TOML listing [target] e0 and [[source]] "
                                           "entries (see tealign.merge).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output directory.")],
    per_source: Annotated[bool, typer.Option(help="One MACE-ready directory per source "
                                             "(multi-head training).")] = False,
    strict: Annotated[bool, typer.Option(help="Treat frame errors as setup errors.")] = False,
    fmt: Annotated[str | None, typer.Option("--format", help="Shards MACE trains from: h5 "
                                            "(sharded HDF5) or lmdb (ASE-LMDB, .aselmdb; "
                                            "the default, written 4-6x faster).")] = None,
    workers: Annotated[int, typer.Option(help="Processes writing shards while the sources "
                                         "are read (default: CPU count, at most 4).")] = 0,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address: shards are "
                                                  "written by its workers (they must see "
                                                  "the output directory).")] = None,
    extxyz: Annotated[bool, typer.Option("--extxyz/--no-extxyz", help="Also write "
                                         "merged.extxyz (every frame, keys of "
                                         "docs/architecture.md §4.3).")]
    = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Merge sources onto the target scale into a MACE-ready training set.

    Example: tealign merge sources.toml -o merged
    """
    from tealign.merge import DEFAULT_FORMAT, load_config, run_merge

    cfg = load_config(config)  # validated before any work
    inputs = [config]
    for src in cfg.sources:
        inputs += [cfg.base / src.path, src.path]
        if src.alignment != "target":
            inputs += [cfg.base / src.alignment, src.alignment]
        if src.e0:
            inputs.append(cfg.base / src.e0)
    inputs += cfg.e0 if isinstance(cfg.e0, list) else [cfg.e0]
    check_output(output, inputs, kind="dir")
    with progress_bar() as bar:
        task = bar.add_task(f"merging {config}", total=None)
        report = run_merge(config, output, per_source=per_source, strict=strict,
                           progress=lambda n: bar.update(task, completed=n),
                           fmt=fmt or DEFAULT_FORMAT, extxyz=extxyz, scheduler=scheduler,
                           workers=workers or min(4, os.cpu_count() or 1))
    result = {k: report[k] for k in ("frames_in", "frames_out", "frames_rejected",
                                     "rejects_file")}
    result["sources"] = report["sources"]
    result["output"] = str(output)
    if as_json:
        emit_json(result)
        return
    t = Table("source", "in", "written", "rejected", "train/valid/test",
              title=f"merged into {output}")
    for name, s in report["sources"].items():
        sp = s["by_split"]
        t.add_row(name, str(s["frames_in"]), str(s["frames_out"]), str(s["frames_rejected"]),
                  f"{sp['train']}/{sp['valid']}/{sp['test']}")
    out().print(t)


# ----------------------------------------------------------------------------- train
@app.command("train")
@command
def train_cmd(
    preset: Annotated[str, typer.Option(help="osaka24-small|osaka24-medium|osaka24-large|"
                                        "small-cpu|tiny")],
    data: Annotated[Path, typer.Option(help="Output directory of `tealign merge`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run directory; the model "
                                         "is written to RUN_DIR/model.model.")],
    distributed: Annotated[bool, typer.Option(help="torchrun across GPUs (needs CUDA).")]
    = False,
    nproc: Annotated[int | None, typer.Option(help="Processes per node with --distributed "
                                              "(default: GPU count).")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="Override max_num_epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the preset's random seed "
                                             "(weights, shuffling).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the command and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a MACE model with a MACE-Osaka24 recipe (mace-torch does the training).

    Example: tealign train --preset tiny --data merged -o run
    """
    from tealign.train import build_command, train

    overrides = ({"max_num_epochs": epochs} if epochs else {}) | \
        ({"seed": seed} if seed is not None else {})
    if dry_run:
        cmd = build_command(preset, data, output, distributed=distributed, nproc=nproc,
                            device=device, overrides=overrides)
        emit_json({"command": cmd}) if as_json else out().print(" ".join(cmd))
        return
    with progress_bar() as bar:
        bar.add_task(f"training {preset} (log: {output}/train.log)", total=None)
        summary = train(preset, data, output, distributed=distributed, nproc=nproc,
                        device=device, overrides=overrides)
    if as_json:
        emit_json(summary)
    else:
        err.print(f"model written to {summary['model']} in {summary['wall_s']:.0f} s")


# ----------------------------------------------------------------------------- eval
@app.command("eval")
@command
def eval_cmd(
    model: Annotated[Path, typer.Argument(help="MACE model file.")],
    data: Annotated[str, typer.Argument(help="Dataset with reference values (any format).")],
    energy_key: Annotated[str, typer.Option(help="Reference energy key (eV).")]
    = "REF_energy",
    forces_key: Annotated[str, typer.Option(help="Reference forces key (eV/Å).")]
    = "REF_forces",
    stress_key: Annotated[str, typer.Option(help="Reference stress key (eV/Å³).")]
    = "REF_stress",
    head: Annotated[str | None, typer.Option(help="Model head (multi-head models).")] = None,
    split: Annotated[str | None, typer.Option(help="Only frames of this split.")] = None,
    batch_size: Annotated[int, typer.Option(help="Structures per forward pass.")] = 32,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Errors of a MACE model on a dataset, overall and per config_type (batched).

    Example: tealign eval run/model.model merged/merged.extxyz --split test --json
    """
    from tealign.evaluate import evaluate

    with progress_bar() as bar:
        bar.add_task(f"evaluating {model} on {data}", total=None)
        result = evaluate(model, data, energy_key, forces_key, stress_key, head=head,
                          batch_size=batch_size, device=device, split=split)
    if as_json:
        emit_json(result)
        return
    cols = ["energy_mae_meV_per_atom", "energy_rmse_meV_per_atom", "forces_mae_meV_per_A",
            "forces_rmse_meV_per_A", "stress_mae_meV_per_A3"]
    t = Table("set", "n", "E MAE meV/at", "E RMSE meV/at", "F MAE meV/Å", "F RMSE meV/Å",
              "σ MAE meV/Å³")
    rows = [("overall", result["overall"]), *result["by_config_type"].items()]
    for name, m in rows:
        t.add_row(name, str(m["n"]), *(f"{m[c]:.2f}" if c in m else "–" for c in cols))
    out().print(t)


# ----------------------------------------------------------------------------- compute
def _progress_callback(bar, task):
    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update


def compute_progress() -> Progress:
    from rich.progress import MofNCompleteColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err, transient=False)


@compute_app.command("atoms")
@command
def compute_atoms(
    method: Annotated[str, typer.Option(help="[LABEL=]SPEC, e.g. pyscf:wb97m-d3bj/def2-tzvppd "
                                        "or gpaw:pbe/pw800.")],
    elements: Annotated[str, typer.Option(help="Comma-separated symbols, e.g. H,C,N,O.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Isolated-atom table JSON "
                                         "(docs/architecture.md §4.4) to write.")]
    = Path("atoms.json"),
    store: Annotated[Path | None, typer.Option(help="Job store directory (default: beside "
                                               "the output). Rerunning resumes.")] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address "
                                                  "(tcp://host:port).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compute spin-polarised ground-state isolated atoms and write an isolated-atom table.

    Example: tealign compute atoms --method pyscf:wb97m-d3bj/def2-tzvppd --elements H,C,N,O
    -o atoms.json
    """
    from tealign.compute.atoms import atom_jobs, parse_elements, table_from_store
    from tealign.compute.runner import run_jobs
    from tealign.compute.spec import parse_spec
    from tealign.compute.store import JobStore

    spec = parse_spec(method)
    syms = parse_elements(elements)
    jobs = atom_jobs(spec, syms)
    store_dir = store or output.with_name(output.name + ".store")
    with JobStore(store_dir) as st, compute_progress() as bar:
        task = bar.add_task(f"{spec.label} atoms", total=len(jobs))
        stats = run_jobs(jobs, st, workers=workers, scheduler=scheduler,
                         progress=_progress_callback(bar, task))
        table, failed = table_from_store(spec, jobs, st)
    if failed:
        raise SetupError("isolated atoms failed: " + "; ".join(failed) + f" (details in "
                         f"{store_dir}; rerun after fixing the settings)", field="--method")
    table.save(output)
    result = {"table": str(output), "label": spec.label, "units": "eV",
              "energies": table.energies, **stats}
    if as_json:
        emit_json(result)
        return
    t = Table("element", "E0 (eV)", "E0 (hartree)", title=f"{spec.label}: {spec.spec}")
    from tealign import units

    for sym, e in table.energies.items():
        t.add_row(sym, f"{e:.6f}", f"{e / units.HARTREE_TO_EV:.8f}")
    out().print(t)
    err.print(f"wrote {output} ({stats['computed']} computed, {stats['skipped']} from the store)")


@compute_app.command("calib")
@command
def compute_calib(
    molecules: Annotated[str, typer.Option(help="qm9:N (seeded pick spread over sizes and "
                                           "elements) or a dataset file.")],
    method: Annotated[list[str], typer.Option(help="[LABEL=]SPEC; give it once per method.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration extxyz.")]
    = Path("calib.extxyz"),
    store: Annotated[Path | None, typer.Option(help="Job store directory (default: beside "
                                               "the output). Rerunning resumes.")] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 1,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the QM9 pick and of the splits.")] = 0,
    forces: Annotated[bool, typer.Option(help="Compute forces too (--no-forces: energies "
                                         "only, all a calibration needs, much cheaper for "
                                         "hybrid functionals).")] = True,
    strict: Annotated[bool, typer.Option(help="Failed calculations become setup errors.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compute a calibration set: every method on every molecule, plus isolated atoms.

    Example: tealign compute calib --molecules qm9:90 --method pbe=gpaw:pbe/pw800
    --method wb97m=pyscf:wb97m-d3bj/def2-svp -o calib.extxyz
    """
    from tealign.compute.calib import compute_calibration, load_molecules
    from tealign.compute.spec import parse_spec

    if len(method) < 1:
        raise SetupError("give at least one --method", field="--method")
    specs = [parse_spec(m) for m in method]
    mols = load_molecules(molecules, seed)
    store_dir = store or output.with_name(output.name + ".store")
    with compute_progress() as bar:
        task = bar.add_task(f"calib {len(mols)} molecules × {len(specs)} methods", total=None)
        res = compute_calibration(mols, specs, output, store_dir, workers=workers,
                                  scheduler=scheduler, seed=seed,
                                  progress=_progress_callback(bar, task),
                                  source_name=molecules, forces=forces)
    if strict and res.rejects:
        raise res.rejects[0].as_setup_error()
    from tealign.io.atomic import rejects_path

    result = {"output": str(output), "frames": res.frames, "frames_rejected": len(res.rejects),
              "rejects_file": str(rejects_path(output)) if res.rejects else None,
              "tables": {k: str(v) for k, v in res.tables.items()},
              "failed_atoms": res.failed_atoms, "store": str(store_dir), **res.stats}
    if as_json:
        emit_json(result)
        return
    err.print(f"wrote {res.frames} calibration frames to {output}; {res.stats['computed']} "
              f"jobs computed, {res.stats['skipped']} from the store, "
              f"{res.stats['failed']} failed")
    for label, path in res.tables.items():
        err.print(f"  isolated atoms {label}: {path}")
    for r in res.rejects:
        err.print(f"  rejected: {r.line()}", highlight=False)


# ----------------------------------------------------------------------------- data
@data_app.command("list")
@command
def data_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the registered benchmark datasets and where each is found."""
    from tealign.bench import registry

    rows = []
    for ds in registry.REGISTRY.values():
        found = next((str(p) for p in registry.candidates(ds.name) if p.exists()), None)
        rows.append({"name": ds.name, "file": ds.file, "licence": ds.licence,
                     "source": ds.url, "citation": ds.citation, "found": found})
    if as_json:
        emit_json({"datasets": rows})
        return
    t = Table("name", "file", "licence", "found at")
    for r in rows:
        t.add_row(r["name"], r["file"], r["licence"], r["found"] or "[red]missing[/]")
    out().print(t)


@data_app.command("fetch")
@command
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name (tealign data list).")],
    url: Annotated[str | None, typer.Option(help="Download from here instead (https:// or "
                                            "file://).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Download a dataset into the user cache, prepare it and check its sha256."""
    from tealign.bench import registry

    rec = registry.fetch(name, url)
    emit_json(rec) if as_json else err.print(f"fetched {name} → {rec['file']}")


@data_app.command("verify")
@command
def data_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check the sha256 of every dataset that is found."""
    from tealign.bench import registry

    rows = [registry.verify(n) for n in registry.REGISTRY]
    if as_json:
        emit_json({"datasets": rows})
    else:
        t = Table("name", "file", "sha256 ok")
        for r in rows:
            t.add_row(r["name"], r["file"] or "missing", "yes" if r["ok"] else "no")
        out().print(t)
    if any(r["file"] and not r["ok"] for r in rows):
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- bench
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="torch threads (default: $TEALIGN_THREADS, $OMP_NUM_THREADS, else the "
    "cores this process may use).")]


def _bench_threads(threads: int | None) -> int:
    """Set torch's threads for a benchmark and say so on stderr."""
    from tealign.bench.runaway import torch_threads

    n, src = torch_threads(threads)
    err.print(f"torch threads: {n} ({src})", highlight=False)
    return n


@bench_app.command("reactions")
@command
def bench_reactions(
    calculator: Annotated[str, typer.Option(help=CALCULATOR_HELP, callback=_pretrained)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for results.json "
                                         "and figures.")],
    data: Annotated[Path | None, typer.Option(help="Reaction extxyz (default: registry "
                                              "'reactions').")] = None,
    limit: Annotated[int | None, typer.Option(help="First N reactions in ascending rxn.")]
    = None,
    d3: Annotated[str, typer.Option(help="Add D3(BJ) of this functional, or none.")] = "none",
    dtype: Annotated[str | None, typer.Option(help="MACE models: run in float32 (about 2x "
                                              "faster on CPU, ~1e-4 eV per molecule) or "
                                              "float64; default: the model file's.")] = None,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Forward reaction barriers (RDB7) against CCSD(T)-F12 references.

    Example: tealign bench reactions --calculator xtb --limit 300 --json -o bench_rxn
    """
    from tealign.bench import reactions, registry

    _bench_threads(threads)
    path = registry.locate("reactions", data)
    with progress_bar() as bar:
        task = bar.add_task("single points", total=None)
        res = reactions.run(calculator, path, output, limit=limit, d3=d3, dtype=dtype,
                            progress=lambda n: bar.update(task, completed=n))
    if as_json:
        emit_json({k: res[k] for k in ("n", "mae_kcal_mol", "mae_eV", "rmse_kcal_mol")}
                  | {"results": str(output / "results.json")})
        return
    t = Table("model", "barrier MAE (eV)", "data", title="Reaction barriers")
    t.add_row(f"[bold]{calculator}[/]", f"{res['mae_eV']:.3f}", f"RDB7, N = {res['n']}")
    for name, mae in res["published_transition1x_barrier_mae_eV"].items():
        t.add_row(name, f"{mae:.3f}", "published: Transition1x, N = 10,073")
    out().print(t)


@bench_app.command("lattice")
@command
def bench_lattice(
    calculator: Annotated[str, typer.Option(help=CALCULATOR_HELP, callback=_pretrained)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for results.json "
                                         "and figures.")],
    limit: Annotated[int | None, typer.Option(help="First N crystals of the table.")] = None,
    r_max: Annotated[float | None, typer.Option(help="Model cutoff (Å) for the bcc analysis "
                                                "(read from MACE models).")] = None,
    d3: Annotated[str, typer.Option(help="Add D3(BJ) of this functional, or none.")] = "none",
    data: Annotated[Path | None, typer.Option(help="Another lattice CSV (same columns).")]
    = None,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Lattice constants of cubic crystals (cell relaxation) vs PBE and experiment.

    Example: tealign bench lattice --calculator chgnet --json -o bench_lattice
    """
    from tealign.bench import lattice

    _bench_threads(threads)
    with progress_bar() as bar:
        task = bar.add_task("relaxing crystals", total=None)
        res = lattice.run(calculator, output, limit=limit, d3=d3, r_max=r_max, data=data,
                          progress=lambda n: bar.update(task, completed=n))
    keys = ("n", "mae_A", "mae_exp_A", "mae_by_structure", "excluded", "skipped", "r_max_A")
    if as_json:
        emit_json({k: res[k] for k in keys} | {"results": str(output / "results.json")})
        return
    structures = sorted(res["mae_by_structure"])
    t = Table("model", "MAE (Å)", *structures, title="Lattice constants vs PBE")
    t.add_row(f"[bold]{calculator}[/]", f"{res['mae_A']:.4f}",
              *(f"{res['mae_by_structure'][s]:.4f}" for s in structures))
    for name, mae in res["published_mae_A"].items():
        by = res["published_mae_by_structure_A"].get(name, {})
        t.add_row(f"{name} (published)", f"{mae:.3f}",
                  *(f"{by[s]:.4f}" if s in by else "–" for s in structures))
    out().print(t)
    for e in res["excluded"]:
        err.print(f"excluded {e['name']}: {e['reason']} (error {e['error_vs_pbe_A']:+.3f} Å)")
    for s in res["skipped"]:
        err.print(f"[yellow]skipped {s['name']}:[/] {s['reason']}", highlight=False)


@bench_app.command("eos")
@command
def bench_eos(
    calculator: Annotated[str, typer.Option(help=CALCULATOR_HELP, callback=_pretrained)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for results.json "
                                         "and figures.")],
    reference: Annotated[str | None, typer.Option(help="Compute the reference curve with this "
                                                  "SPEC, e.g. gpaw:pbe/pw800.")] = None,
    reference_file: Annotated[Path | None, typer.Option(help="results.json of an earlier "
                                                        "curve to compare with.")] = None,
    store: Annotated[Path | None, typer.Option(help="Job store for --reference (resumes).")]
    = None,
    workers: Annotated[int, typer.Option(help="Worker processes for --reference.")] = 1,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Si E–V curve (a = 5.00 … 6.00 Å): a0, B0 and RMSE against a reference curve.

    Example: tealign bench eos --calculator chgnet --reference gpaw:pbe/pw800 -o bench_eos
    """
    from tealign.bench import eos

    _bench_threads(threads)
    with progress_bar() as bar:
        task = bar.add_task("Si E–V", total=len(eos.GRID))
        res = eos.run(calculator, output, reference=reference, reference_file=reference_file,
                      store=store, workers=workers,
                      progress=lambda n: bar.update(task, completed=n))
    keys = ("a0_A", "b0_GPa", "rmse_vs_reference_meV_per_atom")
    if as_json:
        emit_json({k: res[k] for k in keys} | {"results": str(output / "results.json")})
        return
    t = Table("curve", "a0 (Å)", "B0 (GPa)", "RMSE vs reference (meV/atom)")
    t.add_row(calculator, f"{res['a0_A']:.4f}", f"{res['b0_GPa']:.1f}",
              "–" if res["rmse_vs_reference_meV_per_atom"] is None
              else f"{res['rmse_vs_reference_meV_per_atom']:.2f}")
    if "reference_a0_A" in res:
        t.add_row(res["reference"], f"{res['reference_a0_A']:.4f}",
                  f"{res['reference_b0_GPa']:.1f}", "")
    out().print(t)


@bench_app.command("torsion")
@command
def bench_torsion(
    calculator: Annotated[str, typer.Option(help=CALCULATOR_HELP, callback=_pretrained)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for results.json "
                                         "and figures.")],
    data: Annotated[Path | None, typer.Option(help="Profiles CSV (default: registry "
                                              "'biaryl-csv').")] = None,
    geometries: Annotated[Path | None, typer.Option(help="SDF (default: registry "
                                                    "'biaryl-sdf').")] = None,
    limit: Annotated[int | None, typer.Option(help="First N molecules of the CSV.")] = None,
    step: Annotated[float, typer.Option(help="Scan step in degrees (paper: 5).")] = 15.0,
    max_steps: Annotated[int, typer.Option(help="BFGS step limit per constrained relaxation; "
                                           "points that reach it are kept and flagged "
                                           "unconverged.")] = 500,
    max_force_calls: Annotated[int, typer.Option(
        help="Cap on force calls (one per structure evaluated) for the whole benchmark, "
        "shared among the scan points; points it cuts short are kept, flagged, and listed "
        "under cap_bit in results.json (default: about 480 calls per point of the full "
        "87-molecule scan at 15°).")] = 1_000_000,
    batched: Annotated[bool | None, typer.Option(
        "--batched/--one-by-one", help="Relax the scan points of all molecules together in "
        "batched MACE passes (default for MACE model files; other calculators go one by "
        "one).")] = None,
    d3: Annotated[str, typer.Option(help="Add D3(BJ) of this functional, or none.")] = "none",
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Relaxed biaryl torsion scans against OpenFF B3LYP-D3(BJ) profiles.

    Example: tealign bench torsion --calculator xtb --limit 10 --json -o bench_torsion
    """
    from tealign.bench import registry, torsion

    _bench_threads(threads)
    csv_path = registry.locate("biaryl-csv", data)
    sdf_path = registry.locate("biaryl-sdf", geometries)
    with progress_bar() as bar:
        task = bar.add_task("constrained relaxations", total=None)
        res = torsion.run(calculator, output, csv_path, sdf_path, limit=limit, step=step,
                          d3=d3, steps=max_steps, progress=lambda: bar.advance(task),
                          max_force_calls=max_force_calls, batched=batched)
    keys = ("n", "barrier_mae_kcal_mol", "profile_mae_kcal_mol", "unconverged_points",
            "skipped", "force_calls", "max_force_calls", "cap_reached", "cap_bit")
    if as_json:
        emit_json({k: res[k] for k in keys} | {"results": str(output / "results.json")})
        return
    for s in res["skipped"]:
        err.print(f"[yellow]skipped {s['molid']}:[/] {s['reason']}")
    for c in res["cap_bit"]:
        err.print(f"[yellow]force-call cap ({res['max_force_calls']}) bit {c['molid']}:[/] "
                  f"{c['points_cut_short']} points cut short, {c['points_not_run']} not run",
                  highlight=False)
    t = Table("model", "barrier MAE (kcal/mol)", "profile MAE (kcal/mol)", "data")
    t.add_row(f"[bold]{calculator}[/]", f"{res['barrier_mae_kcal_mol']:.3f}",
              f"{res['profile_mae_kcal_mol']:.3f}", f"B3LYP-D3(BJ) refs, N = {res['n']}")
    for name, mae in res["published_barrier_mae_kcal_mol"].items():
        t.add_row(f"{name} (published)", f"{mae:.3f}", "–", "CCSD(T) refs, N = 78")
    out().print(t)


@bench_app.command("water")
@command
def bench_water(
    calculator: Annotated[str, typer.Option(help=CALCULATOR_HELP, callback=_pretrained)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for results.json "
                                         "and figures.")],
    ps: Annotated[float, typer.Option(help="Run length in ps (paper: 100).")] = 2.0,
    d3: Annotated[str | None, typer.Option(help="D3(BJ) functional or none (default: pbe, "
                                           "none for xtb).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the starting box and thermostat.")] = 0,
    data: Annotated[Path | None, typer.Option(help="Experimental RDF .npz (default: "
                                              "registry 'water-exp').")] = None,
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Liquid water NVT at 300 K: O–O RDF vs X-ray experiment and TIP3P/TIP4P.

    Example: tealign bench water --calculator chgnet --ps 2 -o bench_water
    """
    import numpy as np

    from tealign.bench import registry, water

    _bench_threads(threads)
    d3 = d3 if d3 is not None else ("none" if calculator == "xtb" else "pbe")
    refs = {}
    exp = np.load(registry.locate("water-exp", data))
    refs["exp"] = (exp["r_OO"], exp["g_OO"])
    for name in ("tip3p", "tip4p"):
        try:
            d = np.load(registry.locate(f"water-{name}"))
            refs[name] = (d["r_OO"], d["g_OO"])
        except SetupError as exc:
            err.print(f"[yellow]{name} curve not shown:[/] {exc.message}")
    n_steps = int(round(ps * 2000))
    with progress_bar() as bar:
        task = bar.add_task("water NVT", total=n_steps)
        res = water.run(calculator, output, ps=ps, d3=d3, seed=seed, references=refs,
                        progress=lambda n: bar.update(task, completed=n))
    keys = ("peak_r_A", "peak_g", "rmsd_vs_exp", "mean_temperature_K", "skipped")
    if as_json:
        emit_json({k: res[k] for k in keys} | {"results": str(output / "results.json")})
        return
    for s in res["skipped"]:
        err.print(f"[yellow]skipped {s['name']}:[/] {s['reason']}", highlight=False)
    if res["peak_r_A"] is None:
        return
    t = Table("model", "peak r (Å)", "peak g", "RMSD vs exp", "T (K)")
    t.add_row(calculator, f"{res['peak_r_A']:.3f}", f"{res['peak_g']:.3f}",
              f"{res['rmsd_vs_exp']:.3f}", f"{res['mean_temperature_K']:.0f}")
    out().print(t)


@bench_app.command("cross")
@command
def bench_cross(
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for results.json "
                                         "and figures.")],
    calculator: Annotated[str | None, typer.Option(help="Model level: " + CALCULATOR_HELP,
                                                   callback=_pretrained)] = None,
    alignment: Annotated[Path | None, typer.Option(help="Label level, no model: align the "
                                                   "molecules' source energies with this "
                                                   "alignment.json; solids at the target "
                                                   "level.")] = None,
    data: Annotated[list[Path] | None, typer.Option(help="Bridge-set extxyz (repeatable; "
                                                    "default: datasets/bridge-mini/"
                                                    "bridge-mini.extxyz).")] = None,
    definition: Annotated[Path | None, typer.Option(help="Items JSON (default: bridge.json "
                                                    "beside the data).")] = None,
    target_key: Annotated[str, typer.Option(help="Target-level energy key (the truth).")]
    = "energy_pbe",
    source_key: Annotated[str, typer.Option(help="Source-level energy key of the molecules "
                                            "(--alignment).")] = "energy_wb97m",
    aligned_domain: Annotated[str, typer.Option(help="config_type of the frames that "
                                                "--alignment maps.")] = "organic",
    d3: Annotated[str, typer.Option(help="Add D3(BJ) of this functional, or none.")] = "none",
    dtype: Annotated[str | None, typer.Option(help="MACE models: float32 or float64.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Cross-domain consistency: gas–solid reaction, adsorption and molecular-crystal lattice
    energies against target-level truth (docs/architecture.md §8.3).

    Example: tealign bench cross --alignment alignment.json -o bench_cross
    """
    from tealign.bench import cross

    if alignment is not None and not alignment.exists():
        raise SetupError("no such file", file=str(alignment), field="--alignment")
    with progress_bar() as bar:
        task = bar.add_task("single points", total=None)
        res = cross.run(output, data=data, definition=definition, calculator=calculator,
                        alignment=alignment, target_key=target_key, source_key=source_key,
                        aligned_domain=aligned_domain, d3=d3, dtype=dtype,
                        progress=lambda n: bar.update(task, completed=n))
    keys = ("mode", "n", "mae_eV", "rmse_eV", "reaction_mae_eV", "adsorption_mae_eV",
            "lattice_mae_eV", "skipped")
    if as_json:
        emit_json({k: res[k] for k in keys} | {"results": str(output / "results.json")})
        return
    for s in res["skipped"]:
        err.print(f"[yellow]skipped {s['id']}:[/] {s['reason']}", highlight=False)
    who = calculator if calculator is not None else f"aligned labels ({alignment})"
    t = Table("kind", "N", "MAE (eV)", "RMSE (eV)", "max |error| (eV)",
              title=f"Cross-domain quantities: {who}")
    for kind in cross.KINDS:
        s = res["by_kind"][kind]
        if s["n"]:
            t.add_row(cross.KIND_TITLES[kind], str(s["n"]), f"{s['mae_eV']:.3f}",
                      f"{s['rmse_eV']:.3f}", f"{s['max_abs_eV']:.3f}")
    if res["n"]:
        t.add_row("[bold]all[/]", str(res["n"]), f"{res['mae_eV']:.3f}", f"{res['rmse_eV']:.3f}",
                  f"{res['max_abs_eV']:.3f}")
    out().print(t)


# ----------------------------------------------------------------------------- e0
@e0_app.command("list")
@command
def e0_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the built-in isolated-atom tables."""
    from tealign.methods import builtin_tables, load_table

    rows = []
    for name in builtin_tables():
        t = load_table(name)
        rows.append({"name": name, "method": t.provenance.get("method", ""),
                     "code": t.provenance.get("code", ""), "elements": len(t.energies)})
    if as_json:
        emit_json({"tables": rows})
        return
    table = Table("name", "method", "code", "elements")
    for r in rows:
        table.add_row(r["name"], r["method"], r["code"], str(r["elements"]))
    out().print(table)


@e0_app.command("show")
@command
def e0_show(
    table_name: Annotated[str, typer.Argument(metavar="TABLE",
                                              help="Built-in table name or JSON file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show one isolated-atom table (energies in eV) with its provenance."""
    from tealign.methods import load_table

    t = load_table(table_name)
    d = t.to_json_dict()
    if as_json:
        emit_json(d)
        return
    table = Table("element", "E0 (eV)", title=t.name)
    for sym, e in t.energies.items():
        table.add_row(sym, f"{e:.8f}")
    out().print(table)
    for k, v in t.provenance.items():
        out().print(f"[bold]{k}[/]: {v}", highlight=False)

# ----------------------------------------------------------------------------- report / demo
@app.command()
@command
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (the layout `tealign demo` "
                                            "writes: fit/, merged/, train/, eval/, bench/).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file to write "
                                                "(default: RUN_DIR/report.html).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write one self-contained HTML report (figures embedded) of a run directory.

    Example: tealign report tealign-demo
    """
    from tealign.report.html import build_report

    path = build_report(run_dir, output)
    if as_json:
        emit_json({"report": str(path), "bytes": path.stat().st_size})
    else:
        err.print(f"report written to {path} (open it in a browser)")


@app.command()
@command
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the whole pipeline on the bundled mini datasets and write the HTML report.

    Fits the alignment on calib-qm9, aligns organic-mini and merges it with inorganic-mini,
    trains a tiny MACE model, evaluates it per domain, runs the lattice and Si E–V benchmarks
    (and torsions / reactions / water when their data is available) and writes
    OUTPUT/report.html. Needs no DFT code and no network. Rerunning resumes.

    Example: tealign demo -o tealign-demo
    """
    from tealign.demo import DemoOptions, run_demo, summary_rows
    from tealign.report.html import build_report

    opts = DemoOptions(quick=quick, water=water, water_ps=water_ps, reactions=reactions,
                       torsions=torsions, epochs=epochs, threads=threads,
                       torsion_max_force_calls=torsion_max_force_calls)
    state = run_demo(output, datasets, opts, log=lambda m: err.print(m, highlight=False))
    path = build_report(output)
    rows = summary_rows(output)
    if as_json:
        emit_json({"run_dir": str(output), "report": str(path), "wall_s": state["wall_s"],
                   "steps": {s["name"]: s["status"] for s in state["steps"]},
                   "summary": dict(rows)})
        return
    t = Table("", "", title=f"tealign demo: {output}", show_header=False)
    for k, v in rows:
        t.add_row(k, v)
    t.add_row("wall time", f"{state['wall_s']:.0f} s")
    t.add_row("report", str(path))
    out().print(t)


if __name__ == "__main__":  # pragma: no cover
    app()
