"""tealign's pipeline verbs as Python functions, one per command (docs/architecture.md §2).

Each verb does what its ``tealign`` command does, with the same checks, and returns a
:class:`Result`: ``to_json()`` is exactly the object ``tealign <verb> --json`` prints, and
``save(directory)`` writes it atomically under the file name of its kind
(:data:`tealign.rundir.RESULT_FILES`: ``fit.json``, ``bench_lattice.json``, ...). The
command line (:mod:`tealign.cli`) parses options, calls these and renders the result;
nothing else.

``progress``, where a verb takes it, is called with the number of frames (or items) done,
and where the verb knows it, the total as a second argument.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tealign import rundir as rd
from tealign import units
from tealign.errors import SetupError
from tealign.keys import REF, Keys

Progress = Callable[..., None] | None


class Result:
    """The outcome of one verb (``name``: its kind, a key of
    :data:`tealign.rundir.RESULT_FILES`): its ``--json`` object (``to_json()``; keys also read as
    attributes, ``res.frames_out``) plus, as attributes, the Python objects behind it
    (e.g. ``estimator``, ``rejects``, ``details``)."""

    def __init__(self, name: str, data: dict, **objects) -> None:
        self.name = name
        self._data = data
        self.__dict__.update(objects)

    def to_json(self) -> dict:
        """The ``--json`` object: strict JSON types (NaN and infinities become None)."""
        from tealign.io.outputs import strict_json

        return strict_json(self._data)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``to_json()`` atomically to ``directory`` under the file name of this kind
        of result (:func:`tealign.rundir.result_file`); returns the path."""
        from tealign.io.outputs import write_json

        path = Path(directory) / rd.result_file(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, self.to_json())
        return path

    def __getattr__(self, key: str):
        data = self.__dict__.get("_data", {})
        if key in data:
            return data[key]
        raise AttributeError(f"{type(self).__name__} '{self.__dict__.get('name')}' has no "
                             f"{key!r}")

    def __getitem__(self, key: str):
        return self._data[key]

    def __repr__(self) -> str:
        keys = ", ".join(list(self._data)[:6])
        return f"Result({self.name!r}: {keys}{', ...' if len(self._data) > 6 else ''})"


def check_output(output, inputs=(), kind: str = "file", rejects: bool = True) -> None:
    """Before any work: the output must not be an input; it must be absent, a regular file
    (``kind="file"``) or a directory tealign wrote (``kind="dir"``) — never a symbolic link,
    device, FIFO or socket; its name must leave room for the temporaries beside it; and the
    rejects file beside a file output must be absent or tealign's (docs/architecture.md
    §6.4: outputs never destroy what tealign did not write)."""
    from tealign.io.outputs import (
        check_name_room,
        check_not_input,
        check_rejects_path,
        check_replaceable,
    )

    check_not_input(output, [i for i in inputs if i is not None])
    target = Path(os.path.abspath(output))
    check_replaceable(target, shown=str(output), writing_dir=(kind == "dir"))
    check_name_room(target, shown=str(output))
    if rejects and kind == "file":
        check_rejects_path(target)


def _extxyz_name(output) -> None:
    """An extxyz output (align) named with another suffix is refused (``x.gz``/``x.traj``
    would hold plain extxyz text); names without a suffix are left to :func:`check_output`."""
    name = Path(output).name.lower()
    if Path(name).suffix and not name.endswith((".extxyz", ".xyz", ".extxyz.gz", ".xyz.gz")):
        raise SetupError("this writes extxyz: name the output .extxyz or .xyz "
                         "(.extxyz.gz/.xyz.gz for gzip)", file=str(output))


def _rejects(output, rejects) -> str | None:
    from tealign.io.outputs import write_rejects

    path = write_rejects(output, rejects)
    return str(path) if path else None


@contextlib.contextmanager
def _rejects_when_nothing_written(output):
    """An all-rejected run (:class:`~tealign.errors.NothingWritten`) still writes its
    rejects file beside the output, then goes on as the error (exit 1)."""
    from tealign.errors import NothingWritten

    try:
        yield
    except NothingWritten as exc:
        path = _rejects(output, exc.rejects)
        if path:
            exc.message += f" (see {path})"
            exc.args = (exc.line(),)
        raise


# ------------------------------------------------------------------------------- data
def info(data: str, energy_key: str | None = None, format: str | None = None,
         progress: Progress = None) -> Result:
    """Frames, elements, energies per atom, charges and a units check of a dataset."""
    from tealign.summary import summarize

    summary = summarize(data, energy_key=energy_key, fmt=format, progress=progress)
    return Result("info", summary.as_json(), summary=summary)


