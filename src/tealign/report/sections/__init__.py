"""The report's sections, one module per stage, each rendering its results from the JSON the
stage saved in the run directory (docs/architecture.md §5.3).

A module holds one :class:`Section`: its anchor and title, the result kinds it shows (keys
of :data:`tealign.rundir.RESULT_FILES`), ``render(page)``, the section's HTML (empty when
its files are absent, and then the section is left out) and, where the stage has headline
numbers, ``cards(page)`` for the summary. :func:`sections` lists them in the report's order:
the summary and TEA's cross-domain claim first, then the stages in the order of the run
directory's layout, then the commands that reproduce them.
"""

from __future__ import annotations

import functools

from tealign.report.page import Section

__all__ = ["Section", "for_kind", "sections"]


def sections() -> tuple[Section, ...]:
    """Every section, in the report's order."""
    from tealign.report.sections import (
        alignment,
        benchmarks,
        cross,
        datasets,
        errors,
        merge,
        reproduce,
        summary,
        training,
    )

    rest = tuple(m.SECTION for m in (cross, datasets, alignment, merge, training, errors,
                                      benchmarks, reproduce))
    # the summary shows the others' cards: it is handed them (it imports none of them)
    first = summary.SECTION._replace(render=functools.partial(summary.render, others=rest))
    return (first, *rest)


def for_kind(kind: str) -> Section | None:
    """The section that renders results of ``kind`` (None for kinds the report does not
    show, e.g. ``convert``)."""
    return next((s for s in sections() if kind in s.kinds), None)
