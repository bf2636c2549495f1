"""Merge N sources onto one target scale into a MACE-ready training set (``tealign merge``).

A TOML file lists the target's isolated-atom table and the sources::

    [target]
    e0 = "calib.atoms_pbe.json"     # the target scale's isolated atoms = MACE's E0s (or a
                                    # list of tables computed at the same settings: their union)
    r_max = 4.5                     # Å, for statistics.json
    seed = 0                        # for splits made here

    [[source]]
    name = "inorganic"
    path = "inorganic-mini.extxyz"
    energy_key = "energy_pbe"
    forces_key = "forces_pbe"
    stress_key = "stress_pbe"
    alignment = "target"            # already on the target scale
    config_type = "inorganic"

    [[source]]
    name = "organic"
    path = "organic-mini.extxyz"
    energy_key = "energy_wb97m"
    forces_key = "forces_wb97m"
    alignment = "alignment.json"    # from `tealign fit`
    # no D3 option: tealign's energy_<label> is already the DFT energy without D3(BJ)
    weights = { energy = 1.0, forces = 1.0 }

Dispersion (D3(BJ) is removed at most once; docs/architecture.md §1.2):

- tealign's own compute output (``energy_<label>`` beside ``d3_energy_<label>``, flagged
  ``d3_in_energy_<label> = F``) is dispersion-free already: use neither option. merge refuses
  either on such a key.
- totals that include D3 with the D3 part stored beside them (``energy_<label>`` + ``d3_energy_
  <label>``, both from elsewhere): ``d3_keys = true`` subtracts the stored part.
- totals that include D3 with nothing stored (SPICE ``dft_total_energy``, OFF23):
  ``remove_d3 = "wb97m"`` computes D3(BJ) with dftd3 and subtracts it.

Per source: ``reader`` (format), ``remove_d3`` (functional: compute and subtract D3(BJ)),
``head`` (default: the name), ``weights`` (MACE per-config property weights), ``split_key``,
and, with ``--per-source`` only, ``e0`` (that head's own isolated-atom table: a multi-head
model whose heads keep their sources' own scales).
Molecules (non-periodic frames) get zero stress and virial weight.

Output directory: ``train/``, ``valid/``, ``test/`` shard directories (``--format h5``: MACE
sharded HDF5 with ``*.meta.jsonl`` sidecars; ``--format lmdb``: ASE-LMDB ``.aselmdb`` shards,
metadata inside each row; both train with mace-torch 0.3.16), ``statistics.json``,
``merged.extxyz`` (docs/architecture.md §4.3 keys; skipped with ``--no-extxyz``),
``report.json`` (every input frame counted, written or rejected with its reason) and
``merged.extxyz.rejects.jsonl``.
With ``per_source`` the same layout is written under one sub-directory per source (for MACE
multi-head training).

Streaming: each source is read once (twice when it carries a ``split_key`` column: a first
pass checks that every frame has one), batch by batch; frames go to per-split shard writers
run by ``--workers`` processes or a Dask ``--scheduler``, so peak memory is a few batches and
shards whatever the number of frames. Splits without a ``split_key`` are drawn per
``mol_id``, else per ``mp_id`` (an MPtrj material's frames stay together), else per frame.
``statistics.json`` is accumulated on the way over every training frame (``mean``: E − ΣE0
per atom; ``std``: RMS force component, as mace-torch's ``compute_statistics``), except
``avg_num_neighbors``, counted with mace-torch's neighbour list on at most ~2,000 training
frames spread evenly over the split.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from tealign import rundir as rd
from tealign.align import TotalEnergyAlignment
from tealign.errors import FrameError, NothingWritten, SetupError
from tealign.io import iter_batches
from tealign.io.atomic import (
    atomic_path,
    check_safe_name,
    inside,
    rejects_path,
    remove_inside,
    write_json,
)
from tealign.io.extxyz import format_batch
from tealign.io.frames import FrameBatch
from tealign.io.shards import FORMATS, SHARD_SIZE, Executor, ShardWriter
from tealign.io.splits import assign_splits
from tealign.keys import ORIG, REF, Keys
from tealign.methods import IsolatedAtomTable, load_table, union_tables

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

SPLITS = ("train", "valid", "test")
PROPS = ("energy", "forces", "stress", "virials")
#: Shard format of ``tealign merge`` unless ``--format`` says otherwise. Both train with
#: mace-torch 0.3.16 (tests/test_scale_io.py checks what MACE sees); LMDB is written 4–6×
#: faster than MACE's HDF5 (benchmarks/results/scale.json, 10⁵ frames).
DEFAULT_FORMAT = "lmdb"


@dataclass
class SourceConfig:
    name: str
    path: str
    energy_key: str
    forces_key: str | None = "forces"
    stress_key: str | None = "stress"
    virials_key: str | None = "virials"
    alignment: str = "target"
    reader: str | None = None
    remove_d3: str | None = None
    d3_keys: bool = False
    config_type: str | None = None
    head: str | None = None
    weights: dict = field(default_factory=dict)
    split_key: str = "split"
    e0: str | None = None  # this head's own isolated-atom table (only with --per-source)
    #: use a table whose level differs from the data's recorded method (tealign.provenance)
    allow_method_mismatch: bool = False
    #: keep charged frames (rejected otherwise; tealign.provenance.CHARGED_CHECK)
    allow_charged: bool = False

    @property
    def keys(self) -> Keys:
        """The source's four key names as one :class:`~tealign.keys.Keys`."""
        return Keys(self.energy_key, self.forces_key, self.stress_key, self.virials_key)


