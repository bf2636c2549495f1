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
    d3_keys = true                  # subtract stored d3_energy_<label>/d3_forces_<label>
    weights = { energy = 1.0, forces = 1.0 }

Per source: ``reader`` (format), ``remove_d3`` (functional: compute and subtract D3(BJ)),
``head`` (default: the name), ``weights`` (MACE per-config property weights), ``split_key``,
and, with ``--per-source`` only, ``e0`` (that head's own isolated-atom table: a multi-head
model whose heads keep their sources' own scales).
Molecules (non-periodic frames) get zero stress and virial weight.

Output directory: ``train/``, ``valid/``, ``test/`` shard directories (MACE HDF5, with
``*.meta.jsonl`` sidecars), ``statistics.json``, ``merged.extxyz`` (DESIGN 4.3 keys),
``report.json`` (every input frame counted, written or rejected with its reason) and
``merged.rejects.jsonl``. With ``per_source`` the same layout is written under one
sub-directory per source (for MACE multi-head training).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomllib
from ase.data import chemical_symbols

from tealign.align import TotalEnergyAlignment
from tealign.errors import FrameError, SetupError
from tealign.io import iter_batches
from tealign.io.atomic import atomic_path, write_json, write_rejects
from tealign.io.frames import FrameBatch, concat_batches
from tealign.io.splits import assign_splits
from tealign.methods import IsolatedAtomTable, load_table, union_tables

SPLITS = ("train", "valid", "test")
PROPS = ("energy", "forces", "stress", "virials")


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


@dataclass
class MergeConfig:
    e0: str | list[str]
    sources: list[SourceConfig]
    r_max: float = 4.5
    seed: int = 0
    fractions: dict = field(default_factory=lambda: {"train": 0.8, "valid": 0.1, "test": 0.1})
    base: Path = Path(".")


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
    if "e0" not in target:
        raise SetupError("[target] needs e0 (the target scale's isolated-atom table)",
                         file=str(p), field="target.e0")
    sources = []
    known = set(SourceConfig.__dataclass_fields__)
    for i, src in enumerate(doc.get("source", [])):
        unknown = set(src) - known
        if unknown:
            raise SetupError(f"unknown keys {sorted(unknown)}", file=str(p),
                             field=f"source[{i}]")
        for req in ("name", "path", "energy_key"):
            if req not in src:
                raise SetupError(f"source needs '{req}'", file=str(p),
                                 field=f"source[{i}].{req}")
        sources.append(SourceConfig(**src))
    if not sources:
        raise SetupError("no [[source]] entries", file=str(p), field="source")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise SetupError(f"source names must differ: {names}", file=str(p), field="source")
    base = p.parent
    e0 = target["e0"]
    if isinstance(e0, list):
        e0 = [str(base / e) if (base / e).exists() else e for e in e0]
    elif (base / e0).exists():
        e0 = str(base / e0)
    return MergeConfig(e0=e0, sources=sources, r_max=float(target.get("r_max", 4.5)),
                       seed=int(target.get("seed", 0)),
                       fractions=target.get("fractions", {"train": 0.8, "valid": 0.1,
                                                           "test": 0.1}), base=base)


def _resolve(cfg: MergeConfig, rel: str) -> str:
    cand = cfg.base / rel
    return str(cand) if cand.exists() or not Path(rel).exists() else rel


@dataclass
class SourceReport:
    name: str
    frames_in: int = 0
    frames_out: int = 0
    by_split: dict = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    rejects: list[FrameError] = field(default_factory=list)


def _to_reference(batch: FrameBatch, src: SourceConfig) -> FrameBatch:
    """A source already on the target scale: copy its values to REF_* and orig_*."""
    out = batch.copy()
    keep = out.has(src.energy_key)
    for i in np.flatnonzero(~keep):
        out.rejects.append(FrameError(src.path, int(out.index[i]), src.energy_key,
                                      "missing energy"))
    out = out.select(keep)
    pairs = [("energy", src.energy_key, out.info), ("forces", src.forces_key, out.arrays),
             ("stress", src.stress_key, out.info), ("virials", src.virials_key, out.info)]
    for prop, key, store in pairs:
        if key and key in store:
            store[f"REF_{prop}"] = np.asarray(store[key], dtype=float)
            store[f"orig_{prop}"] = np.asarray(store[key], dtype=float).copy()
            if key in out.missing:
                out.missing[f"REF_{prop}"] = out.missing[key]
                out.missing[f"orig_{prop}"] = out.missing[key]
            if key not in (f"REF_{prop}", f"orig_{prop}"):
                store.pop(key)
                out.missing.pop(key, None)
    return out


def _subtract_stored_d3(batch: FrameBatch, src: SourceConfig) -> FrameBatch:
    """Subtract d3_energy_<label>/d3_forces_<label> stored beside energy_<label>."""
    label = src.energy_key.removeprefix("energy_")
    out = batch.copy()
    ek, fk = f"d3_energy_{label}", f"d3_forces_{label}"
    if ek not in out.info:
        raise SetupError(f"d3_keys = true but no frame has {ek}", file=src.path, field=ek)
    out.info[src.energy_key] = np.asarray(out.info[src.energy_key]) - out.info[ek]
    if src.forces_key and src.forces_key in out.arrays and fk in out.arrays:
        out.arrays[src.forces_key] = out.arrays[src.forces_key] - out.arrays[fk]
    return out


def prepare_source(cfg: MergeConfig, src: SourceConfig, target: IsolatedAtomTable
                   ) -> tuple[FrameBatch, SourceReport]:
    """Read, align and label one source; returns its frames and its report."""
    report = SourceReport(src.name)
    path = _resolve(cfg, src.path)
    tea = None
    if src.alignment != "target":
        tea = TotalEnergyAlignment.load(_resolve(cfg, src.alignment))
        t_e = tea.target_table_.energies
        diff = [s for s in t_e if s in target.energies and abs(t_e[s] - target.energies[s]) > 1e-6]
        if diff:
            raise SetupError(
                f"alignment targets a different isolated-atom table than [target] e0 (differs "
                f"for {', '.join(diff)}); one target scale has one table (DESIGN 4.3)",
                file=src.alignment, field="target_table")
    parts = []
    seen_energy = False
    for batch in iter_batches(path, src.reader):
        report.frames_in += batch.n_frames + len(batch.rejects)
        report.rejects.extend(batch.rejects)
        batch.rejects = []
        if batch.n_frames == 0:
            continue
        seen_energy |= bool(batch.has(src.energy_key).any())
        target.check_covers(batch.numbers, file=path)
        if src.d3_keys:
            batch = _subtract_stored_d3(batch, src)
        if tea is None:
            res = _to_reference(batch, src)
            if src.remove_d3:
                raise SetupError("remove_d3 needs an alignment (target-scale data are "
                                 "dispersion-free already)", file=path, field="remove_d3")
        else:
            res = tea.transform(batch, src.energy_key, src.forces_key, src.stress_key,
                                src.virials_key, source_name=src.name, file=path,
                                remove_d3=src.remove_d3)
        report.rejects.extend(res.rejects)
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
        parts.append(res)
    if report.frames_in and not seen_energy:
        raise SetupError("no frame has this energy key", file=path, field=src.energy_key)
    merged = concat_batches(parts) if parts else FrameBatch.from_records([])
    if merged.n_frames:
        if src.split_key in merged.info and merged.has(src.split_key).all():
            splits = np.asarray(merged.info[src.split_key]).astype(str)
            bad = ~np.isin(splits, SPLITS)
            if bad.any():
                raise SetupError(f"split values must be train/valid/test, found "
                                 f"{sorted(set(splits[bad]))}", file=path, field=src.split_key)
        else:
            ids = (merged.info["mol_id"] if "mol_id" in merged.info
                   else np.array([f"{src.name}#{i}" for i in merged.index], dtype=object))
            splits = assign_splits(ids, cfg.seed, cfg.fractions)
        merged.info["split"] = np.asarray(splits, dtype=object)
        for s in SPLITS:
            report.by_split[s] = int(np.sum(merged.info["split"] == s))
    report.frames_out = merged.n_frames
    return merged, report


def _write_mace_dir(batch: FrameBatch, outdir: Path, target: IsolatedAtomTable,
                    r_max: float) -> dict:
    from tealign.io.extxyz import write_extxyz
    from tealign.io.mace_h5 import write_mace_h5, write_statistics

    outdir.mkdir(parents=True, exist_ok=True)
    written = {}
    for s in SPLITS:
        sub = batch.select(np.asarray(batch.info["split"] == s))
        if sub.n_frames == 0:
            continue
        write_mace_h5([sub], outdir / s)
        written[s] = sub.n_frames
    if "train" not in written:
        raise SetupError("no training frames after the split", file=str(outdir), field="split")
    zs = sorted({int(z) for z in np.unique(batch.numbers)})
    e0s = {z: target.energy(chemical_symbols[z]) for z in zs}
    write_statistics(outdir / "train", e0s, outdir / "statistics.json", r_max=r_max)
    write_extxyz(outdir / "merged.extxyz", [batch])
    return written


def run_merge(config_path: str | Path, outdir: str | Path, per_source: bool = False,
              strict: bool = False, progress=None) -> dict:
    """Merge every source of the TOML into ``outdir``; returns the report dict."""
    cfg = load_config(config_path)
    target = (union_tables([load_table(e) for e in cfg.e0]) if isinstance(cfg.e0, list)
              else load_table(cfg.e0))
    own = [s.name for s in cfg.sources if s.e0]
    if own and not per_source:
        raise SetupError(f"sources {own} name their own e0: that needs --per-source (one "
                         "merged set has one isolated-atom table, DESIGN 4.3)",
                         file=str(config_path), field="source.e0")
    tables = {s.name: load_table(str(cfg.base / s.e0) if (cfg.base / s.e0).exists() else s.e0)
              if s.e0 else target for s in cfg.sources}
    prepared = []
    for src in cfg.sources:
        batch, rep = prepare_source(cfg, src, tables[src.name])
        if strict and rep.rejects:
            raise rep.rejects[0].as_setup_error()
        prepared.append((src, batch, rep))
        if progress:
            progress(src.name, rep)
    outdir = Path(outdir)
    with atomic_path(outdir) as tmp:
        tmp.mkdir(parents=True)
        layout = {}
        if per_source:
            for src, batch, _ in prepared:
                if batch.n_frames:
                    layout[src.name] = _write_mace_dir(batch, tmp / src.name,
                                                       tables[src.name], cfg.r_max)
        else:
            merged = concat_batches([b for _, b, _ in prepared if b.n_frames])
            layout["merged"] = _write_mace_dir(merged, tmp, target, cfg.r_max)
        all_rejects = [r for _, _, rep in prepared for r in rep.rejects]
        rpath = write_rejects(tmp / "merged.extxyz", all_rejects)
        report = {
            "frames_in": sum(rep.frames_in for _, _, rep in prepared),
            "frames_out": sum(rep.frames_out for _, _, rep in prepared),
            "frames_rejected": len(all_rejects),
            "rejects_file": str(outdir / rpath.name) if rpath else None,
            "per_source": per_source,
            "target_e0": {"table": cfg.e0, **target.to_json_dict()},
            "heads": {src.name: src.head or src.name for src, _, _ in prepared},
            "sources": {rep.name: {"path": src.path, "alignment": src.alignment,
                                   "frames_in": rep.frames_in, "frames_out": rep.frames_out,
                                   "frames_rejected": len(rep.rejects),
                                   "by_split": rep.by_split,
                                   "reject_reasons": _count_reasons(rep.rejects)}
                        for src, _, rep in prepared},
            "layout": layout,
        }
        for name, s in report["sources"].items():
            if s["frames_in"] != s["frames_out"] + s["frames_rejected"]:
                raise AssertionError(f"frame accounting broken for {name}: {s}")
        write_json(tmp / "report.json", report)
    return report


def _count_reasons(rejects: list[FrameError]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rejects:
        key = f"{r.field}: {r.reason}"
        out[key] = out.get(key, 0) + 1
    return out


def read_report(outdir: str | Path) -> dict:
    return json.loads((Path(outdir) / "report.json").read_text())
