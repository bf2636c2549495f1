"""Safe outputs: every output (data, JSON, rejects files) is written to a temporary sibling and
renamed over the target when complete.

Guarantees (docs/architecture.md §6.4, README "Outputs"):

- a crash, Ctrl-C, SIGTERM or SIGKILL mid-write leaves the previous output (or nothing) in
  place, never a truncated one;
- an output never destroys what tealign did not write: a file output whose path is an existing
  directory, and a directory output whose path is a directory holding files tealign did not
  write (its manifest ``.<name>.tealign-output.json`` beside it does not list them), are
  setup errors; an output that
  names one of the command's inputs is a setup error (:func:`check_not_input`);
- temporary files (``.<name>.tmp-<pid>``) are removed on every exit path Python sees; those
  left by a killed run (their process is gone) are removed by the next run on the same output;
- only what is absent, a regular file, or a directory of tealign's may be replaced: a symbolic
  link, a device (``/dev/null``), a FIFO or a socket at an output path is a setup error
  (:func:`check_replaceable`), and so is a name too long for the temporaries beside it;
- nothing is deleted but through :func:`remove_inside`, which proves the path lies inside
  the folder it is given (tests/test_never_destroy.py walks the sources for other calls).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
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
    check_replaceable(target, shown=str(path), writing_dir=None)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    check_name_room(target, shown=str(path), room=len(tmp.name) - len(target.name))
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
    except BaseException as exc:
        if isinstance(exc, OSError):
            # a failed write() names no file: name the output; a file in the temporary is
            # named as it would have been in the output
            name = str(exc.filename or "")
            exc.filename = (str(path) + name[len(str(tmp)):] if name.startswith(str(tmp))
                            else name or str(path))
        with contextlib.suppress(OSError):
            _remove(tmp)
        raise
    if not tmp.exists() and not tmp.is_symlink():
        return  # the caller wrote nothing
    manifest = manifest_path(target)
    try:
        if files is not None:  # the manifest first: a full disk fails here, nothing replaced
            mtmp = manifest.with_name(manifest.name + f".tmp-{os.getpid()}")
            mtmp.write_text(json.dumps({"written_by": "tealign", "files": files}, indent=1)
                            + "\n")
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            _remove(old)
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old, target)  # the previous output back in place
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        with contextlib.suppress(OSError):
            _remove(tmp)
            if files is not None:
                _remove(mtmp)
        raise
    if files is not None:
        os.replace(mtmp, manifest)
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


#: bytes a name may need beside it: ``.<name>.tmp-<pid>``, the manifest
#: ``.<name>.tealign-output.json``, ``<name>.rejects.jsonl`` and its temporary, the sidecars
#: ``<name>.statistics.json`` / ``<name>.meta.jsonl`` and theirs (pids up to 7 digits),
#: the manifest's own temporary (33 bytes)
NAME_ROOM = 40


def name_max(directory: Path) -> int:
    """The longest file name (bytes) the file system holding ``directory`` (or its nearest
    existing parent) allows; 255 where it cannot be asked."""
    d = directory
    while not d.exists() and d != d.parent:
        d = d.parent
    try:
        return int(os.pathconf(d, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_name_room(target: Path, shown: str | None = None, room: int = NAME_ROOM) -> None:
    """SetupError unless ``target``'s name plus ``room`` bytes fits the file system's name
    limit (the temporaries and sidecars tealign writes beside an output are longer than it)."""
    n = len(os.fsencode(target.name))
    limit = name_max(target.parent)
    if n + room > limit:
        raise SetupError(f"output name is {n} bytes long; this file system allows {limit} and "
                         f"tealign needs {room} more for the files it writes beside it: use a "
                         f"name of at most {limit - room} bytes",
                         file=shown or str(target), field="--output")


def special_kind(target: Path) -> str | None:
    """What ``target`` is when tealign must never replace it: ``"a symbolic link to …"``,
    ``"a device"``, ``"a FIFO"``, ``"a socket"``; None for absent, a file or a directory."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:  # e.g. a component that is a file: let the writer report it
        return None if exc.errno == 20 else f"unreadable ({exc.strerror})"
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(target)})"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def check_replaceable(target: Path, shown: str | None = None,
                      writing_dir: bool | None = True) -> None:
    """Raise :class:`SetupError` unless writing ``target`` destroys nothing tealign did not
    write: a missing path, a regular file (for a file output), an empty directory, or a
    directory of tealign's own (manifest present, no other files) may be replaced. Symbolic
    links, devices, FIFOs and sockets never are. ``writing_dir``: True for a directory
    output, False for a file output, None when not known yet (only the kind-free checks)."""
    shown = shown or str(target)
    kind = special_kind(target)
    if kind is not None:
        raise SetupError(f"output path is {kind}; tealign replaces only regular files and "
                         "directories it wrote: give another path", file=shown, field="--output")
    if not target.exists():
        return
    if not target.is_dir():
        if writing_dir:
            raise SetupError("output path is an existing file; a directory output will not "
                             "replace it: choose another path", file=shown, field="--output")
        return
    if writing_dir is None:
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
        fields = Path(f"/proc/{pid}/stat").read_text()
        start_ticks = int(fields.rsplit(")", 1)[1].split()[19])
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


