"""The method names a run directory's results record, for the prose of the report.

Sections name methods only as the results name them: the fit's ``source_method`` and
``target_method`` (``fit/fit.json``, from the isolated-atom tables' provenance) and the
target isolated-atom table the merge recorded (``merged/report.json``). None where the run
directory holds neither; the prose then says "the target scale" without a name.
"""

from __future__ import annotations

from tealign import rundir as rd
from tealign.errors import SetupError
from tealign.report.page import Page


def table_method(table: dict | None) -> str | None:
    """Code and method of an isolated-atom table JSON object as its provenance records them
    (``methods.IsolatedAtomTable.method_description``); None when it is not a table."""
    from tealign.methods import IsolatedAtomTable

    if not isinstance(table, dict):
        return None
    try:
        return IsolatedAtomTable.from_json_dict(table).method_description
    except (SetupError, ValueError, TypeError):
        return None


def fit_methods(page: Page) -> tuple[str | None, str | None]:
    """(source, target) method of the fit, as ``fit/fit.json`` names them."""
    fit = page.load(rd.FIT_JSON) or {}
    return fit.get("source_method"), fit.get("target_method")


def target_method(page: Page) -> str | None:
    """The target scale's method: the fit's target, else the merge's target table."""
    target = fit_methods(page)[1]
    if target:
        return str(target)
    merge = page.load(rd.MERGE_REPORT) or {}
    return table_method(merge.get("target_e0"))
