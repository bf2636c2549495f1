"""Reproducible train/valid/test splits assigned per ``mol_id`` (conformers never straddle)."""

from __future__ import annotations

import hashlib

import numpy as np

DEFAULT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


def split_of(mol_id: str, seed: int = 0, fractions: dict[str, float] | None = None) -> str:
    """The split of one ``mol_id``: a seeded hash mapped onto the cumulative fractions."""
    fractions = fractions or DEFAULT_FRACTIONS
    digest = hashlib.sha256(f"{seed}:{mol_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    acc = 0.0
    for name, frac in fractions.items():
        acc += frac
        if u < acc:
            return name
    return list(fractions)[-1]


def assign_splits(mol_ids, seed: int = 0, fractions: dict[str, float] | None = None
                  ) -> np.ndarray:
    """Splits for an array of ``mol_id`` values (object array of str)."""
    cache: dict[str, str] = {}
    out = np.empty(len(mol_ids), dtype=object)
    for i, m in enumerate(mol_ids):
        m = str(m)
        if m not in cache:
            cache[m] = split_of(m, seed, fractions)
        out[i] = cache[m]
    return out
