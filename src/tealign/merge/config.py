"""The merge config: its schema (:class:`MergeConfig`, :class:`SourceConfig`), parsed and
validated once (:func:`load_config`) from a TOML file, a plain dict of the same schema, or a
config built in Python.

Every relative path of the config is resolved once, at parse time, by one rule
(:func:`resolve_path`): beside the TOML when something of that name is there. The values as
written stay on the objects (``report.json`` records them); the resolved ones are
``SourceConfig.resolved_path`` / ``resolved_alignment`` / ``resolved_e0`` and
``MergeConfig.e0``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tealign.errors import SetupError
from tealign.io.outputs import check_safe_name
from tealign.keys import Keys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

SPLITS = ("train", "valid", "test")
PROPS = ("energy", "forces", "stress", "virials")


@dataclass
class SourceConfig:
    """One ``[[source]]`` table: where its frames are, their keys (energy eV, forces eV/Å,
    stress eV/Å³, virials eV) and how they reach the target scale."""

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
    #: ``path``, ``alignment`` and ``e0`` resolved by :func:`resolve_path` (set at parse
    #: time; None where the source has no alignment file or own e0)
    resolved_path: str | None = field(default=None, init=False, repr=False, compare=False)
    resolved_alignment: str | None = field(default=None, init=False, repr=False,
                                           compare=False)
    resolved_e0: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def keys(self) -> Keys:
        """The source's four key names as one :class:`~tealign.keys.Keys`."""
        return Keys(self.energy_key, self.forces_key, self.stress_key, self.virials_key)


#: the keys a ``[[source]]`` table may hold (the resolved paths are not among them)
SOURCE_KEYS = frozenset(f.name for f in fields(SourceConfig) if f.init)


@dataclass
class MergeConfig:
    """The whole config: the target scale's isolated-atom table(s) ``e0`` (resolved), the
    sources, ``r_max`` (Å, for statistics.json), the split ``seed`` and ``fractions``."""

    e0: str | list[str]
    sources: list[SourceConfig]
    r_max: float = 4.5
    seed: int = 0
    fractions: dict = field(default_factory=lambda: {"train": 0.8, "valid": 0.1, "test": 0.1})
    base: Path = Path(".")
    #: which of [target] ``fractions`` / ``seed`` the TOML set (a source's split column
    #: overrides them: a warning says so)
    split_settings: list = field(default_factory=list)
    #: where the config came from, for error messages (the TOML's path, or ``<dict>``)
    file: str = "<dict>"
    #: True once parsed by :func:`parse_config` (validated, paths resolved)
    parsed: bool = field(default=False, repr=False, compare=False)


def resolve_path(base: Path, value: str) -> str:
    """The one path rule of a merge config: ``value`` beside the config (``base / value``)
    when something of that name is there; else ``value`` as given when it exists from the
    current directory, is a dataset spec (``qm9:30``) or a built-in isolated-atom table
    name; else beside the config, so that the error names where it was looked for."""
    from tealign.io import is_dataset_spec
    from tealign.methods import builtin_tables

    cand = base / value
    if cand.exists():
        return str(cand)
    if Path(value).exists() or is_dataset_spec(value) or value in builtin_tables():
        return value
    return str(cand)


def load_config(config: str | os.PathLike | dict | MergeConfig) -> MergeConfig:
    """The config parsed and validated once: from a TOML file (relative paths are relative
    to its folder), a dict of the same schema (relative to the current directory), or a
    :class:`MergeConfig` (returned as it is once parsed; one built by hand is validated and
    resolved like a TOML). Errors are :class:`SetupError` naming the file and field."""
    if isinstance(config, MergeConfig):
        if config.parsed:
            return config
        _check_fractions(config.fractions, config.file)
        if not config.sources:
            raise SetupError("no [[source]] entries", file=config.file, field="source")
        for i, s in enumerate(config.sources):  # None: "no such key", as in Python calls
            _check_source({k: getattr(s, k) for k in SOURCE_KEYS if getattr(s, k) is not None},
                          i, config.file)
        base = Path(config.base)
        return replace(config, e0=_resolve_sources(config.sources, config.e0, base,
                                                   config.file), base=base, parsed=True)
    if isinstance(config, dict):
        return parse_config(config)
    p = Path(config)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as exc:
        raise SetupError(f"cannot read merge config: {exc.strerror}", file=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"not valid TOML: {exc}", file=str(p)) from None
    return parse_config(doc, p.parent, str(p))