def convert(data: str, output: str | os.PathLike, to: str | None = None, *,
            format: str | None = None, keys: Keys = REF, e0: str | None = None,
            r_max: float = 4.5, strict: bool = False, progress: Progress = None) -> Result:
    """Convert a dataset to extxyz or MACE's sharded HDF5 (+ statistics.json with ``e0``)."""
    from tealign.io.convert import convert_file, convert_target, output_is_directory
    from tealign.methods import load_table

    target = convert_target(output, to)
    check_output(output, [data, e0], kind="dir" if output_is_directory(target) else "file")
    table = load_table(e0) if e0 else None
    with _rejects_when_nothing_written(output):
        counts = convert_file(data, output, target, fmt=format, keys=keys, table=table,
                              r_max=r_max, strict=strict, progress=progress)
    return Result("convert", {"frames_in": counts.frames_in, "frames_out": counts.frames_out,
                              "frames_rejected": len(counts.rejects),
                              "rejects_file": _rejects(output, counts.rejects),
                              "output": str(output)}, rejects=counts.rejects)


# ------------------------------------------------------------------------------- align
def fit(calibration: str, source_key: str, target_key: str, source_e0, target_e0,
        output: str | os.PathLike = "alignment.json", *, model: str = "scale",
        split: str | None = None, plot: str | os.PathLike | None = None,
        bootstrap: int = 1000, folds: int = 5, seed: int = 0,
        strict: bool = False, allow_method_mismatch: bool = False) -> Result:
    """Fit ICEA + AEC on a calibration set and write ``alignment.json``; ``plot`` names a
    directory for the parity plots. The result's ``estimator`` is the fitted
    :class:`~tealign.align.TotalEnergyAlignment`.

    Each table must be of the level its key's data record (:mod:`tealign.provenance`): a
    mismatch is a setup error unless ``allow_method_mismatch``; data recording no method
    get a warning."""
    from tealign.align import TotalEnergyAlignment
    from tealign.align.models import check_choice
    from tealign.align.record import fit_record
    from tealign.methods import load_table

    check_choice(model)
    inputs = [calibration, source_e0, target_e0]
    check_output(output, [i for i in inputs if isinstance(i, (str, os.PathLike))])
    if plot is not None:
        from tealign.io.outputs import check_not_input
        from tealign.report import check_plot_dir

        check_not_input(plot, [i for i in inputs if isinstance(i, (str, os.PathLike))],
                        field="--plot")
        check_plot_dir(plot)
    src = source_e0 if hasattr(source_e0, "energies") else load_table(source_e0)
    tgt = target_e0 if hasattr(target_e0, "energies") else load_table(target_e0)
    if isinstance(calibration, (str, os.PathLike)):
        from tealign import provenance

        first = provenance.peek(str(calibration))
        if first is not None:
            for table, role, key in ((src, "--source-e0", source_key),
                                     (tgt, "--target-e0", target_key)):
                provenance.check_table(table, role,
                                       provenance.data_level(first, key, str(calibration)),
                                       key, str(calibration), allow_method_mismatch)
    tea = TotalEnergyAlignment(src, tgt, model=model, n_bootstrap=bootstrap, cv_folds=folds,
                               random_state=seed, source_key=source_key,
                               target_key=target_key, split=split, strict=strict)
    tea.check_params()
    tea.fit(calibration)
    plots = []
    if plot is not None:  # the plots first: if they fail (full disk), no alignment is written
        from tealign.io.outputs import remove_inside
        from tealign.report import parity_plots

        made = not Path(plot).exists()
        p = tea.parity_
        try:
            plots = [str(x) for x in parity_plots(p["target"], p["icea"], p["tea"], plot,
                                                  tea.a_, src.name, tgt.name, tea.model_)]
        except BaseException:
            if made and Path(plot).is_dir() and not any(Path(plot).iterdir()):
                remove_inside(Path(plot).parent, plot)
            raise
    tea.save(output)
    sha = tea.sha256()
    record = fit_record(tea, str(output), sha, _rejects(output, tea.rejects_), plots)
    return Result("fit", record, estimator=tea, rejects=tea.rejects_)


