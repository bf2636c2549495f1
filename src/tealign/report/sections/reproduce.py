"""Commands and timings (``tealign demo``, ``demo.json``): every step with its status and wall
time, and the commands that reproduce the run."""

from __future__ import annotations

from tealign import rundir as rd
from tealign.report.page import E, Page, Section, table


def render(page: Page) -> str:
    """The steps table and the commands; empty without ``demo.json``."""
    demo = page.load(rd.DEMO_STATE)
    if not demo:
        return ""
    rows = [[E(s["title"]), E(s.get("status", "")),
             page.num(rd.DEMO_STATE, ["steps", i, "wall_s"], ".1f", " s")]
            for i, s in enumerate(demo.get("steps", []))]
    cmds = "\n".join(E(f"$ {s['command']}") for s in demo.get("steps", []))
    return (f"<p class='lead'>Run in <code>{E(demo.get('run_dir', ''))}</code>; datasets from "
            f"<code>{E(demo.get('datasets', ''))}</code>. <code>tealign demo</code> reruns "
            "them all (finished steps are kept); each command below reproduces its "
            "section's numbers on its own.</p>"
            + table(["step", "status", "wall time"], rows, numeric_from=2)
            + f"<pre>{cmds}\n$ tealign report .</pre>")


SECTION = Section("reproduce", "Commands and timings", ("demo",), render)