@dataclass
class MergeConfig:
    e0: str | list[str]
    sources: list[SourceConfig]
    r_max: float = 4.5
    seed: int = 0
    fractions: dict = field(default_factory=lambda: {"train": 0.8, "valid": 0.1, "test": 0.1})
    base: Path = Path(".")
    #: which of [target] ``fractions`` / ``seed`` the TOML set (a source's split column
    #: overrides them: a warning says so)
    split_settings: list = field(default_factory=list)


def load_config(path: str | Path) -> MergeConfig:
    """Parse and validate the TOML; relative paths are relative to the TOML's folder."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as exc:
        raise SetupError(f"cannot read merge config: {exc.strerror}", file=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"not valid TOML: {exc}", file=str(p)) from None
    target = doc.get("target", {})
    unknown_top = set(doc) - {"target", "source"}
    if unknown_top:
        raise SetupError(f"unknown tables or keys {sorted(unknown_top)}; a merge config has "
                         "[target] and [[source]]", file=str(p), field=sorted(unknown_top)[0])
    if not isinstance(target, dict):
        raise SetupError("[target] must be a table", file=str(p), field="target")
    unknown_target = set(target) - {"e0", "r_max", "seed", "fractions"}
    if unknown_target:
        first = sorted(unknown_target)[0]
        raise SetupError(f"unknown keys {sorted(unknown_target)} in [target] (known: e0, "
                         "r_max, seed, fractions)", file=str(p), field=f"target.{first}")
    if "e0" not in target:
        raise SetupError("[target] needs e0 (the target scale's isolated-atom table)",
                         file=str(p), field="target.e0")
    e0_ok = isinstance(target["e0"], str) or (
        isinstance(target["e0"], list) and target["e0"]
        and all(isinstance(e, str) for e in target["e0"]))
    if not e0_ok:
        raise SetupError("e0 must be a table name or file, or a list of them", file=str(p),
                         field="target.e0")
    r_max = target.get("r_max", 4.5)
    if isinstance(r_max, bool) or not isinstance(r_max, (int, float)) \
            or not math.isfinite(r_max) or r_max <= 0:
        raise SetupError(f"r_max must be a number of Å > 0, not {r_max!r}", file=str(p),
                         field="target.r_max")
    seed = target.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SetupError(f"seed must be an integer, not {seed!r}", file=str(p),
                         field="target.seed")
    fractions = target.get("fractions", {"train": 0.8, "valid": 0.1, "test": 0.1})
    _check_fractions(fractions, str(p))
    sources = []
    known = set(SourceConfig.__dataclass_fields__)
    types = {"weights": dict, "d3_keys": bool, "allow_method_mismatch": bool,
             "allow_charged": bool}
    src_list = doc.get("source", [])
    if not isinstance(src_list, list):
        raise SetupError("sources are [[source]] tables", file=str(p), field="source")
    for i, src in enumerate(src_list):
        unknown = set(src) - known
        if unknown:
            raise SetupError(f"unknown keys {sorted(unknown)}", file=str(p),
                             field=f"source[{i}]")
        for req in ("name", "path", "energy_key"):
            if req not in src:
                raise SetupError(f"source needs '{req}'", file=str(p),
                                 field=f"source[{i}].{req}")
        for key, value in src.items():
            want = types.get(key, str)
            if not isinstance(value, want) or (want is str and not value):
                what = "a non-empty string" if want is str else want.__name__
                raise SetupError(f"must be {what}, not {value!r}", file=str(p),
                                 field=f"source[{i}].{key}")
        for prop, w in src.get("weights", {}).items():
            if prop not in ("energy", "forces", "stress", "virials") or isinstance(w, bool) \
                    or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise SetupError(f"weights are energy/forces/stress/virials = number ≥ 0, "
                                 f"not {prop} = {w!r}", file=str(p),
                                 field=f"source[{i}].weights.{prop}")
        for key in ("name", "head"):
            if key in src:
                check_safe_name(src[key], file=str(p), field=f"source[{i}].{key}")
        sources.append(SourceConfig(**src))
    if not sources:
        raise SetupError("no [[source]] entries", file=str(p), field="source")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise SetupError(f"source names must differ: {names}", file=str(p), field="source")
    base = p.parent
    _check_no_twice(sources, base, str(p))
    e0 = target["e0"]
    if isinstance(e0, list):
        e0 = [str(base / e) if (base / e).exists() else e for e in e0]
    elif (base / e0).exists():
        e0 = str(base / e0)
    return MergeConfig(e0=e0, sources=sources, r_max=float(r_max), seed=seed,
                       fractions=dict(fractions), base=base,
                       split_settings=[k for k in ("fractions", "seed") if k in target])


def _check_no_twice(sources: list[SourceConfig], base: Path, file: str) -> None:
    """The same data (same file after resolving links, or the same dataset spec) with the
    same energy key under two source names would be merged twice: a setup error."""
    seen: dict[tuple[str, str], int] = {}
    for i, src in enumerate(sources):
        cand = base / src.path
        if cand.is_file():  # one file under two names: links, and hard links (one inode)
            st = cand.stat()
            where = f"inode:{st.st_dev}:{st.st_ino}"
        else:
            where = os.path.realpath(cand) if cand.exists() else src.path
        key = (where, src.energy_key)
        if key in seen:
            first = sources[seen[key]]
            raise SetupError(f"sources {first.name!r} and {src.name!r} are the same data "
                             f"({first.path} and {src.path}, energy key {src.energy_key!r}): "
                             "its frames would be merged twice; list it once", file=file,
                             field=f"source[{i}].path")
        seen[key] = i


def _check_fractions(fractions, file: str) -> None:
    """Split fractions: train/valid/test (others unknown), each ≥ 0, summing to 1."""
    if not isinstance(fractions, dict) or not fractions:
        raise SetupError("fractions must be a table such as { train = 0.8, valid = 0.1, "
                         "test = 0.1 }", file=file, field="target.fractions")
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise SetupError(f"fractions name unknown splits {sorted(unknown)}; use train, valid, "
                         "test", file=file, field="target.fractions")
    for k, v in fractions.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0 <= v <= 1:
            raise SetupError(f"fractions.{k} must be a number in [0, 1], not {v!r}", file=file,
                             field="target.fractions")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-9:
        raise SetupError(f"fractions sum to {total:g}, not 1", file=file,
                         field="target.fractions")
    if fractions.get("train", 0) <= 0:
        raise SetupError("fractions.train must be > 0 (a training set is needed)", file=file,
                         field="target.fractions")


def _resolve(cfg: MergeConfig, rel: str) -> str:
    """A path of the config, relative to the config's folder (else as given, if it exists
    so); a dataset spec such as ``qm9`` stays what it is unless a file has its name."""
    from tealign.io import is_dataset_spec

    cand = cfg.base / rel
    if cand.exists():
        return str(cand)
    return rel if Path(rel).exists() or is_dataset_spec(rel) else str(cand)


@dataclass
class SourceReport:
    """One source's accounting, filled while its frames stream through."""

    name: str
    frames_in: int = 0
    frames_out: int = 0
    by_split: dict = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    n_rejected: int = 0
    reasons: dict = field(default_factory=dict)
    log: _RejectLog | None = None
    strict: bool = False

    def reject(self, errors: list[FrameError]) -> None:
        """Count frame errors and write them to the rejects file (not kept in memory);
        ``strict`` makes the first one fatal."""
        if errors and self.strict:
            raise errors[0].as_setup_error()
        for r in errors:
            key = f"{r.field}: {r.reason}"
            self.reasons[key] = self.reasons.get(key, 0) + 1
        self.n_rejected += len(errors)
        if self.log is not None:
            self.log.write(errors)


