"""The two kinds of bad input (docs/architecture.md §6.1, §6.2) and how they read.

A :class:`SetupError` stops a command before anything is written (exit code 2). A
:class:`FrameError` rejects one frame: it is counted, written with its reason to a rejects
file beside the output, and the command goes on (``--strict`` makes it a setup error).
Both render as one line naming the file, the frame and the field.
"""

from __future__ import annotations

from dataclasses import dataclass


def _where(file: str | None, frame: int | None, field: str | None) -> str:
    parts = []
    if file:
        parts.append(str(file))
    if frame is not None:
        parts.append(f"frame {frame}")
    if field:
        parts.append(f"field '{field}'")
    return ": ".join(parts)


class TealignError(Exception):
    """Base class: a one-line message that names file, frame and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        frame: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.frame = frame
        self.field = field
        super().__init__(self.line())

    def line(self) -> str:
        where = _where(self.file, self.frame, self.field)
        return f"{where}: {self.message}" if where else self.message


class SetupError(TealignError):
    """Bad input that makes the whole command meaningless; nothing is written (exit 2)."""

    def __reduce__(self):
        # pickled (from a worker process) with its parts, not its rendered line, so that the
        # parent can renumber the frame of a byte range (align/pipeline.py)
        if type(self) is not SetupError:
            return super().__reduce__()
        return (_setup_error, (self.message, self.file, self.frame, self.field))


def _setup_error(message, file, frame, field) -> SetupError:
    return SetupError(message, file=file, frame=frame, field=field)


@dataclass(frozen=True)
class FrameError:
    """One rejected frame: its index in the input file, the field at fault and why.

    ``failed``: the frame was rejected because a calculation failed (the job store keeps the
    failure until ``--retry-failed``), not because the input was bad."""

    file: str
    frame: int
    field: str
    reason: str
    failed: bool = False

    def line(self) -> str:
        return f"{_where(self.file, self.frame, self.field)}: {self.reason}"

    def as_setup_error(self) -> SetupError:
        return SetupError(self.reason, file=self.file, frame=self.frame, field=self.field)


#: what a failed calculation's message ends with: the job store keeps a failure until asked
#: to run it again
RETRY_HINT = ("failed jobs stay failed in the store; after fixing the cause, rerun with "
              "--retry-failed")

#: optional packages (import names) and the extra of tealign that installs each; the compute
#: backends' packages are named by the backends themselves
#: (:func:`tealign.compute.backends.extras`, passed in as ``extras``)
EXTRAS = {"torch": "mace", "mace": "mace", "e3nn": "mace", "lmdb": "mace",
          "ase_db_backends": "mace", "dftd3": "d3", "chgnet": "bench", "distributed": "dask",
          "dask": "dask", "dask_jobqueue": "cluster"}


def missing_extra(exc: ModuleNotFoundError,
                  extras: dict[str, str] | None = None) -> SetupError | None:
    """The setup error for an optional package that is not installed (naming the extra that
    installs it), or None if the missing module is not one of tealign's optional packages
    (:data:`EXTRAS` and ``extras``, import name → extra)."""
    known = {**EXTRAS, **(extras or {})}
    root = (exc.name or "").split(".")[0]
    if root not in known:
        return None
    return SetupError(f"this needs the optional package {root!r}, which is not installed: "
                      f"pip install 'tealign[{known[root]}]'", field=root)


class NothingWritten(SetupError):
    """Every frame of the input was rejected: the command writes nothing (a previous output
    at the path is kept) and exits with code 1 (docs/architecture.md §6.1). ``rejects`` are
    the frame errors, for the rejects file beside the output."""

    exit_code = 1

    def __init__(self, message: str, *, rejects=(), **where) -> None:
        super().__init__(message, **where)
        self.rejects = list(rejects)


def all_rejected(rejects, output=None) -> NothingWritten:
    """The error for a run whose ``rejects`` are all of its frames (how many per field, then
    the first reason)."""
    from collections import Counter

    rejects = list(rejects)
    first = f"; the first: {rejects[0].line()}" if rejects else ""
    fields = Counter(r.field for r in rejects)
    by = f" (by field: {', '.join(f'{k} {n}' for k, n in fields.most_common())})" \
        if rejects else ""
    return NothingWritten(f"all {len(rejects)} frames were rejected{by}, nothing written"
                          + (" (any previous output is kept)" if output else "") + first,
                          rejects=rejects, file=output, field=None)
