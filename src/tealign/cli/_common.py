"""What every command shares: the Typer apps, the error and output conventions, progress.

Every command prints a human summary, or with ``--json`` exactly one JSON object on stdout;
progress bars, logs and warnings go to stderr. Setup errors print one line naming file,
frame and field and exit with code 2 (docs/architecture.md §5.1, §6.1).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tealign import api
from tealign.errors import SetupError, missing_extra

app = typer.Typer(
    name="tealign",
    help="Total Energy Alignment (TEA) of quantum-chemistry datasets for universal MLIPs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
e0_app = typer.Typer(help="Isolated-atom energy tables (built-in and user JSON).",
                     no_args_is_help=True)
compute_app = typer.Typer(help="Reference calculations ("
                          + ", ".join(api.backend_titles())
                          + ") through a resumable job store.", no_args_is_help=True)
data_app = typer.Typer(help="Benchmark datasets: registry, download, verification.",
                       no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks of any calculator (paper section IV).",
                        no_args_is_help=True)
app.add_typer(e0_app, name="e0")
app.add_typer(compute_app, name="compute")
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
RetryOpt = Annotated[bool, typer.Option("--retry-failed", help="Run again the jobs the "
                                        "store holds as failed (after fixing their cause); "
                                        "by default a failed job is reported, not rerun.")]
StrictOpt = Annotated[bool, typer.Option(help="Treat frame errors as setup errors.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="Force the input reader.")]
ReaderOpt = Annotated[str | None, typer.Option(
    "--reader", help=f"Force the input reader: {api.format_names('read')} (default: from the "
    "file).")]
#: ``--format`` where it named the input reader (``align``): a deprecated alias of --reader
FormatAliasOpt = Annotated[str | None, typer.Option(
    "--format", hidden=True, help="Deprecated alias of --reader.")]


def pick_reader(reader: str | None, fmt: str | None) -> str | None:
    """``--reader``, or the deprecated ``--format`` (with a warning on stderr)."""
    if fmt is None:
        return reader
    if reader is not None and reader != fmt:
        raise SetupError(f"--reader {reader} and --format {fmt} disagree; --format is the "
                         "old name of --reader: give --reader only", field="--format")
    err.print("warning: --format is deprecated here (it names the input reader): use "
              f"--reader {fmt}", highlight=False, markup=False)
    return fmt
CALCULATOR_HELP = ("MACE model file, tealign-mini (the model that ships with tealign), "
                   + " or ".join(api.calculator_names()) + ".")

_stdout = [sys.stdout]
# Off a terminal, output is never wrapped: a path or a printed command stays on one line, so
# it can be pasted and grepped; tables are as wide as their cells. On a terminal, rich's
# usual layout (the terminal wraps long lines itself).
_UNWRAPPED_WIDTH = 10_000


def _console(file=None, stderr: bool = False) -> Console:
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    width = None if tty or os.environ.get("COLUMNS") else _UNWRAPPED_WIDTH
    return Console(file=file, stderr=stderr, soft_wrap=True, width=width)


class _ErrConsole:
    """The stderr console, made for the stream stderr is when a line is printed (tests and
    library code swap ``sys.stderr``)."""

    def __getattr__(self, name):
        return getattr(_console(stderr=True), name)


err = _ErrConsole()


def pretrained(value: str | None) -> str | None:
    """--calculator: a shipped model's name becomes its file path."""
    try:
        return api.resolve_calculator(value)
    except SetupError as exc:
        raise typer.BadParameter(exc.line()) from None


CalculatorOpt = Annotated[str, typer.Option(help=CALCULATOR_HELP, callback=pretrained)]


def out() -> Console:
    """Console on the real stdout (library output is diverted to stderr while commands run)."""
    return _console(file=_stdout[0])