class _RejectLog:
    """``merged.extxyz.rejects.jsonl`` written as rejects arrive (created on the first)."""

    def __init__(self, path: Path):
        self.path, self.fh, self.n = path, None, 0

    def write(self, errors: list[FrameError]) -> None:
        if not errors:
            return
        if self.fh is None:
            self.fh = open(self.path, "w")  # noqa: SIM115 (closed in close())
        for r in errors:
            self.fh.write(json.dumps({"file": r.file, "frame": r.frame, "field": r.field,
                                      "reason": r.reason}) + "\n")
        self.n += len(errors)

    def close(self) -> Path | None:
        if self.fh is not None:
            self.fh.close()
        return self.path if self.n else None


def _to_reference(batch: FrameBatch, src: SourceConfig) -> FrameBatch:
    """A source already on the target scale: copy its values to REF_* and orig_*."""
    out = batch.copy()
    keep = out.has(src.energy_key)
    for i in np.flatnonzero(~keep):
        out.rejects.append(FrameError(src.path, int(out.index[i]), src.energy_key,
                                      "missing energy"))
    out = out.select(keep)
    for prop, key in src.keys.items():
        store = out.arrays if prop == "forces" else out.info
        ref, orig = getattr(REF, prop), getattr(ORIG, prop)
        if key and key in store:
            store[ref] = np.asarray(store[key], dtype=float)
            store[orig] = np.asarray(store[key], dtype=float).copy()
            if key in out.missing:
                out.missing[ref] = out.missing[key]
                out.missing[orig] = out.missing[key]
            if key not in (ref, orig):
                store.pop(key)
                out.missing.pop(key, None)
    return out