def parse_config(doc: dict, base: Path = Path("."), file: str = "<dict>") -> MergeConfig:
    """Validate a config of the TOML's schema and build it, every path resolved
    (:func:`resolve_path` against ``base``); ``file`` names it in errors."""
    p = file
    target = doc.get("target", {})
    unknown_top = set(doc) - {"target", "source"}
    if unknown_top:
        raise SetupError(f"unknown tables or keys {sorted(unknown_top)}; a merge config has "
                         "[target] and [[source]]", file=p, field=sorted(unknown_top)[0])
    if not isinstance(target, dict):
        raise SetupError("[target] must be a table", file=p, field="target")
    unknown_target = set(target) - {"e0", "r_max", "seed", "fractions"}
    if unknown_target:
        first = sorted(unknown_target)[0]
        raise SetupError(f"unknown keys {sorted(unknown_target)} in [target] (known: e0, "
                         "r_max, seed, fractions)", file=p, field=f"target.{first}")
    if "e0" not in target:
        raise SetupError("[target] needs e0 (the target scale's isolated-atom table)",
                         file=p, field="target.e0")
    e0_ok = isinstance(target["e0"], str) or (
        isinstance(target["e0"], list) and target["e0"]
        and all(isinstance(e, str) for e in target["e0"]))
    if not e0_ok:
        raise SetupError("e0 must be a table name or file, or a list of them", file=p,
                         field="target.e0")
    r_max = target.get("r_max", 4.5)
    if isinstance(r_max, bool) or not isinstance(r_max, (int, float)) \
            or not math.isfinite(r_max) or r_max <= 0:
        raise SetupError(f"r_max must be a number of Å > 0, not {r_max!r}", file=p,
                         field="target.r_max")
    seed = target.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SetupError(f"seed must be an integer, not {seed!r}", file=p,
                         field="target.seed")
    fractions = target.get("fractions", {"train": 0.8, "valid": 0.1, "test": 0.1})
    _check_fractions(fractions, p)
    src_list = doc.get("source", [])
    if not isinstance(src_list, list):
        raise SetupError("sources are [[source]] tables", file=p, field="source")
    sources = [_source(src, i, p) for i, src in enumerate(src_list)]
    if not sources:
        raise SetupError("no [[source]] entries", file=p, field="source")
    base = Path(base)
    e0 = _resolve_sources(sources, target["e0"], base, p)
    return MergeConfig(e0=e0, sources=sources, r_max=float(r_max), seed=seed,
                       fractions=dict(fractions), base=base,
                       split_settings=[k for k in ("fractions", "seed") if k in target],
                       file=p, parsed=True)


def _resolve_sources(sources: list[SourceConfig], e0: str | list[str], base: Path,
                     file: str) -> str | list[str]:
    """The one place a config's paths are resolved (:func:`resolve_path`): each source's
    data, alignment and own e0 (set on the source), and the target ``e0`` (returned). Source
    names must differ, and no data may be listed twice."""
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise SetupError(f"source names must differ: {names}", file=file, field="source")
    for s in sources:
        s.resolved_path = resolve_path(base, s.path)
        s.resolved_alignment = (None if s.alignment == "target"
                                else resolve_path(base, s.alignment))
        s.resolved_e0 = resolve_path(base, s.e0) if s.e0 else None
    _check_no_twice(sources, file)
    return [resolve_path(base, e) for e in e0] if isinstance(e0, list) else resolve_path(base, e0)


_TYPES = {"weights": dict, "d3_keys": bool, "allow_method_mismatch": bool,
          "allow_charged": bool}


def _source(src, i: int, file: str) -> SourceConfig:
    """One validated ``[[source]]`` table (``i``: its position, for error messages)."""
    _check_source(src, i, file)
    return SourceConfig(**src)


def _check_source(src, i: int, file: str) -> None:
    """:class:`SetupError` unless ``src`` is a valid ``[[source]]`` table."""
    if not isinstance(src, dict):
        raise SetupError("sources are [[source]] tables", file=file, field=f"source[{i}]")
    unknown = set(src) - SOURCE_KEYS
    if unknown:
        raise SetupError(f"unknown keys {sorted(unknown)}", file=file, field=f"source[{i}]")
    for req in ("name", "path", "energy_key"):
        if req not in src:
            raise SetupError(f"source needs '{req}'", file=file, field=f"source[{i}].{req}")
    for key, value in src.items():
        want = _TYPES.get(key, str)
        if not isinstance(value, want) or (want is str and not value):
            what = "a non-empty string" if want is str else want.__name__
            raise SetupError(f"must be {what}, not {value!r}", file=file,
                             field=f"source[{i}].{key}")
    for prop, w in src.get("weights", {}).items():
        if prop not in PROPS or isinstance(w, bool) \
                or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise SetupError(f"weights are energy/forces/stress/virials = number ≥ 0, "
                             f"not {prop} = {w!r}", file=file,
                             field=f"source[{i}].weights.{prop}")
    for key in ("name", "head"):
        if key in src:
            check_safe_name(src[key], file=file, field=f"source[{i}].{key}")


def _check_no_twice(sources: list[SourceConfig], file: str) -> None:
    """The same data (same file after resolving links, or the same dataset spec) with the
    same energy key under two source names would be merged twice: a setup error."""
    seen: dict[tuple[str, str], int] = {}
    for i, src in enumerate(sources):
        cand = Path(src.resolved_path)
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


__all__ = ["PROPS", "SPLITS", "MergeConfig", "SourceConfig", "load_config", "parse_config",
           "resolve_path"]
