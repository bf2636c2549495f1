"""Figures and the HTML report.

The report layer's public entry for the layers above it (:mod:`tealign.api`): the HTML
report (:func:`build_report`) and the fit's parity plots (:func:`parity_plots`, checked first
with :func:`check_plot_dir`). Each imports its module on first use, so importing
:mod:`tealign.report` stays cheap."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["build_report", "check_plot_dir", "parity_plots"]


def build_report(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write the self-contained HTML report of a run directory
    (:func:`tealign.report.html.build_report`); returns its path."""
    from tealign.report.html import build_report as build

    return build(run_dir, output)


def check_plot_dir(outdir: str | os.PathLike, field: str = "--plot") -> None:
    """Before any work: ``outdir`` is absent or a directory whose plot files are absent or
    tealign's (:func:`tealign.report.parity.check_plot_dir`)."""
    from tealign.report.parity import check_plot_dir as check

    check(outdir, field)


def parity_plots(target, icea, tea, outdir: str | os.PathLike, a: float,
                 source_label: str = "source", target_label: str = "target",
                 model: str = "scale") -> list[Path]:
    """Write the fit's parity plots (energies eV) into ``outdir``
    (:func:`tealign.report.parity.parity_plots`); returns their paths."""
    from tealign.report.parity import parity_plots as plots

    return plots(target, icea, tea, outdir, a, source_label, target_label, model)
