"""``TotalEnergyAlignment``: ICEA + AEC as one scikit-learn-style estimator.

    tea = TotalEnergyAlignment(source="wb97m-d3bj-def2-tzvppd", target="vasp-pbe-mp",
                               source_key="energy_wb97m", target_key="energy_pbe")
    tea.fit("calib.extxyz")
    aligned = tea.transform(frames, energy_key="energy", forces_key="forces")
    aligned.rejects            # the frames it could not align, each with its reason
    tea.save("alignment.json")

The estimator follows scikit-learn's contract: every setting is a constructor argument
(``get_params(deep=True)`` / ``set_params``, introspected from ``__init__``), settings are
validated in ``fit``, and the fitted attributes (ending in ``_``, the fields of
:class:`~tealign.align.fitted.FittedAlignment`) exist only after ``fit``, ``load``,
``from_dict``, ``compose`` or ``icea_only``, the same set after each.

The parts live beside it: the correction models in :mod:`tealign.align.models`, the
calibration frames in :mod:`~tealign.align.calibration`, the formulas applied to frames in
:mod:`~tealign.align.apply` (E^[1] = Σ_i E_i^[1] − (a · (Σ_i E_i^[2] − E^[2]) + Σ n_el c_el),
F^[1] = a · F^[2]; eV, eV/Å, eV/Å³) and the saved form in :mod:`~tealign.align.persist`.
"""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path

import numpy as np

from tealign.align import apply, persist
from tealign.align.apply import ALIGNED_KEYS, ORIG_KEYS, AtomsList  # noqa: F401 (re-export)
from tealign.align.apply import single_batch as _single_batch  # noqa: F401 (re-export)
from tealign.align.calibration import (  # noqa: F401 (re-export)
    CHARGE_KEYS,
    CalibrationData,
    calibration_name,
    collect,
)
from tealign.align.fitted import (
    ATTRIBUTES,
    FittedAlignment,
    check_chainable,
    compose_state,
    fit_state,
    icea_state,
)
from tealign.align.models import CHOICES, MODELS, check_choice, check_enough  # noqa: F401
from tealign.align.persist import FORMAT, validate_alignment  # noqa: F401 (re-export)
from tealign.align.persist import sha256_file as _sha256_file  # noqa: F401 (re-export)
from tealign.errors import SetupError
from tealign.io.frames import FrameBatch
from tealign.methods import IsolatedAtomTable, load_table


