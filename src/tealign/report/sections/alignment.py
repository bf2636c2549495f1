"""Alignment (``tealign fit``, ``fit/fit.json`` and ``fit/alignment.json``): the fitted
factor, the errors before and after AEC, the cross-validated correction models and the
paper's Fig. 4 beside this run's fit. The methods are named as the fit recorded them
(``source_method``, ``target_method``), the calibration set as the alignment did."""

from __future__ import annotations

from pathlib import Path

from tealign import rundir as rd
from tealign.report.method_names import fit_methods
from tealign.report.page import E, Page, Section, commands, table


def cards(page: Page) -> list[tuple[str, str]]:
    """The factor a and the calibration RMSE after ICEA + AEC."""
    if not page.load(rd.FIT_JSON):
        return []
    return [("alignment factor a", page.num(rd.FIT_JSON, "a", ".5f")),
            ("calib RMSE after ICEA+AEC", page.num(rd.FIT_JSON, "rmse_tea_eV", ".3f", " eV"))]


def calibration_file(page: Page, fit: dict) -> str | None:
    """The name of the calibration file the alignment of ``fit`` records, if it is found."""
    where = fit.get("alignment")
    alignment = page.load(str(where)) if where else None
    calib = (alignment or {}).get("calibration") or {}
    return Path(calib["file"]).name if calib.get("file") else None


def _fig4(page: Page, fit: dict, pair: str) -> str:
    """The paper's Fig. 4 RMSEs (published rows) with this run's fit below them."""
    from tealign.bench.published import FIG4_RMSE_EV

    rel = rd.FIT_JSON
    calib = calibration_file(page, fit)
    on = f" on <code>{E(calib)}</code>" if calib else ""
    body = ("<h3>Beside the paper's Fig. 4 <span class='badge'>published figures, on the "
            "paper's own data</span></h3><p class='muted'>The paper fitted the pairs below "
            f"over QM9 (up to 9 heavy atoms); this run fits {pair}{on}, so absolute numbers "
            "differ — the drop from ICEA to ICEA+AEC is the comparison.</p>")
    prow = [[E(k), f"{v['icea']:.3f}", f"{v['tea']:.3f}"] for k, v in FIG4_RMSE_EV.items()]
    prow.append([f"this run: {pair}",
                 page.num(rel, "rmse_icea_eV", ".3f"), page.num(rel, "rmse_tea_eV", ".3f")])
    return body + table(["pair", "RMSE after ICEA (eV)", "after ICEA+AEC (eV)"], prow,
                        classes=["pub"] * len(FIG4_RMSE_EV) + [""])


def render(page: Page) -> str:
    """The fit's table, its correction models, Fig. 4 and the parity plots."""
    fit = page.load(rd.FIT_JSON)
    if not fit:
        return ""
    rel = rd.FIT_JSON
    rows = [
        ["correction model", E(str(fit.get("model")))],
        ["a (95 % bootstrap interval)",
         f"{page.num(rel, 'a', '.5f')} ({page.num(rel, ['a_ci95', 0], '.5f')} – "
         f"{page.num(rel, ['a_ci95', 1], '.5f')})"],
        ["calibration structures", f"{page.num(rel, 'n', 'd')} used, "
                                   f"{page.num(rel, 'n_rejected', 'd')} rejected"],
        ["RMSE of total energies after ICEA", page.num(rel, "rmse_icea_eV", ".4f", " eV")],
        ["RMSE after ICEA + AEC", page.num(rel, "rmse_tea_eV", ".4f", " eV")],
        ["R² after ICEA / after ICEA + AEC",
         f"{page.num(rel, 'r2_icea', '.6f')} / {page.num(rel, 'r2_tea', '.6f')}"],
    ]
    source, target = (E(str(m or default)) for m, default in
                      zip(fit_methods(page), ("source method", "target method")))
    body = (f"<p class='lead'>Total Energy Alignment of the source ({source}) onto the target "
            f"({target}) on the calibration molecules computed with both: ICEA shifts by "
            "isolated-atom differences, AEC scales atomization energies by a (the "
            f"correction model chosen here: {E(str(fit.get('model', 'scale')))}; a "
            "scale+elements model adds one energy per atom of each element).</p>"
            + table(["", ""], rows, numeric_from=9))
    cv = fit.get("cv_rmse_eV") or {}
    if cv:
        best = min(cv, key=cv.get)
        body += "<h3>Correction models (K-fold cross-validated RMSE on held-out molecules)</h3>"
        body += table(["model", "CV RMSE (eV)", ""],
                      [[E(m), page.num(rel, ["cv_rmse_eV", m], ".4f"),
                        "chosen" if m == fit.get("model") else ("best" if m == best else "")]
                       for m in cv])
    body += _fig4(page, fit, f"{source} → {target}")
    body += '<div class="figs">' + page.img(rd.path(page.run_dir, rd.PARITY_PNG),
                                            "Fig. 4-style parity plots: after ICEA (left) and "
                                            "after ICEA + AEC (right)") + "</div>"
    return body + commands(page, ["fit"])


SECTION = Section("alignment", "Alignment (TEA fit)", ("fit",), render, cards)
