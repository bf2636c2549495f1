"""What the benchmark sections share: who a benchmark measured (named from the run
directory: ``bench/`` holds the runs of the calculator its results.json names, ``bench_mini/``
those of the model that ships with tealign), the published rows beside ours, the items a
benchmark left out and the figures its results.json lists."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from tealign import rundir as rd
from tealign.report.page import E, Page, table

#: how the report names the model that ships with tealign (the runs under bench_mini/)
MINI_MODEL = "tealign-mini (ships with tealign, trained to a plateau)"
MINI_SHORT = "tealign-mini"


class Model(NamedTuple):
    """How the report names the model (or calculator) behind a benchmark result."""

    short: str  #: on a summary card
    long: str   #: in a table row or a heading


def run_model(page: Page, rel: str) -> Model:
    """The calculator behind ``bench/<name>/results.json`` as that file names it: the model
    this run trained (``train/model.model``, with the preset ``train/`` records) or the
    calculator's file name."""
    calc = str((page.load(rel) or {}).get("calculator") or "")
    if calc and Path(calc) in (Path(rd.MODEL), page.run_dir / rd.MODEL):
        train = page.load(rd.TRAIN_SUMMARY) or page.load(rd.TRAIN_JSON) or {}
        preset = f", preset {train['preset']}" if train.get("preset") else ""
        return Model("this run's model", f"This run's model ({rd.MODEL}{preset})")
    name = E(Path(calc).name) if calc else "the model"
    return Model(name, name)


def model_of(page: Page, rel: str, mini: bool) -> Model:
    """Who a benchmark result measured: the shipped model under ``bench_mini/``, else
    :func:`run_model`."""
    return Model(MINI_SHORT, MINI_MODEL) if mini else run_model(page, rel)


def mini_rows(page: Page, name: str, cells: list[tuple[str, str]]) -> list[list[str]]:
    """The shipped model's row of a benchmark table (bench_mini/<name>/results.json), if run."""
    rel = rd.bench_results(name, mini=True)
    if not page.load(rel):
        return []
    return [[MINI_MODEL, *(page.num(rel, key, fmt) for key, fmt in cells)]]


def pub_rows(mapping: dict, fmt: str, badge: str = "published",
             blanks: int = 0) -> tuple[list[list[str]], list[str]]:
    """Rows of published figures (name -> value), badged, with ``blanks`` empty cells after
    the value, and their row classes."""
    rows = [[E(k) + f" <span class='badge'>{E(badge)}</span>",
             format(v, fmt) if isinstance(v, (int, float)) else E(str(v)), *[""] * blanks]
            for k, v in mapping.items()]
    return rows, ["pub"] * len(rows)


def left_out(what: str, skipped: list[dict] | None, id_key: str) -> str:
    """The benchmark's ``skipped`` entries as an HTML list (empty when there are none)."""
    if not skipped:
        return ""
    return (f"<p>{what} left out:</p><ul>" + "".join(
        f"<li>{E(str(k[id_key]))}: {E(str(k['reason']))}</li>" for k in skipped) + "</ul>")


def bench_figures(page: Page, name: str, results: dict, caption: str) -> str:
    """The figures a benchmark's results.json lists, embedded side by side; ``name`` is the
    benchmark (under bench/) or a directory relative to the run directory."""
    base = rd.path(page.run_dir, name if "/" in name else rd.bench_dir(name))
    return '<div class="figs">' + "".join(
        page.img(base / f, caption) for f in results.get("figures", [])) + "</div>"


def models_table(page: Page, name: str, head: list[str], cells: list[tuple[str, str]],
                 published: dict | None = None, pub_fmt: str = ".3f",
                 badge: str = "published", suffix: str = "") -> str:
    """A benchmark's table of models: the row of ``bench/<name>``'s calculator (named with
    ``suffix``), the shipped model's row where ``bench_mini/<name>`` holds one, then the
    ``published`` figures (name -> value, in ``pub_fmt``); ``cells`` are the (key, format)
    of each numeric column."""
    rel = rd.bench_results(name)
    rows = [[run_model(page, rel).long + suffix,
             *(page.num(rel, key, fmt) for key, fmt in cells)]]
    rows += mini_rows(page, name, cells)
    pr, pc = pub_rows(published or {}, pub_fmt, badge, blanks=len(cells) - 1)
    return table(head, rows + pr, classes=[""] * len(rows) + pc)
