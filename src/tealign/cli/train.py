"""Commands of the model: ``train`` and ``eval``."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tealign import api
from tealign.cli._common import JsonOpt, app, cmd, err, out, pretrained, progress, show
from tealign.keys import REF


@cmd(app, "train")
def train_cmd(
    data: Annotated[Path, typer.Option(help="Output directory of `tealign merge`.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run directory; the model "
                                         "is written to RUN_DIR/model.model (with "
                                         "mace-torch's Stage Two, -- --swa, the Stage Two "
                                         "model; Stage One as model_stageone.model).")],
    preset: Annotated[str | None, typer.Option(
        help="osaka24-small|osaka24-medium|osaka24-large|small-cpu|tiny (required unless "
             "--from: then the training settings of the model's card, else osaka24-small)."
    )] = None,
    from_model: Annotated[str | None, typer.Option(
        "--from", help="Fine-tune this MACE model file, or tealign-mini (the shipped model), "
        "with mace-torch's --foundation_model: the architecture is the model's, the "
        "learning rate the preset's / 10 unless --lr is passed through.")] = None,
    replay: Annotated[Path | None, typer.Option(
        help="With --from: mace-torch's multi-head replay fine-tuning, replaying this "
        "extxyz (the model's own training data, REF_* keys) on a second head. Without it: "
        "naive fine-tuning.")] = None,
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
    mace_args: Annotated[list[str] | None, typer.Argument(
        metavar="-- MACE_OPTIONS",
        help="After --: any further mace_run_train options, e.g. -- --batch_size 4 "
        "--forces_weight 100 --ema false. They replace the preset's value of the same "
        "option (noted on stderr); options that tealign sets (data, keys, run directory, "
        "device, E0s from statistics.json, fine-tuning) are refused.", show_default=False,
    )] = None,
) -> None:
    """Train a MACE model with a MACE-Osaka24 recipe (mace-torch does the training), or
    fine-tune one (--from).

    Example: tealign train --preset tiny --data merged -o run -- --batch_size 4

    Example: tealign train --from tealign-mini --data merged -o ft --epochs 2
    """
    opts = dict(distributed=distributed, nproc=nproc, device=device, epochs=epochs, seed=seed,
                mace_args=mace_args or None, from_model=from_model, replay=replay)
    if dry_run:
        res = api.train(preset, data, output, dry_run=True, **opts)
        _notes(res)
        show(res, as_json, lambda res: out().print(shlex.join(res.command)))
        return
    what = f"fine-tuning {from_model}" if from_model else f"training {preset}"
    with progress(f"{what} (log: {output}/{api.TRAIN_LOG_FILE})"):
        res = api.train(preset, data, output, **opts)
    _notes(res)
    show(res, as_json, lambda res: err.print(f"model written to {res.model} in "
                                             f"{res.wall_s:.0f} s"))


def _notes(res) -> None:
    """One stderr line per preset value that a pass-through option replaced."""
    for key, (was, now) in (res.to_json().get("overridden") or {}).items():
        err.print(f"note: --{key} {now} replaces the preset's {was}", highlight=False,
                  markup=False)


@cmd(app, "eval")
def eval_cmd(
    model: Annotated[str, typer.Argument(help="MACE model file, or tealign-mini (the model "
                                         "that ships with tealign).",
                                         callback=pretrained)],
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
