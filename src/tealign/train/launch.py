"""Launch mace-torch training on a merged directory (``tealign train``).

Single process: ``mace_run_train``; ``--distributed``: ``torchrun`` with mace-torch's
distributed mode (NCCL, so CUDA GPUs are required). A merged directory from ``tealign merge``
(its splits as MACE sharded HDF5 or ASE-LMDB shards: mace-torch picks its HDF5 or LMDB
dataset from the files it finds) trains one head; one from ``tealign merge --per-source``
trains one head per source (mace-torch's ``--heads``). The model lands at
``RUN_DIR/model.model`` (loadable by ``MACECalculator``); mace-torch's logs, checkpoints and
results stay beside it, and ``RUN_DIR/tealign_train.json`` records the exact command.
Rerunning resumes from the latest checkpoint (``--restart_latest``).

Open training (:func:`build_command`'s ``mace_args``, ``tealign train ... -- --KEY VALUE``):
any ``mace_run_train`` option can be passed through. Who wins, so that no setting is given
twice (mace-torch's argparse would silently keep the last):

1. the pass-through beats the preset: a preset value it names is *replaced* (the command
   holds it once; the summary's ``overridden`` lists ``{key: [preset, new]}``), and
   ``--ema false`` (any store-true preset flag followed by false) drops that flag;
2. tealign's own options (``--epochs``, ``--seed``) also beat the preset; naming the same
   setting both ways (``--epochs 2 -- --max_num_epochs 5``) is a setup error;
3. what tealign sets from its arguments cannot be passed through (setup error naming the
   tealign option): the run directory and model name, the data files and heads (``--data``),
   the ``REF_*`` keys of the merged data, ``--device``, ``--distributed``, the fine-tuning
   options (``--from``, ``--replay``), and what comes from ``DATA/statistics.json`` (E0s,
   atomic numbers, mean, std, average neighbour count: mace-torch ignores ``--E0s`` and the
   others when a statistics file is given, so they would be silently dropped);
4. an option that ``mace_run_train`` does not have is a setup error before anything runs.

Fine-tuning (``from_model``, ``tealign train --from MODEL``; a model file or the shipped
``tealign-mini``) uses mace-torch 0.3.16's own options: ``--foundation_model FILE``. The
architecture (and r_max) is the model's — mace-torch takes it from the file and ignores the
preset's architecture, so tealign leaves those keys out (passing one is an error); the
preset gives the training settings, with the learning rate divided by 10
(:data:`FINETUNE_LR_FACTOR`) unless ``--lr`` is passed. The E0s of the new training are the
merged data's (``statistics.json``: the target scale's isolated atoms). Without ``replay``
it is naive fine-tuning (``--multiheads_finetuning False``: every weight starts from the
model and is trained on the new data only). With ``replay=FILE`` (``--replay``) it is
mace-torch's multi-head replay fine-tuning (``--multiheads_finetuning True --pt_train_file
FILE``): a ``pt_head`` keeps fitting FILE (extxyz carrying the same ``REF_*`` keys, e.g. the
``merged.extxyz`` of the data the model was trained on) while the new head fits the new
data; mace-torch then sets lr 1e-4 and EMA itself unless ``--force_mh_ft_lr True`` is passed.
Both work offline with a local model file (mace-torch downloads replay data only for its
own Materials Project foundation models, which tealign does not request).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tealign import rundir as rd
from tealign.errors import SetupError
from tealign.io.outputs import write_json
from tealign.keys import REF
from tealign.train.presets import ARCHITECTURE, PRESETS, preset_args, to_cli

KEYS = [arg for kind, key in REF.items() for arg in (f"--{kind}_key", key)]

#: the learning rate of a fine-tuning run is the preset's times this (unless --lr is passed)
FINETUNE_LR_FACTOR = 0.1

_STATS = ("DATA/statistics.json sets it (the target scale's isolated-atom energies and the "
          "data's statistics); mace-torch ignores it when a statistics file is given")
#: mace_run_train options that tealign sets itself: {option: the tealign option that sets it}
MANAGED = {
    "name": "-o/--output (the model is RUN_DIR/model.model)",
    "work_dir": "-o/--output", "train_file": "--data", "valid_file": "--data",
    "statistics_file": "--data", "heads": "--data (a --per-source merge)",
    **{f"{kind}_key": "--data (the merged data's REF_* keys)" for kind, _ in REF.items()},
    "device": "--device", "distributed": "--distributed",
    "foundation_model": "--from", "multiheads_finetuning": "--from/--replay",
    "pt_train_file": "--replay",
    **{k: _STATS for k in ("E0s", "atomic_numbers", "mean", "std", "avg_num_neighbors")},
}
#: mace_run_train options that a tealign option also sets
TEALIGN_OPTIONS = {"max_num_epochs": "--epochs", "seed": "--seed"}
FALSE = ("false", "no", "0", "off")


def _mace_actions() -> dict:
    """{option name without dashes: argparse action} of ``mace_run_train``."""
    from tealign._mace import quiet_import

    with quiet_import():
        from mace.tools.arg_parser import build_default_arg_parser

        parser = build_default_arg_parser()
    return {s[2:]: a for a in parser._actions for s in a.option_strings if s.startswith("--")}


def parse_mace_args(mace_args) -> dict[str, object]:
    """``mace_run_train`` options as ``{key: value}`` (in order): from an argv list
    (``["--batch_size", "4", "--E0s=average", "--ema", "false"]``) or a mapping
    (``{"batch_size": 4}``). A bare flag is True; several values make a list."""
    if not mace_args:
        return {}
    if isinstance(mace_args, dict):
        return {str(k).removeprefix("--"): v for k, v in mace_args.items()}
    out: dict[str, object] = {}
    key = None
    for tok in map(str, mace_args):
        if tok.startswith("--") and len(tok) > 2:
            key, eq, value = tok[2:].partition("=")
            if key in out:
                raise SetupError(f"--{key} is given twice in the mace_run_train options",
                                 field=f"--{key}")
            out[key] = value if eq else True
            if eq:
                key = None
        elif key is None:
            raise SetupError(f"{tok!r}: a mace_run_train value without its --option",
                             field="mace options")
        else:
            prev = out[key]
            out[key] = tok if prev is True else [*(prev if isinstance(prev, list) else [prev]),
                                                 tok]
    return out


def _check_mace_args(args: dict, fine_tuning: bool) -> dict:
    """``args`` checked against ``mace_run_train``'s parser and tealign's rules; store-true
    flags normalised to True/False."""
    import argparse

    actions = _mace_actions()
    checked: dict[str, object] = {}
    for key, value in args.items():
        if key not in actions:
            raise SetupError(f"mace_run_train has no option --{key}", field=f"--{key}")
        if key in MANAGED:
            raise SetupError(f"--{key} cannot be passed to mace_run_train through tealign: "
                             f"{MANAGED[key]}", field=f"--{key}")
        if fine_tuning and key in ARCHITECTURE:
            raise SetupError(f"--{key} is part of the architecture, which fine-tuning takes "
                             "from the --from model", field=f"--{key}")
        if isinstance(actions[key], argparse._StoreTrueAction):
            if value is True or str(value).lower() in ("true", "yes", "1", "on"):
                value = True
            elif str(value).lower() in FALSE:
                value = False
            else:
                raise SetupError(f"--{key} is a flag (true or false), not {value!r}",
                                 field=f"--{key}")
        elif value is True:
            raise SetupError(f"--{key} needs a value", field=f"--{key}")
        elif (actions[key].type in (int, float) and isinstance(value, (str, int, float))
              and not isinstance(value, bool)):
            try:
                value = actions[key].type(value)
            except ValueError:
                raise SetupError(f"--{key} takes a number, not {value!r}",
                                 field=f"--{key}") from None
        checked[key] = value
    return checked


def _foundation(from_model, data: Path, replay) -> tuple[Path, list[str]]:
    """The model file of ``--from`` and mace-torch's fine-tuning options for it; checks that
    the model knows every element of the data (and matches the r_max of HDF5 shards)."""
    from tealign._mace import load_model
    from tealign.train.pretrained import NAMES, model_path

    path = model_path(str(from_model)) if str(from_model) in NAMES else Path(from_model)
    if not path.exists():
        raise SetupError("no such model file", file=str(path), field="--from")
    model = load_model(path)
    known = {int(z) for z in model.atomic_numbers}
    stats = [data / rd.STATISTICS_FILE] if (data / rd.STATISTICS_FILE).exists() else \
        sorted(data.glob(f"*/{rd.STATISTICS_FILE}"))
    for st in stats:
        import ast

        info = json.loads(st.read_text())
        zs = set(ast.literal_eval(str(info.get("atomic_numbers", "[]"))))
        if zs - known:
            from ase.data import chemical_symbols

            missing = ", ".join(chemical_symbols[z] for z in sorted(zs - known))
            raise SetupError(f"the --from model has no weights for {missing} (elements of "
                             "the data); fine-tune a model trained on them or train from "
                             "scratch", file=str(st), field="--from")
        r_max = info.get("r_max")
        if (r_max is not None and any(st.parent.glob("*/*.h5"))
                and abs(float(r_max) - float(model.r_max)) > 1e-6):
            raise SetupError(f"the HDF5 shards hold neighbour lists for r_max {r_max} Å, the "
                             f"--from model's r_max is {float(model.r_max)} Å; merge again "
                             f"with r_max = {float(model.r_max)}", file=str(st),
                             field="--from")
    args = ["--foundation_model", str(path)]
    if replay is None:
        args += ["--multiheads_finetuning", "False"]
    else:
        if not Path(replay).exists():
            raise SetupError("no such file", file=str(replay), field="--replay")
        args += ["--multiheads_finetuning", "True", "--pt_train_file", str(replay)]
    return path, args


def _report(data: Path) -> dict:
    report = data / rd.MERGE_REPORT_FILE
    if not report.exists():
        raise SetupError("not a `tealign merge` output (no report.json)", file=str(data))
    return json.loads(report.read_text())


def _head_sources(data: Path) -> dict[str, Path] | None:
    """{head: its source's directory} of a ``--per-source`` merge (None for a single head)."""
    rep = _report(data)
    if not rep.get("per_source"):
        return None
    return {head: data / name for name, head in rep["heads"].items()
            if (data / name / "train").exists()}


def _head_file(run_dir: Path, head: str, split: str) -> Path:
    return run_dir / "heads" / f"{head}_{split}.extxyz"


def _heads(data: Path, run_dir: Path) -> dict | None:
    """mace-torch's ``--heads`` for a ``--per-source`` merge (None for a single head).

    Each head reads extxyz files of its train and valid splits (written into
    ``RUN_DIR/heads/`` by :func:`write_head_files`), not the HDF5 shards: mace-torch 0.3.16's
    HDF5 reader leaves every configuration's head at "Default", which is then trained as the
    last head (ACEsuit/mace pull request 761). Its extxyz reader sets the head from the
    head's name. Statistics and E0s still come from each head's ``statistics.json``.
    """
    sources = _head_sources(data)
    if sources is None:
        return None
    return {head: {"train_file": str(_head_file(run_dir, head, "train")),
                   "valid_file": str(_head_file(run_dir, head, "valid")),
                   "statistics_file": str(d / rd.STATISTICS_FILE)}
            for head, d in sources.items()}


def write_head_files(data: str | Path, run_dir: str | Path) -> None:
    """The extxyz train/valid files of every head of a ``--per-source`` merge (from each
    source's split directory, HDF5 or LMDB shards, streamed); kept when already there."""
    import os

    import numpy as np

    from tealign.io import iter_batches
    from tealign.io.extxyz import write_extxyz

    data, run_dir = Path(data), Path(run_dir)
    for head, d in (_head_sources(data) or {}).items():
        for split in ("train", "valid"):
            path = _head_file(run_dir, head, split)
            if path.exists():
                continue
            src = d / split
            if not src.exists():
                raise SetupError(f"head {head!r} has no {split} frames", file=str(src),
                                 field="split")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            # every frame of a split directory has that split; checked on the way
            def frames(src=src, split=split):
                for b in iter_batches(src):
                    if "split" in b.info and (np.asarray(b.info["split"]).astype(str)
                                              != split).any():
                        raise SetupError(f"a frame of {split}/ has another split",
                                         file=str(src), field="split")
                    yield b

            write_extxyz(tmp, frames())
            os.replace(tmp, path)


def plan(preset: str, data: str | Path, run_dir: str | Path, *,
         distributed: bool = False, nproc: int | None = None, device: str = "auto",
         overrides: dict | None = None, mace_args=None, from_model=None,
         replay=None) -> dict:
    """The command and what decided it: ``{"command": [...], "overridden": {key: [preset
    value, new value]}, "mace_args": {...}, "from": model file or None, "finetuning":
    None | "naive" | "multihead-replay"}``. See the module docstring for who wins."""
    data, run_dir = Path(data), Path(run_dir)
    if preset not in PRESETS:
        raise SetupError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}",
                         field="--preset")
    if replay is not None and from_model is None:
        raise SetupError("--replay needs --from (the model whose training data it replays)",
                         field="--replay")
    fine_tuning = from_model is not None
    extra = _check_mace_args(parse_mace_args(mace_args), fine_tuning)
    overrides = dict(overrides or {})
    for key in overrides.keys() & extra.keys():
        raise SetupError(f"--{key} is set twice: by tealign's {TEALIGN_OPTIONS.get(key, key)} "
                         "and in the mace_run_train options; give it once",
                         field=f"--{key}")
    cfg = dict(PRESETS[preset])
    ft_args: list[str] = []
    model_file = None
    if fine_tuning:
        cfg = {k: v for k, v in cfg.items() if k not in ARCHITECTURE}
        if "lr" not in extra:
            cfg["lr"] = float(cfg["lr"]) * FINETUNE_LR_FACTOR
        model_file, ft_args = _foundation(from_model, data, replay)
    overridden = {k: [cfg[k], v] for k, v in extra.items() if k in cfg and cfg[k] != v}
    cfg.update(overrides)
    cfg.update(extra)
    cmd = build_command(preset, data, run_dir, distributed=distributed, nproc=nproc,
                        device=device, _cfg=cfg, _extra=ft_args)
    return {"command": cmd, "overridden": overridden, "mace_args": extra,
            "from": str(model_file) if model_file else None,
            "finetuning": None if not fine_tuning else
            ("naive" if replay is None else "multihead-replay")}


