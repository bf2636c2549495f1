"""``tealign report RUN_DIR``: one self-contained HTML page from a run directory.

Reads the layout :mod:`tealign.demo` writes (docs/architecture.md §5.3; any part may be
absent). This module only composes: each stage's section renders itself from the JSON that
stage saved (:mod:`tealign.report.sections`, one module per stage), the page chrome and the
provenance of every number are :mod:`tealign.report.page`'s, and the sections whose files
the run directory holds go on the page in the report's order. Figures are embedded as
``<img>`` elements with ``data:`` URIs, so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import datetime as _dt
import platform
from pathlib import Path

from tealign import __version__
from tealign import rundir as rd
from tealign.io.outputs import atomic_path
from tealign.report.page import E, Page
from tealign.report.sections import sections
from tealign.report.sections.bench_parts import MINI_MODEL
from tealign.report.sections.training import training_curves

#: MINI_MODEL and training_curves stay importable from here (tests, experiments/multidomain)
__all__ = ["MINI_MODEL", "build_report", "compose", "training_curves"]


def compose(run_dir: Path) -> Page:
    """A :class:`Page` holding every section whose results ``run_dir`` holds, in order."""
    page = Page(run_dir)
    for section in sections():
        page.add(section.sid, section.title, section.render(page))
    return page


def build_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``output``); returns its path."""
    from tealign.errors import SetupError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SetupError("no such run directory", file=str(run_dir))
    page = compose(run_dir)
    if not page.sections:
        raise SetupError("nothing to report: no fit/, eval/, bench/ or data/ results found",
                         file=str(run_dir))
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = page.render("tealign report", [
        f"Total Energy Alignment (Shiota et al., arXiv:2412.13088) with open codes · "
        f"tealign {E(__version__)} · {E(when)} · {E(platform.node())}, Python "
        f"{E(platform.python_version())}"])
    out = Path(output) if output else rd.path(run_dir, rd.REPORT)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return out
