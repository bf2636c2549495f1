"""The streaming merge (``tealign merge``): each source read once, batch by batch, brought
to the target scale, labelled and split, into per-split shard writers (the package
docstring, :mod:`tealign.merge`, describes the config and the output)."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from tealign import rundir as rd
from tealign.align.estimator import TotalEnergyAlignment
from tealign.errors import FrameError, NothingWritten, SetupError
from tealign.io import iter_batches
from tealign.io.extxyz import format_batch
from tealign.io.frames import FrameBatch
from tealign.io.outputs import (
    RejectsWriter,
    atomic_path,
    inside,
    rejects_path,
    remove_inside,
    write_json,
)
from tealign.io.registry import shard_formats
from tealign.io.shards import SHARD_SIZE, ShardWriter
from tealign.io.splits import assign_splits
from tealign.keys import ORIG, REF, store_of
from tealign.merge.config import PROPS, SPLITS, MergeConfig, SourceConfig, load_config
from tealign.methods import IsolatedAtomTable, load_table, union_tables
from tealign.workers import Executor

#: Shard format of ``tealign merge`` unless ``--format`` says otherwise. Both train with
#: mace-torch 0.3.16 (tests/test_scale_io.py checks what MACE sees); LMDB is written 4–6×
#: faster than MACE's HDF5 (benchmarks/results/scale.json, 10⁵ frames).
DEFAULT_FORMAT = "lmdb"


@dataclass
class SourceReport:
    """One source's accounting, filled while its frames stream through."""

    name: str
    frames_in: int = 0
    frames_out: int = 0
    by_split: dict = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    n_rejected: int = 0
    reasons: dict = field(default_factory=dict)
    log: RejectsWriter | None = None
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


@functools.cache
def identity_alignment() -> TotalEnergyAlignment:
    """The alignment of a source already on the target scale (``alignment = "target"``):
    the same isolated-atom table on both sides, so a = 1, no offsets and no shift
    (:meth:`TotalEnergyAlignment.icea_only`). The table is zero for every element: the
    transform's E_tgt,atoms − (E_src,atoms − E) is then E to the last bit (with the target's
    own table on both sides it would differ from E by rounding)."""
    zero = IsolatedAtomTable("target scale (identity)",
                             dict.fromkeys(chemical_symbols[1:119], 0.0))
    return TotalEnergyAlignment.icea_only(zero, zero, note="source on the target scale")


def _to_reference(batch: FrameBatch, src: SourceConfig) -> FrameBatch:
    """A source already on the target scale, through :func:`identity_alignment`: its values
    become REF_* and orig_*; frames without the energy are rejected. Charged and aligned
    frames are kept (nothing is shifted), and the frames keep merge's key order:
    REF_*/orig_* last, kind by kind, no ``alignment_sha256`` (merge records ``target``)."""
    out = identity_alignment().transform(
        batch, src.energy_key, src.forces_key, src.stress_key, src.virials_key,
        file=src.path, check=False, allow_realign=True, allow_charged=True)
    for kind, key in src.keys.items():
        ref, orig = getattr(REF, kind), getattr(ORIG, kind)
        if key in (ref, orig) and key in out.missing:  # a REF_/orig_ key: one mask for both
            out.missing[ref] = out.missing[orig] = out.missing[key]
        store, had = store_of(out, kind), store_of(batch, kind)
        for k in (ref, orig):  # the keys added go last: REF_ before orig_, kind by kind
            if k in store and k not in had:
                store[k] = store.pop(k)
    if "alignment_sha256" not in batch.info:
        out.info.pop("alignment_sha256", None)
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