def build_command(preset: str, data: str | Path, run_dir: str | Path, *,
                  distributed: bool = False, nproc: int | None = None, device: str = "auto",
                  overrides: dict | None = None, _cfg: dict | None = None,
                  _extra: list[str] | None = None) -> list[str]:
    """The full ``mace_run_train`` (or ``torchrun``) command for a merged directory
    (``overrides``: preset values replaced; :func:`plan` adds pass-through options and
    fine-tuning)."""
    data, run_dir = Path(data), Path(run_dir)
    heads = _heads(data, run_dir)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed and device != "cuda":
        raise SetupError("--distributed uses mace-torch's NCCL backend and needs CUDA GPUs; "
                         "this machine has none (train without --distributed)",
                         field="--distributed")
    args = ["--name", "model", "--work_dir", str(run_dir), "--device", device, *KEYS]
    if heads is None:
        for split in ("train", "valid"):
            if not (data / split).exists():
                raise SetupError(f"merged directory lacks {split}/", file=str(data))
        args += ["--train_file", str(data / "train"), "--valid_file", str(data / "valid"),
                 "--statistics_file", str(data / rd.STATISTICS_FILE)]
    else:
        first = next(iter(heads.values()))
        args += ["--train_file", first["train_file"], "--valid_file", first["valid_file"],
                 "--heads", repr(heads)]
    args += to_cli(_cfg) if _cfg is not None else preset_args(preset, **(overrides or {}))
    args += _extra or []
    if distributed:
        n = nproc or _gpu_count()
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={n}", "-m", "mace.cli.run_train", *args, "--distributed"]
    exe = Path(sys.executable).with_name("mace_run_train")
    return [str(exe) if exe.exists() else "mace_run_train", *args]