def remove_inside(root: str | os.PathLike, path: str | os.PathLike,
                  missing_ok: bool = True) -> None:
    """Delete ``path`` (a file, or a folder with everything in it) after proving that it lies
    inside ``root`` (:func:`inside`); the one way tealign deletes anything outside this
    module. A symbolic link is removed itself, never what it points to."""
    p = Path(path)
    rel = os.path.relpath(os.path.abspath(p), os.path.abspath(root))
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        raise SetupError(f"path {p} would lie outside {root}; refused", file=str(p))
    inside(root, os.path.dirname(rel) or ".")
    if missing_ok and not (p.exists() or p.is_symlink()):
        return
    _remove(p)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, own: Callable[[Path], bool]
                       | None = None, what: str = "file") -> Path:
    """Write ``data`` to ``path`` atomically; an existing file is replaced only when
    ``own(path)`` says tealign wrote it (else :class:`SetupError`, the file is kept)."""
    target = Path(path)
    if target.exists() and own is not None and not own(target):
        raise SetupError(f"{what} exists and was not written by tealign; it is kept: remove it "
                         "or choose another place", file=str(target))
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


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
    A stale rejects file from an earlier run is removed when there is nothing to report —
    only if it is tealign's (:func:`own_rejects`); a user's file of that name is never
    deleted or replaced (:func:`check_rejects_path` refuses it before the work).
    """
    path = rejects_path(output)
    rejects = list(rejects)
    if path.exists() and not own_rejects(path):
        raise SetupError("a file that tealign did not write is where the rejects go; it is "
                         "kept: move it or choose another output", file=str(path))
    if not rejects:
        if path.exists():
            remove_inside(path.parent, path)
        return None
    with atomic_path(path) as tmp, RejectsWriter(tmp) as log:
        log.write(rejects)
    return path


def reject_line(r: FrameError) -> str:
    """One line of a rejects file: a JSON object with ``file``, ``frame`` (0-based index in
    that file), ``field`` and ``reason``."""
    return dumps({"file": r.file, "frame": r.frame, "field": r.field, "reason": r.reason}) + "\n"


class RejectsWriter:
    """A rejects file written as frame errors arrive, one :func:`reject_line` each; the file
    is created at the first one, so a run without rejects leaves none. The streaming form
    of :func:`write_rejects` (``tealign merge`` writes into its temporary folder)."""

    def __init__(self, path: str | os.PathLike):
        self.path, self.n = Path(path), 0
        self._fh = None

    def write(self, errors: Iterable[FrameError]) -> None:
        for r in errors:
            if self._fh is None:
                self._fh = open(self.path, "w")  # noqa: SIM115 (closed in close())
            self._fh.write(reject_line(r))
            self.n += 1

    def close(self) -> Path | None:
        """Close the file; its path, or None when nothing was written."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        return self.path if self.n else None

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


REJECT_FIELDS = ("file", "frame", "field", "reason")


def own_rejects(path: Path) -> bool:
    """True if ``path`` is a regular file whose first line is a rejects record as tealign
    writes them (a JSON object with exactly ``file``, ``frame``, ``field``, ``reason``):
    the test for a rejects file tealign may replace or remove."""
    if special_kind(path) is not None or not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 20)
        rec = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(rec, dict) and sorted(rec) == sorted(REJECT_FIELDS)


def check_rejects_path(output: str | os.PathLike) -> None:
    """Before the work: the rejects file beside ``output`` is absent or tealign's own."""
    path = rejects_path(output)
    kind = special_kind(path)
    if kind is not None or (path.exists() and not own_rejects(path)):
        raise SetupError(f"{'a file' if kind is None else kind} that tealign did not write "
                         "is where this output's rejects go; it is kept: move it or choose "
                         "another output", file=str(path), field="--output")
