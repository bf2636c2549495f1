"""Datasets (``tealign info``, ``data/info_<dataset>.json``): each dataset as its summary
saved it, the energy key it was summarised with included."""

from __future__ import annotations

from tealign import rundir as rd
from tealign.report.page import E, Page, Section, commands, table


def render(page: Page) -> str:
    """One row a dataset summary; empty when there are none."""
    files = sorted(rd.path(page.run_dir, rd.DATA_DIR).glob("info_*.json"))
    if not files:
        return ""
    rows = []
    for f in files:
        name = f.stem[len("info_"):]
        rel = rd.info_json(name)
        d = page.load(rel) or {}
        elements = ", ".join(f"{E(k)} {v}" for k, v in d.get("elements", {}).items())
        rows.append([E(name), page.num(rel, "frames", "d"), page.num(rel, "atoms", "d"),
                     page.num(rel, "periodic_frames", "d"), elements,
                     f"<code>{E(str(d.get('energy_key') or ''))}</code>",
                     page.num(rel, ["energy_per_atom_eV", "mean"], ".4f"),
                     E(d.get("units_verdict", ""))])
    return ("<p class='lead'>Each dataset as <code>tealign info</code> summarised it. Energies "
            "per atom are those of the energy key shown (each method's energies sit under its "
            "own key, docs/architecture.md §4.3), in eV.</p>"
            + table(["dataset", "frames", "atoms", "periodic", "elements (atoms)",
                     "energy key", "mean E/atom (eV)", "units check"], rows,
                    text_cols=(4, 5, 7))
            + commands(page, [f"info_{f.stem[len('info_'):]}" for f in files]))


SECTION = Section("datasets", "Datasets", ("info",), render)