def _subtract_stored_d3(batch: FrameBatch, src: SourceConfig) -> FrameBatch:
    """Subtract d3_energy_<label>/d3_forces_<label> stored beside energy_<label>.

    Only for files whose ``energy_<label>`` INCLUDES D3 and that store the D3 part beside it.
    tealign's own compute output marks its keys dispersion-free (``d3_in_energy_<label> = F``):
    merge refuses to subtract from those (SetupError naming the key).
    """
    from tealign.dispersion import check_d3_removable

    check_d3_removable(batch, src.energy_key, file=src.path)
    label = src.energy_key.removeprefix("energy_")
    out = batch.copy()
    ek, fk = f"d3_energy_{label}", f"d3_forces_{label}"
    if ek not in out.info:
        raise SetupError(f"d3_keys = true but no frame has {ek}", file=src.path, field=ek)
    out.info[src.energy_key] = np.asarray(out.info[src.energy_key]) - out.info[ek]
    if src.forces_key and src.forces_key in out.arrays and fk in out.arrays:
        out.arrays[src.forces_key] = out.arrays[src.forces_key] - out.arrays[fk]
    return out


def _group_ids(batch: FrameBatch, src: SourceConfig) -> np.ndarray:
    """What a frame's split is drawn from: ``mol_id``, else ``mp_id`` (an MPtrj material's
    relaxation frames stay together), else the frame itself."""
    ids = np.array([f"{src.name}#{i}" for i in batch.index], dtype=object)
    for key in ("mp_id", "mol_id"):  # mol_id wins where both are present
        if key in batch.info:
            has = batch.has(key)
            ids[has] = np.asarray(batch.info[key], dtype=object)[has]
    return ids


