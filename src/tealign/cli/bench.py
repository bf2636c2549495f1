"""Benchmarks of any calculator: ``bench reactions|lattice|eos|torsion|water|cross``, written
out here with their own options and tables, and a generated command for every other entry of
the benchmark registry (:mod:`tealign.bench.benchmarks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign.cli._common import (
    CALCULATOR_HELP,
    CalculatorOpt,
    JsonOpt,
    bench_app,
    cmd,
    err,
    out,
    pretrained,
    progress,
    show,
)

OutputOpt = Annotated[Path, typer.Option("-o", "--output", help="Directory for results.json "
                                         "and figures.")]
D3Opt = Annotated[str, typer.Option(help="Add D3(BJ) of this functional, or none.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="torch threads (default: $TEALIGN_THREADS, $OMP_NUM_THREADS, else the "
    "cores this process may use).")]


def _run(verb, args: tuple, options: dict, description: str, as_json: bool, render) -> None:
    """Run ``verb`` under a progress bar, say the torch threads it ran with, then print its
    ``--json`` object or ``render`` it."""
    with progress(description) as update:
        res = verb(*args, progress=update, **options)
    if hasattr(res, "torch_threads"):  # bench cross runs no torch model of its own choosing
        n, src = res.torch_threads
        err.print(f"torch threads: {n} ({src})", highlight=False)
    show(res, as_json, render)


def _skipped(res, key: str) -> None:
    for s in res.details["skipped"]:
        err.print(f"[yellow]skipped {s[key]}:[/] {s['reason']}", highlight=False)


@cmd(bench_app, "reactions")
def bench_reactions(
    calculator: CalculatorOpt, output: OutputOpt,
    data: Annotated[Path | None, typer.Option(help="Reaction extxyz (default: registry "
                                              "'reactions').")] = None,
    limit: Annotated[int | None, typer.Option(help="First N reactions in ascending rxn.")]
    = None,
    d3: D3Opt = "none",
    dtype: Annotated[str | None, typer.Option(help="MACE models: run in float32 (about 2x "
                                              "faster on CPU, ~1e-4 eV per molecule) or "
                                              "float64; default: the model file's.")] = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forward reaction barriers (RDB7) against CCSD(T)-F12 references.

    Example: tealign bench reactions --calculator xtb --limit 300 --json -o bench_rxn
    """
    _run(api.bench_reactions, (calculator, output),
         dict(data=data, limit=limit, d3=d3, dtype=dtype, threads=threads), "single points",
         as_json, lambda res: _render_reactions(res, calculator))


def _render_reactions(res, calculator: str) -> None:
    t = Table("model", "barrier MAE (eV)", "data", title="Reaction barriers")
    t.add_row(f"[bold]{calculator}[/]", f"{res.mae_eV:.3f}", f"RDB7, N = {res.n}")
    for name, mae in res.details["published_transition1x_barrier_mae_eV"].items():
        t.add_row(name, f"{mae:.3f}", "published: Transition1x, N = 10,073")
    out().print(t)


