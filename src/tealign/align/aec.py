"""Deprecated alias of :mod:`tealign.align.models` (the correction models' registry); kept
so that ``from tealign.align.aec import ...`` goes on working."""

from tealign.align.models import (
    A_RANGE,
    MAX_OFFSET_EV,
    MODELS,
    CorrectionModel,
    ScaleElementsModel,
    ScaleModel,
    cross_validated_rmse,
    implausible,
    kfold_indices,
    make_model,
)

__all__ = ["A_RANGE", "MAX_OFFSET_EV", "MODELS", "CorrectionModel", "ScaleElementsModel",
           "ScaleModel", "cross_validated_rmse", "implausible", "kfold_indices", "make_model"]
