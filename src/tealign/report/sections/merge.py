"""Merged training set (``tealign merge``, ``merged/report.json``): every source as the merge
counted it, how it reached the target scale (its alignment, or already there) and the
target's isolated-atom method as the merge recorded it."""

from __future__ import annotations

from pathlib import Path

from tealign import rundir as rd
from tealign.report.method_names import table_method
from tealign.report.page import E, Page, Section, commands, table


def _how(alignment: object) -> str:
    """How a source reached the target scale, from its ``alignment`` entry."""
    if alignment in (None, "target"):
        return "already on it"
    return f"aligned by <code>{E(Path(str(alignment)).name)}</code>"


def render(page: Page) -> str:
    """One row a source: frames in, written, rejected and per split."""
    rel = rd.MERGE_REPORT
    rep = page.load(rel)
    if not rep:
        return ""
    rows = []
    for name, src in rep.get("sources", {}).items():
        rows.append([E(name), _how(src.get("alignment")),
                     page.num(rel, ["sources", name, "frames_in"], "d"),
                     page.num(rel, ["sources", name, "frames_out"], "d"),
                     page.num(rel, ["sources", name, "frames_rejected"], "d"),
                     "/".join(page.num(rel, ["sources", name, "by_split", k], "d")
                              for k in ("train", "valid", "test"))])
    target = table_method(rep.get("target_e0"))
    scale = f"the target scale ({E(target)})" if target else "the target scale"
    return ("<p class='lead'>Every input frame is accounted for: written to the merged set "
            f"(on {scale}, originals kept as orig_*) or rejected with its reason. "
            "Molecules carry zero stress weight; conformers of one molecule never straddle "
            "splits.</p>"
            + table(["source", "to the target scale", "frames in", "written", "rejected",
                     "train/valid/test"], rows, text_cols=(1,))
            + commands(page, ["merge"]))


SECTION = Section("merge", "Merged training set", ("merge",), render)
