"""Atomic output: write to a temporary sibling, rename over the target when complete.

A crash or SIGKILL mid-write leaves the previous file (or nothing) in place, never a
truncated output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from tealign.errors import FrameError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    Works for files and directories. On an exception the temporary is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent) + "\n")


def rejects_path(output: str | os.PathLike) -> Path:
    """Where the rejects of a command writing ``output`` go: ``<output>.rejects.jsonl``."""
    out = Path(output)
    return out.with_name(out.name + ".rejects.jsonl")


def write_rejects(output: str | os.PathLike, rejects: Iterable[FrameError]) -> Path | None:
    """Write frame errors beside ``output``, one JSON object per line; None if there are none.

    Each line holds ``file``, ``frame`` (0-based index in that file), ``field`` and ``reason``.
    A stale rejects file from an earlier run is removed when there is nothing to report.
    """
    path = rejects_path(output)
    rejects = list(rejects)
    if not rejects:
        if path.exists():
            path.unlink()
        return None
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for r in rejects:
            fh.write(
                json.dumps(
                    {"file": r.file, "frame": r.frame, "field": r.field, "reason": r.reason}
                )
                + "\n"
            )
    return path
