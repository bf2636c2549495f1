"""The run directory: every file a tealign run directory holds, named in one place.

``tealign demo`` writes this layout, ``tealign report`` reads it, ``tealign train`` writes
the ``train/`` part and :mod:`tealign.api` saves its results into it (docs/architecture.md
§5.3). Names are relative to the run directory (POSIX separators, as the report's
``data-src`` attributes show them); :func:`path` joins one to a run directory.

    demo.json                      steps, wall times
    data/info_<dataset>.json       info of each bundled dataset
    merge.toml                     the merge config the demo writes
    fit/fit.json, fit/*.png        fit --model auto --plot; fit/alignment.json
    merged/                        merge output and merged/merge.json
    train/                         train output and train/train.json
    eval/eval.json                 eval on the test split
    bench/<name>/                  results.json (the benchmark's) and bench.json (its stdout)
    report.html                    tealign report
"""

from __future__ import annotations

import os
from pathlib import Path

DEMO_STATE = "demo.json"
MERGE_CONFIG = "merge.toml"
REPORT = "report.html"

DATA_DIR = "data"
FIT_DIR = "fit"
FIT_JSON = "fit/fit.json"
ALIGNMENT = "fit/alignment.json"
PARITY_PNG = "fit/parity.png"
FIT_ICEA_JSON = "fit/fit_icea.json"
ICEA_ALIGNMENT = "fit/icea_alignment.json"

MERGED_DIR = "merged"
MERGE_JSON = "merged/merge.json"

TRAIN_DIR = "train"
TRAIN_JSON = "train/train.json"

EVAL_JSON = "eval/eval.json"

BENCH_DIR = "bench"
BENCH_MINI_DIR = "bench_mini"  # the same benchmarks of the model that ships with tealign

# files inside the directory one command writes
MERGE_REPORT_FILE = "report.json"        # merge: the merge report
MERGED_EXTXYZ_FILE = "merged.extxyz"     # merge: every frame
STATISTICS_FILE = "statistics.json"      # merge: MACE's statistics of a shard directory
MODEL_FILE = "model.model"               # train: the trained model
TRAIN_LOG_FILE = "train.log"             # train: mace-torch's output
TRAIN_SUMMARY_FILE = "tealign_train.json"  # train: command, wall time, model path
CURVES_PNG_FILE = "curves.png"           # report: training curves beside the train output
RESULTS_FILE = "results.json"            # bench: the benchmark's own results
BENCH_JSON_FILE = "bench.json"           # bench: the command's --json stdout (demo)

MERGE_REPORT = f"{MERGED_DIR}/{MERGE_REPORT_FILE}"
MERGED_EXTXYZ = f"{MERGED_DIR}/{MERGED_EXTXYZ_FILE}"
MODEL = f"{TRAIN_DIR}/{MODEL_FILE}"
TRAIN_SUMMARY = f"{TRAIN_DIR}/{TRAIN_SUMMARY_FILE}"
TRAIN_CURVES_PNG = f"{TRAIN_DIR}/{CURVES_PNG_FILE}"


def info_json(dataset: str) -> str:
    """``data/info_<dataset>.json``: ``tealign info`` of one dataset."""
    return f"{DATA_DIR}/info_{dataset}.json"


def bench_dir(name: str, mini: bool = False) -> str:
    """``bench/<name>`` (``bench_mini/<name>`` for the shipped model's runs)."""
    return f"{BENCH_MINI_DIR if mini else BENCH_DIR}/{name}"


def bench_results(name: str, mini: bool = False) -> str:
    """``bench/<name>/results.json``."""
    return f"{bench_dir(name, mini)}/{RESULTS_FILE}"


def bench_json(name: str, mini: bool = False) -> str:
    """``bench/<name>/bench.json``."""
    return f"{bench_dir(name, mini)}/{BENCH_JSON_FILE}"


def path(run_dir: str | os.PathLike, name: str) -> Path:
    """``run_dir / name`` for one of this module's names."""
    return Path(run_dir) / name
