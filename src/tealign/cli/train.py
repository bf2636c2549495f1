"""Commands of the model: ``train`` and ``eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign import rundir as rd
from tealign.cli._common import JsonOpt, app, cmd, err, out, progress, show
from tealign.keys import REF


@cmd(app, "train")
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
    as_json: JsonOpt = False,
) -> None:
    """Train a MACE model with a MACE-Osaka24 recipe (mace-torch does the training).

    Example: tealign train --preset tiny --data merged -o run
    """
    opts = dict(distributed=distributed, nproc=nproc, device=device, epochs=epochs, seed=seed)
    if dry_run:
        show(api.train(preset, data, output, dry_run=True, **opts), as_json,
             lambda res: out().print(" ".join(res.command)))
        return
    with progress(f"training {preset} (log: {output}/{rd.TRAIN_LOG_FILE})"):
        res = api.train(preset, data, output, **opts)
    show(res, as_json, lambda res: err.print(f"model written to {res.model} in "
                                             f"{res.wall_s:.0f} s"))


@cmd(app, "eval")
def eval_cmd(
    model: Annotated[Path, typer.Argument(help="MACE model file.")],
    data: Annotated[str, typer.Argument(help="Dataset with reference values (any format).")],
    energy_key: Annotated[str, typer.Option(help="Reference energy key (eV).")] = REF.energy,
    forces_key: Annotated[str, typer.Option(help="Reference forces key (eV/Å).")]
    = REF.forces,
    stress_key: Annotated[str, typer.Option(help="Reference stress key (eV/Å³).")]
    = REF.stress,
    head: Annotated[str | None, typer.Option(help="Model head (multi-head models).")] = None,
    split: Annotated[str | None, typer.Option(help="Only frames of this split.")] = None,
    batch_size: Annotated[int, typer.Option(help="Structures per forward pass.")] = 32,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Errors of a MACE model on a dataset, overall and per config_type (batched).

    Example: tealign eval run/model.model merged/merged.extxyz --split test --json
    """
    keys = REF.replace(energy=energy_key, forces=forces_key, stress=stress_key)
    with progress(f"evaluating {model} on {data}"):
        res = api.evaluate(model, data, keys, head=head, split=split,
                           batch_size=batch_size, device=device)
    show(res, as_json, _render_eval)


def _render_eval(res) -> None:
    result = res.to_json()
    cols = ["energy_mae_meV_per_atom", "energy_rmse_meV_per_atom", "forces_mae_meV_per_A",
            "forces_rmse_meV_per_A", "stress_mae_meV_per_A3"]
    t = Table("set", "n", "E MAE meV/at", "E RMSE meV/at", "F MAE meV/Å", "F RMSE meV/Å",
              "σ MAE meV/Å³")
    rows = [("overall", result["overall"]), *result["by_config_type"].items()]
    for name, m in rows:
        t.add_row(name, str(m["n"]), *(f"{m[c]:.2f}" if c in m else "–" for c in cols))
    out().print(t)
