"""The correction models' shared base and plausible ranges (energies in eV).

Every model is linear in the source atomization energy x with per-element offsets:

    y = a · x + Σ_el n_el · c_el

where n_el counts the atoms of element el in the structure. Forces, stress and virials are
derivatives of the energy at fixed composition, so they scale by ``a`` alone in every model
(the offsets carry no gradient). Models are small estimators: settings in the constructor,
``fit`` returns self, fitted values end in ``_``.
"""

from __future__ import annotations

import numpy as np

from tealign.errors import SetupError

#: Physically plausible range of the AEC factor a (open interval). a is the ratio of two
#: methods' atomization energies; between DFT functionals, and between DFT and
#: coupled-cluster, it stays within a few percent to a few tens of percent of 1 (the paper's
#: fits are 0.9-1.1), so a factor outside (0.5, 2) means wrong keys, units or tables.
A_RANGE = (0.5, 2.0)
#: Largest plausible |per-element offset| c_el (eV per atom) of ``scale+elements``: larger
#: than most atomization energies per atom (≲ 10 eV), it would swamp the energy it corrects.
MAX_OFFSET_EV = 10.0


def implausible(a, offsets: dict | None = None) -> tuple[str, str] | None:
    """(field, reason) if the factor ``a`` or an offset (eV) is not finite or lies outside
    :data:`A_RANGE` / ±:data:`MAX_OFFSET_EV`; None if they are plausible."""
    try:
        a_f = float(a)
    except (TypeError, ValueError, OverflowError):
        return "model.a", f"must be a number, not {str(a)[:30]!r}"
    if not np.isfinite(a_f) or not A_RANGE[0] < a_f < A_RANGE[1]:
        return "model.a", (f"a = {str(a)[:30]} is outside the physically plausible range "
                           f"{A_RANGE[0]} < a < {A_RANGE[1]}")
    for el, c in (offsets or {}).items():
        try:
            c_f = float(c)
        except (TypeError, ValueError, OverflowError):
            return f"model.offsets_eV.{el}", f"must be a number, not {str(c)[:30]!r}"
        if not np.isfinite(c_f) or abs(c_f) > MAX_OFFSET_EV:
            return f"model.offsets_eV.{el}", (f"offset {str(c)[:30]} eV is outside the "
                                              f"plausible range ±{MAX_OFFSET_EV} eV per atom")
    return None


class CorrectionModel:
    """Base: y = a·x + counts @ c. A model module subclasses it, sets ``name`` (its key in
    :data:`tealign.align.models.REGISTRY`) and ``in_auto`` (a candidate of ``model="auto"``),
    and implements ``n_params`` and ``_solve``."""

    name = "base"
    #: what the model does, in a few words (the ``--model`` help lists it)
    summary = ""
    #: whether ``model="auto"`` considers this model (chosen by cross-validated RMSE)
    in_auto = False

    @classmethod
    def from_settings(cls, alpha: float = 1e-3) -> CorrectionModel:
        """The model for the estimator's settings (``alpha``: ridge strength, where used)."""
        return cls()

    def n_params(self, n_elements: int) -> int:
        """Fitted parameters for ``n_elements`` elements in the calibration set."""
        raise NotImplementedError

    def min_structures(self, n_elements: int) -> int:
        """Fewest calibration structures a fit needs: its parameters plus one (an R² and a
        bootstrap interval need two at least)."""
        return max(2, self.n_params(n_elements) + 1)

    def too_few(self, requested: str, n: int, n_elements: int) -> str:
        """The error line when only ``n`` structures are usable (``requested``: the model
        name the user gave, e.g. ``auto``)."""
        k, s = self.min_structures(n_elements), "s" if n != 1 else ""
        p = self.n_params(n_elements)
        if p <= 1:
            return (f"model '{requested}' needs at least {k} calibration structures (for an R² "
                    f"and a bootstrap interval) but only {n} structure{s} usable; add "
                    "calibration structures")
        return (f"model '{requested}' has {p} parameters but only {n} calibration "
                f"structure{s} usable; it needs at least {k} (parameters, an R² and an "
                "interval): add calibration structures or use --model scale")

    def _solve(self, x: np.ndarray, counts: np.ndarray, y: np.ndarray
               ) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def fit(self, x: np.ndarray, counts: np.ndarray, y: np.ndarray) -> CorrectionModel:
        """Fit on source atomization energies ``x`` (n,), element counts (n, n_el), target ``y``."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        counts = np.asarray(counts, dtype=float).reshape(len(x), -1)
        need = self.n_params(counts.shape[1])
        if len(x) < need:
            raise SetupError(
                f"model '{self.name}' has {need} parameters but only {len(x)} calibration "
                "structures were usable; add calibration structures or use --model scale",
                field="calibration",
            )
        self.a_, self.offsets_ = self._solve(x, counts, y)
        return self

    def predict(self, x: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Target atomization energies (eV) of source ones ``x`` with element ``counts``."""
        return self.a_ * np.asarray(x) + np.asarray(counts, dtype=float) @ self.offsets_

    def bootstrap_a(self, x, counts, y, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        """Refit on ``n_boot`` resamples of the structures; returns the factors a."""
        n = len(x)
        out = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, n)
            out[b] = self._solve(x[idx], counts[idx], y[idx])[0]
        return out

    def interval(self, x, counts, y, n_boot: int, rng: np.random.Generator) -> list[float]:
        """The 95 % interval [lo, hi] of a from ``n_boot`` bootstrap resamples."""
        boot = self.bootstrap_a(x, counts, y, n_boot, rng)
        return [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
