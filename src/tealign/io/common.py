"""Helpers that several format modules share, kept apart so that no format imports another.

- shard files: :func:`shard_files`/:func:`existing_shards` list a shard directory's files in
  shard order (``name_0``, ``name_1``, …, ``name_10``);
- sidecars: :func:`sidecar_path` (``<DIR>.meta.jsonl`` beside a shard directory) and
  :func:`sidecar_part` (the part a shard writer leaves beside one shard, joined in shard
  order by :class:`tealign.io.shards.ShardWriter`);
- :func:`jsonable`/:func:`from_jsonable`: frame metadata (``info``/``arrays`` values a
  format's own layout does not hold) as JSON, arrays with their dtype, and back.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from tealign.errors import SetupError


def shard_files(path: str | os.PathLike, suffixes: tuple[str, ...]) -> list[Path]:
    """The shard files of a directory (those with one of ``suffixes``) in shard order
    (``name_0``, ``name_1``, …, ``name_10``), or ``[path]`` for one file."""
    p = Path(path)
    if p.is_file():
        return [p]

    def order(f: Path):
        m = re.search(r"(\d+)$", f.stem)
        return (f.stem[: m.start()] if m else f.stem, int(m.group(1)) if m else -1)

    return sorted((f for f in p.iterdir() if f.suffix in suffixes), key=order)


def existing_shards(path: str | os.PathLike, suffixes: tuple[str, ...]) -> list[Path]:
    """:func:`shard_files`, where a missing path or a directory without shards is a setup
    error."""
    p = Path(path)
    if not p.exists():
        raise SetupError("no such file or directory", file=str(p))
    files = shard_files(p, suffixes)
    if not files:
        raise SetupError(f"directory holds no {suffixes[0]} shards", file=str(p))
    return files


def sidecar_path(shard_dir: str | os.PathLike) -> Path:
    """The metadata sidecar of a shard directory: ``<DIR>.meta.jsonl`` beside it."""
    d = Path(shard_dir)
    return d.with_name(d.name + ".meta.jsonl")


def sidecar_part(shard: str | os.PathLike) -> Path:
    """The sidecar part a shard writer leaves beside ``shard`` (``.<stem>.meta.part``)."""
    p = Path(shard)
    return p.with_name(f".{p.stem}.meta.part")


def jsonable(value):
    """A metadata value as JSON can hold it: arrays as ``{"__array__", "dtype"}``."""
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_jsonable(value):
    """The inverse of :func:`jsonable` (arrays back with their dtype)."""
    if isinstance(value, dict) and "__array__" in value:
        return np.array(value["__array__"], dtype=np.dtype(value["dtype"]))
    return value