@functools.cache
def _init_params(cls: type) -> dict[str, inspect.Parameter]:
    """``cls.__init__``'s named parameters (not self, not ``*args``/``**kw``), in order."""
    return {p.name: p for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _as_table(t) -> IsolatedAtomTable:
    return t if isinstance(t, IsolatedAtomTable) else load_table(t)


class TotalEnergyAlignment:
    """Align source-method energies, forces, stress and virials onto a target method's scale.

    Parameters
    ----------
    source, target : isolated-atom tables (built-in name, JSON path, or IsolatedAtomTable)
        of the source method (2) and the target method (1).
    model : a model of :data:`tealign.align.models.REGISTRY`: ``"scale"`` (the paper's
        single factor, default), ``"scale+elements"``, ``"icea"`` (no AEC, a = 1), or
        ``"auto"`` (pick by K-fold cross-validated RMSE among scale and scale+elements).
    n_bootstrap : bootstrap resamples over structures for the 95 % interval of a.
    cv_folds : folds for ``auto`` (grouped by ``mol_id`` when frames carry one).
    alpha : ridge strength of per-element offsets (relative to the mean squared count).
    random_state : seed for the bootstrap and the folds.
    source_key, target_key : calibration keys of the source and target total energies (eV);
        ``fit(X, source_key=..., target_key=...)`` still accepts them per call.
    split : fit only on frames whose ``split`` is this (default: every frame).
    strict : a frame error (in ``fit`` or ``transform``) becomes a setup error.

    Fitted attributes
    -----------------
    a_ : AEC factor; offsets_ : per-element offsets (eV) of ``scale+elements``;
    a_ci95_ : [lo, hi]; model_ : the model chosen; n_, n_rejected_ : structures used /
    rejected; rmse_icea_, rmse_tea_, r2_icea_, r2_tea_ : total-energy fit quality (eV);
    cv_rmse_ : {model: eV} when ``model="auto"``; calibration_ : where the calibration came
    from; chain_ : the links of a composition; rejects_ : the rejected frames (empty unless
    fitted here); parity_ : arrays for parity plots (None unless fitted here);
    source_table_, target_table_ : the isolated-atom tables used.
    """

    def __init__(self, source, target, model: str = "scale", n_bootstrap: int = 1000,
                 cv_folds: int = 5, alpha: float = 1e-3, random_state: int = 0,
                 source_key: str | None = None, target_key: str | None = None,
                 split: str | None = None, strict: bool = False) -> None:
        self.source = source
        self.target = target
        self.model = model
        self.n_bootstrap = n_bootstrap
        self.cv_folds = cv_folds
        self.alpha = alpha
        self.random_state = random_state
        self.source_key = source_key
        self.target_key = target_key
        self.split = split
        self.strict = strict

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's parameter names, in order (scikit-learn's introspection)."""
        return list(_init_params(cls))

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's settings (scikit-learn's contract; with ``deep``, a setting
        that is itself an estimator adds its own as ``name__param``)."""
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params) -> TotalEnergyAlignment:
        """Change settings; unknown names are an error. Returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        shown = []
        for p in _init_params(type(self)).values():
            value = getattr(self, p.name)
            if p.default is p.empty:  # the tables, by name and position
                shown.append(repr(getattr(value, "name", value)))
            elif value is not p.default and value != p.default:
                shown.append(f"{p.name}={value!r}")
        return f"TotalEnergyAlignment({', '.join(shown)})"

    # ------------------------------------------------------------------ fitted state
    def _set_fitted(self, state: FittedAlignment | None) -> None:
        """The one place fitted attributes are set (``None``: removed, unfitted again)."""
        for name in ATTRIBUTES:
            if state is None:
                self.__dict__.pop(name, None)
            else:
                setattr(self, name, getattr(state, name[:-1]))

    def _fitted(self) -> FittedAlignment:
        """The fitted attributes as one :class:`FittedAlignment`."""
        self._check_fitted()
        return FittedAlignment(**{name[:-1]: getattr(self, name) for name in ATTRIBUTES})

    def _check_fitted(self) -> None:
        if not hasattr(self, "a_"):
            raise RuntimeError("this TotalEnergyAlignment is not fitted yet; call fit() or load()")

    def _tables(self) -> tuple[IsolatedAtomTable, IsolatedAtomTable]:
        return _as_table(self.source), _as_table(self.target)

    def check_params(self) -> None:
        """Ranges of the settings, checked before any work (docs/architecture.md §6.1)."""
        check_choice(self.model)
        if not isinstance(self.n_bootstrap, (int, np.integer)) or self.n_bootstrap < 1:
            raise SetupError(f"--bootstrap must be at least 1 (got {self.n_bootstrap})",
                             field="--bootstrap")
        if not isinstance(self.cv_folds, (int, np.integer)) or self.cv_folds < 2:
            raise SetupError(f"--folds must be at least 2 (got {self.cv_folds})",
                             field="--folds")
        if not (isinstance(self.alpha, (int, float)) and np.isfinite(self.alpha)
                and self.alpha >= 0):
            raise SetupError(f"alpha must be a finite number ≥ 0 (got {self.alpha})",
                             field="alpha")

    def _keys(self, source_key, target_key) -> tuple[str, str]:
        source_key = source_key if source_key is not None else self.source_key
        target_key = target_key if target_key is not None else self.target_key
        for name, key in (("source_key", source_key), ("target_key", target_key)):
            if not isinstance(key, str) or not key:
                raise SetupError(f"{name} is not set: give it to TotalEnergyAlignment(...) "
                                 "or to fit()", field=f"--{name.replace('_', '-')}")
        return source_key, target_key

    # ------------------------------------------------------------------ fitting
    def collect(self, calibration, source_key: str | None = None,
                target_key: str | None = None, file: str | None = None,
                split: str | None = None, group_key: str = "mol_id") -> CalibrationData:
        """Validate calibration frames and gather energies, element counts and groups
        (:func:`tealign.align.calibration.collect`): frames lacking either energy, with
        NaN/inf, or charged are frame errors; an element that a table lacks, or a key that
        no frame has, is a setup error."""
        source_key, target_key = self._keys(source_key, target_key)
        return collect(calibration, *self._tables(), source_key, target_key, file=file,
                       split=split, group_key=group_key)

    def fit(self, calibration, source_key: str | None = None, target_key: str | None = None,
            *, split: str | None = None, file: str | None = None,
            strict: bool | None = None) -> TotalEnergyAlignment:
        """Fit ICEA + AEC on calibration structures carrying both methods' total energies.

        ``calibration``: a path (any format tealign reads), a FrameBatch or a list of Atoms;
        energies must be dispersion-free (docs/architecture.md §1.2). The keys, ``split``
        and ``strict`` default to the constructor's settings; given here, they override
        them for this call only (the settings themselves are not changed).
        """
        self.check_params()
        source_key, target_key = self._keys(source_key, target_key)
        split = split if split is not None else self.split
        strict = self.strict if strict is None else strict
        data = self.collect(calibration, source_key, target_key, file=file, split=split)
        if strict and data.rejects:
            raise data.rejects[0].as_setup_error()
        fname = calibration_name(calibration, file)
        check_enough(self.model, len(data.source_energy), len(data.elements), data.groups,
                     self.cv_folds, fname)
        self._set_fitted(None)  # a fit that fails leaves the estimator unfitted
        where = persist.calibration_record(calibration, source_key, target_key, split)
        self._set_fitted(fit_state(
            data, *self._tables(), model=self.model, alpha=self.alpha,
            n_bootstrap=self.n_bootstrap, cv_folds=self.cv_folds,
            random_state=self.random_state, fname=fname, where=where))
        return self

    def fit_transform(self, X, **transform_kwargs) -> FrameBatch:
        """Fit on the calibration frames ``X`` (with the constructor's keys), then align
        ``X`` itself: ``transform(X, **transform_kwargs)``."""
        return self.fit(X).transform(X, **transform_kwargs)

    # ------------------------------------------------------------------ applying
    def transform(self, frames, energy_key: str | None = None,
                  forces_key: str | None = "forces", stress_key: str | None = "stress",
                  virials_key: str | None = "virials", source_name: str | None = None,
                  file: str | None = None, remove_d3: str | None = None, *,
                  allow_realign: bool = False, check: bool = True,
                  allow_charged: bool = False) -> FrameBatch:
        """Map source energies/forces/stress/virials (eV, eV/Å, eV/Å³) onto the target scale.

        Writes ``REF_energy``/``REF_forces``/``REF_stress``/``REF_virials``, keeps the inputs
        as ``orig_*``, and records ``source`` and ``alignment_sha256``. Frames lacking
        ``energy_key``, charged (unless ``allow_charged``; the measured error on ions is
        :data:`tealign.provenance.CHARGED_CHECK`) or with an element the alignment does not
        cover become frame errors. ``remove_d3`` names a functional whose D3(BJ) is
        subtracted first (``orig_*`` keep the values with D3). ``energy_key`` defaults to
        ``energy``, or, when no frame has that, to the fitted source key; a key given as None
        is not aligned. Frames aligned already (``alignment_sha256``) are a SetupError unless
        ``allow_realign``. With ``check`` (streaming callers pass False) the input is judged
        whole: no frame with ``energy_key``, or forces/stress only under other keys, is a
        SetupError; rejecting every frame warns (``UserWarning``).

        Returns a FrameBatch (an :class:`AtomsList` for a list of ``ase.Atoms``) whose
        ``rejects`` name every frame left out and why; with ``strict=True`` the first raises.
        """
        self._check_fitted()
        fitted_key = (self.calibration_ or {}).get("source_key") or self.source_key
        return apply.transform(
            self._fitted(), frames, energy_key, forces_key, stress_key, virials_key,
            source_name, file, remove_d3, allow_realign=allow_realign, check=check,
            allow_charged=allow_charged, strict=self.strict, fitted_key=fitted_key,
            sha=self.sha256)

    def inverse_transform(self, frames, energy_key: str = "energy",
                          forces_key: str = "forces", stress_key: str = "stress",
                          virials_key: str = "virials", file: str | None = None,
                          add_d3: str | None = None) -> FrameBatch:
        """Map target-scale ``REF_*`` values back to the source scale (the inverse, up to
        floating-point rounding: ~1e-15 relative).

        Source-scale values are written under the given keys; ``REF_*``, ``orig_*`` and the
        provenance keys are removed. ``add_d3`` adds that functional's D3(BJ) back (the
        inverse of ``transform(remove_d3=...)``).
        """
        return apply.inverse_transform(self._fitted(), frames, energy_key, forces_key,
                                       stress_key, virials_key, file, add_d3, self.strict)

    # ------------------------------------------------------------------ building fitted
    @classmethod
    def icea_only(cls, source, target, note: str = "") -> TotalEnergyAlignment:
        """The alignment that shifts by isolated-atom differences alone (a = 1, no offsets):
        it needs no calibration set, so it is built fitted. ``note`` says where the two
        tables came from (saved as the calibration record)."""
        out = cls(source, target, model="icea")
        out._set_fitted(icea_state(*out._tables(), note))  # tables validated now
        return out

    @classmethod
    def compose(cls, first: TotalEnergyAlignment, second: TotalEnergyAlignment
                ) -> TotalEnergyAlignment:
        """One alignment equal to applying ``first`` (3 → 2) and then ``second`` (2 → 1).

        y₁ = a₂₁ (a₃₂ x₃ + c₃₂·n) + c₂₁·n, so a = a₂₁·a₃₂ and c = a₂₁·c₃₂ + c₂₁; the
        isolated-atom shifts telescope through method 2's table.
        """
        one, two = first._fitted(), second._fitted()
        check_chainable(one, two)
        # a refit of the chained pair (method 3 → 1) would need the per-element offsets
        # when either link has them; the settings stay ones that fit() accepts
        out = cls(first.source, second.target,
                  model="scale+elements" if (one.offsets or two.offsets) else "scale")
        out._set_fitted(compose_state(one, two, *out._tables(),
                                      [first.to_dict(), second.to_dict()]))
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """The saved form (:func:`tealign.align.persist.to_dict`), without ``sha256``."""
        return persist.to_dict(self._fitted(), self.get_params(deep=False))

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of this alignment (what ``alignment_sha256`` holds)."""
        return persist.sha256(self.to_dict())

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``alignment.json`` atomically; returns its path, like every ``save`` of
        tealign (the file's ``sha256``, of the canonical form, is :meth:`sha256`; before
        0.2 this returned that hash)."""
        return persist.save(self.to_dict(), path)

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> TotalEnergyAlignment:
        """Build a fitted alignment from its saved form, validated against the schema
        (:func:`validate_alignment`): required fields and types, a finite a > 0, both
        isolated-atom tables, and a ``sha256`` that matches the content."""
        params, state = persist.from_dict(d, source)
        out = cls(**params)
        out._set_fitted(state)
        persist.check_sha256(d, out.sha256(), source)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> TotalEnergyAlignment:
        """A saved ``alignment.json`` (:meth:`from_dict` of its content)."""
        return cls.from_dict(persist.read(path), source=str(path))
