"""``tealign report RUN_DIR``: one self-contained HTML page from a run directory.

Reads the layout :mod:`tealign.demo` writes (any part may be absent; sections without data
are left out): dataset summaries, the alignment fit and its parity plots, the merge report,
training curves from mace-torch's logs, per-domain errors and every benchmark's results.json
with the paper's published figures beside ours. Figures are embedded as ``<img>`` elements
with ``data:`` URIs, so the file can be mailed or archived on its own.

Every number taken from a JSON file is written as
``<span class="num" data-src="FILE" data-key="a/b/c" data-value="REPR" data-fmt="FMT">shown
</span>``: the file (relative to RUN_DIR), the path of keys inside it, the exact value and the
format it is shown with, so a test (and a curious reader) can check that the page says what
the results say.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import platform
from pathlib import Path
from typing import NamedTuple

from tealign import __version__
from tealign import rundir as rd
from tealign.io.atomic import atomic_path

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
    return "/".join(str(k) for k in key) if isinstance(key, (list, tuple)) else str(key)


class Page:
    """A small HTML builder that remembers where every number came from."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.sections: list[tuple[str, str, str]] = []  # (id, title, body)
        self._json: dict[str, dict | None] = {}

    def load(self, rel: str) -> dict | None:
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
        if not path.exists():
            return ""
        data = base64.b64encode(path.read_bytes()).decode()
        style = f' style="width:{width}px"' if width else ""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        return (f'<figure><img alt="{html.escape(caption or path.name)}"{style} '
                f'src="data:image/png;base64,{data}">{cap}</figure>')

    def add(self, sid: str, title: str, body: str) -> None:
        if body.strip():
            self.sections.append((sid, title, body))

    def render(self, title: str, subtitle: list[str]) -> str:
        nav = "".join(f'<a href="#{s}">{html.escape(t)}</a>' for s, t, _ in self.sections)
        secs = "\n".join(f'<section id="{s}"><h2>{html.escape(t)}</h2>\n{b}\n</section>'
                         for s, t, b in self.sections)
        sub = "".join(f"<p>{x}</p>" for x in subtitle)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
                f"<header><h1>{html.escape(title)}</h1>{sub}</header>"
                f"<nav>{nav}</nav><main>{secs}</main></body></html>\n")


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 1,
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


def _cards(items: list[tuple[str, str]]) -> str:
    return '<div class="grid">' + "".join(
        f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>'
        for k, v in items) + "</div>"


def _commands(page: Page, names: list[str]) -> str:
    demo = page.load(rd.DEMO_STATE) or {}
    lines = [s for s in demo.get("steps", []) if s["name"] in names and s.get("command")]
    if not lines:
        return ""
    return "<h3>Reproduce</h3><pre>" + "\n".join(
        html.escape(f"$ {s['command']}") for s in lines) + "</pre>"


E = html.escape


# ----------------------------------------------------------------------------- sections
class CrossRun(NamedTuple):
    """One cross-domain result a run directory may hold."""

    results: str   #: its results.json, relative to the run directory
    card: str      #: who, on the summary's card
    heading: str   #: who, heading its part of the cross-domain section
    step: str      #: the demo step that writes it


#: the cross-domain results, in the order the summary and the section show them
CROSS_RUNS = (
    CrossRun(rd.bench_results("cross_labels"), "TEA labels, no model",
             "Labels aligned by TEA, no model", "bench_cross_labels"),
    CrossRun(rd.bench_results("cross_labels_icea"), "ICEA-only labels, no model",
             "Labels shifted by ICEA only, no model", "bench_cross_labels_icea"),
    CrossRun(rd.bench_results("cross"), "demo model",
             "The demo's model (trained minutes ago)", "bench_cross"),
    CrossRun(rd.bench_results("cross", mini=True), "tealign-mini",
             "tealign-mini (ships with tealign, trained to a plateau)", "mini_bench_cross"))


