"""Applying a fitted alignment to frames: ``transform`` (source → target scale) and its
inverse, as functions over a :class:`~tealign.align.fitted.FittedAlignment`.

Method 1 is the target scale, method 2 the source. With the fitted correction
y = a·x + Σ n_el c_el (x, y the source and target atomization energies):

    E^[1] = Σ_i E_i^[1] − (a · (Σ_i E_i^[2] − E^[2]) + Σ n_el c_el)
    F^[1] = a · F^[2],   σ^[1] = a · σ^[2],   W^[1] = a · W^[2]

The inverse undoes it up to floating-point rounding (~1e-15 relative). All energies eV,
forces eV/Å, stress eV/Å³.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from tealign.align.calibration import check_energies, reject_charged
from tealign.align.fitted import FittedAlignment
from tealign.align.icea import atom_energy_sums
from tealign.errors import FrameError, SetupError
from tealign.io import as_batches
from tealign.io.frames import FrameBatch
from tealign.keys import ORIG, REF, store_of
from tealign.methods import IsolatedAtomTable

ALIGNED_KEYS = REF.as_dict()
ORIG_KEYS = ORIG.as_dict()


class AtomsList(list):
    """What ``transform``/``inverse_transform`` return for a list of ``ase.Atoms``: the
    aligned structures, plus ``rejects`` (the frames left out, each a FrameError)."""

    rejects: list[FrameError]


def like(given, out: FrameBatch):
    """Return the aligned frames in the form they were given: a list of ``ase.Atoms`` stays
    a list (:class:`AtomsList`); anything else (a FrameBatch, a path, batches) is a
    FrameBatch. Either way ``.rejects`` lists the frames left out."""
    from ase import Atoms

    if isinstance(given, list) and given and isinstance(given[0], Atoms):
        res = AtomsList(out.to_atoms())
        res.rejects = list(out.rejects)
        return res
    return out


def single_batch(frames) -> FrameBatch:
    """All ``frames`` (a path, a FrameBatch, batches or a list of Atoms) as one batch."""
    from tealign.io.frames import concat_batches

    batches = list(as_batches(frames))
    return batches[0] if len(batches) == 1 else concat_batches(batches)


def transform(state: FittedAlignment, frames, energy_key: str | None, forces_key, stress_key,
              virials_key, source_name, file, remove_d3, *, allow_realign: bool, check: bool,
              allow_charged: bool, strict: bool, fitted_key: str | None,
              sha: Callable[[], str]):
    """``TotalEnergyAlignment.transform`` (see there) with the estimator's ``strict``, the
    source key it was fitted with (``fitted_key``) and its ``sha`` (called when needed)."""
    batch = single_batch(frames)
    fname = file or "<frames>"
    if energy_key is None:
        energy_key = fitted_key if fitted_key and not batch.has("energy").any() \
            and batch.has(fitted_key).any() else "energy"
    if not allow_realign and batch.has("alignment_sha256").any():
        i = int(np.flatnonzero(batch.has("alignment_sha256"))[0])
        raise SetupError(
            "frames are aligned already (they carry alignment_sha256 "
            f"{str(batch.info['alignment_sha256'][i])[:12]}...); aligning them again "
            "applies the shift and factor twice. Align the source data instead, or pass "
            "--allow-realign (allow_realign=True) to chain alignments on purpose",
            file=fname, frame=int(batch.index[i]), field="alignment_sha256")
    if check:
        check_keys(batch, energy_key, forces_key, stress_key, fname, fitted_key)
    out = transform_batch(state, batch, energy_key, forces_key, stress_key, virials_key,
                          source_name, fname, remove_d3, allow_charged, strict, sha)
    if check and batch.n_frames and out.n_frames == 0:
        import warnings

        warnings.warn(f"transform rejected every frame ({len(out.rejects)}), e.g. "
                      f"{out.rejects[0].line()}", UserWarning, stacklevel=3)
    return like(frames, out)


def check_keys(batch: FrameBatch, energy_key: str, forces_key, stress_key, fname: str,
               fitted_key: str | None) -> None:
    """Whole-input key checks of ``transform``: no frame with ``energy_key``, or forces or
    stress found only under other keys, is a setup error."""
    from tealign.io.frames import energy_like, other_keys_of

    if batch.n_frames and not batch.has(energy_key).any():
        found = sorted(k for k in batch.info if (energy_like(k) or k == fitted_key)
                       and not k.startswith(("REF_", "orig_", "d3_")))
        hint = f"; frames carry {', '.join(found)}: pass energy_key=" + repr(found[0]) \
            if found else ""
        raise SetupError("no frame has this energy key" + hint, file=fname,
                         field=energy_key)
    for kind, key in (("forces", forces_key), ("stress", stress_key)):
        if key is None or batch.has(key).any():
            continue
        found = sorted(other_keys_of(batch, kind, key))
        if found:
            raise SetupError(
                f"no frame has {kind} key '{key}', but frames carry {kind} under "
                f"{', '.join(repr(k) for k in found)}; pass {kind}_key={found[0]!r} (they "
                "would stay unscaled beside aligned energies) or "
                f"{kind}_key=None to leave them out", file=fname, field=f"{kind}_key")


def transform_batch(state: FittedAlignment, batch: FrameBatch, energy_key, forces_key,
                    stress_key, virials_key, source_name, fname, remove_d3,
                    allow_charged: bool, strict: bool, sha: Callable[[], str]) -> FrameBatch:
    """``transform`` on one batch, without the whole-input checks."""
    out, sums = prepare(state, batch, energy_key, "missing energy", fname, forward=True,
                        strict=strict, allow_charged=allow_charged)
    if sums is None:
        return out
    sum_src, sum_tgt, off = sums
    kinds = (("forces", forces_key), ("stress", stress_key), ("virials", virials_key))
    out.info[ORIG_KEYS["energy"]] = np.asarray(out.info[energy_key], dtype=float).copy()
    for kind, key in kinds:
        store = store_of(out, kind)
        if key is not None and key in store:
            store[ORIG_KEYS[kind]] = np.asarray(store[key], dtype=float).copy()
    if remove_d3:
        from tealign.dispersion import apply_d3, check_d3_removable

        check_d3_removable(out, energy_key, file=fname)  # D3 is never removed twice
        out = apply_d3(out, remove_d3, energy_key, forces_key, stress_key, sign=-1.0)
    e = np.asarray(out.info[energy_key], dtype=float)
    out.info[ALIGNED_KEYS["energy"]] = sum_tgt - (state.a * (sum_src - e) + off)
    for kind, key in kinds:
        store = store_of(out, kind)
        if key is None or key not in store:
            continue
        store[ALIGNED_KEYS[kind]] = state.a * np.asarray(store[key], dtype=float)
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
    out.info["alignment_sha256"] = np.array([sha()] * out.n_frames, dtype=object)
    return out


def inverse_transform(state: FittedAlignment, frames, energy_key: str, forces_key: str,
                      stress_key: str, virials_key: str, file: str | None, add_d3: str | None,
                      strict: bool):
    """``TotalEnergyAlignment.inverse_transform`` (see there) with the estimator's
    ``strict``."""
    batch = single_batch(frames)
    fname = file or "<frames>"
    out, sums = prepare(state, batch, ALIGNED_KEYS["energy"], "missing aligned energy",
                        fname, forward=False, strict=strict)
    if sums is None:
        return like(frames, out)
    sum_src, sum_tgt, off = sums
    e1 = np.asarray(out.info.pop(ALIGNED_KEYS["energy"]), dtype=float)
    x = (sum_tgt - e1 - off) / state.a
    out.info[energy_key] = sum_src - x
    for kind, key in (("forces", forces_key), ("stress", stress_key),
                      ("virials", virials_key)):
        store = store_of(out, kind)
        aligned = ALIGNED_KEYS[kind]
        if aligned not in store:
            continue
        store[key] = np.asarray(store.pop(aligned), dtype=float) / state.a
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
    return like(frames, out)


def terms(state: FittedAlignment, batch: FrameBatch, table: IsolatedAtomTable
          ) -> tuple[np.ndarray, np.ndarray]:
    """(Σ_i E_i of ``table``, Σ n_el c_el) per frame of ``batch`` (eV)."""
    fa = batch.frame_of_atom()
    sums = atom_energy_sums(batch.numbers, fa, batch.n_frames, table)
    lut = np.zeros(119)
    for s, c in state.offsets.items():
        lut[atomic_numbers[s]] = c
    off = np.zeros(batch.n_frames)
    np.add.at(off, fa, lut[batch.numbers])
    return sums, off


def prepare(state: FittedAlignment, batch: FrameBatch, key: str, reason: str, fname: str,
            forward: bool, strict: bool, allow_charged: bool = False):
    """Reject frames lacking ``key`` (and, going forward, charged ones); check the tables
    cover the rest; return (frames, (Σ E_src atoms, Σ E_tgt atoms, offsets) or None)."""
    keep = batch.has(key)
    rejects = list(batch.rejects)
    for i in np.flatnonzero(~keep):
        rejects.append(FrameError(fname, int(batch.index[i]), key, reason))
    if key in batch.info:
        keep = check_energies(batch, key, keep, fname, rejects)
        if keep.any() and batch.info[key].dtype.kind not in "f":
            batch = batch.copy()
            batch.info[key] = np.array([float(v) if k else np.nan
                                        for v, k in zip(batch.info[key], keep)])
    if forward:
        keep = reject_charged(batch, keep, fname, rejects, allow_charged)
    keep = reject_uncovered(state, batch, keep, fname, rejects, forward)
    if strict and rejects:
        raise rejects[0].as_setup_error()
    out = batch.select(keep)
    out.rejects = rejects
    if out.n_frames == 0:
        return out, None
    sum_src, off = terms(state, out, state.source_table)
    sum_tgt, _ = terms(state, out, state.target_table)
    return out, (sum_src, sum_tgt, off)


def reject_uncovered(state: FittedAlignment, batch: FrameBatch, keep: np.ndarray, fname: str,
                     rejects: list, forward: bool) -> np.ndarray:
    """Frames with an element that either isolated-atom table lacks (or, going forward,
    that the per-element offsets were not fitted on) become frame errors: one frame with
    an odd element is one reject, not the whole run."""
    src_t, tgt_t = state.source_table, state.target_table
    covered = np.zeros(119, dtype=bool)
    covered[[atomic_numbers[s] for s in src_t.energies if s in tgt_t.energies]] = True
    why = {}
    if forward and state.offsets:
        fitted = np.zeros(119, dtype=bool)
        fitted[[atomic_numbers[s] for s in
                (state.calibration.get("elements") or state.offsets)]] = True
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
        table = next((t for t in (src_t, tgt_t) if sym not in t.energies), None)
        if table is not None:
            why[i] = (f"e0[{sym}]", f"element {sym} is not in isolated-atom table "
                      f"'{table.name}' of this alignment (compute it with `tealign compute "
                      "atoms` and refit with a table that covers it)")
        else:
            why[i] = (f"offsets[{sym}]", f"element {sym} was not in the calibration set, "
                      f"so model '{state.model}' has no offset for it (refit with "
                      "calibration structures containing it or use --model scale)")
    for i, (fld, reason) in why.items():
        rejects.append(FrameError(fname, int(batch.index[i]), fld, reason))
    return keep & ~frame_bad
