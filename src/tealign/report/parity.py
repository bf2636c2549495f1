"""Parity plots of an alignment fit in the style of the paper's Fig. 4.

Two panels over the calibration structures: target total energy against the source total
energy after ICEA only, and after ICEA + AEC, each with RMSE (eV) and R² on it.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from tealign.errors import SetupError

#: the files ``parity_plots`` writes into its directory
PLOT_FILES = ("parity.png", "parity_icea.png", "parity_tea.png")
#: the PNG ``Software`` text of a plot tealign wrote: only such files are ever replaced
SOFTWARE = "tealign parity plot"


def tealign_png(path: Path) -> bool:
    """True if ``path`` is a PNG whose ``Software`` text chunk says tealign wrote it."""
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89PNG\r\n\x1a\n":
                return False
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    return False
                n, kind = struct.unpack(">I4s", head)
                if kind == b"IDAT" or kind == b"IEND":
                    return False  # text chunks of matplotlib come before the image data
                data = fh.read(n)
                fh.read(4)
                if kind == b"tEXt" and data.split(b"\0", 1) == [b"Software",
                                                                 SOFTWARE.encode()]:
                    return True
    except OSError:
        return False


def check_plot_dir(outdir: str | Path, field: str = "--plot") -> None:
    """Before any work: ``outdir`` is absent or a directory, and each plot file in it is
    absent or one tealign wrote (a user's ``parity.png`` is never replaced)."""
    from tealign.io.outputs import special_kind

    d = Path(outdir)
    kind = special_kind(d)
    if kind is not None or (d.exists() and not d.is_dir()):
        raise SetupError(f"--plot names a directory for the parity plots; this is "
                         f"{kind or 'a file'}", file=str(d), field=field)
    for name in PLOT_FILES:
        f = d / name
        if special_kind(f) is not None or (f.exists() and not tealign_png(f)):
            raise SetupError("a file that tealign did not write is where a parity plot goes; "
                             "it is kept: choose another --plot directory", file=str(f),
                             field=field)


def _panel(ax, target, aligned, title: str, color: str) -> None:
    rmse = float(np.sqrt(np.mean((aligned - target) ** 2)))
    ss_tot = float(np.sum((target - target.mean()) ** 2))
    r2 = 1 - float(np.sum((aligned - target) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    lo = float(min(target.min(), aligned.min()))
    hi = float(max(target.max(), aligned.max()))
    pad = 0.03 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, zorder=0)
    ax.scatter(target, aligned, s=10, alpha=0.7, color=color, edgecolors="none")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("target total energy (eV)")
    ax.set_ylabel("aligned source total energy (eV)")
    ax.set_title(title)
    ax.text(0.04, 0.96, f"RMSE = {rmse:.4f} eV\nR$^2$ = {r2:.6f}\nN = {len(target)}",
            transform=ax.transAxes, va="top", ha="left",
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.8"})


def parity_plots(target: np.ndarray, icea: np.ndarray, tea: np.ndarray, outdir: str | Path,
                 a: float, source_label: str = "source", target_label: str = "target",
                 model: str = "scale") -> list[Path]:
    """Write ``parity.png`` (both panels), ``parity_icea.png`` and ``parity_tea.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tealign.io.outputs import write_bytes_atomic

    outdir = Path(outdir)
    check_plot_dir(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    def save(fig, path: Path) -> None:  # atomic; replaces only tealign's own plots
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=130, metadata={"Software": SOFTWARE})
        write_bytes_atomic(path, buf.getvalue(), own=tealign_png, what="parity plot")

    target, icea, tea = (np.asarray(v, dtype=float) for v in (target, icea, tea))
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), constrained_layout=True)
    _panel(axes[0], target, icea, f"ICEA: {source_label} → {target_label}", "tab:orange")
    _panel(axes[1], target, tea, f"ICEA + AEC ({model}, a = {a:.5f})", "tab:blue")
    paths.append(outdir / "parity.png")
    save(fig, paths[-1])
    plt.close(fig)
    for name, values, title, color in (
        ("parity_icea.png", icea, "after ICEA", "tab:orange"),
        ("parity_tea.png", tea, f"after ICEA + AEC (a = {a:.5f})", "tab:blue"),
    ):
        fig, ax = plt.subplots(figsize=(5, 4.8), constrained_layout=True)
        _panel(ax, target, values, title, color)
        paths.append(outdir / name)
        save(fig, paths[-1])
        plt.close(fig)
    return paths