class _SplitColumn:
    """Whether a source's frames keep their own splits, judged on the batches as they are
    read (one pass): when every frame carrying the energy in the first batch with any has
    ``split_key``, the source keeps its splits and every later such frame must have one
    too; otherwise splits are drawn (:func:`tealign.io.splits.assign_splits`)."""

    def __init__(self, cfg: MergeConfig, src: SourceConfig, path: str):
        self.cfg, self.src, self.path = cfg, src, path
        self.use: bool | None = None

    def __call__(self, batch: FrameBatch) -> bool:
        """True when ``batch``'s frames keep the split of their ``split_key``."""
        key = self.src.split_key
        relevant = batch.has(self.src.energy_key)
        if not relevant.any():
            return bool(self.use)
        lacking = relevant & ~batch.has(key)
        if self.use is None:
            self.use = not lacking.any()
            if self.use and self.cfg.split_settings:
                settings = self.cfg.split_settings
                warnings.warn(f"source {self.src.name!r} ({self.path}) carries a {key!r} "
                              f"column: its frames keep those splits, and [target] "
                              f"{' and '.join(settings)} "
                              f"{'do' if len(settings) > 1 else 'does'} not apply to it",
                              stacklevel=3)
        elif self.use and lacking.any():
            i = int(batch.index[np.flatnonzero(lacking)[0]])
            raise SetupError(f"this frame has no {key!r} while the first frames of the source "
                             f"have one: give every frame a split (train/valid/test) or none",
                             file=self.path, frame=i, field=key)
        if self.use:
            values = np.asarray(batch.info[key])[relevant].astype(str)
            bad = sorted(set(values[~np.isin(values, SPLITS)].tolist()))
            if bad:
                raise SetupError(f"split values must be train/valid/test, found {bad}",
                                 file=self.path, field=key)
        return self.use


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
    path = src.resolved_path
    tea = None
    if src.alignment != "target":
        tea = TotalEnergyAlignment.load(src.resolved_alignment)
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
    split_column = _SplitColumn(cfg, src, path)
    seen_energy = False
    for batch in iter_batches(path, src.reader):
        report.frames_in += batch.n_frames + len(batch.rejects)
        report.reject(batch.rejects)
        batch.rejects = []
        if batch.n_frames == 0:
            continue
        seen_energy |= bool(batch.has(src.energy_key).any())
        by_key = split_column(batch)
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

    cfg = load_config(cfg)
    for src in cfg.sources:
        path = src.resolved_path
        batch = provenance.peek(path, src.reader)
        if batch is None:
            continue
        level = provenance.data_level(batch, src.energy_key, path)
        if src.alignment != "target":
            tea = TotalEnergyAlignment.load(src.resolved_alignment)
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


def run_merge(config: str | Path | dict | MergeConfig, outdir: str | Path, per_source: bool = False,
              strict: bool = False, progress=None, *, fmt: str = DEFAULT_FORMAT,
              workers: int = 1, scheduler=None, extxyz: bool = True,
              shard_size: int | None = None, allow_method_mismatch: bool = False,
              allow_charged: bool = False) -> dict:
    """Merge every source of the config into ``outdir``; returns the report dict.

    ``config``: the TOML's path, a dict of its schema, or a :class:`MergeConfig`
    (:func:`tealign.merge.config.load_config`; a parsed one is used as it is).

    Sources stream through (:func:`prepare_source`) into per-split shard writers
    (``fmt``: ``h5`` or ``lmdb``) run by ``workers`` local processes or a Dask
    ``scheduler``; peak memory is a few batches and shards whatever the number of frames.
    ``extxyz=False`` skips ``merged.extxyz``. ``progress``, if given, is called with the
    number of frames read so far (all sources) after each batch.
    """
    if fmt not in shard_formats():  # the registry as it is now
        raise SetupError(f"output format must be one of {', '.join(shard_formats())}",
                         field="--format")
    cfg = load_config(config)
    target = (union_tables([load_table(e) for e in cfg.e0]) if isinstance(cfg.e0, list)
              else load_table(cfg.e0))
    own = [s.name for s in cfg.sources if s.e0]
    if own and not per_source:
        raise SetupError(f"sources {own} name their own e0: that needs --per-source (one "
                         "merged set has one isolated-atom table, docs/architecture.md §4.3)",
                         file=cfg.file, field="source.e0")
    tables = {s.name: load_table(s.resolved_e0) if s.e0 else target for s in cfg.sources}
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
        log = RejectsWriter(rejects_path(tmp / rd.MERGED_EXTXYZ_FILE))
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