def align(data: str, alignment, output: str | os.PathLike, keys: Keys = Keys(), *,
          remove_d3: str | None = None, source_name: str | None = None,
          inverse: bool = False, strict: bool = False, format: str | None = None,
          workers: int = 0, scheduler: str | None = None,
          progress: Progress = None, allow_realign: bool = False,
          allow_method_mismatch: bool = False, allow_charged: bool = False) -> Result:
    """Put a dataset on the target scale (or with ``inverse`` back on the source scale),
    streamed into an extxyz ``output``; ``alignment`` is an ``alignment.json`` path or a
    fitted :class:`~tealign.align.TotalEnergyAlignment`, or the name of a shipped alignment
    card (:mod:`tealign.cards`; its element coverage and D3 policy are enforced, and
    ``remove_d3="auto"`` means the card's functional). Frames aligned already (carrying
    ``alignment_sha256``) are a setup error unless ``allow_realign``. The data's recorded
    method must be the alignment's source level (:mod:`tealign.provenance`; a setup error
    unless ``allow_method_mismatch``), and data flagged as including D3(BJ) need
    ``remove_d3``. Charged frames are rejected unless ``allow_charged`` (the measured error
    of neutral-atom TEA on ions: :data:`tealign.provenance.CHARGED_CHECK`)."""
    from tealign import cards
    from tealign.align import TotalEnergyAlignment
    from tealign.align.pipeline import transform_file

    card = cards.is_card(alignment)
    path = alignment if isinstance(alignment, (str, os.PathLike)) and not card else None
    check_output(output, [data, path])
    _extxyz_name(output)
    if workers < 0:
        raise SetupError(f"--workers must be ≥ 0 (got {workers})", field="--workers")
    if card:
        tea = cards.alignment(alignment)
        remove_d3 = tea.resolve_d3(remove_d3)
    else:
        if remove_d3 == cards.CARD_D3:
            raise SetupError("a bare --remove-d3 takes its functional from an alignment card "
                             "(--alignment NAME); give the functional, e.g. --remove-d3 wb97m",
                             field="--remove-d3")
        tea = TotalEnergyAlignment.load(alignment) if path is not None else alignment
    if allow_charged and not inverse:
        import warnings

        from tealign.provenance import charged_error_note

        warnings.warn("--allow-charged: charged frames are aligned with neutral-atom "
                      f"references ({charged_error_note()})", stacklevel=2)
    if not inverse and isinstance(data, (str, os.PathLike)):
        from tealign import provenance

        first = provenance.peek(str(data), format)
        if first is not None:
            level = provenance.data_level(first, keys.energy, str(data))
            provenance.check_table(tea.source_table_, "the alignment's source table", level,
                                   keys.energy, str(data), allow_method_mismatch)
            provenance.check_d3(level, keys.energy, str(data), removed=bool(remove_d3))
    with _rejects_when_nothing_written(output):
        counts = transform_file(tea, data, output, keys, remove_d3=remove_d3,
                                source_name=source_name, inverse=inverse, strict=strict,
                                fmt=format, workers=workers, scheduler=scheduler,
                                progress=progress, allow_realign=allow_realign,
                                allow_charged=allow_charged)
    charged = sum(1 for r in counts.rejects if r.reason.startswith("charged structure"))
    return Result("align", {"frames_in": counts.frames_in, "frames_out": counts.frames_out,
                            "frames_rejected": len(counts.rejects),
                            "frames_rejected_charged": charged,
                            "rejects_file": _rejects(output, counts.rejects),
                            "output": str(output), "a": tea.a_, "inverse": inverse},
                  rejects=counts.rejects)


def merge(config, output: str | os.PathLike, *, per_source: bool = False,
          strict: bool = False, format: str | None = None, workers: int = 0,
          scheduler: str | None = None, extxyz: bool = True,
          progress: Progress = None, allow_method_mismatch: bool = False,
          allow_charged: bool = False) -> Result:
    """Merge the sources of a config onto the target scale into a MACE-ready training set
    (the result's ``report`` is ``OUTPUT/report.json``).

    ``config``: a TOML file's path, a dict of the TOML's schema (relative paths from the
    current directory) or a :class:`tealign.merge.MergeConfig`; parsed and validated once,
    before any work (:func:`tealign.merge.load_config`)."""
    from tealign.align.pipeline import default_workers
    from tealign.merge import DEFAULT_FORMAT, load_config, run_merge

    cfg = load_config(config)  # validated before any work
    inputs = [config] if isinstance(config, (str, os.PathLike)) else []
    for src in cfg.sources:
        inputs += [src.resolved_path, src.resolved_alignment, src.resolved_e0]
    inputs += cfg.e0 if isinstance(cfg.e0, list) else [cfg.e0]
    check_output(output, inputs, kind="dir")
    report = run_merge(cfg, output, per_source=per_source, strict=strict,
                       progress=progress, fmt=format or DEFAULT_FORMAT, extxyz=extxyz,
                       scheduler=scheduler, workers=workers or default_workers(),
                       allow_method_mismatch=allow_method_mismatch,
                       allow_charged=allow_charged)
    data = {k: report[k] for k in ("frames_in", "frames_out", "frames_rejected",
                                   "rejects_file", "sources")}
    data["output"] = str(output)
    return Result("merge", data, report=report)


# ------------------------------------------------------------------------------- train
def _overrides(epochs: int | None, seed: int | None) -> dict:
    return ({"max_num_epochs": epochs} if epochs else {}) | \
        ({"seed": seed} if seed is not None else {})


