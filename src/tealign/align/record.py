"""The record of one fit: what ``fit.json`` holds (``tealign fit --json``; read back by the
report, docs/architecture.md §5.1, §5.3).

Keys: ``model``, ``a``, ``a_ci95``, ``n``, ``n_rejected``, ``rmse_icea_eV``,
``rmse_tea_eV``, ``r2_icea``, ``r2_tea``, ``offsets_eV``, ``alignment`` (path),
``sha256``, ``rejects_file``, ``plots``, ``source_method``, ``target_method`` and, for
``--model auto``, ``cv_rmse_eV``.
"""

from __future__ import annotations


def fit_record(tea, alignment: str, sha256: str, rejects_file: str | None,
               plots: list[str]) -> dict:
    """The ``fit.json`` object of a fitted :class:`TotalEnergyAlignment`."""
    record = {
        "model": tea.model_, "a": tea.a_, "a_ci95": tea.a_ci95_, "n": tea.n_,
        "n_rejected": tea.n_rejected_, "rmse_icea_eV": tea.rmse_icea_,
        "rmse_tea_eV": tea.rmse_tea_, "r2_icea": tea.r2_icea_, "r2_tea": tea.r2_tea_,
        "offsets_eV": tea.offsets_, "alignment": alignment, "sha256": sha256,
        "rejects_file": rejects_file, "plots": plots,
        "source_method": tea.source_table_.method_description,
        "target_method": tea.target_table_.method_description,
    }
    if tea.cv_rmse_ is not None:
        record["cv_rmse_eV"] = tea.cv_rmse_
    return record