def _uses_split_key(path: str, src: SourceConfig) -> bool:
    """First pass over the split column: True when every frame that carries the energy also
    carries ``split_key`` (values must then be train/valid/test). Stops at the first frame
    without one, so a source without split labels is not read twice."""
    seen, bad = False, set()
    for batch in iter_batches(path, src.reader):
        if batch.n_frames == 0:
            continue
        relevant = batch.has(src.energy_key)
        if not relevant.any():
            continue
        if (relevant & ~batch.has(src.split_key)).any():
            return False
        seen = True
        values = np.asarray(batch.info[src.split_key])[relevant].astype(str)
        bad.update(values[~np.isin(values, SPLITS)].tolist())
    if seen and bad:
        raise SetupError(f"split values must be train/valid/test, found {sorted(bad)}",
                         file=path, field=src.split_key)
    return seen


def prepare_source(cfg: MergeConfig, src: SourceConfig, target: IsolatedAtomTable,
                   report: SourceReport | None = None,
                   allow_charged: bool = False) -> Iterator[FrameBatch]:
    """Stream one source: read, align and label it batch by batch.

    Yields labelled batches with ``split`` set (from the source's ``split_key`` when every
    frame has one, else drawn per ``mol_id``/``mp_id`` so conformers never straddle splits)
    and fills ``report`` (frames in and out, per split, rejects) on the way. Memory is one
    batch, whatever the source's size.
    """
    report = report if report is not None else SourceReport(src.name)
    path = _resolve(cfg, src.path)
    tea = None
    if src.alignment != "target":
        tea = TotalEnergyAlignment.load(_resolve(cfg, src.alignment))
        t_e = tea.target_table_.energies
        diff = [s for s in t_e if s in target.energies and abs(t_e[s] - target.energies[s]) > 1e-6]
        if diff:
            raise SetupError(
                f"alignment targets a different isolated-atom table than [target] e0 (differs "
                f"for {', '.join(diff)}); one target scale has one table "
                "(docs/architecture.md §4.3)",
                file=src.alignment, field="target_table")
    elif src.remove_d3:
        raise SetupError("remove_d3 needs an alignment (target-scale data are "
                         "dispersion-free already)", file=path, field="remove_d3")
    by_key = _uses_split_key(path, src)
    if by_key and cfg.split_settings:
        warnings.warn(f"source {src.name!r} ({path}) carries a {src.split_key!r} column: its "
                      f"frames keep those splits, and [target] "
                      f"{' and '.join(cfg.split_settings)} "
                      f"{'do' if len(cfg.split_settings) > 1 else 'does'} not apply to it",
                      stacklevel=2)
    seen_energy = False
    for batch in iter_batches(path, src.reader):
        report.frames_in += batch.n_frames + len(batch.rejects)
        report.reject(batch.rejects)
        batch.rejects = []
        if batch.n_frames == 0:
            continue
        seen_energy |= bool(batch.has(src.energy_key).any())
        target.check_covers(batch.numbers, file=path)
        if src.d3_keys:
            batch = _subtract_stored_d3(batch, src)
        if tea is None:
            res = _to_reference(batch, src)
        else:
            res = tea.transform(batch, src.energy_key, src.forces_key, src.stress_key,
                                src.virials_key, source_name=src.name, file=path,
                                remove_d3=src.remove_d3, check=False,
                                allow_charged=allow_charged or src.allow_charged)
        report.reject(res.rejects)
        res.rejects = []
        if res.n_frames == 0:
            continue
        n = res.n_frames
        res.info["source"] = np.array([src.name] * n, dtype=object)
        res.info["head"] = np.array([src.head or src.name] * n, dtype=object)
        if src.config_type or "config_type" not in res.info:
            res.info["config_type"] = np.array([src.config_type or src.name] * n, dtype=object)
        if tea is None:
            res.info["alignment_sha256"] = np.array(["target"] * n, dtype=object)
        # MACE per-config property weights; molecules get no stress/virial weight
        periodic = res.pbc.any(axis=1)
        for prop in PROPS:
            w = np.full(n, float(src.weights.get(prop, 1.0)))
            if prop in ("stress", "virials"):
                w[~periodic] = 0.0
            res.info[f"config_{prop}_weight"] = w
        if by_key:
            splits = np.asarray(res.info[src.split_key]).astype(str).astype(object)
        else:
            splits = assign_splits(_group_ids(res, src), cfg.seed, cfg.fractions)
        res.info["split"] = np.asarray(splits, dtype=object)
        res.missing.pop("split", None)
        for s in SPLITS:
            report.by_split[s] += int(np.sum(res.info["split"] == s))
        report.frames_out += n
        yield res
    all_bad = report.n_rejected == report.frames_in and not any(
        k.split(": ", 1)[-1].startswith("missing energy") for k in report.reasons)
    if report.frames_in and not seen_energy and not all_bad:  # all_bad: exit 1 in run_merge
        raise SetupError("no frame has this energy key", file=path, field=src.energy_key)