def _summary(page: Page) -> None:
    items = []
    for run in CROSS_RUNS:
        rel, who = run.results, run.card
        d = page.load(rel)
        if d:
            if d.get("mode") == "alignment" and d.get("alignment_model") not in (None, "icea"):
                who = who.replace("TEA labels", f"TEA labels ({E(str(d['alignment_model']))}, "
                                                f"a = {float(d['a']):.4f})")
            items.append((f"{who} · cross-domain MAE ({page.num(rel, 'n', 'd')} items)",
                          page.num(rel, "mae_eV", ".3f", " eV")))
    if page.load(rd.FIT_JSON):
        items.append(("alignment factor a", page.num(rd.FIT_JSON, "a", ".5f")))
        items.append(("calib RMSE after ICEA+AEC",
                      page.num(rd.FIT_JSON, "rmse_tea_eV", ".3f", " eV")))
    ev = page.load(rd.EVAL_JSON)
    if ev:
        for dom in ev.get("by_config_type", {}):
            items.append((f"demo model · test {E(dom)}: energy MAE", page.num(
                rd.EVAL_JSON, ["by_config_type", dom, "energy_mae_meV_per_atom"], ".1f",
                " meV/atom")))
            items.append((f"demo model · test {E(dom)}: force MAE", page.num(
                rd.EVAL_JSON, ["by_config_type", dom, "forces_mae_meV_per_A"], ".0f",
                " meV/Å")))
    for mini, who in ((False, "demo model"), (True, "tealign-mini")):
        for name, key, label, fmt, unit in (
                ("lattice", "mae_A", "lattice MAE vs PBE", ".3f", " Å"),
                ("eos", "a0_A", "Si a₀", ".3f", " Å"),
                ("torsion", "barrier_mae_kcal_mol", "torsion barrier MAE", ".2f", " kcal/mol"),
                ("reactions", "mae_kcal_mol", "reaction barrier MAE", ".1f", " kcal/mol"),
                ("water", "peak_r_A", "water O–O first peak", ".2f", " Å")):
            rel = rd.bench_results(name, mini=mini)
            if page.load(rel):
                items.append((f"{who} · {label}", page.num(rel, key, fmt, unit)))
    demo = page.load(rd.DEMO_STATE)
    note = ""
    if demo:
        note = ("<p class='lead'>The whole pipeline of tealign on its bundled mini datasets: "
                "fit the alignment on a calibration set computed with both methods, put the "
                "organic set on the plane-wave PBE scale, merge it with the crystals, train a "
                "MACE model and benchmark it in both domains. Wall time of all steps: "
                f"{page.num('demo.json', 'wall_s_including_resumed', '.0f', ' s')}"
                + (" (quick smoke-test sizes)" if demo.get("quick") else "") + ".</p>")
    if items:
        page.add("summary", "Summary", note + _cards(items))


def _datasets(page: Page) -> None:
    files = sorted(rd.path(page.run_dir, rd.DATA_DIR).glob("info_*.json"))
    if not files:
        return
    rows = []
    for f in files:
        rel = f"{rd.DATA_DIR}/{f.name}"
        d = page.load(rel)
        elements = ", ".join(f"{E(k)} {v}" for k, v in d.get("elements", {}).items())
        rows.append([E(f.stem[5:]), page.num(rel, "frames", "d"), page.num(rel, "atoms", "d"),
                     page.num(rel, "periodic_frames", "d"), elements,
                     page.num(rel, ["energy_per_atom_eV", "mean"], ".4f"),
                     E(d.get("units_verdict", ""))])
    body = ("<p class='lead'>The mini datasets tealign computed itself with its own compute "
            "commands (GPAW PBE plane-wave PAW, valence-only; PySCF ωB97M-D3(BJ)/def2-SVP, "
            "all-electron, D3(BJ) stored apart; datasets/README.md gives the settings). "
            "Energies per atom are the dataset's own "
            "energy key, in eV.</p>"
            + _table(["dataset", "frames", "atoms", "periodic", "elements (atoms)",
                      "mean E/atom (eV)", "units check"], rows, text_cols=(4, 6))
            + _commands(page, [f"info_{f.stem[5:]}" for f in files]))
    page.add("datasets", "Datasets", body)


