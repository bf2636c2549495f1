"""The page every report section writes into: CSS, :class:`Page` (JSON loading, numbers
with their provenance, embedded figures, the section list) and small HTML helpers (tables,
cards, the commands behind a section).

Every number taken from a JSON file is written as
``<span class="num" data-src="FILE" data-key="a/b/c" data-value="REPR" data-fmt="FMT">shown
</span>``: the file (relative to RUN_DIR), the path of keys inside it, the exact value and the
format it is shown with, so a test (and a curious reader) can check that the page says what
the results say.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from tealign import rundir as rd

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dfe3ea; --accent:#1f5fbf; --bg:#f6f7f9;
        --pub:#7a4f00; --pubbg:#fff6e0; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; color:var(--fg); background:var(--bg); }
header { background:#17233a; color:#fff; padding:28px 40px 22px; }
header h1 { margin:0 0 4px; font-size:26px; font-weight:600; }
header p { margin:2px 0; color:#c8d2e6; font-size:14px; }
nav { position:sticky; top:0; z-index:2; background:#fff; border-bottom:1px solid var(--line);
      padding:8px 40px; font-size:14px; }
nav a { color:var(--accent); text-decoration:none; margin-right:16px; white-space:nowrap; }
main { max-width:1180px; margin:0 auto; padding:10px 40px 60px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; margin:22px 0;
          padding:18px 26px 22px; }
section h2 { margin:0 0 10px; font-size:20px; }
section h3 { margin:18px 0 6px; font-size:16px; }
p.lead { color:var(--muted); margin:0 0 12px; }
table { border-collapse:collapse; margin:8px 0 12px; font-size:14px; }
th, td { border-bottom:1px solid var(--line); padding:5px 12px 5px 0; text-align:left;
         vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td.n, th.n { text-align:right; font-variant-numeric: tabular-nums; }
tr.pub td { color:var(--pub); background:var(--pubbg); }
.badge { display:inline-block; font-size:12px; padding:1px 7px; border-radius:10px;
         background:var(--pubbg); color:var(--pub); border:1px solid #f0d9a0; }
.figs { display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start; }
figure { margin:6px 0; }
figure img { max-width:100%; border:1px solid var(--line); border-radius:4px; background:#fff; }
figcaption { font-size:13px; color:var(--muted); }
.grid { display:grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap:12px;
        margin:6px 0 4px; }
.card { border:1px solid var(--line); border-radius:6px; padding:10px 14px; }
.card .k { font-size:13px; color:var(--muted); }
.card .v { font-size:20px; font-weight:600; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
            font-size:13px; }
pre { background:#f0f2f6; padding:10px 12px; border-radius:6px; overflow-x:auto;
      white-space:pre-wrap; word-break:break-all; }
.muted { color:var(--muted); }
"""


def _pointer(key: str | list) -> str:
    """A key path as ``a/b/0``."""
    return "/".join(str(k) for k in key) if isinstance(key, (list, tuple)) else str(key)


class Page:
    """A small HTML builder that remembers where every number came from."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.sections: list[tuple[str, str, str]] = []  # (id, title, body)
        self._json: dict[str, dict | None] = {}

    def load(self, rel: str) -> dict | None:
        """The JSON object of file ``rel`` (relative to the run directory), read once; None when
        the file is absent or not JSON."""
        if rel not in self._json:
            p = self.run_dir / rel
            try:
                self._json[rel] = json.loads(p.read_text()) if p.exists() else None
            except json.JSONDecodeError:
                self._json[rel] = None
        return self._json[rel]

    def num(self, rel: str, key, fmt: str = ".4g", unit: str = "") -> str:
        """The value at ``key`` of JSON file ``rel``, formatted, with its provenance."""
        doc = self.load(rel)
        value = doc
        for k in (key if isinstance(key, (list, tuple)) else [key]):
            value = None if value is None else value[k] if isinstance(value, list) \
                else value.get(k) if isinstance(value, dict) else None
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return '<span class="muted">–</span>'
        shown = format(value, fmt) if isinstance(value, (int, float)) else str(value)
        return (f'<span class="num" data-src="{html.escape(rel)}" '
                f'data-key="{html.escape(_pointer(key))}" data-value="{html.escape(repr(value))}" '
                f'data-fmt="{html.escape(fmt)}">'
                f"{html.escape(shown)}{unit}</span>")

    def img(self, path: Path, caption: str = "", width: int | None = None) -> str:
        """A PNG embedded as a ``data:`` URI in a ``<figure>``; empty when it is absent."""
        if not path.exists():
            return ""
        data = base64.b64encode(path.read_bytes()).decode()
        style = f' style="width:{width}px"' if width else ""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        return (f'<figure><img alt="{html.escape(caption or path.name)}"{style} '
                f'src="data:image/png;base64,{data}">{cap}</figure>')

    def add(self, sid: str, title: str, body: str) -> None:
        """Append a section (left out when ``body`` is blank)."""
        if body.strip():
            self.sections.append((sid, title, body))

    def render(self, title: str, subtitle: list[str]) -> str:
        """The whole HTML page: header, navigation and the sections in the order added."""
        nav = "".join(f'<a href="#{s}">{html.escape(t)}</a>' for s, t, _ in self.sections)
        secs = "\n".join(f'<section id="{s}"><h2>{html.escape(t)}</h2>\n{b}\n</section>'
                         for s, t, b in self.sections)
        sub = "".join(f"<p>{x}</p>" for x in subtitle)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
                f"<header><h1>{html.escape(title)}</h1>{sub}</header>"
                f"<nav>{nav}</nav><main>{secs}</main></body></html>\n")


def table(head: list[str], rows: list[list[str]], numeric_from: int = 1,
          classes: list[str] | None = None, text_cols: tuple[int, ...] = ()) -> str:
    """An HTML table; columns from ``numeric_from`` on are right-aligned numbers, except
    ``text_cols``."""

    def cls(i: int) -> str:
        return ' class="n"' if i >= numeric_from and i not in text_cols else ""

    th = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(head))
    body = []
    for r, row in enumerate(rows):
        rc = f' class="{classes[r]}"' if classes and classes[r] else ""
        tds = "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{rc}>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def cards(items: list[tuple[str, str]]) -> str:
    """Key figures as a grid of cards: (what, value) pairs."""
    return '<div class="grid">' + "".join(
        f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>'
        for k, v in items) + "</div>"


def commands(page: Page, names: list[str]) -> str:
    """The commands of the demo steps ``names`` (from ``demo.json``) as a "Reproduce" block;
    empty when the run directory records none of them."""
    demo = page.load(rd.DEMO_STATE) or {}
    lines = [s for s in demo.get("steps", []) if s["name"] in names and s.get("command")]
    if not lines:
        return ""
    return "<h3>Reproduce</h3><pre>" + "\n".join(
        html.escape(f"$ {s['command']}") for s in lines) + "</pre>"


#: HTML-escape a text for the page
E = html.escape


class Section(NamedTuple):
    """One section of the report (:mod:`tealign.report.sections` lists them)."""

    sid: str                                   #: the HTML anchor
    title: str                                 #: its heading (and navigation link)
    kinds: tuple[str, ...]                     #: result kinds it renders (rundir.RESULT_FILES)
    render: Callable[[Page], str]              #: its HTML; empty when its files are absent
    cards: Callable[[Page], list[tuple[str, str]]] | None = None  #: headline numbers
