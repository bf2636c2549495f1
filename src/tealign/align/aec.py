"""Atomization-energy correction (AEC) models: E_at^[1] = f(E_at^[2]).

Every model here is linear in the source atomization energy x with per-element offsets:

    y = a · x + Σ_el n_el · c_el

where n_el counts the atoms of element el in the structure. Forces, stress and virials are
derivatives of the energy at fixed composition, so they scale by ``a`` alone in every model
(the offsets carry no gradient).

- ``scale`` — the paper's single factor (eq. 5). The paper does not say how a was fitted; our
  choice is least squares through the origin over structures, a = Σ x·y / Σ x², with a 95 %
  interval from a bootstrap over structures.
- ``scale+elements`` — the single factor plus one offset per element (in the spirit of the
  paper's call for adaptive corrections), fitted by ridge regression with the offsets
  penalised (``alpha`` relative to the mean squared element count), so few calibration
  structures cannot make them wild.

Models are small estimators: settings in the constructor, ``fit`` returns self, fitted values
end in ``_``.
"""

from __future__ import annotations

import numpy as np

from tealign.errors import SetupError

MODELS = ("scale", "scale+elements")

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
    """Base: y = a·x + counts @ c. Subclasses implement ``_solve``."""

    name = "base"

    def n_params(self, n_elements: int) -> int:
        raise NotImplementedError

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
        return self.a_ * np.asarray(x) + np.asarray(counts, dtype=float) @ self.offsets_

    def bootstrap_a(self, x, counts, y, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        """Refit on ``n_boot`` resamples of the structures; returns the factors a."""
        n = len(x)
        out = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, n)
            out[b] = self._solve(x[idx], counts[idx], y[idx])[0]
        return out


class ScaleModel(CorrectionModel):
    """y = a·x with a = Σ x·y / Σ x² (least squares through the origin)."""

    name = "scale"

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


class ScaleElementsModel(CorrectionModel):
    """y = a·x + Σ n_el c_el, ridge-penalised offsets (alpha × mean squared count)."""

    name = "scale+elements"

    def __init__(self, alpha: float = 1e-3) -> None:
        self.alpha = alpha

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


def make_model(name: str, alpha: float = 1e-3) -> CorrectionModel:
    if name == "scale":
        return ScaleModel()
    if name == "scale+elements":
        return ScaleElementsModel(alpha=alpha)
    raise SetupError(f"unknown correction model {name!r}; choose one of "
                     f"{', '.join(MODELS)} or auto", field="--model")


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


def cross_validated_rmse(name: str, x, counts, y, folds: list[np.ndarray],
                         alpha: float = 1e-3) -> float:
    """RMSE (eV) of held-out predictions over all folds for model ``name``."""
    resid = np.empty(len(x))
    for test in folds:
        train = np.setdiff1d(np.arange(len(x)), test)
        m = make_model(name, alpha)
        m.a_, m.offsets_ = m._solve(x[train], counts[train], y[train])
        resid[test] = y[test] - m.predict(x[test], counts[test])
    return float(np.sqrt(np.mean(resid**2)))
