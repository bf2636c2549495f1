"""Commands of the alignment itself: ``fit``, ``align``, ``merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from typer.core import TyperCommand

from tealign import api
from tealign.cli._common import (
    FormatAliasOpt,
    JsonOpt,
    ReaderOpt,
    StrictOpt,
    app,
    cmd,
    command,
    err,
    out,
    pick_reader,
    plain_help,
    progress,
    render_rejects,
    show,
)
from tealign.keys import Keys

MismatchOpt = Annotated[bool, typer.Option(help="Use an isolated-atom table whose method "
                                           "differs from the data's recorded method "
                                           "(refused otherwise, exit 2).")]
ChargedOpt = Annotated[bool, typer.Option(help="Keep charged frames (rejected otherwise: "
                                          "TEA's isolated atoms are neutral). The measured "
                                          "error on ions is in datasets/charged-ions/"
                                          "charged.json.")]
WorkersOpt = Annotated[int, typer.Option(help="Processes reading, aligning and formatting "
                                         "byte ranges of a large extxyz input side by side, "
                                         "or formatting the output while any other input is "
                                         "read (default: CPU count, at most 4).")]


@cmd(app)
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
    model: Annotated[str, typer.Option(help=api.fit_model_help() + ".")] = "scale",
    split: Annotated[str | None, typer.Option(help="Use only frames whose 'split' is this "
                                              "(train/valid/test); default: every frame.")]
    = None,
    plot: Annotated[Path | None, typer.Option(help="Directory for Fig. 4-style parity plots.")]
    = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95 % interval of "
                                           "a.")] = 1000,
    folds: Annotated[int, typer.Option(help="Folds for --model auto.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of bootstrap and folds.")] = 0,
    allow_method_mismatch: MismatchOpt = False,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit ICEA + AEC on a calibration set computed with both methods.

    Example: tealign fit calib.extxyz --source-key energy_wb97m --target-key energy_pbe
    --source-e0 calib.atoms_wb97m.json --target-e0 calib.atoms_pbe.json -o alignment.json
    """
    res = api.fit(calib, source_key, target_key, source_e0, target_e0, output, model=model,
                  split=split, plot=plot, bootstrap=bootstrap, folds=folds, seed=seed,
                  strict=strict, allow_method_mismatch=allow_method_mismatch)
    show(res, as_json, lambda res: _render_fit(res, output, plot))


def _render_fit(res, output: Path, plot: Path | None) -> None:
    tea = res.estimator
    t = Table(title=f"TEA fit: {tea.source_table_.name} → {tea.target_table_.name}",
              show_header=False)
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
    if res.rejects_file:
        err.print(f"{tea.n_rejected_} calibration frames rejected: see {res.rejects_file}")


class _BareRemoveD3(TyperCommand):
    """``align`` where ``--remove-d3`` given without a value (last, or before another option)
    means the alignment card's own functional (:data:`tealign.cards.CARD_D3`)."""

    def parse_args(self, ctx, args):
        args, i = list(args), 0
        while i < len(args) and args[i] != "--":
            if args[i] == "--remove-d3" and (i + 1 == len(args)
                                             or args[i + 1].startswith("-")):
                args.insert(i + 1, api.card_d3())
            i += 1
        return super().parse_args(ctx, args)


