"""K-fold splits and cross-validated RMSE (eV) of a correction model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tealign.align.models.base import CorrectionModel


def kfold_indices(n: int, k: int, groups: np.ndarray | None, rng: np.random.Generator
                  ) -> list[np.ndarray]:
    """K folds of structure indices; structures sharing a group (``mol_id``) stay together."""
    if groups is None:
        groups = np.arange(n)
    uniq, inverse = np.unique(groups, return_inverse=True)
    order = rng.permutation(len(uniq))
    k = max(2, min(k, len(uniq)))
    fold_of_group = np.empty(len(uniq), dtype=int)
    fold_of_group[order] = np.arange(len(uniq)) % k
    fold = fold_of_group[inverse]
    return [np.flatnonzero(fold == f) for f in range(k)]


def cv_rmse(new_model: Callable[[], CorrectionModel], x, counts, y,
            folds: list[np.ndarray]) -> float:
    """RMSE (eV) of held-out predictions over all folds, a fresh ``new_model()`` per fold."""
    resid = np.empty(len(x))
    for test in folds:
        train = np.setdiff1d(np.arange(len(x)), test)
        m = new_model()
        m.a_, m.offsets_ = m._solve(x[train], counts[train], y[train])
        resid[test] = y[test] - m.predict(x[test], counts[test])
    return float(np.sqrt(np.mean(resid**2)))