def train(preset: str | None, data: str | os.PathLike, output: str | os.PathLike, *,
          distributed: bool = False, nproc: int | None = None, device: str = "auto",
          epochs: int | None = None, seed: int | None = None,
          mace_args: Sequence[str] | dict | None = None,
          from_model: str | os.PathLike | None = None,
          replay: str | os.PathLike | None = None, dry_run: bool = False) -> Result:
    """Train a MACE model with a MACE-Osaka24 recipe (mace-torch trains); the model lands in
    ``OUTPUT/model.model``.

    ``mace_args``: any further ``mace_run_train`` options, as an argv list
    (``["--batch_size", "4"]``) or a dict (``{"batch_size": 4, "ema": False}``); they replace
    the preset's value of the same option; options tealign sets itself are refused
    (:mod:`tealign.train.launch` says who wins). ``from_model``: fine-tune this model file
    (or ``"tealign-mini"``) instead of training from scratch — naive fine-tuning, or with
    ``replay`` (an extxyz of the model's own training data, ``REF_*`` keys) mace-torch's
    multi-head replay fine-tuning; ``preset`` may then be None (the shipped model's card
    preset, else ``osaka24-small``'s training settings). ``dry_run``: only build the command
    (``to_json()`` is ``{"command": [...], ...}``)."""
    from tealign.train import plan
    from tealign.train import train as run_training

    if preset is None:
        if from_model is None:
            raise SetupError("give --preset (or --from MODEL to fine-tune)", field="--preset")
        preset = _finetune_preset(from_model)
    opts = dict(distributed=distributed, nproc=nproc, device=device,
                overrides=_overrides(epochs, seed), mace_args=mace_args,
                from_model=from_model, replay=replay)
    if dry_run:
        return Result("train", {"preset": preset,
                                **plan(preset, data, output, **opts)})
    return Result("train", run_training(preset, data, output, **opts))


def _finetune_preset(from_model) -> str:
    """The preset whose training settings a fine-tuning run without --preset uses."""
    from tealign.train.pretrained import NAMES, card

    return card(str(from_model)).get("preset", "osaka24-small") \
        if str(from_model) in NAMES else "osaka24-small"


def evaluate(model: str | os.PathLike, data: str, keys: Keys = REF, *,
             head: str | None = None, split: str | None = None, batch_size: int = 32,
             device: str = "cpu") -> Result:
    """Errors of a MACE model on a dataset, overall and per config_type."""
    from tealign.evaluate import evaluate as run_eval

    return Result("eval", run_eval(model, data, keys.energy, keys.forces, keys.stress,
                                   head=head, batch_size=batch_size, device=device,
                                   split=split))


# ------------------------------------------------------------------------------- bench
def _bench(name: str, res: dict, output, **objects) -> Result:
    """The result of benchmark ``name``: the ``--json`` keys its registry entry names
    (:data:`tealign.bench.benchmarks.BENCHMARKS`) and the path of its results.json."""
    from tealign.bench.benchmarks import get

    data = {k: res[k] for k in get(name).keys} | {
        "results": str(Path(output) / rd.RESULTS_FILE)}
    return Result(f"bench_{name}", data, details=res, benchmark=name, **objects)


def run_benchmark(name: str, calculator: str, output, *, threads: int | None = None,
                  progress: Progress = None, **options) -> Result:
    """Run benchmark ``name`` of the registry (:mod:`tealign.bench.benchmarks`) through its
    module's ``run(calculator, output_dir, progress=..., **options)``: what ``api.bench_NAME``
    is for a benchmark without a verb written out here. ``threads``: torch threads (the
    result's ``torch_threads``: (n, where from))."""
    import importlib

    from tealign.bench.benchmarks import get

    try:
        b = get(name)
    except KeyError as exc:
        raise SetupError(exc.args[0], field="benchmark") from None
    n_threads = _torch_threads(threads)
    run = importlib.import_module(f"tealign.bench.{b.module or b.name}").run
    res = run(calculator, _bench_dir(output), progress=progress, **options)
    return _bench(b.name, res, output, torch_threads=n_threads)


def __getattr__(name: str):
    """``bench_NAME`` of a registered benchmark without a verb of its own here:
    :func:`run_benchmark` for it; ``FIT_MODELS``, the ``model`` settings of :func:`fit` (the
    correction models' registry and ``auto``, imported when asked for)."""
    import functools

    if name == "FIT_MODELS":  # the registry as it is now
        from tealign.align.models import AUTO, REGISTRY

        return (*REGISTRY, AUTO)

    from tealign.bench.benchmarks import BENCHMARKS

    bench = name[len("bench_"):] if name.startswith("bench_") else None
    if bench in BENCHMARKS:
        verb = functools.partial(run_benchmark, bench)
        verb.__doc__ = f"{BENCHMARKS[bench].title} (:func:`run_benchmark` ``{bench!r}``)."
        return verb
    raise AttributeError(f"module 'tealign.api' has no attribute {name!r}")