class _OutputDir:
    """One MACE-ready directory, written as frames stream in: a shard writer per split,
    statistics accumulated on the training frames, and (optionally) ``merged.extxyz``."""

    def __init__(self, path: Path, fmt: str, executor: Executor, target: IsolatedAtomTable,
                 r_max: float, extxyz: bool, shard_size: int | None = None):
        self.path, self.fmt, self.ex = path, fmt, executor
        self.target, self.r_max = target, r_max
        self.shard_size = shard_size or SHARD_SIZE
        self.writers: dict[str, ShardWriter] = {}
        self.e0 = target.by_number()
        self.zs: set[int] = set()
        self.n = 0
        self.sum_e = 0.0  # Σ over training frames of (E − Σ E0) / n_atoms
        self.n_e = 0
        self.sum_f2 = 0.0  # Σ over training atoms of |F|², frames without forces as zeros
        self.n_atoms = 0
        self.extxyz = None
        self.pending_text: deque = deque()
        if extxyz:
            path.mkdir(parents=True, exist_ok=True)
            self.extxyz = open(path / rd.MERGED_EXTXYZ_FILE, "w")  # noqa: SIM115 (see close)

    def add(self, batch: FrameBatch) -> None:
        self.n += batch.n_frames
        self.zs.update(int(z) for z in np.unique(batch.numbers))
        split = np.asarray(batch.info["split"])
        for s in SPLITS:
            keep = split == s
            if not keep.any():
                continue
            sub = batch if keep.all() else batch.select(keep)
            if s == "train":
                self._accumulate(sub)
            if s not in self.writers:
                self.writers[s] = ShardWriter(self.path / s, self.fmt, self.ex, prefix=s,
                                              shard_size=self.shard_size, r_max=self.r_max,
                                              sample_neighbors=s == "train")
            self.writers[s].add(sub)
        if self.extxyz is not None:
            self.pending_text.append(self.ex.submit(format_batch, batch))
            while self.pending_text and self.pending_text[0].done():
                self.extxyz.write(self.pending_text.popleft().result())

    def _accumulate(self, b: FrameBatch) -> None:
        e = np.asarray(b.info[REF.energy], dtype=float)
        self.sum_e += float(np.sum((e - b.per_frame_sum(self.e0[b.numbers])) / b.n_atoms))
        self.n_e += b.n_frames
        if REF.forces in b.arrays:
            f = np.nan_to_num(np.asarray(b.arrays[REF.forces], dtype=float))
            self.sum_f2 += float(np.sum(f * f))
        self.n_atoms += int(b.n_atoms.sum())

    def close(self) -> dict:
        """Finish every shard and file; returns frames written per split."""
        written = {s: w.close() for s, w in self.writers.items()}
        if self.extxyz is not None:
            while self.pending_text:
                self.extxyz.write(self.pending_text.popleft().result())
            self.extxyz.close()
        if "train" not in written:
            raise SetupError("no training frames after the split", file=str(self.path),
                             field="split")
        zs = sorted(self.zs)
        e0s = {z: self.target.energy(chemical_symbols[z]) for z in zs}
        avg = self.writers["train"].avg_num_neighbors()
        stats = {
            "atomic_energies": str({z: float(e0s[z]) for z in zs}),
            "avg_num_neighbors": float(avg) if avg is not None else 0.0,
            "mean": self.sum_e / self.n_e,
            "std": float(np.sqrt(self.sum_f2 / (3 * self.n_atoms))) if self.n_atoms else 1.0,
            "atomic_numbers": str(zs),
            "r_max": float(self.r_max),
        }
        write_json(self.path / rd.STATISTICS_FILE, stats)
        return {s: written[s] for s in SPLITS if s in written}

    def abort(self) -> None:
        if self.extxyz is not None:
            with contextlib.suppress(OSError):  # a full disk fails the last flush too
                self.extxyz.close()