@cmd(bench_app, "lattice")
def bench_lattice(
    calculator: CalculatorOpt, output: OutputOpt,
    limit: Annotated[int | None, typer.Option(help="Evaluate N crystals: the first N of "
                                              "the table that the calculator covers "
                                              "(crystals with an element it lacks are "
                                              "skipped and do not count).")] = None,
    r_max: Annotated[float | None, typer.Option(help="Model cutoff (Å) for the bcc analysis "
                                                "(read from MACE models).")] = None,
    d3: D3Opt = "none",
    data: Annotated[Path | None, typer.Option(help="Another lattice CSV (same columns).")]
    = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lattice constants of cubic crystals (cell relaxation) vs PBE and experiment.

    Example: tealign bench lattice --calculator chgnet --json -o bench_lattice
    """
    _run(api.bench_lattice, (calculator, output),
         dict(limit=limit, r_max=r_max, d3=d3, data=data, threads=threads),
         "relaxing crystals", as_json, lambda res: _render_lattice(res, calculator))


def _render_lattice(res, calculator: str) -> None:
    d = res.details
    structures = sorted(d["mae_by_structure"])
    t = Table("model", "MAE (Å)", *structures, title="Lattice constants vs PBE")
    t.add_row(f"[bold]{calculator}[/]", f"{d['mae_A']:.4f}",
              *(f"{d['mae_by_structure'][s]:.4f}" for s in structures))
    for name, mae in d["published_mae_A"].items():
        by = d["published_mae_by_structure_A"].get(name, {})
        t.add_row(f"{name} (published)", f"{mae:.3f}",
                  *(f"{by[s]:.4f}" if s in by else "–" for s in structures))
    out().print(t)
    for e in d["excluded"]:
        err.print(f"excluded {e['name']}: {e['reason']} (error {e['error_vs_pbe_A']:+.3f} Å)")
    _skipped(res, "name")


@cmd(bench_app, "eos")
def bench_eos(
    calculator: CalculatorOpt, output: OutputOpt,
    reference: Annotated[str | None, typer.Option(help="Compute the reference curve with this "
                                                  "SPEC, e.g. gpaw:pbe/pw800.")] = None,
    reference_file: Annotated[Path | None, typer.Option(help="results.json of an earlier "
                                                        "curve to compare with.")] = None,
    store: Annotated[Path | None, typer.Option(help="Job store for --reference (resumes).")]
    = None,
    workers: Annotated[int, typer.Option(help="Worker processes for --reference.")] = 1,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="With --reference: compute again the points the store holds "
        "as failed (after fixing their cause); by default a failed point stops the "
        "benchmark with its reason.")] = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Si E–V curve (a = 5.00 … 6.00 Å): a0, B0 and RMSE against a reference curve.

    Example: tealign bench eos --calculator chgnet --reference gpaw:pbe/pw800 -o bench_eos
    """
    opts = dict(reference=reference, reference_file=reference_file, store=store,
                workers=workers, threads=threads, retry_failed=retry_failed)
    _run(api.bench_eos, (calculator, output), opts, "Si E–V", as_json,
         lambda res: _render_eos(res, calculator))


def _render_eos(res, calculator: str) -> None:
    d = res.details
    rmse = d["rmse_vs_reference_meV_per_atom"]
    t = Table("curve", "a0 (Å)", "B0 (GPa)", "RMSE vs reference (meV/atom)")
    t.add_row(calculator, f"{d['a0_A']:.4f}", f"{d['b0_GPa']:.1f}",
              "–" if rmse is None else f"{rmse:.2f}")
    if "reference_a0_A" in d:
        t.add_row(d["reference"], f"{d['reference_a0_A']:.4f}", f"{d['reference_b0_GPa']:.1f}",
                  "")
    out().print(t)


@cmd(bench_app, "torsion")
def bench_torsion(
    calculator: CalculatorOpt, output: OutputOpt,
    data: Annotated[Path | None, typer.Option(help="Profiles CSV (default: registry "
                                              "'biaryl-csv').")] = None,
    limit: Annotated[int | None, typer.Option(help="First N molecules of the CSV.")] = None,
    geometries: Annotated[Path | None, typer.Option(help="SDF (default: registry "
                                                    "'biaryl-sdf').")] = None,
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
    d3: D3Opt = "none",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Relaxed biaryl torsion scans against OpenFF B3LYP-D3(BJ) profiles.

    Example: tealign bench torsion --calculator xtb --limit 10 --json -o bench_torsion
    """
    opts = dict(data=data, geometries=geometries, limit=limit, step=step,
                max_steps=max_steps, max_force_calls=max_force_calls, batched=batched, d3=d3,
                threads=threads)
    _run(api.bench_torsion, (calculator, output), opts, "constrained relaxations", as_json,
         lambda res: _render_torsion(res, calculator))


def _render_torsion(res, calculator: str) -> None:
    d = res.details
    for s in d["skipped"]:
        err.print(f"[yellow]skipped {s['molid']}:[/] {s['reason']}")
    for c in d["cap_bit"]:
        err.print(f"[yellow]force-call cap ({d['max_force_calls']}) bit {c['molid']}:[/] "
                  f"{c['points_cut_short']} points cut short, {c['points_not_run']} not run",
                  highlight=False)
    t = Table("model", "barrier MAE (kcal/mol)", "profile MAE (kcal/mol)", "data")
    t.add_row(f"[bold]{calculator}[/]", f"{d['barrier_mae_kcal_mol']:.3f}",
              f"{d['profile_mae_kcal_mol']:.3f}", f"B3LYP-D3(BJ) refs, N = {d['n']}")
    for name, mae in d["published_barrier_mae_kcal_mol"].items():
        t.add_row(f"{name} (published)", f"{mae:.3f}", "–", "CCSD(T) refs, N = 78")
    out().print(t)


@cmd(bench_app, "water")
def bench_water(
    calculator: CalculatorOpt, output: OutputOpt,
    ps: Annotated[float, typer.Option(help="Run length in ps (paper: 100).")] = 2.0,
    d3: Annotated[str | None, typer.Option(help="D3(BJ) functional or none (default: pbe, "
                                           "none for xtb).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the starting box and thermostat.")] = 0,
    data: Annotated[Path | None, typer.Option(help="Experimental RDF .npz (default: "
                                              "registry 'water-exp').")] = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Liquid water NVT at 300 K: O–O RDF vs X-ray experiment and TIP3P/TIP4P.

    Example: tealign bench water --calculator chgnet --ps 2 -o bench_water
    """
    def warn(name: str, why: str) -> None:
        err.print(f"[yellow]{name} curve not shown:[/] {why}")

    opts = dict(ps=ps, d3=d3, seed=seed, data=data, warn=warn, threads=threads)
    _run(api.bench_water, (calculator, output), opts, "water NVT", as_json,
         lambda res: _render_water(res, calculator))


def _render_water(res, calculator: str) -> None:
    _skipped(res, "name")
    if res.peak_r_A is None:
        return
    t = Table("model", "peak r (Å)", "peak g", "RMSD vs exp", "T (K)")
    t.add_row(calculator, f"{res.peak_r_A:.3f}", f"{res.peak_g:.3f}",
              f"{res.rmse_vs_exp:.3f}", f"{res.mean_temperature_K:.0f}")
    out().print(t)


@cmd(bench_app, "cross")
def bench_cross(
    output: OutputOpt,
    calculator: Annotated[str | None, typer.Option(help="Model level: " + CALCULATOR_HELP,
                                                   callback=pretrained)] = None,
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
    d3: D3Opt = "none",
    dtype: Annotated[str | None, typer.Option(help="MACE models: float32 or float64.")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Cross-domain consistency: gas–solid reaction, adsorption and molecular-crystal lattice
    energies against target-level truth (docs/architecture.md §8.3).

    Example: tealign bench cross --alignment alignment.json -o bench_cross
    """
    opts = dict(alignment=alignment, data=data,
                definition=definition, target_key=target_key, source_key=source_key,
                aligned_domain=aligned_domain, d3=d3, dtype=dtype)
    who = calculator if calculator is not None else f"aligned labels ({alignment})"
    _run(api.bench_cross, (calculator, output), opts, "single points", as_json,
         lambda res: _render_cross(res, who))


def _render_cross(res, who: str) -> None:
    _skipped(res, "id")
    d = res.details
    t = Table("kind", "N", "MAE (eV)", "RMSE (eV)", "max |error| (eV)",
              title=f"Cross-domain quantities: {who}")
    for kind, title in res.kind_titles.items():
        s = d["by_kind"][kind]
        if s["n"]:
            t.add_row(title, str(s["n"]), f"{s['mae_eV']:.3f}",
                      f"{s['rmse_eV']:.3f}", f"{s['max_abs_eV']:.3f}")
    if d["n"]:
        t.add_row("[bold]all[/]", str(d["n"]), f"{d['mae_eV']:.3f}", f"{d['rmse_eV']:.3f}",
                  f"{d['max_abs_eV']:.3f}")
    out().print(t)


def _generated(b) -> None:
    """Register ``tealign bench NAME`` for a benchmark that is only a registry entry
    (:mod:`tealign.bench.benchmarks`): ``--calculator``, ``-o``, the entry's own options,
    ``--threads`` and ``--json``; it calls :func:`tealign.api.run_benchmark` and prints the
    ``--json`` keys as a table."""
    import functools
    import inspect

    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("calculator", kw, annotation=CalculatorOpt),
              inspect.Parameter("output", kw, annotation=OutputOpt)]
    for o in b.options:
        kind = o.type if o.default is not None else o.type | None
        params.append(inspect.Parameter(o.name, kw, default=o.default, annotation=Annotated[
            kind, typer.Option(f"--{o.name.replace('_', '-')}", help=o.help)]))
    params += [inspect.Parameter("threads", kw, default=None, annotation=ThreadsOpt),
               inspect.Parameter("as_json", kw, default=False, annotation=JsonOpt)]

    def command(**options) -> None:
        calculator, output = options.pop("calculator"), options.pop("output")
        as_json = options.pop("as_json")
        _run(functools.partial(api.run_benchmark, b.name), (calculator, output), options,
             b.title, as_json, lambda res: _render_generated(res, calculator))

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = command.__qualname__ = f"bench_{b.name}"
    command.__doc__ = f"{b.title}.\n\nExample: tealign bench {b.name} --calculator xtb -o " \
                      f"bench_{b.name}"
    cmd(bench_app, b.name)(command)


def _render_generated(res, calculator: str) -> None:
    t = Table("model", "quantity", "value")
    for key, value in res.to_json().items():
        if isinstance(value, (int, float, str)) and key != "results":
            t.add_row(calculator, key, f"{value:.4g}" if isinstance(value, float) else str(value))
    out().print(t)


_WRITTEN = {c.name for c in bench_app.registered_commands}
for _b in api.benchmarks().values():
    if _b.name not in _WRITTEN:
        _generated(_b)