def _bench_dir(output) -> Path:
    """A benchmark's output folder, checked before the work: absent or a directory (not a
    file, symbolic link, device, FIFO or socket); files are written into it atomically."""
    from tealign.io.outputs import check_replaceable

    target = Path(os.path.abspath(output))
    check_replaceable(target, shown=str(output), writing_dir=None)
    if target.exists() and not target.is_dir():
        raise SetupError("a benchmark writes a folder; this is an existing file", file=str(output),
                         field="--output")
    return Path(output)


def _torch_threads(threads: int | None) -> tuple[int, str]:
    """Set torch's intra-op threads for a benchmark: ``threads``, else $TEALIGN_THREADS,
    $OMP_NUM_THREADS, the cores this process may use; returns (threads, where from)."""
    from tealign.bench.runaway import torch_threads

    return torch_threads(threads)


def _out_of(progress: Progress, total: int) -> Progress:
    """``progress`` called with (done, total), for a benchmark that reports only done."""
    if progress is None:
        return None
    return lambda done, of=None: progress(done, total if of is None else of)


def bench_reactions(calculator: str, output, *, data=None, limit: int | None = None,
                    d3: str = "none", dtype: str | None = None, threads: int | None = None,
                    progress: Progress = None) -> Result:
    """Forward reaction barriers (RDB7) against CCSD(T)-F12 references (energies in eV and
    kcal/mol); ``threads``: torch threads (the result's ``torch_threads``: (n, where from))."""
    from tealign.bench import reactions, registry

    n_threads = _torch_threads(threads)
    path = registry.locate("reactions", data)
    res = reactions.run(calculator, path, _bench_dir(output), limit=limit, d3=d3, dtype=dtype,
                        progress=progress)
    return _bench("reactions", res, output, torch_threads=n_threads)


def bench_lattice(calculator: str, output, *, limit: int | None = None,
                  r_max: float | None = None, d3: str = "none", data=None,
                  threads: int | None = None, progress: Progress = None) -> Result:
    """Lattice constants (Å) of cubic crystals (cell relaxation) vs PBE and experiment;
    ``r_max`` in Å; ``threads`` as for :func:`bench_reactions`."""
    from tealign.bench import lattice

    n_threads = _torch_threads(threads)
    res = lattice.run(calculator, _bench_dir(output), limit=limit, d3=d3, r_max=r_max, data=data,
                      progress=progress)
    return _bench("lattice", res, output, torch_threads=n_threads)


def bench_eos(calculator: str, output, *, reference: str | None = None,
              reference_file=None, store=None, workers: int = 1, threads: int | None = None,
              progress: Progress = None, retry_failed: bool = False) -> Result:
    """Si E–V curve: a0 (Å), B0 (GPa) and RMSE (meV/atom) against a reference curve;
    ``progress`` is called with (points done, points of the grid); ``retry_failed``: run
    again the reference points the store holds as failed."""
    from tealign.bench import eos

    if retry_failed and not reference:
        raise SetupError("reruns the failed points of a --reference curve; give --reference "
                         "SPEC", field="--retry-failed")
    n_threads = _torch_threads(threads)
    res = eos.run(calculator, _bench_dir(output), reference=reference,
                  reference_file=reference_file, store=store, workers=workers,
                  progress=_out_of(progress, len(eos.GRID)), retry_failed=retry_failed)
    return _bench("eos", res, output, torch_threads=n_threads)


def bench_torsion(calculator: str, output, *, data=None, geometries=None,
                  limit: int | None = None, step: float = 15.0, max_steps: int = 500,
                  max_force_calls: int = 1_000_000, batched: bool | None = None,
                  d3: str = "none", threads: int | None = None,
                  progress: Progress = None) -> Result:
    """Relaxed biaryl torsion scans (``step`` in degrees) against OpenFF B3LYP-D3(BJ)
    profiles (MAEs in kcal/mol)."""
    from tealign.bench import registry, torsion

    n_threads = _torch_threads(threads)
    csv_path = registry.locate("biaryl-csv", data)
    sdf_path = registry.locate("biaryl-sdf", geometries)
    res = torsion.run(calculator, _bench_dir(output), csv_path, sdf_path, limit=limit, step=step,
                      d3=d3, steps=max_steps, progress=progress,
                      max_force_calls=max_force_calls, batched=batched)
    return _bench("torsion", res, output, torch_threads=n_threads)


def bench_water(calculator: str, output, *, ps: float = 2.0, d3: str | None = None,
                seed: int = 0, data=None, warn: Callable[[str, str], None] | None = None,
                threads: int | None = None, progress: Progress = None) -> Result:
    """Liquid water NVT at 300 K for ``ps`` picoseconds: O–O RDF (peak r in Å) vs X-ray
    experiment and TIP3P/TIP4P (``warn`` is told of each reference curve that is not found;
    ``progress`` is called with (MD steps done, MD steps of the run))."""
    from tealign.bench import water

    n_threads = _torch_threads(threads)
    refs = water.load_references(data, warn=warn)
    res = water.run(calculator, _bench_dir(output), ps=ps,
                    d3=d3 if d3 is not None else water.default_d3(calculator), seed=seed,
                    references=refs, progress=_out_of(progress, water.n_steps(ps)))
    # the --json key is rmse_vs_exp (the benchmark's results.json calls it rmsd_vs_exp)
    res = {**res, "rmse_vs_exp": res.get("rmsd_vs_exp")}
    return _bench("water", res, output, torch_threads=n_threads)


