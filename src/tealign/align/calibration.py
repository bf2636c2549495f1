"""Calibration data for a fit: validated frames → energies (eV), element counts and groups.

Frames lacking either energy, with NaN/inf, or charged are frame errors; an element that a
table lacks, or a key that no frame has, is a setup error. The value checks here
(:func:`check_energies`, :func:`reject_charged`) are shared with ``transform``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from tealign.errors import FrameError, SetupError
from tealign.io import as_batches
from tealign.io.frames import FrameBatch
from tealign.methods import IsolatedAtomTable
from tealign.provenance import charged_error_note

CHARGE_KEYS = ("charge", "total_charge")


@dataclass
class CalibrationData:
    """What a fit needs, per usable calibration structure (energies in eV)."""

    source_energy: np.ndarray
    target_energy: np.ndarray
    counts: np.ndarray  # (n, n_elements) atoms of each element
    elements: list[str]
    groups: np.ndarray | None
    rejects: list[FrameError]


def calibration_name(calibration, file: str | None = None) -> str:
    """The file name error lines give for ``calibration`` (``<calibration>`` if not a path)."""
    return file or (str(calibration) if isinstance(calibration, (str, os.PathLike))
                    else "<calibration>")


def collect(calibration, source_table: IsolatedAtomTable, target_table: IsolatedAtomTable,
            source_key: str, target_key: str, file: str | None = None,
            split: str | None = None, group_key: str = "mol_id") -> CalibrationData:
    """Validate calibration frames and gather energies, element counts and groups."""
    fname = calibration_name(calibration, file)
    e_src, e_tgt, numbers_list, offsets_list, groups, rejects = [], [], [], [], [], []
    seen_src = seen_tgt = False
    for batch in as_batches(calibration):
        rejects.extend(batch.rejects)
        if batch.n_frames == 0:
            continue
        keep = np.ones(batch.n_frames, dtype=bool)
        if split is not None:
            if "split" not in batch.info:
                raise SetupError("--split given but frames have no 'split' key",
                                 file=fname, field="split")
            keep &= np.asarray(batch.info["split"] == split) & batch.has("split")
        for key in (source_key, target_key):
            has = batch.has(key)
            if key == source_key:
                seen_src |= bool(has.any())
            else:
                seen_tgt |= bool(has.any())
            for i in np.flatnonzero(keep & ~has):
                rejects.append(FrameError(fname, int(batch.index[i]), key,
                                          "missing energy (the other method has one)"))
            keep &= has
            if key in batch.info:
                keep = check_energies(batch, key, keep, fname, rejects)
        keep = reject_charged(batch, keep, fname, rejects)
        sub = batch.select(keep)
        if sub.n_frames == 0:
            continue
        source_table.check_covers(sub.numbers, file=fname)
        target_table.check_covers(sub.numbers, file=fname)
        e_src.append(np.array([float(v) for v in sub.info[source_key]]))
        e_tgt.append(np.array([float(v) for v in sub.info[target_key]]))
        numbers_list.append(sub.numbers)
        offsets_list.append(sub.n_atoms)
        groups.append(np.asarray(sub.info[group_key]).astype(str)
                      if group_key in sub.info and sub.has(group_key).all()
                      else np.array([f"#{i}" for i in sub.index]))
    for key, seen in ((source_key, seen_src), (target_key, seen_tgt)):
        if not seen:
            raise SetupError("no calibration frame has this energy key", file=fname,
                             field=key)
    if not e_src:
        raise SetupError("no usable calibration structure (all were rejected)", file=fname)
    numbers = np.concatenate(numbers_list)
    # d-block atoms from a table of unknown settings: each table once (the same energies under
    # the same name, loaded twice, are one table)
    tables = {(t.name, tuple(sorted(t.energies.items()))): t
              for t in (source_table, target_table)}
    for table in tables.values():
        table.warn_unknown_settings(numbers)
    n_atoms = np.concatenate(offsets_list)
    elements = sorted({chemical_symbols[z] for z in np.unique(numbers)},
                      key=lambda s: atomic_numbers[s])
    col = {atomic_numbers[s]: j for j, s in enumerate(elements)}
    frame_of_atom = np.repeat(np.arange(len(n_atoms)), n_atoms)
    counts = np.zeros((len(n_atoms), len(elements)))
    np.add.at(counts, (frame_of_atom, np.array([col[z] for z in numbers])), 1)
    return CalibrationData(np.concatenate(e_src), np.concatenate(e_tgt), counts, elements,
                           np.concatenate(groups), rejects)


def reject_charged(batch: FrameBatch, keep: np.ndarray, fname: str, rejects: list,
                   allow_charged: bool = False) -> np.ndarray:
    """Frames whose total charge is not an integer, or (unless ``allow_charged``) is not
    0, become frame errors."""
    for ck in CHARGE_KEYS:
        if ck not in batch.info:
            continue
        col = batch.info[ck]
        has = batch.has(ck)
        for i in np.flatnonzero(keep & has):
            q, why = _charge(col[i])
            if why is None and (q == 0 or allow_charged):
                continue
            rejects.append(FrameError(
                fname, int(batch.index[i]), ck, why or
                f"charged structure (charge {q}); TEA's isolated-atom references "
                "are neutral atoms (--allow-charged keeps it: "
                f"{charged_error_note()})"))
            keep = keep.copy()
            keep[i] = False
    return keep


def finite(v) -> bool:
    """Whether ``v`` is a finite real number (not a bool, not an integer beyond float)."""
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool,
                                                                                 np.bool_)):
        return False
    try:
        return bool(np.isfinite(float(v)))
    except OverflowError:  # an integer beyond float's range (JSON's 10**400)
        return False


def _charge(v) -> tuple[int | None, str | None]:
    """(charge, None) for an integer total charge (an int, or a float with an integral
    value); (None, reason) for anything else (text, several numbers, 1.5, NaN, a bool)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, int) and not isinstance(v, bool):
        return v, None
    if isinstance(v, float) and np.isfinite(v) and v == int(v):
        return int(v), None
    text = str(v.tolist() if isinstance(v, np.ndarray) else v)
    return None, f"total charge must be one integer, not {text[:30]!r}"


def check_energies(batch: FrameBatch, key: str, keep: np.ndarray, fname: str,
                   rejects: list) -> np.ndarray:
    """Frames whose ``key`` is not a finite real number become frame errors."""
    col = batch.info[key]
    if col.dtype.kind in "iuf" and col.ndim == 1:
        bad = keep & ~np.isfinite(col.astype(float))
        why = ["NaN or inf energy"] * len(col)
    else:
        why = [None if finite(v.item() if isinstance(v, np.generic) else v)
               else ("NaN or inf energy" if isinstance(v, (float, np.floating))
                     else f"energy is not a number ({str(v)[:30]!r})") for v in col]
        bad = keep & np.array([w is not None for w in why], dtype=bool)
    for i in np.flatnonzero(bad):
        rejects.append(FrameError(fname, int(batch.index[i]), key, why[i]))
    return keep & ~bad
