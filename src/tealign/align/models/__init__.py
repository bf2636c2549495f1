"""The correction models of TEA in one registry: name → model class.

Adding a model is one module here (a :class:`~tealign.align.models.base.CorrectionModel`
subclass with ``name``, ``in_auto``, ``n_params`` and ``_solve``) and one entry in
:data:`REGISTRY`; ``fit``, ``--model`` and ``model="auto"`` find it there.
"""

from __future__ import annotations

import numpy as np

from tealign.align.models.base import A_RANGE, MAX_OFFSET_EV, CorrectionModel, implausible
from tealign.align.models.cv import cv_rmse, kfold_indices
from tealign.align.models.icea import IceaModel
from tealign.align.models.scale import ScaleModel
from tealign.align.models.scale_elements import ScaleElementsModel
from tealign.errors import SetupError

#: every correction model, by the name ``--model`` / ``model=`` takes
REGISTRY: dict[str, type[CorrectionModel]] = {
    "scale": ScaleModel,
    "scale+elements": ScaleElementsModel,
    "icea": IceaModel,
}
#: the setting that picks a model by K-fold cross-validated RMSE
AUTO = "auto"
#: the models ``auto`` chooses among (those with ``in_auto``)
MODELS = tuple(name for name, cls in REGISTRY.items() if cls.in_auto)
#: every accepted model setting: the registry's names, then ``auto``
CHOICES = (*REGISTRY, AUTO)

__all__ = ["AUTO", "A_RANGE", "CHOICES", "MAX_OFFSET_EV", "MODELS", "REGISTRY",
           "CorrectionModel", "IceaModel", "ScaleElementsModel", "ScaleModel", "check_enough",
           "auto_candidates", "check_choice", "choices_text", "choose_auto", "help_text",
           "cross_validated_rmse", "implausible", "kfold_indices", "make_model"]


def help_text() -> str:
    """Every accepted setting with what it does, from the registry (the ``--model`` help)."""
    models = [f"{name} ({cls.summary})" if cls.summary else name
              for name, cls in REGISTRY.items()]
    return ", ".join(models) + (f" or {AUTO} (pick among {', '.join(auto_candidates())} by "
                                "K-fold CV RMSE)")


def choices_text() -> str:
    """The accepted settings for an error line: ``scale, scale+elements, icea or auto``."""
    return ", ".join(REGISTRY) + " or " + AUTO


def check_choice(name: str) -> None:
    """An unknown ``model`` setting is a setup error naming the accepted ones (the registry
    as it is now, so a model registered after import is accepted too)."""
    if name != AUTO and name not in REGISTRY:
        raise SetupError(f"unknown model {name!r}; choose {choices_text()}", field="--model")


def auto_candidates() -> tuple[str, ...]:
    """The models ``auto`` chooses among: those of the registry with ``in_auto``."""
    return tuple(name for name, cls in REGISTRY.items() if cls.in_auto)


def make_model(name: str, alpha: float = 1e-3) -> CorrectionModel:
    """A fresh model of the registry (``alpha``: ridge strength, where the model has one)."""
    cls = REGISTRY.get(name)
    if cls is None:
        raise SetupError(f"unknown correction model {name!r}; choose one of "
                         f"{choices_text()}", field="--model")
    return cls.from_settings(alpha=alpha)


def cross_validated_rmse(name: str, x, counts, y, folds: list[np.ndarray],
                         alpha: float = 1e-3) -> float:
    """RMSE (eV) of held-out predictions over all folds for model ``name``."""
    return cv_rmse(lambda: make_model(name, alpha), x, counts, y, folds)


def choose_auto(x, counts, y, groups, cv_folds: int, alpha: float,
                rng: np.random.Generator) -> tuple[str, dict[str, float]]:
    """(the ``in_auto`` model of least K-fold cross-validated RMSE, {model: RMSE in eV})."""
    folds = kfold_indices(len(x), cv_folds, groups, rng)
    cv = {m: cross_validated_rmse(m, x, counts, y, folds, alpha) for m in auto_candidates()}
    return min(cv, key=cv.get), cv


def check_enough(name: str, n: int, n_elements: int, groups, cv_folds: int,
                 fname: str) -> None:
    """Too few structures for model ``name`` (its parameters, interval or, for ``auto``,
    its folds and its largest candidate) is a setup error."""
    if name == AUTO:
        n_groups = len(np.unique(groups)) if groups is not None else n
        if n_groups < cv_folds:
            raise SetupError(
                f"--model auto needs at least --folds={cv_folds} calibration "
                f"structures (molecules) to cross-validate, but only {n_groups} are "
                "usable; add structures, lower --folds or pick a model",
                file=fname, field="calibration")
        model = max((make_model(m) for m in auto_candidates()),
                    key=lambda m: m.min_structures(n_elements))
    else:
        model = make_model(name)
    if n < model.min_structures(n_elements):
        raise SetupError(model.too_few(name, n, n_elements), file=fname, field="calibration")
