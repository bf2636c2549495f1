"""Safe output: write to a temporary sibling, rename over the target when complete.

Guarantees (docs/architecture.md §6.4, README "Outputs"):

- a crash, Ctrl-C, SIGTERM or SIGKILL mid-write leaves the previous output (or nothing) in
  place, never a truncated one;
- an output never destroys what tealign did not write: a file output whose path is an existing
  directory, and a directory output whose path is a directory holding files tealign did not
  write (its manifest ``.<name>.tealign-output.json`` beside it does not list them), are
  setup errors; an output that
  names one of the command's inputs is a setup error (:func:`check_not_input`);
- temporary files (``.<name>.tmp-<pid>``) are removed on every exit path Python sees; those
  left by a killed run (their process is gone) are removed by the next run on the same output.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from tealign.errors import FrameError, SetupError

MANIFEST = ".tealign-output.json"


def manifest_path(directory: Path) -> Path:
    """Where tealign lists the files of a directory it wrote (beside it, so the directory
    itself holds only its outputs: MACE reads shard directories whole)."""
    return directory.with_name(f".{directory.name}{MANIFEST}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    Works for files and directories (the caller decides by what it creates at the temporary
    path). A directory written this way gets a manifest of its files, so a later run may
    replace it; any other existing directory is refused with a :class:`SetupError`. On an
    exception (including SystemExit and KeyboardInterrupt) the temporary is removed.
    """
    target = Path(os.path.abspath(path))
    if target == target.parent:
        raise SetupError("output path is the file-system root", file=str(path))
    check_replaceable(target, shown=str(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        files = None
        if tmp.is_dir() and not tmp.is_symlink():
            files = _listing(tmp)
            if target.exists() and not target.is_dir():
                raise SetupError("output path is an existing file; a directory output will "
                                 "not replace it: choose another path", file=str(path),
                                 field="--output")
        elif (tmp.exists() or tmp.is_symlink()) and target.is_dir() and not target.is_symlink():
            check_replaceable(target, shown=str(path), writing_dir=False)
    except BaseException:
        _remove(tmp)
        raise
    if not tmp.exists() and not tmp.is_symlink():
        return  # the caller wrote nothing
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        _remove(old)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    manifest = manifest_path(target)
    if files is not None:
        manifest.write_text(json.dumps({"written_by": "tealign", "files": files}, indent=1)
                            + "\n")
    elif manifest.exists():
        manifest.unlink()


#: what a name from a config or from data may hold when tealign makes a path of it (a source
#: name becomes a folder under ``merge --per-source``'s output): letters, digits, ``_ . + -``,
#: no separator, not ``.`` or ``..``, at most 100 characters
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")


def check_safe_name(value: str, *, file: str | None = None, field: str | None = None) -> str:
    """Return ``value`` if it is a safe path component (see ``_SAFE_NAME``), else raise a
    :class:`SetupError` naming the file and field it came from."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or value in (".", ".."):
        raise SetupError(f"{value!r} is not a valid name: use letters, digits and _ . + - "
                         "(at most 100 characters, no path separators, not '..')",
                         file=file, field=field)
    return value


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root / parts…``, proven to lie inside ``root`` (after resolving ``..`` and
    symbolic links) before anything writes or deletes there; else :class:`SetupError`."""
    base = Path(os.path.realpath(root))
    path = Path(root).joinpath(*parts)
    real = Path(os.path.realpath(path))
    if real != base and base not in real.parents:
        raise SetupError(f"path {path} would lie outside the output {root}; refused",
                         file=str(path))
    return path


def check_replaceable(target: Path, shown: str | None = None, writing_dir: bool = True) -> None:
    """Raise :class:`SetupError` unless writing ``target`` destroys nothing tealign did not
    write: a missing path, a file, an empty directory, or a directory of tealign's own
    (manifest present, no other files) may be replaced."""
    shown = shown or str(target)
    if target.is_symlink() or not target.is_dir():
        return
    foreign = foreign_files(target)
    if not writing_dir:
        raise SetupError("output path is an existing directory; tealign writes a file here "
                         "and will not replace a directory: give a file name",
                         file=shown, field="--output")
    if foreign:
        listed = ", ".join(foreign[:3]) + (" …" if len(foreign) > 3 else "")
        raise SetupError(f"output directory exists and holds files not written by tealign "
                         f"({listed}); choose a new output directory or remove it yourself",
                         file=shown, field="--output")


def foreign_files(directory: Path) -> list[str]:
    """Files under ``directory`` that tealign's manifest beside it does not list."""
    present = _listing(directory)
    if not present:
        return []
    try:
        listed = set(json.loads(manifest_path(directory).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        listed = set()
    return [p for p in present if p not in listed]


def _listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if not p.is_dir() or p.is_symlink())


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` beside ``target`` whose process
    is gone (a killed run); returns what was removed. Live runs' temporaries are left."""
    removed = []
    try:
        siblings = list(target.parent.glob(f".{target.name}.*-*"))
    except OSError:
        return removed
    for p in siblings:
        rest = p.name[len(target.name) + 2:]
        kind, _, pid = rest.partition("-")
        if kind not in ("tmp", "old") or not pid.isdigit():
            continue
        if _process_alive_since(int(pid), p):
            continue
        with contextlib.suppress(OSError):
            _remove(p)
            removed.append(p)
    return removed


def _process_alive_since(pid: int, path: Path) -> bool:
    """True if process ``pid`` exists and may have written ``path`` (it started before the
    path was last modified; a reused pid of a newer process does not count)."""
    if pid == os.getpid():
        return False  # our own leftover from an earlier, failed attempt
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        stat = Path(f"/proc/{pid}/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime"))
        started = btime + start_ticks / ticks
        return started <= path.lstat().st_mtime + 1.0
    except (OSError, ValueError, IndexError, StopIteration):
        return True


def check_not_input(output: str | os.PathLike, inputs: Iterable, field: str = "--output"
                    ) -> None:
    """Raise :class:`SetupError` if ``output`` is one of ``inputs``, or a directory output
    would contain (and so replace) one of them. Built-in names that are not paths are
    ignored."""
    out = Path(os.path.abspath(output))
    for item in inputs:
        if item is None:
            continue
        text = str(item)
        p = Path(os.path.abspath(text))
        if not p.exists():
            continue
        same = out == p or (out.exists() and os.path.samefile(out, p))
        inside = out in p.parents
        if same or inside:
            raise SetupError(f"output {'is' if same else 'contains'} the input {text}; "
                             "tealign never writes over its inputs: choose another output",
                             file=text, field=field)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def strict_json(obj):
    """``obj`` with every non-finite float replaced by None, so that it dumps as strict JSON
    (no NaN or Infinity: an undefined number is ``null``)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy scalars and arrays
        return strict_json(obj.tolist())
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` that never writes NaN or Infinity (they become null)."""
    return json.dumps(strict_json(obj), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(dumps(obj, indent=indent) + "\n")


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
            fh.write(dumps({"file": r.file, "frame": r.frame, "field": r.field,
                            "reason": r.reason}) + "\n")
    return path