def _alignment(page: Page) -> None:
    fit = page.load(rd.FIT_JSON)
    if not fit:
        return
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
    source = E(str(fit.get("source_method", "source method")))
    target = E(str(fit.get("target_method", "target method")))
    body = (f"<p class='lead'>Total Energy Alignment of the source ({source}) onto the target "
            f"({target}) on the calibration molecules computed with both: ICEA shifts by "
            "isolated-atom differences, AEC scales atomization energies by a (the "
            f"correction model chosen here: {E(str(fit.get('model', 'scale')))}; a "
            "scale+elements model adds one energy per atom of each element).</p>"
            + _table(["", ""], rows, numeric_from=9))
    cv = fit.get("cv_rmse_eV") or {}
    if cv:
        best = min(cv, key=cv.get)
        body += "<h3>Correction models (K-fold cross-validated RMSE on held-out molecules)</h3>"
        body += _table(["model", "CV RMSE (eV)", ""],
                       [[E(m), page.num(rel, ["cv_rmse_eV", m], ".4f"),
                         "chosen" if m == fit.get("model") else ("best" if m == best else "")]
                        for m in cv])
    from tealign.bench.published import FIG4_RMSE_EV

    body += ("<h3>Beside the paper's Fig. 4 <span class='badge'>published figures, on the "
             "paper's own data</span></h3><p class='muted'>The paper aligned Psi4 "
             "ωB97M-D3(BJ)/def2-TZVPPD and ADF PBE/TZP onto VASP PBE/PW over QM9 (up to 9 "
             "heavy atoms); ours uses def2-SVP and the calib-qm9 molecules, so absolute "
             "numbers differ — the drop from ICEA to ICEA+AEC is the comparison.</p>")
    prow = [[E(k), f"{v['icea']:.3f}", f"{v['tea']:.3f}"] for k, v in FIG4_RMSE_EV.items()]
    prow.append([f"this run: {source} → {target}",
                 page.num(rel, "rmse_icea_eV", ".3f"), page.num(rel, "rmse_tea_eV", ".3f")])
    body += _table(["pair", "RMSE after ICEA (eV)", "after ICEA+AEC (eV)"], prow,
                   classes=["pub"] * len(FIG4_RMSE_EV) + [""])
    body += '<div class="figs">' + page.img(rd.path(page.run_dir, rd.PARITY_PNG),
                                            "Fig. 4-style parity plots: after ICEA (left) and "
                                            "after ICEA + AEC (right)") + "</div>"
    body += _commands(page, ["fit"])
    page.add("alignment", "Alignment (TEA fit)", body)


def _merge(page: Page) -> None:
    rel = rd.MERGE_REPORT
    rep = page.load(rel)
    if not rep:
        return
    rows = []
    for name in rep.get("sources", {}):
        rows.append([E(name), page.num(rel, ["sources", name, "frames_in"], "d"),
                     page.num(rel, ["sources", name, "frames_out"], "d"),
                     page.num(rel, ["sources", name, "frames_rejected"], "d"),
                     "/".join(page.num(rel, ["sources", name, "by_split", k], "d")
                              for k in ("train", "valid", "test"))])
    body = ("<p class='lead'>Every input frame is accounted for: written to the merged set "
            "(on the target scale, originals kept as orig_*) or rejected with its reason. "
            "Molecules carry zero stress weight; conformers of one molecule never straddle "
            "splits.</p>"
            + _table(["source", "frames in", "written", "rejected", "train/valid/test"], rows)
            + _commands(page, ["merge"]))
    page.add("merge", "Merged training set", body)


def training_curves(train_dir: Path, head: str | None = None) -> dict[str, list]:
    """Per-epoch metrics from mace-torch's ``results/*_train.txt`` (JSON lines): validation
    metrics of each ``eval`` line, and ``train_loss``, the mean of the epoch's ``opt`` lines.
    ``head``: only that head's validation lines (a multi-head model logs one per head)."""
    curves: dict[str, list] = {}
    opt: dict[int, list[float]] = {}
    for f in sorted((train_dir / "results").glob("*_train.txt")):
        for line in f.read_text().splitlines():
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            if d.get("epoch") is None:
                continue
            if d.get("mode") == "opt" and isinstance(d.get("loss"), (int, float)):
                opt.setdefault(int(d["epoch"]), []).append(float(d["loss"]))
            elif d.get("mode") == "eval" and head in (None, d.get("head", "Default")):
                for k, v in d.items():
                    if isinstance(v, (int, float)):
                        curves.setdefault(k, []).append(v)
    if opt:
        curves["train_epoch"] = sorted(opt)
        curves["train_loss"] = [sum(opt[e]) / len(opt[e]) for e in sorted(opt)]
    return curves