def command(fn):
    """Turn SetupError, a file-system error (:func:`file_system_error`), or an optional
    package that is not installed, into one line on stderr and exit code 2 (1 when every
    frame was rejected: :class:`~tealign.errors.NothingWritten`); warnings go to stderr."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        def show(message, category, filename, lineno, file=None, line=None):
            err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)

        warnings.showwarning = show
        _stdout[0] = sys.stdout
        previous = _terminate_as_exit()
        _ignore_file_size_signal()
        try:
            # libraries that print (mace-torch, pyscf) must not pollute --json output
            with contextlib.redirect_stdout(sys.stderr):
                return fn(*args, **kwargs)
        except SetupError as exc:
            print(f"tealign: error: {exc.line()}", file=sys.stderr)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except ModuleNotFoundError as exc:
            missing = missing_extra(exc, api.backend_extras())
            if missing is None:
                raise
            print(f"tealign: error: {missing.line()}", file=sys.stderr)
            raise typer.Exit(2) from None
        except Exception as exc:  # file-system errors: one line, exit 2 (§6.1)
            line = file_system_error(exc)
            if line is None:
                raise
            print(f"tealign: error: {line}", file=sys.stderr)
            raise typer.Exit(2) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def file_system_error(exc: BaseException) -> str | None:
    """One line for an error of the file system (``OSError``: no space, read-only, name too
    long, file too large, permission, I/O; ``lmdb.Error`` from an LMDB write), naming the
    path; None for any other exception. The output's temporaries are gone by then
    (:func:`tealign.io.outputs.atomic_path`) and a previous output is kept."""
    import errno

    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0)
        what = exc.strerror or str(exc) or type(exc).__name__
        where = f"{exc.filename}: " if exc.filename else ""
        return (f"{where}{what}{f' ({code})' if code else ''}; nothing written (any previous "
                "output is kept)")
    if type(exc).__module__ == "lmdb":
        return f"LMDB: {exc}; nothing written (any previous output is kept)"
    return None


def _ignore_file_size_signal() -> None:
    # past ``ulimit -f`` a write then fails with EFBIG (one line) instead of SIGXFSZ killing
    # the process; forked workers inherit the ignored disposition
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def cmd(group: typer.Typer, name: str | None = None):
    """Register ``fn`` as command ``name`` of ``group`` under the :func:`command` rules (its
    help texts escaped: :func:`plain_help`)."""
    return lambda fn: group.command(name)(command(plain_help(fn)))


_escaped: set[int] = set()


def plain_help(fn):
    """Help texts are plain text, not Rich markup: escape ``[...]`` in the docstring and in
    every option's and argument's help and metavar, so that "[target] e0 and [[source]]"
    prints as written (Rich took bracketed words for markup tags and dropped them)."""
    import typing

    from rich.markup import escape

    if fn.__doc__:
        fn.__doc__ = escape(fn.__doc__)
    # the evaluated annotations replace the strings (``from __future__ import annotations``),
    # so that Typer reads the escaped objects rather than evaluating the strings afresh
    hints = typing.get_type_hints(fn, include_extras=True)
    fn.__annotations__ = hints
    for hint in hints.values():
        for info in getattr(hint, "__metadata__", ()):
            if id(info) in _escaped:  # shared Annotated aliases: escape once
                continue
            _escaped.add(id(info))
            for attr in ("help", "metavar"):
                if isinstance(getattr(info, attr, None), str):
                    setattr(info, attr, escape(getattr(info, attr)))
    return fn


def _terminate_as_exit():
    """SIGTERM raises SystemExit(143) in the main process, so that temporary outputs are
    removed on the way out (SIGKILL cannot be caught: the next run removes those)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _sigterm_to_exit)
    except ValueError:
        return None


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)


def _default_sigterm_in_child() -> None:
    # forked workers (multiprocessing pools) keep the default action: the pool's terminate()
    # must kill them even where they never run Python code again
    if signal.getsignal(signal.SIGTERM) is _sigterm_to_exit:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_default_sigterm_in_child)


def emit_json(obj: dict) -> None:
    """Print ``obj`` as strict JSON (NaN and Infinity become null)."""
    _stdout[0].write(api.json_text(obj, indent=2) + "\n")
    _stdout[0].flush()


def show(res, as_json: bool, render: Callable) -> None:
    """A command's output: with ``--json`` the result's ``to_json()`` object on stdout, else
    ``render(res)`` (the command's own tables on stdout, notes on stderr)."""
    if as_json:
        emit_json(res.to_json())
    else:
        render(res)


def print_table(columns, rows) -> None:
    """Print a table with these column headings and rows (sequences of cells) on stdout."""
    t = Table(*columns)
    for row in rows:
        t.add_row(*row)
    out().print(t)


def progress_bar() -> Progress:
    """A rich progress bar on stderr (hidden when stderr is not a terminal and CI is quiet)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} frames"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    )


@contextlib.contextmanager
def progress(description: str, total: int | None = None, counter: bool = False):
    """A progress bar for one task; yields the callback the library calls: with the number
    done (``counter=False``), with nothing (one more done), or with (done, total)."""
    if counter:
        from rich.progress import MofNCompleteColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                       TimeRemainingColumn(), console=_console(stderr=True), transient=False)
    else:
        bar = progress_bar()
    with bar:
        task = bar.add_task(description, total=total)

        def update(done: int | None = None, of: int | None = None) -> None:
            if done is None:
                bar.advance(task)
            else:
                bar.update(task, completed=done, **({"total": of} if of is not None else {}))

        yield update


def render_rejects(result, what: str = "frames") -> None:
    """The closing stderr line of a command that writes frames."""
    n = result.frames_rejected
    charged = result.to_json().get("frames_rejected_charged", 0)
    why = f" ({charged} charged: --allow-charged keeps them)" if charged else ""
    err.print(f"wrote {result.frames_out} {what} to {result.output}"
              + (f"; {n} rejected{why}, see {result.rejects_file}" if n else ""))