def bench_cross(*args, **kwargs) -> Result:
    """``bench_cross(calculator, output, *, alignment=None, data=None, definition=None,
    target_key="energy_pbe", source_key="energy_wb97m", aligned_domain="organic",
    d3="none", dtype=None, progress=None)``: cross-domain consistency against target-level
    truth (docs/architecture.md §8.3): of a model (``calculator``) or, with ``alignment``
    and ``calculator=None``, of the aligned labels; errors in eV. The result's
    ``kind_titles`` names each kind of item, in the benchmark's order.

    Same argument order as the other benchmarks (calculator, then output). The old form
    ``bench_cross(output, calculator=...)`` (one positional argument: the output) still works
    in this release, with a DeprecationWarning."""
    if len(args) == 1 and "output" not in kwargs:
        import warnings

        warnings.warn("bench_cross(output, calculator=...) is deprecated: call "
                      "bench_cross(calculator, output, ...) like the other benchmarks "
                      "(calculator=None with alignment=...)", DeprecationWarning,
                      stacklevel=2)
        return _bench_cross(kwargs.pop("calculator", None), args[0], **kwargs)
    return _bench_cross(*args, **kwargs)


def _bench_cross(calculator: str | None, output, *, alignment=None, data=None,
                 definition=None, target_key: str = "energy_pbe",
                 source_key: str = "energy_wb97m", aligned_domain: str = "organic",
                 d3: str = "none", dtype: str | None = None,
                 progress: Progress = None) -> Result:
    from tealign.bench import cross

    if alignment is not None and not Path(alignment).exists():
        raise SetupError("no such file", file=str(alignment), field="--alignment")
    res = cross.run(_bench_dir(output), data=data, definition=definition, calculator=calculator,
                    alignment=alignment, target_key=target_key, source_key=source_key,
                    aligned_domain=aligned_domain, d3=d3, dtype=dtype, progress=progress)
    return _bench("cross", res, output,
                  kind_titles={k: cross.KIND_TITLES[k] for k in cross.KINDS})


# ------------------------------------------------------------------------------- compute
def compute_atoms(method: str, elements: str | Sequence[str],
                  output: str | os.PathLike = "atoms.json", *, store=None, workers: int = 1,
                  scheduler: str | None = None, progress: Progress = None,
                  retry_failed: bool = False) -> Result:
    """Compute spin-polarised isolated atoms and write an isolated-atom table
    (``retry_failed``: run again the jobs the store holds as failed)."""
    from tealign.compute.atoms import atom_jobs, parse_elements, table_from_store
    from tealign.compute.runner import run_jobs
    from tealign.compute.spec import parse_spec
    from tealign.compute.store import JobStore, default_store

    check_output(output, [], rejects=False)
    spec = parse_spec(method)
    syms = parse_elements(elements if isinstance(elements, str) else ",".join(elements))
    jobs = atom_jobs(spec, syms)
    store_dir = store or default_store(output)
    with JobStore(store_dir) as st:
        stats = run_jobs(jobs, st, workers=workers, scheduler=scheduler, progress=progress,
                         retry_failed=retry_failed)
        table, failed = table_from_store(spec, jobs, st)
    if failed:
        raise SetupError("isolated atoms failed: " + "; ".join(failed) + f" (details in "
                         f"{store_dir}; after fixing the cause, rerun with --retry-failed)",
                         field="--method")
    table.save(output)
    return Result("compute_atoms", {"table": str(output), "label": spec.label, "units": "eV",
                            "energies": table.energies, **stats}, table=table, spec=spec,
                  n_jobs=len(jobs), energies_hartree={
                      s: e / units.HARTREE_TO_EV for s, e in table.energies.items()})


def compute_calib(molecules: str, methods: Sequence[str],
                  output: str | os.PathLike = "calib.extxyz", *, store=None,
                  workers: int = 1, scheduler: str | None = None, seed: int = 0,
                  forces: bool = True, strict: bool = False,
                  progress: Progress = None, retry_failed: bool = False) -> Result:
    """Compute a calibration set: every method on every molecule, plus isolated atoms
    (``retry_failed``: run again the jobs the store holds as failed)."""
    from tealign.compute.calib import compute_calibration, load_molecules
    from tealign.compute.spec import parse_spec
    from tealign.compute.store import default_store
    from tealign.io.outputs import rejects_path

    if len(methods) < 1:
        raise SetupError("give at least one --method", field="--method")
    specs = [parse_spec(m) for m in methods]
    check_output(output, [molecules])
    mols = load_molecules(molecules, seed)
    store_dir = store or default_store(output)
    res = compute_calibration(mols, specs, Path(output), Path(store_dir), workers=workers,
                              scheduler=scheduler, seed=seed, progress=progress,
                              source_name=molecules, forces=forces,
                              retry_failed=retry_failed, strict=strict)
    return Result("compute_calib", {
        "output": str(output), "frames": res.frames, "frames_rejected": len(res.rejects),
        "rejects_file": str(rejects_path(output)) if res.rejects else None,
        "tables": {k: str(v) for k, v in res.tables.items()},
        "failed_atoms": res.failed_atoms, "store": str(store_dir), **res.stats},
        rejects=res.rejects, n_molecules=len(mols), n_methods=len(specs))


