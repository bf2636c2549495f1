"""Vectorised fixed-point formatting of float columns into bytes (the extxyz writer's hot path).

Python's ``%`` formatting costs ~0.2-0.5 µs per number; a million-frame file has hundreds of
millions. Here a whole column is rendered with numpy integer arithmetic into a
``(rows, width)`` uint8 array of ASCII digits.

Exactness: a column is written with the fewest decimals ``d`` in :data:`DECIMALS` for which
every value survives the round trip (``round(x·10^d) / 10^d == x``: both sides are the
correctly rounded value of the same rational, so this is exactly what a reader's ``strtod``
returns). When no ``d`` is exact, :func:`format_float_columns` reports it and the caller
either falls back to Python's shortest ``repr`` (exact) or accepts ``d = 12`` rounding
(1e-12 absolute) for computed values.
"""

from __future__ import annotations

import numpy as np

DECIMALS = (4, 8, 12)
#: |x|·10^d must stay below 2^53 for the integer conversion to be exact.
_LIMIT = float(2**53)


def exact_decimals(col: np.ndarray) -> int | None:
    """Smallest d in DECIMALS that writes every finite value of ``col`` exactly, else None."""
    x = np.asarray(col, dtype=float)
    if not np.isfinite(x).all():
        return None
    for d in DECIMALS:
        scale = 10.0**d
        scaled = x * scale
        if np.abs(scaled).max(initial=0.0) >= _LIMIT:
            return None
        if np.array_equal(np.rint(scaled) / scale, x):
            return d
    return None


_LUT4 = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)


def _digits(v: np.ndarray, n_digits: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative ints ``v`` (< 10^n_digits): (n, n_digits)."""
    chunks = []
    for _ in range((n_digits + 3) // 4):
        chunks.append(_LUT4[v % 10_000])
        v = v // 10_000
    out = np.concatenate(chunks[::-1], axis=1) if chunks else np.zeros((len(v), 0), np.uint8)
    return out[:, out.shape[1] - n_digits:]


def format_fixed(col: np.ndarray, decimals: int) -> np.ndarray:
    """Render a 1-D float array as right-aligned ``%.{decimals}f`` fields: (n, width) uint8.

    Values with |x|·10^decimals ≥ 2^53 or non-finite values must not be passed.
    """
    x = np.asarray(col, dtype=float)
    q = np.rint(x * 10.0**decimals).astype(np.int64)
    neg = q < 0
    a = np.abs(q)
    unit = 10**decimals
    ip = a // unit
    fp = a - ip * unit
    max_ip = int(ip.max(initial=0))
    n_int_max = max(1, len(str(max_ip)))
    ints = _digits(ip, n_int_max)
    # blank leading zeros (keep the units digit), then place the sign before the first digit
    n_int = np.ones(len(x), dtype=np.int64)
    for k in range(1, n_int_max):
        n_int += ip >= 10**k
    lead = np.arange(n_int_max)[None, :] < (n_int_max - n_int)[:, None]
    ints[lead] = ord(" ")
    sign = np.full((len(x), 1), ord(" "), dtype=np.uint8)
    full = np.concatenate([sign, ints], axis=1)
    rows = np.flatnonzero(neg)
    if len(rows):
        full[rows, n_int_max - n_int[rows]] = ord("-")
    dot = np.full((len(x), 1), ord("."), dtype=np.uint8)
    return np.concatenate([full, dot, _digits(fp, decimals)], axis=1)


def format_float_columns(block: np.ndarray, exact: bool = True
                         ) -> tuple[np.ndarray | None, list[int]]:
    """Format a (rows, k) float block; returns (bytes matrix or None, columns that failed).

    Fields are separated by one space. With ``exact=True`` each column gets its own exact
    decimals; a column with none is reported (and the result is None). With
    ``exact=False`` inexact columns use 12 decimals (finite values below 9000 in magnitude;
    larger or non-finite ones are still reported).
    """
    block = np.asarray(block, dtype=float)
    if block.ndim == 1:
        block = block[:, None]
    parts = []
    failed = []
    for j in range(block.shape[1]):
        col = block[:, j]
        d = exact_decimals(col)
        if d is None and not exact and np.isfinite(col).all() and (
            np.abs(col).max(initial=0.0) * 1e12 < _LIMIT
        ):
            d = 12
        if d is None:
            failed.append(j)
            continue
        parts.append(format_fixed(col, d))
    if failed:
        return None, failed
    rows = block.shape[0]
    sep = np.full((rows, 1), ord(" "), dtype=np.uint8)
    pieces = []
    for p in parts:
        pieces.extend([sep, p])
    return (np.concatenate(pieces, axis=1) if pieces else np.zeros((rows, 0), np.uint8)), []
