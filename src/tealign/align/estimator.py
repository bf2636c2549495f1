"""``TotalEnergyAlignment``: ICEA + AEC as one scikit-learn-style estimator.

    tea = TotalEnergyAlignment(source="wb97m-d3bj-def2-tzvppd", target="vasp-pbe-mp",
                               source_key="energy_wb97m", target_key="energy_pbe")
    tea.fit("calib.extxyz")
    aligned = tea.transform(frames, energy_key="energy", forces_key="forces")
    aligned.rejects            # the frames it could not align, each with its reason
    tea.save("alignment.json")

The estimator follows scikit-learn's contract: every setting is a constructor argument
(``get_params(deep=True)`` / ``set_params``), settings are validated in ``fit``, and the
fitted attributes (ending in ``_``) exist only after ``fit``, ``load`` or ``icea_only``.

Method 1 is the target scale, method 2 the source. With the fitted correction
y = a·x + Σ n_el c_el (x, y the source and target atomization energies, see ``aec``):

    E^[1] = Σ_i E_i^[1] − (a · (Σ_i E_i^[2] − E^[2]) + Σ n_el c_el)
    F^[1] = a · F^[2],   σ^[1] = a · σ^[2],   W^[1] = a · W^[2]

``inverse_transform`` undoes it up to floating-point rounding (~1e-15 relative). All energies
eV, forces eV/Å, stress eV/Å³.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from tealign import __version__, units
from tealign.align.aec import (
    MODELS,
    cross_validated_rmse,
    implausible,
    kfold_indices,
    make_model,
)
from tealign.align.icea import atom_energy_sums
from tealign.errors import FrameError, SetupError
from tealign.io import as_batches
from tealign.io.atomic import write_json
from tealign.io.frames import FrameBatch
from tealign.keys import ORIG, REF
from tealign.methods import IsolatedAtomTable, load_table
from tealign.provenance import charged_error_note

FORMAT = "tealign-alignment/1"
CHARGE_KEYS = ("charge", "total_charge")
ALIGNED_KEYS = REF.as_dict()
ORIG_KEYS = ORIG.as_dict()


def _as_table(t) -> IsolatedAtomTable:
    return t if isinstance(t, IsolatedAtomTable) else load_table(t)


@dataclass
class CalibrationData:
    """What a fit needs, per usable calibration structure (energies in eV)."""

    source_energy: np.ndarray
    target_energy: np.ndarray
    counts: np.ndarray  # (n, n_elements) atoms of each element
    elements: list[str]
    groups: np.ndarray | None
    rejects: list[FrameError]


class TotalEnergyAlignment:
    """Align source-method energies, forces, stress and virials onto a target method's scale.

    Parameters
    ----------
    source, target : isolated-atom tables (built-in name, JSON path, or IsolatedAtomTable)
        of the source method (2) and the target method (1).
    model : ``"scale"`` (the paper's single factor, default), ``"scale+elements"``, ``"icea"``
        (no AEC, a = 1) or ``"auto"`` (pick by K-fold cross-validated RMSE).
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
    cv_rmse_ : {model: eV} when ``model="auto"``; rejects_ : the rejected frames;
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
    _PARAMS = ("source", "target", "model", "n_bootstrap", "cv_folds", "alpha",
               "random_state", "source_key", "target_key", "split", "strict")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's settings (scikit-learn's contract; ``deep`` has no nested
        estimators to descend into)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params) -> TotalEnergyAlignment:
        """Change settings; unknown names are an error. Returns self."""
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"invalid parameter {name!r} for TotalEnergyAlignment; "
                                 f"valid: {', '.join(self._PARAMS)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        default = TotalEnergyAlignment.__init__.__defaults__
        names = self._PARAMS[2:]
        shown = [f"{n}={getattr(self, n)!r}" for n, d in zip(names, default)
                 if getattr(self, n) != d]
        src, tgt = (getattr(t, "name", t) for t in (self.source, self.target))
        return f"TotalEnergyAlignment({src!r}, {tgt!r}{''.join(', ' + x for x in shown)})"

    def _set_tables(self) -> None:
        self.source_table_ = _as_table(self.source)
        self.target_table_ = _as_table(self.target)

    @classmethod
    def icea_only(cls, source, target, note: str = "") -> TotalEnergyAlignment:
        """The alignment that shifts by isolated-atom differences alone (a = 1, no offsets):
        it needs no calibration set, so it is built fitted. ``note`` says where the two
        tables came from (saved as the calibration record)."""
        out = cls(source, target, model="icea")
        out._set_tables()  # validated now, not at the first transform
        out.a_, out.offsets_, out.model_, out.a_ci95_ = 1.0, {}, "icea", [1.0, 1.0]
        out.n_ = out.n_rejected_ = 0
        out.rmse_icea_ = out.rmse_tea_ = out.r2_icea_ = out.r2_tea_ = out.cv_rmse_ = None
        out.calibration_ = {"note": note or "isolated-atom differences only; no calibration"}
        out.chain_ = []
        out.rejects_ = []
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "a_"):
            raise RuntimeError("this TotalEnergyAlignment is not fitted yet; call fit() or load()")

    def check_params(self) -> None:
        """Ranges of the settings, checked before any work (docs/architecture.md §6.1)."""
        if self.model not in ("auto", "icea", *MODELS):
            raise SetupError(f"unknown model {self.model!r}; choose scale, scale+elements, "
                             "icea or auto", field="--model")
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

    def _check_enough(self, n: int, n_elements: int, groups, fname: str) -> None:
        """Too few structures for the model, its interval or its folds is a setup error."""
        need = {"icea": 2, "scale": 2, "scale+elements": n_elements + 2}
        if self.model == "auto":
            n_groups = len(np.unique(groups)) if groups is not None else n
            if n_groups < self.cv_folds:
                raise SetupError(
                    f"--model auto needs at least --folds={self.cv_folds} calibration "
                    f"structures (molecules) to cross-validate, but only {n_groups} are "
                    "usable; add structures, lower --folds or pick a model",
                    file=fname, field="calibration")
            need["auto"] = need["scale+elements"]
        k = need[self.model]
        if n >= k:
            return
        if self.model in ("icea", "scale"):
            raise SetupError(
                f"model '{self.model}' needs at least {k} calibration structures (for an R² "
                f"and a bootstrap interval) but only {n} structure{'s' if n != 1 else ''} "
                "usable; add calibration structures", file=fname, field="calibration")
        raise SetupError(
            f"model '{self.model}' has {n_elements + 1} parameters but only {n} calibration "
            f"structure{'s' if n != 1 else ''} usable; it needs at least {k} (parameters, an "
            "R² and an interval): add calibration structures or use --model scale",
            file=fname, field="calibration")

    # ------------------------------------------------------------------ fitting
    def collect(self, calibration, source_key: str | None = None,
                target_key: str | None = None, file: str | None = None,
                split: str | None = None, group_key: str = "mol_id") -> CalibrationData:
        """Validate calibration frames and gather energies, element counts and groups.

        Frames lacking either energy, with NaN/inf, or charged are frame errors; an element
        that a table lacks, or a key that no frame has, is a setup error.
        """
        source_key, target_key = self._keys(source_key, target_key)
        src_t, tgt_t = _as_table(self.source), _as_table(self.target)
        fname = file or (str(calibration) if isinstance(calibration, (str, os.PathLike))
                         else "<calibration>")
        e_src, e_tgt, numbers_list, offsets_list, groups, rejects = [], [], [], [], [], []
        seen_src = seen_tgt = False
        for batch in as_batches(calibration):
            rejects.extend(batch.rejects)
            if batch.n_frames == 0:
                continue
            keep = np.ones(batch.n_frames, dtype=bool)
            if split is not None:
                if "split" not in batch.info:
                    raise SetupError("--split given but frames have no 'split' key",
                                     file=fname, field="split")
                keep &= np.asarray(batch.info["split"] == split) & batch.has("split")
            for key in (source_key, target_key):
                has = batch.has(key)
                if key == source_key:
                    seen_src |= bool(has.any())
                else:
                    seen_tgt |= bool(has.any())
                for i in np.flatnonzero(keep & ~has):
                    rejects.append(FrameError(fname, int(batch.index[i]), key,
                                              "missing energy (the other method has one)"))
                keep &= has
                if key in batch.info:
                    keep = _check_energies(batch, key, keep, fname, rejects)
            keep = self._reject_charged(batch, keep, fname, rejects)
            sub = batch.select(keep)
            if sub.n_frames == 0:
                continue
            src_t.check_covers(sub.numbers, file=fname)
            tgt_t.check_covers(sub.numbers, file=fname)
            e_src.append(np.array([float(v) for v in sub.info[source_key]]))
            e_tgt.append(np.array([float(v) for v in sub.info[target_key]]))
            numbers_list.append(sub.numbers)
            offsets_list.append(sub.n_atoms)
            groups.append(np.asarray(sub.info[group_key]).astype(str)
                          if group_key in sub.info and sub.has(group_key).all()
                          else np.array([f"#{i}" for i in sub.index]))
        for key, seen in ((source_key, seen_src), (target_key, seen_tgt)):
            if not seen:
                raise SetupError("no calibration frame has this energy key", file=fname,
                                 field=key)
        if not e_src:
            raise SetupError("no usable calibration structure (all were rejected)", file=fname)
        numbers = np.concatenate(numbers_list)
        n_atoms = np.concatenate(offsets_list)
        elements = sorted({chemical_symbols[z] for z in np.unique(numbers)},
                          key=lambda s: atomic_numbers[s])
        col = {atomic_numbers[s]: j for j, s in enumerate(elements)}
        frame_of_atom = np.repeat(np.arange(len(n_atoms)), n_atoms)
        counts = np.zeros((len(n_atoms), len(elements)))
        np.add.at(counts, (frame_of_atom, np.array([col[z] for z in numbers])), 1)
        return CalibrationData(np.concatenate(e_src), np.concatenate(e_tgt), counts, elements,
                               np.concatenate(groups), rejects)

    @staticmethod
    def _reject_charged(batch, keep, fname, rejects, allow_charged: bool = False):
        """Frames whose total charge is not an integer, or (unless ``allow_charged``) is not
        0, become frame errors."""
        for ck in CHARGE_KEYS:
            if ck not in batch.info:
                continue
            col = batch.info[ck]
            has = batch.has(ck)
            for i in np.flatnonzero(keep & has):
                q, why = _charge(col[i])
                if why is None and (q == 0 or allow_charged):
                    continue
                rejects.append(FrameError(
                    fname, int(batch.index[i]), ck, why or
                    f"charged structure (charge {q}); TEA's isolated-atom references "
                    "are neutral atoms (--allow-charged keeps it: "
                    f"{charged_error_note()})"))
                keep = keep.copy()
                keep[i] = False
        return keep

    def _keys(self, source_key, target_key) -> tuple[str, str]:
        source_key = source_key if source_key is not None else self.source_key
        target_key = target_key if target_key is not None else self.target_key
        for name, key in (("source_key", source_key), ("target_key", target_key)):
            if not isinstance(key, str) or not key:
                raise SetupError(f"{name} is not set: give it to TotalEnergyAlignment(...) "
                                 "or to fit()", field=f"--{name.replace('_', '-')}")
        return source_key, target_key

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
        fname = file or (str(calibration) if isinstance(calibration, (str, os.PathLike))
                         else "<calibration>")
        self._check_enough(len(data.source_energy), len(data.elements), data.groups, fname)
        self._set_tables()
        src_t, tgt_t = self.source_table_, self.target_table_
        e_src_atoms = np.array([src_t.energy(s) for s in data.elements])
        e_tgt_atoms = np.array([tgt_t.energy(s) for s in data.elements])
        sum_src = data.counts @ e_src_atoms
        sum_tgt = data.counts @ e_tgt_atoms
        x = sum_src - data.source_energy  # source atomization energy
        y = sum_tgt - data.target_energy  # target atomization energy
        rng = np.random.default_rng(self.random_state)
        choice = self.model
        self.cv_rmse_ = None
        if choice == "auto":
            folds = kfold_indices(len(x), self.cv_folds, data.groups, rng)
            self.cv_rmse_ = {m: cross_validated_rmse(m, x, data.counts, y, folds, self.alpha)
                             for m in MODELS}
            choice = min(self.cv_rmse_, key=self.cv_rmse_.get)
        if choice == "icea":
            self.a_ = 1.0
            offsets = np.zeros(len(data.elements))
            self.a_ci95_ = [1.0, 1.0]
        else:
            model = make_model(choice, self.alpha).fit(x, data.counts, y)
            self.a_ = float(model.a_)
            offsets = model.offsets_
            boot = model.bootstrap_a(x, data.counts, y, self.n_bootstrap, rng)
            self.a_ci95_ = [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
        fitted_offsets = {s: float(c) for s, c in zip(data.elements, offsets) if c != 0.0}
        wrong = implausible(self.a_, fitted_offsets)
        if wrong:
            del self.a_
            raise SetupError(f"fitted {wrong[1]}: check the energy keys, their units (eV) and "
                             "the isolated-atom tables", file=fname, field=wrong[0])
        self.model_ = choice
        self.offsets_ = fitted_offsets
        pred_y = self.a_ * x + data.counts @ offsets
        e_icea = sum_tgt - x
        e_tea = sum_tgt - pred_y
        self.n_ = len(x)
        self.n_rejected_ = len(data.rejects)
        self.rejects_ = data.rejects
        self.rmse_icea_ = _rmse(data.target_energy - e_icea)
        self.rmse_tea_ = _rmse(data.target_energy - e_tea)
        self.r2_icea_ = _r2(data.target_energy, e_icea)
        self.r2_tea_ = _r2(data.target_energy, e_tea)
        self.calibration_ = {
            "file": str(calibration) if isinstance(calibration, (str, os.PathLike)) else None,
            "sha256": _sha256_file(calibration)
            if isinstance(calibration, (str, os.PathLike)) and Path(calibration).is_file()
            else None,
            "source_key": source_key, "target_key": target_key, "split": split,
            "n": self.n_, "n_rejected": self.n_rejected_, "elements": data.elements,
        }
        self.chain_ = []
        # arrays for plots and reports
        self.parity_ = {"target": data.target_energy, "icea": e_icea, "tea": e_tea,
                        "x": x, "y": y, "n_atoms": data.counts.sum(axis=1)}
        return self

    # ------------------------------------------------------------------ applying
    def _terms(self, batch: FrameBatch, table: IsolatedAtomTable):
        fa = batch.frame_of_atom()
        sums = atom_energy_sums(batch.numbers, fa, batch.n_frames, table)
        lut = np.zeros(119)
        for s, c in self.offsets_.items():
            lut[atomic_numbers[s]] = c
        off = np.zeros(batch.n_frames)
        np.add.at(off, fa, lut[batch.numbers])
        return sums, off

    def transform(self, frames, energy_key: str | None = None,
                  forces_key: str | None = "forces", stress_key: str | None = "stress",
                  virials_key: str | None = "virials", source_name: str | None = None,
                  file: str | None = None, remove_d3: str | None = None, *,
                  allow_realign: bool = False, check: bool = True,
                  allow_charged: bool = False) -> FrameBatch:
        """Map source energies/forces/stress/virials onto the target scale.

        Writes MACE's ``REF_energy``/``REF_forces``/``REF_stress``/``REF_virials``, keeps the
        inputs as ``orig_*``, and records ``source`` and ``alignment_sha256``. Frames lacking
        ``energy_key`` or charged become frame errors (in the returned batch's ``rejects``).
        ``remove_d3`` names a functional whose D3(BJ) energy, forces and stress are
        subtracted from the source before alignment (``orig_*`` keep the values with D3).
        ``energy_key`` defaults to ``energy``, or, when no frame has that, to the source
        key the alignment was fitted with. A key given as None is not aligned.

        Frames that carry ``alignment_sha256`` (written by a previous alignment) are already
        on a target scale: aligning them again is a :class:`SetupError` unless
        ``allow_realign`` (e.g. chaining two alignments by hand).

        Charged frames are rejected unless ``allow_charged``: TEA's isolated-atom references
        are neutral atoms, and the measured error of applying them to ions is in
        :data:`tealign.provenance.CHARGED_CHECK`.

        With ``check`` (the default; streaming callers that judge the whole input pass
        False), the frames given are judged as a whole: no frame with ``energy_key``, or
        forces/stress found only under other keys than ``forces_key``/``stress_key`` (they
        would stay unscaled beside aligned energies, as ``tealign align`` refuses), is a
        :class:`SetupError`; rejecting every frame warns (``UserWarning``).

        Returns a FrameBatch (an :class:`AtomsList` when given a list of ``ase.Atoms``);
        its ``rejects`` name every frame left out and why. With ``strict=True`` the first
        of them raises instead (a SetupError).
        """
        self._check_fitted()
        batch = _single_batch(frames)
        fname = file or "<frames>"
        if energy_key is None:
            fitted = (getattr(self, "calibration_", None) or {}).get("source_key") \
                or self.source_key
            energy_key = fitted if fitted and not batch.has("energy").any() \
                and batch.has(fitted).any() else "energy"
        if not allow_realign and batch.has("alignment_sha256").any():
            i = int(np.flatnonzero(batch.has("alignment_sha256"))[0])
            raise SetupError(
                "frames are aligned already (they carry alignment_sha256 "
                f"{str(batch.info['alignment_sha256'][i])[:12]}...); aligning them again "
                "applies the shift and factor twice. Align the source data instead, or pass "
                "--allow-realign (allow_realign=True) to chain alignments on purpose",
                file=fname, frame=int(batch.index[i]), field="alignment_sha256")
        if check:
            self._check_keys(batch, energy_key, forces_key, stress_key, fname)
        out = self._transform(batch, energy_key, forces_key, stress_key, virials_key,
                              source_name, fname, remove_d3, allow_charged)
        if check and batch.n_frames and out.n_frames == 0:
            import warnings

            warnings.warn(f"transform rejected every frame ({len(out.rejects)}), e.g. "
                          f"{out.rejects[0].line()}", UserWarning, stacklevel=2)
        return _like(frames, out)

    def _check_keys(self, batch: FrameBatch, energy_key: str, forces_key, stress_key,
                    fname: str) -> None:
        """Whole-input key checks of :meth:`transform` (see there)."""
        from tealign.io.frames import energy_like, forces_like, tensor_kind

        if batch.n_frames and not batch.has(energy_key).any():
            fitted = (getattr(self, "calibration_", None) or {}).get("source_key") \
                or self.source_key
            found = sorted(k for k in batch.info if (energy_like(k) or k == fitted)
                           and not k.startswith(("REF_", "orig_", "d3_")))
            hint = f"; frames carry {', '.join(found)}: pass energy_key=" + repr(found[0]) \
                if found else ""
            raise SetupError("no frame has this energy key" + hint, file=fname,
                             field=energy_key)
        for kind, key, keys in (("forces", forces_key, batch.arrays),
                                ("stress", stress_key, batch.info)):
            if key is None or batch.has(key).any():
                continue
            found = sorted(k for k in keys if k != key
                           and not k.startswith(("REF_", "orig_", "d3_"))
                           and (forces_like(k) if kind == "forces"
                                else tensor_kind(k) == "stress"))
            if found:
                raise SetupError(
                    f"no frame has {kind} key '{key}', but frames carry {kind} under "
                    f"{', '.join(repr(k) for k in found)}; pass {kind}_key={found[0]!r} (they "
                    "would stay unscaled beside aligned energies) or "
                    f"{kind}_key=None to leave them out", file=fname, field=f"{kind}_key")

    def _transform(self, batch: FrameBatch, energy_key, forces_key, stress_key, virials_key,
                   source_name, fname, remove_d3, allow_charged: bool = False
                   ) -> FrameBatch:
        """:meth:`transform` on one batch, without the whole-input checks."""
        out, sums = self._prepare(batch, energy_key, "missing energy", fname, forward=True,
                                  allow_charged=allow_charged)
        if sums is None:
            return out
        sum_src, sum_tgt, off = sums
        kinds = (("forces", forces_key), ("stress", stress_key), ("virials", virials_key))
        out.info[ORIG_KEYS["energy"]] = np.asarray(out.info[energy_key], dtype=float).copy()
        for kind, key in kinds:
            store = out.arrays if kind == "forces" else out.info
            if key is not None and key in store:
                store[ORIG_KEYS[kind]] = np.asarray(store[key], dtype=float).copy()
        if remove_d3:
            from tealign.dispersion import apply_d3, check_d3_removable

            check_d3_removable(out, energy_key, file=fname)  # D3 is never removed twice
            out = apply_d3(out, remove_d3, energy_key, forces_key, stress_key, sign=-1.0)
        e = np.asarray(out.info[energy_key], dtype=float)
        out.info[ALIGNED_KEYS["energy"]] = sum_tgt - (self.a_ * (sum_src - e) + off)
        for kind, key in kinds:
            store = out.arrays if kind == "forces" else out.info
            if key is None or key not in store:
                continue
            store[ALIGNED_KEYS[kind]] = self.a_ * np.asarray(store[key], dtype=float)
        # the inputs live on as orig_*; drop them so the aligned frames carry one copy
        for kind, key in (("energy", energy_key), *kinds):
            if key is None or key in ALIGNED_KEYS.values() or key in ORIG_KEYS.values():
                continue
            out.info.pop(key, None)
            out.arrays.pop(key, None)
            mask = out.missing.pop(key, None)
            if mask is not None:
                out.missing[ORIG_KEYS[kind]] = mask
                out.missing[ALIGNED_KEYS[kind]] = mask
        if source_name is not None:
            out.info["source"] = np.array([source_name] * out.n_frames, dtype=object)
        out.info["alignment_sha256"] = np.array([self.sha256()] * out.n_frames, dtype=object)
        return out

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
        self._check_fitted()
        batch = _single_batch(frames)
        fname = file or "<frames>"
        out, sums = self._prepare(batch, ALIGNED_KEYS["energy"], "missing aligned energy",
                                  fname, forward=False)
        if sums is None:
            return _like(frames, out)
        sum_src, sum_tgt, off = sums
        e1 = np.asarray(out.info.pop(ALIGNED_KEYS["energy"]), dtype=float)
        x = (sum_tgt - e1 - off) / self.a_
        out.info[energy_key] = sum_src - x
        for kind, key in (("forces", forces_key), ("stress", stress_key),
                          ("virials", virials_key)):
            store = out.arrays if kind == "forces" else out.info
            aligned = ALIGNED_KEYS[kind]
            if aligned not in store:
                continue
            store[key] = np.asarray(store.pop(aligned), dtype=float) / self.a_
            if aligned in out.missing:
                out.missing[key] = out.missing.pop(aligned)
        for k in ("alignment_sha256", "source", "d3_energy", "d3_functional",
                  *ORIG_KEYS.values()):
            out.info.pop(k, None)
            out.arrays.pop(k, None)
            out.missing.pop(k, None)
        if add_d3:
            from tealign.dispersion import apply_d3

            out = apply_d3(out, add_d3, energy_key, forces_key, stress_key, sign=+1.0)
            out.info.pop("d3_energy")
            out.info.pop("d3_functional")
        return _like(frames, out)

    def _prepare(self, batch: FrameBatch, key: str, reason: str, fname: str, forward: bool,
                 allow_charged: bool = False):
        """Reject frames lacking ``key`` (and, going forward, charged ones); check the tables
        cover the rest; return (frames, (Σ E_src atoms, Σ E_tgt atoms, offsets) or None)."""
        keep = batch.has(key)
        rejects = list(batch.rejects)
        for i in np.flatnonzero(~keep):
            rejects.append(FrameError(fname, int(batch.index[i]), key, reason))
        if key in batch.info:
            keep = _check_energies(batch, key, keep, fname, rejects)
            if keep.any() and batch.info[key].dtype.kind not in "f":
                batch = batch.copy()
                batch.info[key] = np.array([float(v) if k else np.nan
                                            for v, k in zip(batch.info[key], keep)])
        if forward:
            keep = self._reject_charged(batch, keep, fname, rejects, allow_charged)
        keep = self._reject_uncovered(batch, keep, fname, rejects, forward)
        if self.strict and rejects:
            raise rejects[0].as_setup_error()
        out = batch.select(keep)
        out.rejects = rejects
        if out.n_frames == 0:
            return out, None
        src_t, tgt_t = self.source_table_, self.target_table_
        sum_src, off = self._terms(out, src_t)
        sum_tgt, _ = self._terms(out, tgt_t)
        return out, (sum_src, sum_tgt, off)

    def _reject_uncovered(self, batch, keep, fname, rejects, forward: bool):
        """Frames with an element that either isolated-atom table lacks (or, going forward,
        that the per-element offsets were not fitted on) become frame errors: one frame with
        an odd element is one reject, not the whole run."""
        covered = np.zeros(119, dtype=bool)
        covered[[atomic_numbers[s] for s in self.source_table_.energies
                 if s in self.target_table_.energies]] = True
        why = {}
        if forward and self.offsets_:
            fitted = np.zeros(119, dtype=bool)
            fitted[[atomic_numbers[s] for s in
                    (self.calibration_.get("elements") or self.offsets_)]] = True
        else:
            fitted = np.ones(119, dtype=bool)
        z = np.asarray(batch.numbers, dtype=np.int64)
        z_ok = (z >= 1) & (z <= 118)
        zc = np.where(z_ok, z, 0)
        atom_bad = ~z_ok | ~covered[zc] | ~fitted[zc]
        if not atom_bad.any():
            return keep
        frame_bad = np.zeros(batch.n_frames, dtype=bool)
        np.logical_or.at(frame_bad, batch.frame_of_atom(), atom_bad)
        for i in np.flatnonzero(keep & frame_bad):
            a, b = batch.offsets[i], batch.offsets[i + 1]
            zz = int(z[a:b][atom_bad[a:b]][0])
            if not 1 <= zz <= 118:
                why[i] = ("numbers", f"{zz} is not an atomic number (1–118)")
                continue
            sym = chemical_symbols[zz]
            table = next((t for t in (self.source_table_, self.target_table_)
                          if sym not in t.energies), None)
            if table is not None:
                why[i] = (f"e0[{sym}]", f"element {sym} is not in isolated-atom table "
                          f"'{table.name}' of this alignment (compute it with `tealign compute "
                          "atoms` and refit with a table that covers it)")
            else:
                why[i] = (f"offsets[{sym}]", f"element {sym} was not in the calibration set, "
                          f"so model '{self.model_}' has no offset for it (refit with "
                          "calibration structures containing it or use --model scale)")
        for i, (fld, reason) in why.items():
            rejects.append(FrameError(fname, int(batch.index[i]), fld, reason))
        return keep & ~frame_bad

    # ------------------------------------------------------------------ chains
    @classmethod
    def compose(cls, first: TotalEnergyAlignment, second: TotalEnergyAlignment
                ) -> TotalEnergyAlignment:
        """One alignment equal to applying ``first`` (3 → 2) and then ``second`` (2 → 1).

        y₁ = a₂₁ (a₃₂ x₃ + c₃₂·n) + c₂₁·n, so a = a₂₁·a₃₂ and c = a₂₁·c₃₂ + c₂₁; the
        isolated-atom shifts telescope through method 2's table.
        """
        first._check_fitted()
        second._check_fitted()
        mid_a, mid_b = first.target_table_, second.source_table_
        common = set(mid_a.energies) & set(mid_b.energies)
        if not common or any(abs(mid_a.energies[s] - mid_b.energies[s]) > 1e-9 for s in common):
            raise SetupError(
                f"cannot chain: the first alignment's target table '{mid_a.name}' is not the "
                f"second's source table '{mid_b.name}'", field="chain")
        # a refit of the chained pair (method 3 → 1) would need the per-element offsets
        # when either link has them; the settings stay ones that fit() accepts
        elements_model = bool(first.offsets_ or second.offsets_)
        out = cls(first.source, second.target,
                  model="scale+elements" if elements_model else "scale")
        out._set_tables()
        out.a_ = first.a_ * second.a_
        elements = set(first.offsets_) | set(second.offsets_)
        out.offsets_ = {s: second.a_ * first.offsets_.get(s, 0.0) + second.offsets_.get(s, 0.0)
                        for s in elements}
        out.offsets_ = {s: c for s, c in out.offsets_.items() if c != 0.0}
        out.model_ = "chain"
        out.a_ci95_ = None
        out.cv_rmse_ = None
        out.n_ = out.n_rejected_ = 0
        out.rmse_icea_ = out.rmse_tea_ = out.r2_icea_ = out.r2_tea_ = None
        el1 = first.calibration_.get("elements") or []
        el2 = second.calibration_.get("elements") or []
        out.calibration_ = {"elements": sorted(set(el1) & set(el2)) if (el1 and el2) else []}
        out.chain_ = [first.to_dict(), second.to_dict()]
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        self._check_fitted()
        src_t, tgt_t = self.source_table_, self.target_table_
        d = {
            "format": FORMAT,
            "tealign_version": __version__,
            "units": {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å³",
                      "codata": units.CODATA, "hartree_to_eV": units.HARTREE_TO_EV},
            "source_table": src_t.to_json_dict(),
            "target_table": tgt_t.to_json_dict(),
            "model": {"name": self.model_, "a": self.a_, "offsets_eV": self.offsets_,
                      "requested": "chain" if self.model_ == "chain" else self.model,
                      "alpha": self.alpha},
            "a_ci95": self.a_ci95_,
            "metrics": {"n": self.n_, "n_rejected": self.n_rejected_,
                        "rmse_icea_eV": self.rmse_icea_, "rmse_tea_eV": self.rmse_tea_,
                        "r2_icea": self.r2_icea_, "r2_tea": self.r2_tea_,
                        "cv_rmse_eV": self.cv_rmse_},
            "calibration": self.calibration_,
            "settings": {"n_bootstrap": self.n_bootstrap, "cv_folds": self.cv_folds,
                         "random_state": self.random_state},
            "formula": "E1 = sum_i E_i[target] - (a * (sum_i E_i[source] - E2) + "
                       "sum_el n_el * offsets[el]); F1 = a F2; stress1 = a stress2",
        }
        if self.chain_:
            d["chain"] = self.chain_
        return d

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of this alignment (what ``alignment_sha256`` holds)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``alignment.json`` atomically; returns its path, like every ``save`` of
        tealign (the file's ``sha256``, of the canonical form, is :meth:`sha256`; before
        0.2 this returned that hash)."""
        d = self.to_dict()
        d["sha256"] = self.sha256()
        write_json(path, d)
        return Path(path)

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> TotalEnergyAlignment:
        """Build a fitted alignment from its saved form, validated against the schema
        (:func:`validate_alignment`): required fields and types, a finite a > 0, both
        isolated-atom tables, and a ``sha256`` that matches the content."""
        validate_alignment(d, source)
        src = IsolatedAtomTable.from_json_dict(d["source_table"], source=source)
        tgt = IsolatedAtomTable.from_json_dict(d["target_table"], source=source)
        settings = d.get("settings", {})
        requested = d["model"].get("requested", d["model"]["name"])
        if requested == "chain":  # a composed alignment: the settings a refit would use
            requested = "scale+elements" if d["model"].get("offsets_eV") else "scale"
        out = cls(src, tgt, model=requested, alpha=d["model"].get("alpha", 1e-3), **settings)
        out.source_table_, out.target_table_ = src, tgt
        out.a_ = float(d["model"]["a"])
        out.offsets_ = {k: float(v) for k, v in d["model"].get("offsets_eV", {}).items()}
        out.model_ = d["model"]["name"]
        out.a_ci95_ = d.get("a_ci95")
        m = d.get("metrics", {})
        out.n_, out.n_rejected_ = m.get("n"), m.get("n_rejected")
        out.rmse_icea_, out.rmse_tea_ = m.get("rmse_icea_eV"), m.get("rmse_tea_eV")
        out.r2_icea_, out.r2_tea_ = m.get("r2_icea"), m.get("r2_tea")
        out.cv_rmse_ = m.get("cv_rmse_eV")
        out.calibration_ = d.get("calibration", {})
        out.chain_ = d.get("chain", [])
        if d["sha256"] != out.sha256():
            raise SetupError("alignment file was edited after saving (sha256 mismatch); "
                             + _HOW_TO_GET_ONE, file=source, field="sha256")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> TotalEnergyAlignment:
        try:
            d = json.loads(Path(path).read_text())
        except OSError as exc:
            raise SetupError(f"cannot read alignment: {exc.strerror}", file=str(path)) from None
        except json.JSONDecodeError as exc:
            raise SetupError(f"not valid JSON (line {exc.lineno}: {exc.msg}); "
                             + _HOW_TO_GET_ONE, file=str(path)) from None
        except UnicodeDecodeError:
            raise SetupError("not a text file; " + _HOW_TO_GET_ONE, file=str(path)) from None
        return cls.from_dict(d, source=str(path))


_HOW_TO_GET_ONE = ("get a valid alignment with `tealign fit CALIB ... -o alignment.json` "
                   "(alignment files are never edited by hand)")


def _finite(v) -> bool:
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool,
                                                                                 np.bool_)):
        return False
    try:
        return bool(np.isfinite(float(v)))
    except OverflowError:  # an integer beyond float's range (JSON's 10**400)
        return False


def _show_number(v) -> str:
    """A value for an error line: huge integers by their size, long text cut short."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**30:
        return f"an integer of {len(str(abs(v)))} digits"
    text = repr(v)
    return text if len(text) <= 30 else text[:27] + "..."


def validate_alignment(d, source: str = "<dict>") -> None:
    """Raise :class:`SetupError` (naming the field) unless ``d`` is a well-formed saved
    alignment: a JSON object of format tealign-alignment/1 with ``model`` {``name``: str,
    ``a``: finite, 0.5 < a < 2, ``offsets_eV``: {element: finite, |c| ≤ 10 eV}} (the
    plausible ranges of :func:`tealign.align.aec.implausible`), ``source_table`` and
    ``target_table`` objects, ``sha256`` (64 hex digits), and, where present, ``a_ci95``
    ([lo, hi] finite or null), ``settings`` (n_bootstrap ≥ 1, cv_folds ≥ 2,
    random_state int), ``metrics``/``calibration``/``units`` objects and ``chain`` a list."""
    def bad(field, why):
        return SetupError(f"{why}; " + _HOW_TO_GET_ONE, file=source, field=field)

    if not isinstance(d, dict):
        raise bad(None, f"an alignment is a JSON object, not a {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise bad("format", f"not a tealign alignment (format {d.get('format')!r}, expected "
                  f"{FORMAT!r})")
    for key in ("model", "source_table", "target_table"):
        if key not in d:
            raise bad(key, "required field is missing")
        if not isinstance(d[key], dict):
            raise bad(key, f"must be a JSON object, not {type(d[key]).__name__}")
    if "sha256" not in d:
        raise bad("sha256", "required field is missing, so the file cannot be checked")
    sha = d["sha256"]
    if not (isinstance(sha, str) and len(sha) == 64
            and all(c in "0123456789abcdef" for c in sha)):
        raise bad("sha256", "must be 64 lower-case hex digits")
    model = d["model"]
    if not isinstance(model.get("name"), str):
        raise bad("model.name", "required string is missing")
    if "requested" in model and not isinstance(model["requested"], str):
        raise bad("model.requested", "must be a string")
    if "a" not in model:
        raise bad("model.a", "required number is missing")
    a = model["a"]
    if not _finite(a) or a <= 0:
        raise bad("model.a", f"must be a finite number > 0, not {_show_number(a)}")
    offsets = model.get("offsets_eV", {})
    if not isinstance(offsets, dict):
        raise bad("model.offsets_eV", "must be an object of element → eV")
    for el, v in offsets.items():
        if el not in atomic_numbers:
            raise bad(f"model.offsets_eV.{el}", "not an element symbol")
        if not _finite(v):
            raise bad(f"model.offsets_eV.{el}", f"must be a finite number, not "
                      f"{_show_number(v)}")
    wrong = implausible(a, offsets)
    if wrong:
        raise bad(*wrong)
    if "alpha" in model and (not _finite(model["alpha"]) or model["alpha"] < 0):
        raise bad("model.alpha", "must be a finite number ≥ 0")
    ci = d.get("a_ci95")
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                               and all(_finite(v) for v in ci)):
        raise bad("a_ci95", "must be [lo, hi] (finite numbers) or null")
    settings = d.get("settings", {})
    if not isinstance(settings, dict):
        raise bad("settings", "must be a JSON object")
    for key, v in settings.items():
        rule = {"n_bootstrap": 1, "cv_folds": 2, "random_state": None}.get(key, "unknown")
        if rule == "unknown":
            raise bad(f"settings.{key}", "unknown setting")
        if not isinstance(v, int) or isinstance(v, bool) or (rule is not None and v < rule):
            raise bad(f"settings.{key}", "must be an integer"
                      + (f" ≥ {rule}" if rule is not None else ""))
    for key in ("metrics", "calibration", "units"):
        if key in d and not isinstance(d[key], dict):
            raise bad(key, "must be a JSON object")
    if "chain" in d and not isinstance(d["chain"], list):
        raise bad("chain", "must be a list")


def _charge(v) -> tuple[int | None, str | None]:
    """(charge, None) for an integer total charge (an int, or a float with an integral
    value); (None, reason) for anything else (text, several numbers, 1.5, NaN, a bool)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, int) and not isinstance(v, bool):
        return v, None
    if isinstance(v, float) and np.isfinite(v) and v == int(v):
        return int(v), None
    text = str(v.tolist() if isinstance(v, np.ndarray) else v)
    return None, f"total charge must be one integer, not {text[:30]!r}"


def _check_energies(batch: FrameBatch, key: str, keep: np.ndarray, fname: str,
                    rejects: list) -> np.ndarray:
    """Frames whose ``key`` is not a finite real number become frame errors."""
    col = batch.info[key]
    if col.dtype.kind in "iuf" and col.ndim == 1:
        bad = keep & ~np.isfinite(col.astype(float))
        why = ["NaN or inf energy"] * len(col)
    else:
        why = [None if _finite(v.item() if isinstance(v, np.generic) else v)
               else ("NaN or inf energy" if isinstance(v, (float, np.floating))
                     else f"energy is not a number ({str(v)[:30]!r})") for v in col]
        bad = keep & np.array([w is not None for w in why], dtype=bool)
    for i in np.flatnonzero(bad):
        rejects.append(FrameError(fname, int(batch.index[i]), key, why[i]))
    return keep & ~bad


class AtomsList(list):
    """What ``transform``/``inverse_transform`` return for a list of ``ase.Atoms``: the
    aligned structures, plus ``rejects`` (the frames left out, each a FrameError)."""

    rejects: list[FrameError]


def _like(given, out: FrameBatch):
    """Return the aligned frames in the form they were given: a list of ``ase.Atoms`` stays
    a list (:class:`AtomsList`); anything else (a FrameBatch, a path, batches) is a
    FrameBatch. Either way ``.rejects`` lists the frames left out."""
    from ase import Atoms

    if isinstance(given, list) and given and isinstance(given[0], Atoms):
        res = AtomsList(out.to_atoms())
        res.rejects = list(out.rejects)
        return res
    return out


def _single_batch(frames) -> FrameBatch:
    from tealign.io.frames import concat_batches

    batches = list(as_batches(frames))
    return batches[0] if len(batches) == 1 else concat_batches(batches)


def _rmse(r: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(r))))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
