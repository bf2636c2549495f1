"""Commands about datasets: ``info``, ``convert``, ``e0 list|show``, ``data list|fetch|verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign.cli._common import (
    FormatOpt,
    JsonOpt,
    StrictOpt,
    app,
    cmd,
    data_app,
    e0_app,
    err,
    out,
    print_table,
    progress,
    render_rejects,
    show,
)
from tealign.keys import REF


@cmd(app)
def info(
    data: Annotated[str, typer.Argument(help="Dataset: .xyz/.extxyz, .db, .h5 (MACE or SPICE), "
                                        "MPtrj .json, MACE shard directory, or qm9:N.")],
    energy_key: Annotated[str | None, typer.Option(help="Energy key to summarise (default "
                                                   "REF_energy, then energy).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help=f"Force a reader: {api.format_names('read')}.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Inspect a dataset: frames, elements, energies per atom, charges, units sanity.

    Example: tealign info train.extxyz --json
    """
    with progress(f"reading {data}") as update:
        res = api.info(data, energy_key=energy_key, format=fmt, progress=update)
    show(res, as_json, lambda res: _render_info(res, data))


def _render_info(res, data: str) -> None:
    result = res.to_json()
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


@cmd(app)
def convert(
    data: Annotated[str, typer.Argument(help="Input dataset (any format tealign reads).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output, format from the "
                                         "name: .extxyz/.xyz (.gz: gzip), .aselmdb, .h5, "
                                         ".traj/.db (through ASE), or a name without a "
                                         "suffix for a MACE shard directory.")],
    to: Annotated[str | None, typer.Option(help=f"{api.format_names('convert')} (default: "
                                           "from the name of -o).")] = None,
    fmt: FormatOpt = None,
    energy_key: Annotated[str, typer.Option(help="Key of the energy (eV) for MACE.")]
    = REF.energy,
    forces_key: Annotated[str, typer.Option(help="Key of the forces (eV/Å).")] = REF.forces,
    stress_key: Annotated[str, typer.Option(help="Key of the stress (eV/Å³).")] = REF.stress,
    e0: Annotated[str | None, typer.Option(help="Isolated-atom table (name or JSON) for MACE "
                                           "statistics.json; without it none is written.")]
    = None,
    r_max: Annotated[float, typer.Option(help="Cutoff (Å) for statistics.json.")] = 4.5,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Convert a dataset to extxyz or to MACE's sharded HDF5 (+ statistics.json).

    Example: tealign convert spice.hdf5 -o spice.extxyz;
    tealign convert train.extxyz -o mace_train --e0 vasp-pbe-mp
    """
    keys = REF.replace(energy=energy_key, forces=forces_key, stress=stress_key)
    with progress(f"converting {data}") as update:
        res = api.convert(data, output, to, format=fmt, keys=keys, e0=e0, r_max=r_max,
                          strict=strict, progress=update)
    show(res, as_json, render_rejects)


@cmd(e0_app, "list")
def e0_list(as_json: JsonOpt = False) -> None:
    """List the built-in isolated-atom tables."""
    show(api.e0_tables(), as_json, _render_e0_list)


def _render_e0_list(res) -> None:
    print_table(("name", "method", "code", "elements"),
                ((r["name"], r["method"], r["code"], str(r["elements"])) for r in res.tables))


@cmd(e0_app, "show")
def e0_show(
    table_name: Annotated[str, typer.Argument(metavar="TABLE",
                                              help="Built-in table name or JSON file.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one isolated-atom table (energies in eV) with its provenance."""
    show(api.e0_table(table_name), as_json, _render_e0_show)


def _render_e0_show(res) -> None:
    t = res.table
    table = Table("element", "E0 (eV)", title=t.name)
    for sym, e in t.energies.items():
        table.add_row(sym, f"{e:.8f}")
    out().print(table)
    for k, v in t.provenance.items():
        out().print(f"[bold]{k}[/]: {v}", highlight=False)


@cmd(data_app, "list")
def data_list(as_json: JsonOpt = False) -> None:
    """List the registered benchmark datasets and where each is found."""
    show(api.datasets(), as_json, _render_data_list)


def _render_data_list(res) -> None:
    print_table(("name", "file", "licence", "found at"),
                ((r["name"], r["file"], r["licence"], r["found"] or "[red]missing[/]")
                 for r in res.datasets))


@cmd(data_app, "fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name (tealign data list).")],
    url: Annotated[str | None, typer.Option(help="Download from here instead (https:// or "
                                            "file://).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a dataset into the user cache, prepare it and check its sha256."""
    show(api.fetch(name, url), as_json, lambda res: err.print(f"fetched {name} → {res.file}"))


@cmd(data_app, "verify")
def data_verify(as_json: JsonOpt = False) -> None:
    """Check the sha256 of every dataset that is found."""
    res = api.verify()
    show(res, as_json, _render_verify)
    if not res.ok:
        raise typer.Exit(1)


def _render_verify(res) -> None:
    print_table(("name", "file", "sha256 ok"),
                ((r["name"], r["file"] or "missing", "yes" if r["ok"] else "no")
                 for r in res.datasets))