# ------------------------------------------------------------------------------- tables
def e0_tables() -> Result:
    """The built-in isolated-atom tables."""
    from tealign.methods import builtin_tables, load_table

    rows = []
    for name in builtin_tables():
        t = load_table(name)
        rows.append({"name": name, "method": t.provenance.get("method", ""),
                     "code": t.provenance.get("code", ""), "elements": len(t.energies)})
    return Result("e0_tables", {"tables": rows})


def e0_table(name: str) -> Result:
    """One isolated-atom table (built-in name or JSON file), energies in eV."""
    from tealign.methods import load_table

    t = load_table(name)
    return Result("e0_table", t.to_json_dict(), table=t)


# ------------------------------------------------------------------------------- cards
def alignments() -> Result:
    """The shipped alignment cards, one summary row each (:func:`tealign.cards.summary`)."""
    from tealign import cards

    return Result("alignments", {"cards": [cards.summary(cards.load(n))
                                           for n in cards.names()]})


def alignment_card(name: str) -> Result:
    """One alignment card, everything in it (energies eV)."""
    from tealign import cards

    return Result("alignment_card", cards.load(name))


def export_card(name: str, format: str, output: str | os.PathLike) -> Result:
    """Write card ``name`` in a trainer's format (``mace-e0s``, ``fairchem``,
    ``shift-scale``; :func:`tealign.cards.export`)."""
    from tealign import cards

    if name != "all":
        cards.load(name)
    check_output(output, rejects=False)
    return Result("alignment_export", cards.export(name, format, output))


# ------------------------------------------------------------------------------- datasets
def datasets() -> Result:
    """The registered benchmark datasets and where each is found."""
    from tealign.bench import registry

    rows = []
    for ds in registry.REGISTRY.values():
        found = next((str(p) for p in registry.candidates(ds.name) if p.exists()), None)
        rows.append({"name": ds.name, "file": ds.file, "licence": ds.licence,
                     "source": ds.url, "citation": ds.citation, "found": found})
    return Result("datasets", {"datasets": rows})


def fetch(name: str, url: str | None = None) -> Result:
    """Download a dataset into the user cache, prepare it and check its sha256."""
    from tealign.bench import registry

    return Result("fetch", registry.fetch(name, url))


def verify() -> Result:
    """The sha256 check of every dataset that is found (``ok`` False for a bad one)."""
    from tealign.bench import registry

    rows = [registry.verify(n) for n in registry.REGISTRY]
    return Result("verify", {"datasets": rows},
                  ok=not any(r["file"] and not r["ok"] for r in rows))


