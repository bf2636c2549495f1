"""Summary: the headline numbers of every other section (their ``cards``), in the report's
order, under one sentence on what the run did, built from the results the run directory
holds: the fit's methods, the merge's sources, training and benchmarks where present."""

from __future__ import annotations

from tealign import rundir as rd
from tealign.bench.benchmarks import BENCHMARKS
from tealign.report.method_names import fit_methods, target_method
from tealign.report.page import E, Page, Section, cards


def _merge_clause(page: Page) -> str | None:
    """What the merge did, from ``merged/report.json``: which sources it aligned onto the
    target scale and which it took as they were."""
    sources = (page.load(rd.MERGE_REPORT) or {}).get("sources", {})
    if not sources:
        return None
    aligned = [E(n) for n, s in sources.items() if s.get("alignment") not in (None, "target")]
    native = [E(n) for n, s in sources.items() if s.get("alignment") in (None, "target")]
    target = target_method(page)
    scale = f"the {E(target)} scale" if target else "the target scale"
    if not aligned:
        return f"merge {', '.join(native)}"
    clause = f"put {', '.join(aligned)} on {scale}"
    return clause + (f", merge it with {', '.join(native)}" if native else "")


def _lead(page: Page) -> str:
    """One sentence on the run, from the results it holds (empty without ``demo.json``)."""
    demo = page.load(rd.DEMO_STATE)
    if not demo:
        return ""
    done = []
    if page.load(rd.FIT_JSON):
        source, target = fit_methods(page)
        done.append(f"fit the alignment of {E(str(source or 'the source method'))} onto "
                    f"{E(str(target or 'the target method'))} on a calibration set computed "
                    "with both")
    merge = _merge_clause(page)
    if merge:
        done.append(merge)
    if page.load(rd.TRAIN_SUMMARY) or page.load(rd.TRAIN_JSON):
        done.append("train a MACE model")
    if any(page.load(rd.bench_results(name)) for name in BENCHMARKS):
        done.append("benchmark it")
    what = (": " + (", ".join(done[:-1]) + " and " if len(done) > 1 else "") + done[-1]
            if done else "")
    return (f"<p class='lead'>The whole pipeline of tealign on the datasets in "
            f"<code>{E(str(demo.get('datasets', '')))}</code>{what}. Wall time of all steps: "
            f"{page.num(rd.DEMO_STATE, 'wall_s_including_resumed', '.0f', ' s')}"
            + (" (quick smoke-test sizes)" if demo.get("quick") else "") + ".</p>")


def render(page: Page, others: tuple[Section, ...] = ()) -> str:
    """The cards of every section of ``others`` that has headline numbers (the report's other
    sections, handed in by :func:`tealign.report.sections.sections`); empty when none has."""
    items = [item for s in others if s.cards for item in s.cards(page)]
    return _lead(page) + cards(items) if items else ""


SECTION = Section("summary", "Summary", (), render)
