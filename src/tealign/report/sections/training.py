"""Training (``tealign train``, ``train/``): the preset, the wall time and the command as
``train/`` records them, and the loss and validation curves read from mace-torch's own logs."""

from __future__ import annotations

import json
from pathlib import Path

from tealign import rundir as rd
from tealign.report.page import E, Page, Section, commands


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
    """The curves as a PNG at ``path`` (None when there is no epoch to plot)."""
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


def render(page: Page) -> str:
    """The training summary, the full command and the curves."""
    rel = rd.TRAIN_SUMMARY if page.load(rd.TRAIN_SUMMARY) else rd.TRAIN_JSON
    tj = page.load(rel)
    if not tj:
        return ""
    body = (f"<p class='lead'>mace-torch trains the model (preset "
            f"<code>{E(str(tj.get('preset')))}</code>, the MACE-Osaka24 architecture family); "
            f"wall time {page.num(rel, 'wall_s', '.0f', ' s')}. Full command:</p>"
            f"<pre>{E(' '.join(map(str, tj.get('command', []))))}</pre>")
    curves = training_curves(rd.path(page.run_dir, rd.TRAIN_DIR))
    fig = _plot_curves(curves, rd.path(page.run_dir, rd.TRAIN_CURVES_PNG))
    if fig:
        body += '<div class="figs">' + page.img(fig, "loss and validation errors per epoch "
                                                "(from mace-torch's results log)") + "</div>"
    return body + commands(page, ["train"])


SECTION = Section("training", "Training", ("train",), render)
