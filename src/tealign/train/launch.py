"""Launch mace-torch training on a merged directory (``tealign train``).

Single process: ``mace_run_train``; ``--distributed``: ``torchrun`` with mace-torch's
distributed mode (NCCL, so CUDA GPUs are required). A merged directory from ``tealign merge``
(its splits as MACE sharded HDF5 or ASE-LMDB shards: mace-torch picks its HDF5 or LMDB
dataset from the files it finds) trains one head; one from ``tealign merge --per-source``
trains one head per source (mace-torch's ``--heads``). The model lands at
``RUN_DIR/model.model`` (loadable by ``MACECalculator``); mace-torch's logs, checkpoints and
results stay beside it, and ``RUN_DIR/tealign_train.json`` records the exact command.
Rerunning resumes from the latest checkpoint (``--restart_latest``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tealign import rundir as rd
from tealign.errors import SetupError
from tealign.io.atomic import write_json
from tealign.keys import REF
from tealign.train.presets import preset_args

KEYS = [arg for kind, key in REF.items() for arg in (f"--{kind}_key", key)]


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


def build_command(preset: str, data: str | Path, run_dir: str | Path, *,
                  distributed: bool = False, nproc: int | None = None, device: str = "auto",
                  overrides: dict | None = None) -> list[str]:
    """The full ``mace_run_train`` (or ``torchrun``) command for a merged directory."""
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
    args += preset_args(preset, **(overrides or {}))
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
          overrides: dict | None = None) -> dict:
    """Run training to completion; returns a summary (command, wall time, model path)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = build_command(preset, data, run_dir, distributed=distributed, nproc=nproc,
                        device=device, overrides=overrides)
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
    if not model.exists():
        cands = sorted(run_dir.glob("*.model"))
        if not cands:
            raise SetupError("training finished but wrote no .model", file=str(run_dir))
        shutil.copy(cands[0], model)
    summary = {"preset": preset, "data": str(data), "command": cmd, "wall_s": wall,
               "model": str(model), "distributed": distributed}
    write_json(run_dir / rd.TRAIN_SUMMARY_FILE, summary)
    return summary
