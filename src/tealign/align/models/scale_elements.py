"""``scale+elements``: the single factor plus one offset per element (eV per atom).

In the spirit of the paper's call for adaptive corrections, fitted by ridge regression with
the offsets penalised (``alpha`` relative to the mean squared element count), so few
calibration structures cannot make them wild.
"""

from __future__ import annotations

import numpy as np

from tealign.align.models.base import CorrectionModel


class ScaleElementsModel(CorrectionModel):
    """y = a·x + Σ n_el c_el, ridge-penalised offsets (alpha × mean squared count)."""

    name = "scale+elements"
    summary = "the factor and one offset per element"
    in_auto = True

    def __init__(self, alpha: float = 1e-3) -> None:
        self.alpha = alpha

    @classmethod
    def from_settings(cls, alpha: float = 1e-3) -> ScaleElementsModel:
        return cls(alpha=alpha)

    def n_params(self, n_elements: int) -> int:
        return 1 + n_elements

    def _solve(self, x, counts, y):
        design = np.column_stack([x, counts])
        gram = design.T @ design
        penalty = np.zeros(design.shape[1])
        scale = float(np.mean(counts**2)) * len(x) if counts.size else 0.0
        penalty[1:] = self.alpha * max(scale, 1e-12)
        coef = np.linalg.solve(gram + np.diag(penalty), design.T @ y)
        return float(coef[0]), coef[1:]