def _gpu_count() -> int:
    import torch

    return max(1, torch.cuda.device_count())


def train(preset: str, data: str | Path, run_dir: str | Path, *, distributed: bool = False,
          nproc: int | None = None, device: str = "auto",
          overrides: dict | None = None, mace_args=None, from_model=None,
          replay=None) -> dict:
    """Run training to completion; returns a summary (command, wall time, model path, and
    :func:`plan`'s ``overridden``, ``mace_args``, ``from``, ``finetuning``)."""
    run_dir = Path(run_dir)
    p = plan(preset, data, run_dir, distributed=distributed, nproc=nproc, device=device,
             overrides=overrides, mace_args=mace_args, from_model=from_model, replay=replay)
    cmd = p["command"]
    run_dir.mkdir(parents=True, exist_ok=True)
    write_head_files(data, run_dir)
    t0 = time.perf_counter()
    log = run_dir / rd.TRAIN_LOG_FILE
    with open(log, "a") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text()[-1500:]
        last = tail.splitlines()[-1] if tail else ""
        raise SetupError(f"mace_run_train failed (exit {proc.returncode}); last log line: "
                         f"{last}", file=str(log))
    model = run_dir / rd.MODEL_FILE
    stage_two = use_stage_two(run_dir, model)
    if not model.exists():
        cands = sorted(run_dir.glob("*.model"))
        if not cands:
            raise SetupError("training finished but wrote no .model", file=str(run_dir))
        shutil.copy(cands[0], model)
    summary = {"preset": preset, "data": str(data), "command": cmd, "wall_s": wall,
               "model": str(model), "stage_two": stage_two, "distributed": distributed,
               **{k: p[k] for k in ("overridden", "mace_args", "from", "finetuning")}}
    write_json(run_dir / rd.TRAIN_SUMMARY_FILE, summary)
    return summary


def use_stage_two(run_dir: Path, model: Path) -> bool:
    """Make the Stage Two model (mace-torch's ``--swa``: the last epochs with the energy
    weighted up, saved as ``model_stagetwo.model``) the run's model, as mace-torch's own
    documentation advises; the Stage One model stays beside it as ``model_stageone.model``.
    False (nothing moved) when the run had no Stage Two."""
    two = model.with_name(model.stem + "_stagetwo.model")
    if not two.exists():
        return False
    for suffix in ("", "_compiled"):
        one = model.with_name(f"{model.stem}{suffix}.model")
        two = model.with_name(f"{model.stem}_stagetwo{suffix}.model")
        if not two.exists():
            continue
        if one.exists():
            os.replace(one, model.with_name(f"{model.stem}_stageone{suffix}.model"))
        tmp = one.with_name(one.name + ".part")
        shutil.copyfile(two, tmp)
        os.replace(tmp, one)
    return True
