"""``tealign demo``: the whole pipeline on the bundled mini datasets, then the HTML report.

Every step is a real ``tealign`` command run as a child process with ``--json``; its JSON goes
to a file in the run directory and its exact command line is recorded in ``demo.json``, so the
report can show the command behind every number. Steps whose output is already there from an
earlier run with the same command are not run again (a crashed or interrupted demo resumes).

Run directory layout (``tealign report`` reads the same layout)::

    demo.json                     steps: command, wall time, status, output file
    data/info_<dataset>.json      `tealign info` of each bundled dataset
    fit/fit.json, fit/*.png       `tealign fit --model auto --plot` on calib-qm9
    fit/alignment.json
    merge.toml, merged/           `tealign merge` of organic-mini (aligned) + inorganic-mini
    train/model.model             `tealign train --preset tiny`
    eval/eval.json                `tealign eval` on the test split, per domain
    fit/icea_alignment.json       `tealign fit --model icea` (ICEA only, for comparison)
    bench/cross_labels*/          `tealign bench cross --alignment` (labels, no model: TEA, ICEA)
    bench/<name>/results.json     `tealign bench cross|lattice|eos|torsion|reactions|water`
    bench_mini/<name>/            the same benchmarks of the shipped model tealign-mini
    report.html                   `tealign report`

The demo needs no DFT code and no network: the reference energies were computed once by
``tealign compute`` (``datasets/*/regenerate.sh``) and ship with the repository.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tealign import rundir as rd
from tealign.deprecation import renamed
from tealign.errors import SetupError
from tealign.io.outputs import write_json

#: The files of the bundled datasets the demo reads, relative to the datasets directory.
DATASET_FILES = {
    "calib": "calib-qm9/calib-qm9.extxyz",
    "calib_e0_source": "calib-qm9/calib-qm9.atoms_wb97m.json",
    "calib_e0_target": "calib-qm9/calib-qm9.atoms_pbe.json",
    "organic": "organic-mini/organic-mini.extxyz",
    "inorganic": "inorganic-mini/inorganic-mini.extxyz",
    "inorganic_e0": "inorganic-mini/inorganic-mini.atoms_pbe.json",
    "si_ev": "inorganic-mini/si_ev.extxyz",
}
#: The shipped model the demo benchmarks beside its own (tealign.train.pretrained).
PRETRAINED = "tealign-mini"
#: Files the demo uses when they are there (a step that needs a missing one is skipped).
OPTIONAL_FILES = {"bridge": "bridge-mini/bridge-mini.extxyz"}
#: Energy key of each dataset summarised by `tealign info`.
INFO_KEYS = {"calib-qm9": ("calib", "energy_pbe"), "organic-mini": ("organic", "energy_wb97m"),
             "inorganic-mini": ("inorganic", "energy_pbe")}


def locate_datasets(path: str | Path | None = None) -> Path:
    """The directory holding the bundled mini datasets.

    Order: ``path``, ``$TEALIGN_DATASETS``, the ``datasets/`` folder of the source checkout
    this package was installed from (``pip install -e .``).
    """
    cands = []
    if path is not None:
        cands.append(Path(path))
    elif os.environ.get("TEALIGN_DATASETS"):
        cands.append(Path(os.environ["TEALIGN_DATASETS"]))
    else:
        cands.append(Path(__file__).resolve().parents[2] / "datasets")
    for c in cands:
        missing = [f for f in DATASET_FILES.values() if not (c / f).exists()]
        if not missing:
            return c.resolve()
        raise SetupError(
            f"bundled mini datasets incomplete ({len(missing)} files missing, e.g. {missing[0]})"
            "; they ship with the tealign repository (git clone), or regenerate them with "
            "datasets/run_all.sh, or pass --datasets DIR", file=str(c), field="--datasets")
    raise AssertionError("unreachable")


@dataclass
class Step:
    """One tealign command of the demo; its ``--json`` output lands in ``output``."""

    name: str
    title: str
    args: list[str]
    output: str
    required: bool = True
    note: str = ""
    env: dict = field(default_factory=dict)

    def command(self) -> str:
        return "tealign " + shlex.join(self.args)


@dataclass
class DemoOptions:
    quick: bool = False          # smoke-test sizes (CI): 1 epoch, a few benchmark items
    water: bool = False
    water_ps: float = 0.5
    reactions: int = 100
    torsions: int = 3
    torsion_max_steps: int = 100  # BFGS steps per scan point (the benchmark's default: 500)
    # force calls for all torsion scans together (40 per scan point at 3 molecules, 15°)
    torsion_max_force_calls: int = 6000
    epochs: int | None = None
    threads: int | None = None  # torch threads of every step (default: the available cores)


def _method(table_path: str) -> str:
    """Code and method of an isolated-atom table file ("gpaw pbe/pw800"), for step texts."""
    from tealign.methods import load_table

    try:
        return load_table(table_path).method_description
    except (OSError, ValueError, SetupError):
        return Path(table_path).name


def merge_config(ds: Path) -> str:
    """The merge TOML: organic-mini aligned with the fitted alignment, inorganic-mini as is."""
    f = {k: str(ds / v) for k, v in DATASET_FILES.items()}
    return (
        "# written by tealign demo: organic-mini (ωB97M/def2-SVP; energy_wb97m is the DFT energy\n"
        "# without D3(BJ), which tealign stores apart: nothing to subtract) aligned\n"
        f"# onto {_method(f['calib_e0_target'])} with the alignment fitted on calib-qm9; "
        "inorganic-mini is already\n"
        "# on that scale. One isolated-atom table for the target scale: the GPAW atoms of both\n"
        "# datasets (same atom settings), joined (merge checks they agree where they overlap).\n"
        f'[target]\ne0 = ["{f["calib_e0_target"]}", "{f["inorganic_e0"]}"]\nr_max = 4.5\n'
        'seed = 0\n\n'
        f'[[source]]\nname = "organic"\npath = "{f["organic"]}"\nenergy_key = "energy_wb97m"\n'
        f'forces_key = "forces_wb97m"\nalignment = "{rd.ALIGNMENT}"\n'
        'config_type = "organic"\n\n'
        f'[[source]]\nname = "inorganic"\npath = "{f["inorganic"]}"\nenergy_key = "energy_pbe"\n'
        'forces_key = "forces_pbe"\nstress_key = "stress_pbe"\nalignment = "target"\n'
        'config_type = "inorganic"\n')


def plan(ds: Path, opts: DemoOptions) -> list[Step]:
    """The demo's steps, in order (benchmarks whose data is not available are left out by
    :func:`run_steps`, which says how to get it)."""
    f = {k: str(ds / v) for k, v in {**DATASET_FILES, **OPTIONAL_FILES}.items()}
    model = rd.MODEL
    steps = [
        Step(f"info_{name}", f"dataset summary: {name}",
             ["info", f[key], "--energy-key", ekey, "--json"], rd.info_json(name))
        for name, (key, ekey) in INFO_KEYS.items()
    ]
    steps.append(Step(
        "fit", f"fit the alignment {_method(f['calib_e0_source'])} → "
               f"{_method(f['calib_e0_target'])} on calib-qm9",
        ["fit", f["calib"], "--source-key", "energy_wb97m", "--target-key", "energy_pbe",
         "--source-e0", f["calib_e0_source"], "--target-e0", f["calib_e0_target"],
         "--model", "auto", "--plot", rd.FIT_DIR, "-o", rd.ALIGNMENT, "--json"],
        rd.FIT_JSON))
    steps.append(Step("merge", "align organic-mini and merge it with inorganic-mini",
                      ["merge", rd.MERGE_CONFIG, "-o", rd.MERGED_DIR, "--json"], rd.MERGE_JSON))
    epochs = opts.epochs if opts.epochs is not None else (1 if opts.quick else None)
    train = ["train", "--preset", "tiny", "--data", rd.MERGED_DIR, "-o", rd.TRAIN_DIR,
             "--device", "cpu",
             "--json"]
    if epochs is not None:
        train[-1:-1] = ["--epochs", str(epochs)]
    steps.append(Step("train", "train a tiny MACE model (mace-torch)", train,
                      rd.TRAIN_JSON))
    steps.append(Step("eval", "evaluate it per domain on the test split",
                      ["eval", model, rd.MERGED_EXTXYZ, "--split", "test", "--json"],
                      rd.EVAL_JSON))
    # TEA's claim first: molecules and crystals on one surface (bridge-mini), for the
    # aligned labels alone (TEA, and ICEA only beside it) and for the model
    steps.append(Step("bench_cross_labels",
                      "cross-domain items from the TEA-aligned labels (no model)",
                      ["bench", "cross", "--alignment", rd.ALIGNMENT, "--data",
                       f["bridge"], "-o", rd.bench_dir("cross_labels"), "--json"],
                      rd.bench_json("cross_labels")))
    steps.append(Step(
        "fit_icea", "the ICEA-only alignment (isolated atoms, no AEC), for comparison",
        ["fit", f["calib"], "--source-key", "energy_wb97m", "--target-key", "energy_pbe",
         "--source-e0", f["calib_e0_source"], "--target-e0", f["calib_e0_target"],
         "--model", "icea", "-o", rd.ICEA_ALIGNMENT, "--json"], rd.FIT_ICEA_JSON))
    steps.append(Step("bench_cross_labels_icea",
                      "cross-domain items from the ICEA-only labels (no model)",
                      ["bench", "cross", "--alignment", rd.ICEA_ALIGNMENT, "--data",
                       f["bridge"], "-o", rd.bench_dir("cross_labels_icea"), "--json"],
                      rd.bench_json("cross_labels_icea")))
    steps.append(Step("bench_cross", "cross-domain items from the model",
                      ["bench", "cross", "--calculator", model, "--data", f["bridge"],
                       "-o", rd.bench_dir("cross"), "--json"], rd.bench_json("cross")))
    # crystals with an element the model lacks are skipped (and listed) by the benchmark
    steps.append(Step("bench_lattice", "benchmark: lattice constants of cubic crystals",
                      ["bench", "lattice", "--calculator", model, "-o", rd.bench_dir("lattice"),
                       "--json"], rd.bench_json("lattice")))
    steps.append(Step("bench_eos", "benchmark: Si E–V curve against the GPAW reference",
                      ["bench", "eos", "--calculator", model, "--reference-file", f["si_ev"],
                       "-o", rd.bench_dir("eos"), "--json"], rd.bench_json("eos")))
    steps.append(Step("bench_torsion", "benchmark: biaryl torsion scans",
                      ["bench", "torsion", "--calculator", model, "--limit",
                       str(1 if opts.quick else opts.torsions), "--max-steps",
                       str(opts.torsion_max_steps), "--max-force-calls",
                       str(opts.torsion_max_force_calls), "-o", rd.bench_dir("torsion"), "--json"],
                      rd.bench_json("torsion"), required=False))
    steps.append(Step("bench_reactions", "benchmark: RDB7 reaction barriers",
                      ["bench", "reactions", "--calculator", model, "--limit",
                       str(20 if opts.quick else opts.reactions), "-o", rd.bench_dir("reactions"),
                       "--json"], rd.bench_json("reactions"), required=False))
    if opts.water:
        steps.append(Step("bench_water", "benchmark: water O–O RDF (NVT)",
                          ["bench", "water", "--calculator", model, "--ps", str(opts.water_ps),
                           "-o", rd.bench_dir("water"), "--json"], rd.bench_json("water"),
                          required=False))
    # the same benchmarks of the model that ships with tealign (trained to a plateau on the
    # same data), beside the demo's minutes-old one, when this install has it
    from tealign.train.pretrained import model_path

    try:
        model_path(PRETRAINED)
    except SetupError:
        return steps
    mini = PRETRAINED

    def mini_dir(name: str) -> str:
        return rd.bench_dir(name, mini=True)

    steps.append(Step("mini_bench_cross", f"{mini}: cross-domain items",
                      ["bench", "cross", "--calculator", mini, "--data", f["bridge"],
                       "-o", mini_dir("cross"), "--json"], rd.bench_json("cross", mini=True),
                      required=False))
    steps.append(Step("mini_bench_lattice", f"{mini}: lattice constants",
                      ["bench", "lattice", "--calculator", mini, "-o", mini_dir("lattice"),
                       "--json"], rd.bench_json("lattice", mini=True), required=False))
    steps.append(Step("mini_bench_eos", f"{mini}: Si E–V curve",
                      ["bench", "eos", "--calculator", mini, "--reference-file", f["si_ev"],
                       "-o", mini_dir("eos"), "--json"], rd.bench_json("eos", mini=True),
                      required=False))
    steps.append(Step("mini_bench_reactions", f"{mini}: RDB7 reaction barriers",
                      ["bench", "reactions", "--calculator", mini, "--limit",
                       str(20 if opts.quick else opts.reactions), "-o", mini_dir("reactions"),
                       "--json"], rd.bench_json("reactions", mini=True), required=False))
    return steps


#: Registry datasets each optional benchmark needs.
BENCH_DATA = {"bench_torsion": ("biaryl-csv", "biaryl-sdf"), "bench_reactions": ("reactions",),
              "mini_bench_reactions": ("reactions",), "bench_water": ("water-exp",)}


def data_missing(step: Step) -> str | None:
    """None when the step's benchmark data is found (its ``--data`` file, the registry's
    datasets), else how to get it."""
    from tealign.bench import registry

    if step.args[0] == "bench" and "--data" in step.args:  # absolute dataset paths
        path = Path(step.args[step.args.index("--data") + 1])
        if not path.exists():
            return (f"{path} not found; it ships with the tealign repository, or compute it "
                    "with datasets/bridge-mini/regenerate.sh")

    for name in BENCH_DATA.get(step.name, ()):
        try:
            registry.locate(name)
        except SetupError as exc:
            return exc.line()
    return None


def demo_threads(threads: int | None = None) -> dict[str, str]:
    """Environment that gives every step's torch ``threads`` threads (default: the cores this
    process may use, not torch's count of every core of the machine): ``TEALIGN_THREADS`` for
    the benchmarks, ``OMP_NUM_THREADS`` (unless set) for training and evaluation."""
    from tealign.bench.runaway import available_cores

    n = threads or int(os.environ.get("TEALIGN_THREADS") or 0) or available_cores()
    env = {"TEALIGN_THREADS": str(n)}
    if not os.environ.get("OMP_NUM_THREADS"):
        env["OMP_NUM_THREADS"] = str(n)
    return env


def _load_state(path: Path) -> dict:
    if path.exists():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}
    return {}


def run_steps(run_dir: str | Path, datasets: str | Path | None = None,
              opts: DemoOptions | None = None, log=print) -> dict:
    """Run every step (resuming finished ones), write ``demo.json``; returns it (the demo's
    pipeline without the report: :func:`tealign.api.demo` is ``tealign.run_demo``)."""
    opts = opts or DemoOptions()
    ds = locate_datasets(datasets)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / rd.MERGE_CONFIG).write_text(merge_config(ds))
    state_path = run_dir / rd.DEMO_STATE
    old = {s["name"]: s for s in _load_state(state_path).get("steps", [])}
    state = {"tealign_demo": 1, "datasets": str(ds), "run_dir": str(run_dir.resolve()),
             "quick": opts.quick, "python": sys.executable, "steps": []}
    steps = plan(ds, opts)
    threads_env = demo_threads(opts.threads)
    state["torch_threads"] = int(threads_env["TEALIGN_THREADS"])
    log(f"torch threads per step: {threads_env['TEALIGN_THREADS']} (--threads to change)")
    log(f"each step runs in the run directory; to rerun one by hand: "
        f"cd {shlex.quote(str(run_dir))}")
    t_start = time.perf_counter()
    for k, step in enumerate(steps, 1):
        rec = {"name": step.name, "title": step.title, "command": step.command(),
               "output": step.output, "required": step.required}
        prev = old.get(step.name)
        out = run_dir / step.output
        if prev and prev.get("status") == "done" and prev.get("command") == rec["command"] \
                and out.exists():
            rec.update(status="done", wall_s=prev["wall_s"], resumed=True)
            log(f"[{k}/{len(steps)}] {step.title}: done earlier ({prev['wall_s']:.0f} s)")
            state["steps"].append(rec)
            continue
        missing = data_missing(step)
        if missing:
            rec.update(status="skipped", reason=missing, wall_s=0.0)
            log(f"[{k}/{len(steps)}] {step.title}: skipped ({missing})")
            state["steps"].append(rec)
            write_json(state_path, state)
            continue
        log(f"[{k}/{len(steps)}] {step.title} …\n    $ {rec['command']}")
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tealign", *step.args], cwd=run_dir,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, **threads_env, **step.env})
        rec["wall_s"] = time.perf_counter() - t0
        if proc.returncode != 0:
            rec.update(status="failed", exit_code=proc.returncode)
            state["steps"].append(rec)
            write_json(state_path, state)
            if step.required:
                raise SetupError(f"demo step '{step.name}' failed (exit {proc.returncode}); "
                                 f"its message is above; rerun `tealign demo` to resume",
                                 file=str(run_dir), field=step.name)
            log(f"    failed (exit {proc.returncode}); going on")
            continue
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise SetupError(f"demo step '{step.name}' printed no JSON ({exc})",
                             file=str(run_dir), field=step.name) from None
        write_json(out, result)
        rec["status"] = "done"
        state["steps"].append(rec)
        write_json(state_path, state)
        log(f"    {rec['wall_s']:.1f} s")
    state["wall_s"] = time.perf_counter() - t_start
    state["wall_s_including_resumed"] = sum(s.get("wall_s", 0.0) for s in state["steps"])
    write_json(state_path, state)
    return state


def summary_rows(run_dir: str | Path) -> list[tuple[str, str]]:
    """(what, value) pairs for the closing table of the demo."""
    run_dir = Path(run_dir)

    def load(rel):
        p = run_dir / rel
        return json.loads(p.read_text()) if p.exists() else None

    rows = []
    fit = load(rd.FIT_JSON)
    if fit:
        rows.append(("alignment a (95 % CI)",
                     f"{fit['a']:.5f} ({fit['a_ci95'][0]:.5f}–{fit['a_ci95'][1]:.5f}), "
                     f"model {fit['model']}"))
        rows.append(("calib RMSE ICEA → TEA",
                     f"{fit['rmse_icea_eV']:.3f} → {fit['rmse_tea_eV']:.3f} eV"))
    ev = load(rd.EVAL_JSON)
    if ev:
        for dom, m in ev["by_config_type"].items():
            rows.append((f"test {dom}: E / F MAE",
                         f"{m['energy_mae_meV_per_atom']:.1f} meV/atom, "
                         f"{m['forces_mae_meV_per_A']:.0f} meV/Å (n={m['n']})"))
    lat = load(rd.bench_results("lattice"))
    if lat and lat.get("mae_A") is not None:
        rows.append(("lattice MAE vs PBE", f"{lat['mae_A']:.3f} Å (n={lat['n']})"))
    eos = load(rd.bench_results("eos"))
    if eos:
        rows.append(("Si a0 (model / GPAW)",
                     f"{eos['a0_A']:.3f} / {eos.get('reference_a0_A', float('nan')):.3f} Å"))
    tor = load(rd.bench_results("torsion"))
    if tor:
        rows.append(("torsion barrier MAE", f"{tor['barrier_mae_kcal_mol']:.2f} kcal/mol "
                     f"(n={tor['n']})"))
    rxn = load(rd.bench_results("reactions"))
    if rxn:
        rows.append(("reaction barrier MAE", f"{rxn['mae_kcal_mol']:.1f} kcal/mol "
                     f"(n={rxn['n']})"))
    wat = load(rd.bench_results("water"))
    if wat:
        rows.append(("water O–O peak", f"{wat['peak_r_A']:.2f} Å, g = {wat['peak_g']:.2f}"))
    return rows


#: ``run_demo``: the former name of :func:`run_steps` (deprecated: ``tealign.run_demo`` is
#: :func:`tealign.api.demo`, which also writes the report).
__getattr__ = renamed(__name__, {"run_demo": "run_steps"})
