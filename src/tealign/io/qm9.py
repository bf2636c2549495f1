"""QM9 (Ramakrishnan et al., Sci. Data 1, 140022 (2014)) through the ``qm9pack`` PyPI package.

``qm9pack`` cannot be imported with current setuptools and loads all 130k rows through
pandas, so its CSV files are located without importing it and streamed row by row
(docs/architecture.md §7.3). Geometries are the B3LYP/6-31G(2df,p) minima in Å. The B3LYP
electronic energy is ``InternalEnergy_0K_au`` − ``ZPVE_au`` (U0 contains the zero-point
energy), converted from hartree to eV, under the key ``energy_qm9_b3lyp`` (its isolated-atom
table is the built-in ``b3lyp-6-31g2dfp``).
"""

from __future__ import annotations

import ast
import csv
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from tealign import units
from tealign.errors import FrameError, SetupError
from tealign.io.frames import FrameBatch, FrameRecord

ENERGY_KEY = "energy_qm9_b3lyp"
QM9_METHOD = "b3lyp/6-31g(2df,p) (gaussian09, QM9)"


def qm9_csv_files() -> list[Path]:
    """The qm9pack CSV files in index order; :class:`SetupError` if qm9pack is missing."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError(
            "QM9 needs the qm9pack package: pip install qm9pack", field="qm9"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    files = sorted(folder.glob("qm9_part*.csv"))
    if not files:
        raise SetupError("qm9pack is installed but holds no qm9_part*.csv", file=str(folder))
    return files


def iter_qm9_rows(limit: int | None = None) -> Iterator[dict]:
    """Yield QM9 CSV rows (dicts of strings) in index order, at most ``limit``."""
    csv.field_size_limit(1 << 24)
    n = 0
    for path in qm9_csv_files():
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                yield row
                n += 1
                if limit is not None and n >= limit:
                    return


def row_to_record(row: dict, index: int) -> FrameRecord:
    """One QM9 CSV row → a frame with ``energy_qm9_b3lyp`` (eV), ``mol_id`` and SMILES."""
    symbols = ast.literal_eval(row["Elements"])
    positions = np.array(ast.literal_eval(row["XYZ_Ang"]), dtype=float)
    energy_ha = float(row["InternalEnergy_0K_au"]) - float(row["ZPVE_au"])
    qm9_index = int(row["Index"])
    return FrameRecord(
        numbers=np.array([atomic_numbers[s] for s in symbols]),
        positions=positions,
        info={
            ENERGY_KEY: energy_ha * units.HARTREE_TO_EV,
            "mol_id": f"qm9_{qm9_index:06d}",
            "qm9_index": qm9_index,
            "smiles": row["SMILES"],
            "config_type": "qm9",
        },
        index=index,
    )


def iter_qm9(limit: int | None = None, batch_size: int = 2048) -> Iterator[FrameBatch]:
    """Stream the first ``limit`` QM9 molecules (all of them when None) as batches."""
    records: list[FrameRecord] = []
    rejects: list[FrameError] = []
    for i, row in enumerate(iter_qm9_rows(limit)):
        try:
            records.append(row_to_record(row, i))
        except (KeyError, ValueError, SyntaxError) as exc:
            rejects.append(FrameError("qm9pack", i, "row", f"unparsable QM9 row: {exc}"))
        if len(records) >= batch_size:
            yield FrameBatch.from_records(records, rejects)
            records, rejects = [], []
    if records or rejects:
        yield FrameBatch.from_records(records, rejects)


def read_path(path: str, batch_size: int = 2048) -> Iterator[FrameBatch]:
    """``qm9`` (every molecule) or ``qm9:N`` (the first N) as batches."""
    text = str(path)
    limit = None
    if ":" in text:
        try:
            limit = int(text.split(":", 1)[1])
        except ValueError:
            raise SetupError("qm9:N needs an integer N", file=text) from None
        if limit < 1:
            raise SetupError(f"qm9:N needs N ≥ 1 molecules (got {limit})", file=text)
    return iter_qm9(limit, batch_size)
