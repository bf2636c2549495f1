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
    bench/<name>/                  results.json (the benchmark's) and bench_<bench>.json
                                   (its stdout; <name> is the benchmark, or the benchmark
                                   and a variant: cross_labels is a bench cross)
    report.html                    tealign report

Each kind of :class:`tealign.api.Result` saves under its own file name,
:data:`RESULT_FILES` (``Result.save(dir)`` writes ``dir/<that name>``); the benchmarks' kinds
come from the benchmark registry (:data:`tealign.bench.benchmarks.BENCHMARKS`).
"""

from __future__ import annotations

import os
from pathlib import Path

from tealign.bench.benchmarks import BENCHMARKS

#: The file each kind of api result saves under: one name a kind, no two alike, and none
#: the name of another file a command writes (the isolated-atom table ``compute atoms``
#: writes by default, results.json, report.json, statistics.json, demo.json).
RESULT_FILES = {
    "info": "info.json",
    "convert": "convert.json",
    "fit": "fit.json",
    "align": "align.json",
    "merge": "merge.json",
    "train": "train.json",
    "eval": "eval.json",
    **{b.kind: f"{b.kind}.json" for b in BENCHMARKS.values()},
    "compute_atoms": "compute_atoms.json",
    "compute_calib": "compute_calib.json",
    "compute_export": "compute_export.json",
    "compute_import": "compute_import.json",
    "e0_tables": "e0_tables.json",
    "e0_table": "e0_table.json",
    "alignments": "alignments.json",
    "alignment_card": "alignment_card.json",
    "alignment_export": "alignment_export.json",
    "datasets": "datasets.json",
    "fetch": "fetch.json",
    "verify": "verify.json",
    "report": "report_written.json",
    "demo": "demo_summary.json",
}


def result_file(kind: str) -> str:
    """The file name a result of ``kind`` saves under (:data:`RESULT_FILES`)."""
    try:
        return RESULT_FILES[kind]
    except KeyError:
        raise ValueError(f"no file name for result kind {kind!r}; the kinds are "
                         f"{', '.join(RESULT_FILES)}") from None


DEMO_STATE = "demo.json"
MERGE_CONFIG = "merge.toml"
REPORT = "report.html"

DATA_DIR = "data"
FIT_DIR = "fit"
FIT_JSON = f"{FIT_DIR}/{RESULT_FILES['fit']}"
ALIGNMENT = "fit/alignment.json"
PARITY_PNG = "fit/parity.png"
FIT_ICEA_JSON = "fit/fit_icea.json"
ICEA_ALIGNMENT = "fit/icea_alignment.json"

MERGED_DIR = "merged"
MERGE_JSON = f"{MERGED_DIR}/{RESULT_FILES['merge']}"

TRAIN_DIR = "train"
TRAIN_JSON = f"{TRAIN_DIR}/{RESULT_FILES['train']}"

EVAL_JSON = f"eval/{RESULT_FILES['eval']}"

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
    """``bench/<name>/bench_<bench>.json``, the benchmark's result (``<bench>`` is the part
    of ``name`` before any ``_variant``)."""
    return f"{bench_dir(name, mini)}/{result_file('bench_' + name.split('_')[0])}"


def path(run_dir: str | os.PathLike, name: str) -> Path:
    """``run_dir / name`` for one of this module's names."""
    return Path(run_dir) / name