@app.command(cls=_BareRemoveD3)
@command
@plain_help
def align(
    data: Annotated[str, typer.Argument(help="Dataset on the source scale (any format).")],
    alignment: Annotated[str, typer.Option(help="alignment.json from `tealign fit`, or the "
                                           "name of an alignment card (`tealign "
                                           "alignments`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output extxyz.")],
    energy_key: Annotated[str, typer.Option(help="Source energy key (eV); with --inverse, the "
                                            "key to write it to.")] = "energy",
    forces_key: Annotated[str, typer.Option(help="Source forces key (eV/Å).")] = "forces",
    stress_key: Annotated[str, typer.Option(help="Source stress key (eV/Å³).")] = "stress",
    virials_key: Annotated[str, typer.Option(help="Source virials key (eV).")] = "virials",
    remove_d3: Annotated[str | None, typer.Option(
        help="Subtract D3(BJ) of this functional (e.g. wb97m) first; with --inverse, add it "
        "back. With an alignment card, --remove-d3 alone uses the card's functional.")]
    = None,
    source_name: Annotated[str | None, typer.Option(help="Value of the 'source' key (default: "
                                                    "the input file's stem).")] = None,
    inverse: Annotated[bool, typer.Option(help="Undo the alignment: REF_* back to the source "
                                          "scale.")] = False,
    allow_realign: Annotated[bool, typer.Option(help="Align frames that carry "
                                                "alignment_sha256 (aligned already) again, "
                                                "e.g. to chain alignments.")] = False,
    allow_method_mismatch: MismatchOpt = False,
    allow_charged: ChargedOpt = False,
    strict: StrictOpt = False,
    reader: ReaderOpt = None,
    fmt: FormatAliasOpt = None,
    workers: WorkersOpt = 0,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address: its workers "
                                                  "format the output batches.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a dataset on the target scale: energies, forces, stress, virials (streamed).

    Example: tealign align spice.hdf5 --alignment alignment.json --remove-d3 wb97m
    -o spice_on_pbe.extxyz; with a card: tealign align spice.hdf5 --alignment spice-to-mptrj
    --remove-d3 -o spice_on_mptrj.extxyz
    """
    keys = Keys(energy_key, forces_key, stress_key, virials_key)
    with progress(f"aligning {data}") as update:
        res = api.align(data, alignment, output, keys, remove_d3=remove_d3,
                        source_name=source_name, inverse=inverse, strict=strict,
                        format=pick_reader(reader, fmt), workers=workers,
                        scheduler=scheduler, progress=update, allow_realign=allow_realign,
                        allow_method_mismatch=allow_method_mismatch,
                        allow_charged=allow_charged)
    show(res, as_json, render_rejects)


@cmd(app)
def merge(
    config: Annotated[Path, typer.Argument(help="TOML listing [target] e0 and [[source]] "
                                           "entries (see tealign.merge).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output directory.")],
    per_source: Annotated[bool, typer.Option(help="One MACE-ready directory per source "
                                             "(multi-head training).")] = False,
    strict: StrictOpt = False,
    fmt: Annotated[str | None, typer.Option("--shards", "--format", help="Shards MACE "
                                            f"trains from: {api.format_names('shards')}; "
                                            "default lmdb (written 4-6x faster than "
                                            "mace-h5). --format is the same option.")] = None,
    workers: Annotated[int, typer.Option(help="Processes writing shards while the sources "
                                         "are read (default: CPU count, at most 4).")] = 0,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address: shards are "
                                                  "written by its workers (they must see "
                                                  "the output directory).")] = None,
    extxyz: Annotated[bool, typer.Option("--extxyz/--no-extxyz", help="Also write "
                                         "merged.extxyz (every frame, keys of "
                                         "docs/architecture.md §4.3).")]
    = True,
    allow_method_mismatch: MismatchOpt = False,
    allow_charged: ChargedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Merge sources onto the target scale into a MACE-ready training set.

    Example: tealign merge sources.toml -o merged
    """
    with progress(f"merging {config}") as update:
        res = api.merge(config, output, per_source=per_source, strict=strict, format=fmt,
                        workers=workers, scheduler=scheduler, extxyz=extxyz, progress=update,
                        allow_method_mismatch=allow_method_mismatch,
                        allow_charged=allow_charged)
    show(res, as_json, _render_merge)


def _render_merge(res) -> None:
    t = Table("source", "in", "written", "rejected", "train/valid/test",
              title=f"merged into {res.output}")
    for name, s in res.sources.items():
        sp = s["by_split"]
        t.add_row(name, str(s["frames_in"]), str(s["frames_out"]), str(s["frames_rejected"]),
                  f"{sp['train']}/{sp['valid']}/{sp['test']}")
    out().print(t)