def _all_rejected(reports: dict[str, SourceReport], outdir: Path) -> NothingWritten:
    """Every frame of every source rejected: nothing is written (exit 1), with the reasons."""
    n = sum(r.n_rejected for r in reports.values())
    reasons: dict[str, int] = {}
    for r in reports.values():
        for k, v in r.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
    top = "; ".join(f"{v} × {k}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
    return NothingWritten(f"all {n} frames were rejected, nothing written (any previous output "
                          f"is kept): {top}", file=str(outdir))


def check_provenance(cfg: MergeConfig, tables: dict[str, IsolatedAtomTable],
                     allow_method_mismatch: bool = False) -> None:
    """Before any work: each source's recorded method (tealign.provenance) must match the
    table its energies are referred to (the alignment's source table, or for target-scale
    sources the [target] e0), and a source flagged as including D3(BJ) must remove it
    (``remove_d3`` or ``d3_keys``). Setup errors (exit 2) name the source's file."""
    from tealign import provenance

    for src in cfg.sources:
        path = _resolve(cfg, src.path)
        batch = provenance.peek(path, src.reader)
        if batch is None:
            continue
        level = provenance.data_level(batch, src.energy_key, path)
        if src.alignment != "target":
            tea = TotalEnergyAlignment.load(_resolve(cfg, src.alignment))
            table, role = tea.source_table_, f"source[{src.name}] alignment's source table"
        else:
            table, role = tables[src.name], f"source[{src.name}] target e0"
        provenance.check_table(table, role, level, src.energy_key, path,
                               allow_method_mismatch or src.allow_method_mismatch,
                               override="allow_method_mismatch = true (or "
                                        "--allow-method-mismatch)")
        if src.alignment != "target":
            provenance.check_d3(level, src.energy_key, path,
                                removed=bool(src.remove_d3 or src.d3_keys),
                                how='remove_d3 = "FUNCTIONAL" (or d3_keys = true)')


def run_merge(config_path: str | Path, outdir: str | Path, per_source: bool = False,
              strict: bool = False, progress=None, *, fmt: str = DEFAULT_FORMAT,
              workers: int = 1, scheduler=None, extxyz: bool = True,
              shard_size: int | None = None, allow_method_mismatch: bool = False,
              allow_charged: bool = False) -> dict:
    """Merge every source of the TOML into ``outdir``; returns the report dict.

    Sources stream through (:func:`prepare_source`) into per-split shard writers
    (``fmt``: ``h5`` or ``lmdb``) run by ``workers`` local processes or a Dask
    ``scheduler``; peak memory is a few batches and shards whatever the number of frames.
    ``extxyz=False`` skips ``merged.extxyz``. ``progress``, if given, is called with the
    number of frames read so far (all sources) after each batch.
    """
    if fmt not in FORMATS:
        raise SetupError(f"output format must be one of {', '.join(FORMATS)}", field="--format")
    cfg = load_config(config_path)
    target = (union_tables([load_table(e) for e in cfg.e0]) if isinstance(cfg.e0, list)
              else load_table(cfg.e0))
    own = [s.name for s in cfg.sources if s.e0]
    if own and not per_source:
        raise SetupError(f"sources {own} name their own e0: that needs --per-source (one "
                         "merged set has one isolated-atom table, docs/architecture.md §4.3)",
                         file=str(config_path), field="source.e0")
    tables = {s.name: load_table(str(cfg.base / s.e0) if (cfg.base / s.e0).exists() else s.e0)
              if s.e0 else target for s in cfg.sources}
    check_provenance(cfg, tables, allow_method_mismatch)
    keep_ions = [s.name for s in cfg.sources if (allow_charged or s.allow_charged)
                 and s.alignment != "target"]
    if keep_ions:
        from tealign.provenance import charged_error_note

        warnings.warn(f"sources {keep_ions} keep charged frames, aligned with neutral-atom "
                      f"references ({charged_error_note()})", stacklevel=2)
    outdir = Path(outdir)
    reports: dict[str, SourceReport] = {}
    with atomic_path(outdir) as tmp, Executor(workers, scheduler) as ex:
        tmp.mkdir(parents=True)
        log = _RejectLog(rejects_path(tmp / rd.MERGED_EXTXYZ_FILE))
        layout = {}
        shared = None if per_source else _OutputDir(tmp, fmt, ex, target, cfg.r_max, extxyz,
                                                    shard_size)
        done = 0
        opened = [shared] if shared is not None else []
        try:
            for src in cfg.sources:
                rep = reports[src.name] = SourceReport(src.name, log=log, strict=strict)
                out = shared or _OutputDir(inside(tmp, src.name), fmt, ex, tables[src.name],
                                           cfg.r_max, extxyz, shard_size)
                opened.append(out)
                for batch in prepare_source(cfg, src, tables[src.name], rep, allow_charged):
                    out.add(batch)
                    if progress:
                        progress(done + rep.frames_in)
                done += rep.frames_in
                if per_source:
                    if out.n:
                        layout[src.name] = out.close()
                    else:
                        out.abort()
                        remove_inside(tmp, inside(tmp, src.name))
                if progress:
                    progress(done)
            if not any(r.frames_out for r in reports.values()) \
                    and any(r.n_rejected for r in reports.values()):
                raise _all_rejected(reports, outdir)  # before the commit: previous output kept
            if shared is not None:
                layout["merged"] = shared.close()
        except BaseException:
            for o in opened:  # their open files go before the temporary folder does
                o.abort()
            raise
        finally:
            rpath = log.close()
        report = {
            "frames_in": sum(r.frames_in for r in reports.values()),
            "frames_out": sum(r.frames_out for r in reports.values()),
            "frames_rejected": sum(r.n_rejected for r in reports.values()),
            "rejects_file": str(outdir / rpath.name) if rpath else None,
            "per_source": per_source,
            "format": fmt,
            "merged_extxyz": extxyz,
            "target_e0": {"table": cfg.e0, **target.to_json_dict()},
            "heads": {src.name: src.head or src.name for src in cfg.sources},
            "sources": {src.name: {"path": src.path, "alignment": src.alignment,
                                   "frames_in": reports[src.name].frames_in,
                                   "frames_out": reports[src.name].frames_out,
                                   "frames_rejected": reports[src.name].n_rejected,
                                   "by_split": reports[src.name].by_split,
                                   "reject_reasons": reports[src.name].reasons}
                        for src in cfg.sources},
            "layout": layout,
        }
        for name, s in report["sources"].items():
            if s["frames_in"] != s["frames_out"] + s["frames_rejected"]:
                raise AssertionError(f"frame accounting broken for {name}: {s}")
        write_json(tmp / rd.MERGE_REPORT_FILE, report)
    return report