def _plot_curves(curves: dict[str, list], path: Path) -> Path | None:
    panels = [(k, lab) for k, lab in (("mae_e_per_atom", "energy MAE (eV/atom)"),
                                      ("mae_f", "force MAE (eV/Å)"),
                                      ("mae_stress", "stress MAE (eV/Å³)")) if k in curves]
    if "epoch" not in curves and "train_epoch" not in curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 1 + len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.9 * n, 3.3), constrained_layout=True,
                             squeeze=False)
    ax = axes[0][0]
    if "train_loss" in curves:
        ax.plot(curves["train_epoch"], curves["train_loss"], marker="o", ms=3,
                label="training (mean over epoch)")
    if "loss" in curves and "epoch" in curves:
        ax.plot(curves["epoch"], curves["loss"], marker="s", ms=3, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    for ax, (k, lab) in zip(axes[0][1:], panels):
        ax.plot(curves["epoch"][: len(curves[k])], curves[k], marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {lab}")
        if min(curves[k]) > 0:
            ax.set_yscale("log")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _training(page: Page) -> None:
    tj = page.load(rd.TRAIN_SUMMARY) or page.load(rd.TRAIN_JSON)
    if not tj:
        return
    rel = rd.TRAIN_SUMMARY if page.load(rd.TRAIN_SUMMARY) else \
        rd.TRAIN_JSON
    body = (f"<p class='lead'>mace-torch trains the model (preset "
            f"<code>{E(str(tj.get('preset')))}</code>, the MACE-Osaka24 architecture family); "
            f"wall time {page.num(rel, 'wall_s', '.0f', ' s')}. Full command:</p>"
            f"<pre>{E(' '.join(map(str, tj.get('command', []))))}</pre>")
    curves = training_curves(rd.path(page.run_dir, rd.TRAIN_DIR))
    fig = _plot_curves(curves, rd.path(page.run_dir, rd.TRAIN_CURVES_PNG))
    if fig:
        body += '<div class="figs">' + page.img(fig, "loss and validation errors per epoch "
                                                "(from mace-torch's results log)") + "</div>"
    body += _commands(page, ["train"])
    page.add("training", "Training", body)


METRICS = [("energy_mae_meV_per_atom", "E MAE (meV/atom)", ".2f"),
           ("energy_rmse_meV_per_atom", "E RMSE (meV/atom)", ".2f"),
           ("forces_mae_meV_per_A", "F MAE (meV/Å)", ".1f"),
           ("forces_rmse_meV_per_A", "F RMSE (meV/Å)", ".1f"),
           ("stress_mae_meV_per_A3", "σ MAE (meV/Å³)", ".2f")]


def _errors(page: Page) -> None:
    ev = page.load(rd.EVAL_JSON)
    if not ev:
        return
    rel = rd.EVAL_JSON
    rows = [["overall", page.num(rel, ["overall", "n"], "d"),
             *(page.num(rel, ["overall", k], f) for k, _, f in METRICS)]]
    for dom in ev.get("by_config_type", {}):
        rows.append([E(dom), page.num(rel, ["by_config_type", dom, "n"], "d"),
                     *(page.num(rel, ["by_config_type", dom, k], f) for k, _, f in METRICS)])
    body = ("<p class='lead'>Errors on the held-out test split, on the target (PBE/PW) scale, "
            "per domain (config_type).</p>"
            + _table(["set", "n", *(lab for _, lab, _ in METRICS)], rows)
            + _commands(page, ["eval"]))
    page.add("errors", "Per-domain errors", body)


def _pub_rows(mapping: dict, fmt: str) -> tuple[list[list[str]], list[str]]:
    rows = [[E(k) + " <span class='badge'>published</span>",
             format(v, fmt) if isinstance(v, (int, float)) else E(str(v))]
            for k, v in mapping.items()]
    return rows, ["pub"] * len(rows)


def _left_out(what: str, skipped: list[dict] | None, id_key: str) -> str:
    """The benchmark's ``skipped`` entries as an HTML list (empty when there are none)."""
    if not skipped:
        return ""
    return (f"<p>{what} left out:</p><ul>" + "".join(
        f"<li>{E(str(k[id_key]))}: {E(str(k['reason']))}</li>" for k in skipped) + "</ul>")


def _bench_figures(page: Page, name: str, results: dict, caption: str) -> str:
    """The figures a benchmark's results.json lists, embedded side by side; ``name`` is the
    benchmark (under bench/) or a directory relative to the run directory."""
    base = rd.path(page.run_dir, name if "/" in name else rd.bench_dir(name))
    return '<div class="figs">' + "".join(
        page.img(base / f, caption) for f in results.get("figures", [])) + "</div>"


#: how the report names the two models a demo run benchmarks
DEMO_MODEL = "the demo's model (trained minutes ago)"
MINI_MODEL = "tealign-mini (ships with tealign, trained to a plateau)"


def _mini_rows(page: Page, name: str, cells: list[tuple[str, str]]) -> list[list[str]]:
    """The shipped model's row of a benchmark table (bench_mini/<name>/results.json), if run."""
    rel = rd.bench_results(name, mini=True)
    if not page.load(rel):
        return []
    return [[MINI_MODEL, *(page.num(rel, key, fmt) for key, fmt in cells)]]


def _bench(page: Page) -> None:
    parts = []
    rel = rd.bench_results("lattice")
    d = page.load(rel)
    if d:
        rows = [[DEMO_MODEL, page.num(rel, "mae_A", ".4f")]]
        rows += _mini_rows(page, "lattice", [("mae_A", ".4f")])
        pr, pc = _pub_rows(d.get("published_mae_A", {}), ".3f")
        s = "<h3>Lattice constants (cubic crystals)</h3>"
        s += (f"<p class='muted'>Cell relaxed with FrechetCellFilter to fmax 0.01 eV/Å; "
              f"{page.num(rel, 'n', 'd')} crystals inside the first-shell limit; r_max "
              f"{page.num(rel, 'r_max_A', '.2f', ' Å')}. Crystals the model has no elements "
              f"for are skipped ({len(d.get('skipped', []))}).</p>")
        s += _table(["model", "MAE vs PBE (Å)"], rows + pr, classes=[""] * len(rows) + pc)
        by = d.get("mae_by_structure", {})
        if by:
            s += _table(["structure", "MAE vs PBE (Å)"],
                        [[E(k), page.num(rel, ["mae_by_structure", k], ".4f")] for k in by])
        crow = [[E(c["name"]), E(c["structure"]), page.num(rel, ["crystals", i, "a_A"], ".4f"),
                 page.num(rel, ["crystals", i, "a_pbe"], ".4f"),
                 page.num(rel, ["crystals", i, "error_vs_pbe_A"], "+.4f")]
                for i, c in enumerate(d.get("crystals", []))]
        if crow:
            s += _table(["crystal", "structure", "a (Å)", "a PBE (Å)", "error (Å)"], crow,
                        numeric_from=2)
        s += _bench_figures(page, "lattice", d, "lattice-constant errors")
        parts.append(s + _commands(page, ["bench_lattice"]))
    rel = rd.bench_results("eos")
    d = page.load(rel)
    if d:
        s = "<h3>Si energy–volume curve</h3>"
        s += _table(["", "a₀ (Å)", "B₀ (GPa)", "RMSE vs reference (meV/atom)"], [
            [DEMO_MODEL, page.num(rel, "a0_A", ".4f"), page.num(rel, "b0_GPa", ".1f"),
             page.num(rel, "rmse_vs_reference_meV_per_atom", ".2f")],
            *_mini_rows(page, "eos", [("a0_A", ".4f"), ("b0_GPa", ".1f"),
                                      ("rmse_vs_reference_meV_per_atom", ".2f")]),
            [f"reference: {E(Path(str(d.get('reference', ''))).name)}",
             page.num(rel, "reference_a0_A", ".4f"), page.num(rel, "reference_b0_GPa", ".1f"),
             ""]])
        s += _bench_figures(page, "eos", d, "E–V curves relative to their minima")
        parts.append(s + _commands(page, ["bench_eos"]))
    rel = rd.bench_results("torsion")
    d = page.load(rel)
    if d:
        rows = [[DEMO_MODEL, page.num(rel, "barrier_mae_kcal_mol", ".3f"),
                 page.num(rel, "profile_mae_kcal_mol", ".3f")]]
        pub = d.get("published_barrier_mae_kcal_mol", {})
        rows += [[E(k) + " <span class='badge'>published</span>", f"{v:.3f}", ""]
                 for k, v in pub.items()]
        s = "<h3>Biaryl torsions</h3>"
        s += (f"<p class='muted'>{page.num(rel, 'n', 'd')} molecules, relaxed scans every "
              f"{page.num(rel, 'step_deg', 'g', '°')}; reference B3LYP-D3(BJ)/DZVP (OpenFF); "
              f"{E(str(d.get('published_label', '')))}.</p>")
        s += _table(["model", "barrier MAE (kcal/mol)", "profile MAE (kcal/mol)"], rows,
                    classes=[""] + ["pub"] * len(pub))
        if d.get("unconverged_points"):
            s += (f"<p class='muted'>{page.num(rel, 'unconverged_points', 'd')} scan points "
                  f"reached the step limit ({page.num(rel, 'max_steps', 'd')} BFGS steps) "
                  "before fmax 0.01 eV/Å; they are kept (flagged in results.json).</p>")
        if d.get("cap_bit"):
            where = "; ".join(
                f"{E(str(c['molid']))}: {int(c['points_cut_short'])} points cut short, "
                f"{int(c['points_not_run'])} not run" for c in d["cap_bit"])
            s += (f"<p class='muted'>The cap of {page.num(rel, 'max_force_calls', 'd')} force "
                  f"calls for all scans together bit ({page.num(rel, 'force_calls', 'd')} "
                  f"used): {where}. Points cut short keep the energy they had reached (flagged in "
                  "results.json).</p>")
        s += _left_out("Molecules", d.get("skipped"), "molid")
        s += _bench_figures(page, "torsion", d, "torsion profiles vs reference")
        parts.append(s + _commands(page, ["bench_torsion"]))
    rel = rd.bench_results("reactions")
    d = page.load(rel)
    if d:
        rows = [[DEMO_MODEL + " (RDB7 barriers)", page.num(rel, "mae_eV", ".3f")]]
        rows += _mini_rows(page, "reactions", [("mae_eV", ".3f")])
        own = [""] * len(rows)
        pub = d.get("published_transition1x_barrier_mae_eV", {})
        rows += [[E(k) + " <span class='badge'>published, Transition1x</span>", f"{v:.3f}"]
                 for k, v in pub.items()]
        s = "<h3>Reaction barriers</h3>"
        s += (f"<p class='muted'>{page.num(rel, 'n', 'd')} RDB7 reactions, forward barrier "
              f"E(TS) − E(R) against CCSD(T)-F12: MAE of the demo's model "
              f"{page.num(rel, 'mae_kcal_mol', '.2f', ' kcal/mol')}.</p>")
        s += _table(["model", "barrier MAE (eV)"], rows, classes=own + ["pub"] * len(pub))
        s += _bench_figures(page, "reactions", d, "barrier errors")
        parts.append(s + _commands(page, ["bench_reactions"]))
    rel = rd.bench_results("water")
    d = page.load(rel)
    if d:
        row = [DEMO_MODEL, *(page.num(rel, key, ".3f")
                             for key in ("peak_r_A", "peak_g", "rmsd_vs_exp"))]
        parts.append("<h3>Liquid water O–O RDF</h3>"
                     + _table(["", "first peak r (Å)", "g(r) at peak", "RMSD vs experiment"],
                              [row])
                     + _bench_figures(page, "water", d, "O–O RDF")
                     + _commands(page, ["bench_water"]))
    demo = page.load(rd.DEMO_STATE) or {}
    skipped = [s for s in demo.get("steps", []) if s.get("status") in ("skipped", "failed")
               and s["name"].startswith("bench_")]
    if skipped:
        why = {s["name"]: s.get("reason") or f"failed, exit {s.get('exit_code')}"
               for s in skipped}
        parts.append("<h3>Not run</h3><ul>" + "".join(
            f"<li>{E(s['title'])}: {E(why[s['name']])}</li>" for s in skipped) + "</ul>")
    if parts:
        page.add("benchmarks", "Benchmarks",
                 "<p class='lead'>The paper's section IV benchmarks on the demo's model and, "
                 "where a row says so, on tealign-mini; per-crystal and per-item tables are "
                 "the demo's model. Rows marked "
                 "<span class='badge'>published</span> are the paper's Tables I–IV, computed "
                 "on the paper's own reference data with full-size models; they are context, "
                 "not a like-for-like comparison.</p>" + "".join(parts))


def _cross_one(page: Page, run: CrossRun) -> str:
    """One `tealign bench cross` result: per-kind table, per-item table, figures, command."""
    from tealign.bench.cross import KIND_TITLES, KINDS

    rel = run.results
    d = page.load(rel)
    if not d:
        return ""
    who = (f"the organic labels aligned by {E(Path(str(d.get('alignment'))).name)} "
           f"(a = {page.num(rel, 'a', '.4f')}), the crystals at the target level"
           if d.get("mode") == "alignment" else
           f"calculator {E(Path(str(d.get('calculator'))).name)}, one single point per frame")
    s = f"<h3>{E(run.heading)}</h3>"
    s += (f"<p class='muted'>{who}; reference: {E(str(d.get('target_key')))} of every frame. "
          "Errors are predicted − reference.</p>")
    rows = [[E(KIND_TITLES[k]), page.num(rel, ["by_kind", k, "n"], "d"),
             page.num(rel, ["by_kind", k, "mae_eV"], ".3f"),
             page.num(rel, ["by_kind", k, "max_abs_eV"], ".3f")]
            for k in KINDS if d.get("by_kind", {}).get(k, {}).get("n")]
    rows.append(["all", page.num(rel, "n", "d"), page.num(rel, "mae_eV", ".3f"),
                 page.num(rel, "max_abs_eV", ".3f")])
    s += _table(["kind", "N", "MAE (eV)", "max |error| (eV)"], rows)
    irow = [[E(it["id"]), E(it["kind"]), page.num(rel, ["items", i, "reference_eV"], ".3f"),
             page.num(rel, ["items", i, "predicted_eV"], ".3f"),
             page.num(rel, ["items", i, "error_eV"], "+.3f")]
            for i, it in enumerate(d.get("items", []))]
    if irow:
        s += _table(["item", "kind", "reference (eV)", "predicted (eV)", "error (eV)"],
                    irow, numeric_from=2)
    s += _left_out("Items", d.get("skipped"), "id")
    s += _bench_figures(page, Path(rel).parent.as_posix(), d,
                        "cross-domain parity and per-item errors")
    return s + _commands(page, [run.step])


def _cross(page: Page) -> None:
    """TEA's claim first: one energy surface across domains, measured on reactions between
    molecules and crystals, adsorption and molecular crystals (`tealign bench cross`)."""
    body = "".join(_cross_one(page, run) for run in CROSS_RUNS)
    if body:
        lead = ("<p class='lead'>What the alignment is for: molecules and crystals on one "
                "energy scale. Each quantity mixes both domains (gas–solid reaction energies, "
                "adsorption energies, molecular-crystal lattice energies), so a scale error "
                "between the domains shows up here and nowhere else. First the aligned labels "
                "themselves (the floor under any model trained on them), then the model.</p>")
        page.add("cross", "Cross-domain consistency", lead + body)


def _reproduce(page: Page) -> None:
    demo = page.load(rd.DEMO_STATE)
    if not demo:
        return
    rows = [[E(s["title"]), E(s.get("status", "")),
             page.num(rd.DEMO_STATE, ["steps", i, "wall_s"], ".1f", " s")]
            for i, s in enumerate(demo.get("steps", []))]
    cmds = "\n".join(E(f"$ {s['command']}") for s in demo.get("steps", []))
    body = (f"<p class='lead'>Run in <code>{E(demo.get('run_dir', ''))}</code>; datasets from "
            f"<code>{E(demo.get('datasets', ''))}</code>. <code>tealign demo</code> reruns "
            "them all (finished steps are kept); each command below reproduces its "
            "section's numbers on its own.</p>"
            + _table(["step", "status", "wall time"], rows, numeric_from=2)
            + f"<pre>{cmds}\n$ tealign report .</pre>")
    page.add("reproduce", "Commands and timings", body)


def build_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``output``); returns its path."""
    from tealign.errors import SetupError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SetupError("no such run directory", file=str(run_dir))
    page = Page(run_dir)
    for section in (_summary, _cross, _datasets, _alignment, _merge, _training, _errors,
                    _bench, _reproduce):
        section(page)
    if not page.sections:
        raise SetupError("nothing to report: no fit/, eval/, bench/ or data/ results found",
                         file=str(run_dir))
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = page.render("tealign report", [
        f"Total Energy Alignment (Shiota et al., arXiv:2412.13088) with open codes · "
        f"tealign {E(__version__)} · {E(when)} · {E(platform.node())}, Python "
        f"{E(platform.python_version())}"])
    out = Path(output) if output else rd.path(run_dir, rd.REPORT)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return out
