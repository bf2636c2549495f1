"""``scale``: the paper's single factor (eq. 5), y = a·x.

The paper does not say how a was fitted; our choice is least squares through the origin over
structures, a = Σ x·y / Σ x², with a 95 % interval from a bootstrap over structures.
"""

from __future__ import annotations

import numpy as np

from tealign.align.models.base import CorrectionModel
from tealign.errors import SetupError


class ScaleModel(CorrectionModel):
    """y = a·x with a = Σ x·y / Σ x² (least squares through the origin)."""

    name = "scale"
    summary = "the paper's single factor"
    in_auto = True

    def n_params(self, n_elements: int) -> int:
        return 1

    def _solve(self, x, counts, y):
        sxx = float(x @ x)
        if sxx == 0:
            raise SetupError("all calibration atomization energies are zero", field="calibration")
        return float(x @ y) / sxx, np.zeros(counts.shape[1])

    def bootstrap_a(self, x, counts, y, n_boot, rng):
        # vectorised: resample counts w ~ Multinomial(n, 1/n); a_b = Σ w x y / Σ w x²
        n = len(x)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
        return (w @ (x * y)) / (w @ (x * x))