# ------------------------------------------------------------------------------- report
def report(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Result:
    """One self-contained HTML report of a run directory (:mod:`tealign.rundir`)."""
    from tealign.report import build_report

    path = build_report(run_dir, output)
    return Result("report", {"report": str(path), "bytes": path.stat().st_size})


def demo(output: str | os.PathLike = "tealign-demo", datasets_dir=None, options=None,
         log: Callable[[str], None] = print) -> Result:
    """The whole pipeline on the bundled mini datasets, then the HTML report
    (:class:`tealign.demo.DemoOptions` gives the sizes). Rerunning resumes."""
    from tealign.demo import DemoOptions, run_steps, summary_rows
    from tealign.report import build_report

    state = run_steps(output, datasets_dir, options or DemoOptions(), log=log)
    path = build_report(output)
    rows = summary_rows(output)
    return Result("demo", {"run_dir": str(output), "report": str(path),
                           "wall_s": state["wall_s"],
                           "steps": {s["name"]: s["status"] for s in state["steps"]},
                           "summary": dict(rows)}, rows=rows)


# The top-level names of the same functions (``tealign.align_file`` is ``api.align``, ...):
# each public name works both as ``tealign.NAME`` and ``tealign.api.NAME``.
align_file = align
merge_sources = merge
train_model = train
evaluate_model = evaluate
write_report = report
run_demo = demo


# ------------------------------------------------------------------------------- compute (2)
def compute_export(molecules: str, methods: Sequence[str], output: str | os.PathLike = "jobs",
                   *, seed: int = 0, forces: bool = True, cluster=None) -> Result:
    """Write one directory per job of ``molecules`` × ``methods`` (external codes only:
    VASP, ORCA, Psi4) with a job-array script (:func:`tealign.compute.exchange.export_jobs`)."""
    from tealign.compute.exchange import export_jobs

    return Result("compute_export", export_jobs(molecules, list(methods), output, seed=seed,
                                                forces=forces, cluster=cluster))


def compute_import(jobs: str | os.PathLike, output: str | os.PathLike = "calib.extxyz", *,
                   store=None, progress: Progress = None) -> Result:
    """Read an export's outputs back into the job store (all or nothing) and write the
    calibration set (:func:`tealign.compute.exchange.import_calib`); SetupError listing every
    bad job in its ``problems``."""
    from tealign.compute.exchange import import_calib

    return Result("compute_import", import_calib(jobs, output, store=store, progress=progress))


def format_names(kind: str = "read") -> str:
    """The format names a help text lists, from the format registry
    (:data:`tealign.io.registry.REGISTRY`): ``read`` every reader, ``convert`` the targets of
    ``convert --to``, ``shards`` the shard directories ``merge --format`` writes (with what
    each is)."""
    from tealign.io.registry import REGISTRY

    if kind == "read":
        return ", ".join(REGISTRY)
    if kind == "convert":
        return " or ".join(n for n, f in REGISTRY.items() if f.convert_to)
    if kind == "shards":
        return " or ".join(
            f"{n} ({f.shard_suffix} shards" + "".join(f"; also {a}" for a in f.aliases) + ")"
            for n, f in REGISTRY.items() if f.shard_writer)
    raise ValueError(f"kind must be read, convert or shards, not {kind!r}")


def external_presets() -> str:
    """``code:PRESET`` of every preset of the external codes (the backend registry's
    ``external`` entries), for the help of ``compute export``."""
    from tealign.compute.external import EXTERNAL_CODES, module

    return ", ".join(f"{c}:{p}" for c in EXTERNAL_CODES for p in module(c).PRESETS)


def fit_model_help() -> str:
    """The ``model`` settings of :func:`fit`, each with what it does (from the correction models'
    registry, :data:`tealign.align.models.REGISTRY`)."""
    from tealign.align.models import help_text

    return help_text()


def method_label(method: str) -> str:
    """The label of a method SPEC (``[LABEL=]code:...``; :func:`tealign.compute.spec.parse_spec`
    checks it: SetupError on anything off)."""
    from tealign.compute.spec import parse_spec

    return parse_spec(method).label


def cluster_client(path: str | os.PathLike):
    """The Dask client of a cluster TOML file, as a context manager
    (:func:`tealign.compute.cluster.cluster_client`)."""
    from tealign.compute.cluster import cluster_client as client

    return client(path)


# ------------------------------------------------------------------------------- registries
# What the command line lists in its help and options, read from the registries.
def backend_titles() -> list[str]:
    """How help texts name the compute backends tealign runs itself, in registry order
    (:data:`tealign.compute.backends.BACKENDS`)."""
    from tealign.compute.backends import BACKENDS

    return [b.title for b in BACKENDS.values()]


def backend_extras() -> dict[str, str]:
    """Import name → the tealign extra that installs it, for every backend's packages."""
    from tealign.compute.backends import extras

    return extras()


def calculator_names() -> list[str]:
    """The ``--calculator`` names of the benchmarks besides a model file
    (:func:`tealign.bench.calculators.names`)."""
    from tealign.bench.calculators import names

    return names()


def resolve_calculator(value: str | None) -> str | None:
    """``--calculator``: a shipped model's name becomes its file path; anything else is
    returned as given (:func:`tealign.train.pretrained.resolve`; SetupError for a shipped
    model that is missing)."""
    from tealign.train.pretrained import resolve

    return resolve(value)


def benchmarks() -> dict:
    """The benchmark registry, name → entry (:data:`tealign.bench.benchmarks.BENCHMARKS`)."""
    from tealign.bench.benchmarks import BENCHMARKS

    return BENCHMARKS


def card_d3() -> str:
    """The D3 functional ``align --remove-d3`` removes when given without a value
    (:data:`tealign.cards.CARD_D3`)."""
    from tealign.cards import CARD_D3

    return CARD_D3


def demo_options(**options):
    """The sizes of a demo run (:class:`tealign.demo.DemoOptions`)."""
    from tealign.demo import DemoOptions

    return DemoOptions(**options)


def json_text(obj, **kwargs) -> str:
    """``obj`` as strict JSON text (NaN and infinities become null;
    :func:`tealign.io.outputs.dumps`)."""
    from tealign.io.outputs import dumps

    return dumps(obj, **kwargs)


#: The training log a run directory holds (:data:`tealign.rundir.TRAIN_LOG_FILE`).
TRAIN_LOG_FILE = rd.TRAIN_LOG_FILE
