"""Columnar chunks of frames: the in-memory form every reader yields and every writer takes.

A :class:`FrameBatch` holds up to a few thousand frames as flat numpy arrays (atomic numbers,
positions and per-atom properties concatenated over frames, with ``offsets`` marking where
each frame starts), so that alignment, statistics and writing run as vectorised numpy code
instead of per-atom Python loops. ``ase.Atoms`` remains the exchange type at the API edge:
:meth:`FrameBatch.to_atoms` and :meth:`FrameBatch.from_atoms` convert both ways.

Units: positions and cells in Å; energies in eV, forces in eV/Å, stress in eV/Å³ (ASE sign)
once a reader has converted them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from tealign.errors import FrameError

#: Names under which ASE calculator results are carried into ``info`` / ``arrays``.
CALC_INFO_KEYS = ("energy", "free_energy", "stress", "virial", "dipole")
CALC_ARRAY_KEYS = ("forces", "magmoms", "charges", "energies")


@dataclass
class FrameRecord:
    """One frame before batching: what a record-oriented reader produces.

    ``info`` holds per-frame values (floats, ints, bools, strings, small arrays);
    ``arrays`` holds per-atom arrays whose first dimension is the number of atoms.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    info: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    index: int = 0


@dataclass
class FrameBatch:
    """A chunk of frames stored column-wise.

    Attributes
    ----------
    numbers : (n_atoms_total,) int
    positions : (n_atoms_total, 3) float, Å
    offsets : (n_frames + 1,) int; frame ``i`` owns atoms ``offsets[i]:offsets[i+1]``
    cell : (n_frames, 3, 3) float, Å
    pbc : (n_frames, 3) bool
    info : per-frame columns, each of length ``n_frames`` (float, int, bool or object)
    arrays : per-atom columns, each of length ``n_atoms_total``
    missing : for keys some frames of the batch lack: (n_frames,) bool, True where absent
    index : (n_frames,) int, each frame's position in its source file (0-based)
    rejects : frames the reader could not parse (frame errors, docs/architecture.md §6.2)
    """

    numbers: np.ndarray
    positions: np.ndarray
    offsets: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    info: dict[str, np.ndarray] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    missing: dict[str, np.ndarray] = field(default_factory=dict)
    index: np.ndarray | None = None
    rejects: list[FrameError] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = np.arange(self.n_frames)

    # -- shape --------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_atoms(self) -> np.ndarray:
        """Atoms per frame, (n_frames,) int."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.n_frames

    def frame_of_atom(self) -> np.ndarray:
        """For every atom, the batch-local index of its frame, (n_atoms_total,) int."""
        return np.repeat(np.arange(self.n_frames), self.n_atoms)

    def has(self, key: str) -> np.ndarray:
        """(n_frames,) bool: which frames carry ``key`` (in ``info`` or ``arrays``)."""
        if key not in self.info and key not in self.arrays:
            return np.zeros(self.n_frames, dtype=bool)
        return ~self.missing.get(key, np.zeros(self.n_frames, dtype=bool))

    def per_frame_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum a per-atom quantity over the atoms of each frame (empty frames give 0)."""
        out = np.zeros((self.n_frames,) + values.shape[1:], dtype=float)
        np.add.at(out, self.frame_of_atom(), values)
        return out

    # -- selection ------------------------------------------------------------------------
    def select(self, keep: np.ndarray) -> FrameBatch:
        """A new batch with the frames where boolean mask ``keep`` is True (rejects kept)."""
        keep = np.asarray(keep, dtype=bool)
        atom_keep = np.repeat(keep, self.n_atoms)
        counts = self.n_atoms[keep]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return FrameBatch(
            numbers=self.numbers[atom_keep],
            positions=self.positions[atom_keep],
            offsets=offsets,
            cell=self.cell[keep],
            pbc=self.pbc[keep],
            info={k: v[keep] for k, v in self.info.items()},
            arrays={k: v[atom_keep] for k, v in self.arrays.items()},
            missing={k: v[keep] for k, v in self.missing.items() if v[keep].any()},
            index=self.index[keep],
            rejects=list(self.rejects),
        )

    def copy(self) -> FrameBatch:
        return FrameBatch(
            numbers=self.numbers.copy(),
            positions=self.positions.copy(),
            offsets=self.offsets.copy(),
            cell=self.cell.copy(),
            pbc=self.pbc.copy(),
            info={k: v.copy() for k, v in self.info.items()},
            arrays={k: v.copy() for k, v in self.arrays.items()},
            missing={k: v.copy() for k, v in self.missing.items()},
            index=self.index.copy(),
            rejects=list(self.rejects),
        )

    # -- conversion -----------------------------------------------------------------------
    def record(self, i: int) -> FrameRecord:
        """Frame ``i`` (batch-local) as a :class:`FrameRecord`; absent keys are left out."""
        a, b = self.offsets[i], self.offsets[i + 1]
        info = {}
        for key, col in self.info.items():
            if key in self.missing and self.missing[key][i]:
                continue
            value = col[i]
            info[key] = value.item() if isinstance(value, np.generic) else value
        arrays = {
            key: col[a:b]
            for key, col in self.arrays.items()
            if not (key in self.missing and self.missing[key][i])
        }
        return FrameRecord(
            numbers=self.numbers[a:b],
            positions=self.positions[a:b],
            cell=self.cell[i],
            pbc=self.pbc[i],
            info=info,
            arrays=arrays,
            index=int(self.index[i]),
        )

    def to_atoms(self) -> list[Atoms]:
        """The frames as ``ase.Atoms``: per-frame values in ``info``, per-atom in ``arrays``."""
        out = []
        for i in range(self.n_frames):
            rec = self.record(i)
            atoms = Atoms(
                numbers=rec.numbers, positions=rec.positions, cell=rec.cell, pbc=rec.pbc
            )
            for key, value in rec.info.items():
                atoms.info[key] = value.copy() if isinstance(value, np.ndarray) else value
            for key, value in rec.arrays.items():
                if key == "move_mask":
                    _set_constraints(atoms, np.asarray(value, dtype=bool))
                    continue
                atoms.arrays[key] = np.array(value)
            out.append(atoms)
        return out

    @classmethod
    def from_atoms(cls, atoms_list: Sequence[Atoms], start_index: int = 0) -> FrameBatch:
        """Build a batch from ``ase.Atoms``; calculator results join ``info``/``arrays``."""
        records = []
        for k, atoms in enumerate(atoms_list):
            info = dict(atoms.info)
            arrays = {
                key: np.asarray(val)
                for key, val in atoms.arrays.items()
                if key not in ("numbers", "positions")
            }
            calc = atoms.calc
            if calc is not None and getattr(calc, "results", None):
                for key, value in calc.results.items():
                    if key in CALC_ARRAY_KEYS:
                        arrays.setdefault(key, np.asarray(value))
                    elif key in CALC_INFO_KEYS:
                        if key == "stress" and np.shape(value) == (6,):
                            value = as_tensor(value)  # ASE's Voigt form → tealign's 3×3
                        info.setdefault(key, value)
            mask = _move_mask(atoms)
            if mask is not None:
                arrays.setdefault("move_mask", mask)
            records.append(
                FrameRecord(
                    numbers=atoms.numbers.copy(),
                    positions=atoms.positions.copy(),
                    cell=np.array(atoms.cell[:]),
                    pbc=atoms.pbc.copy(),
                    info=info,
                    arrays=arrays,
                    index=start_index + k,
                )
            )
        return cls.from_records(records)

    @classmethod
    def from_records(
        cls, records: Sequence[FrameRecord], rejects: Iterable[FrameError] = ()
    ) -> FrameBatch:
        """Stack records into columns. Keys absent from some frames are marked ``missing``."""
        n = len(records)
        counts = np.array([len(r.numbers) for r in records], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if n:
            numbers = np.concatenate([np.asarray(r.numbers, dtype=np.int64) for r in records])
            positions = np.concatenate(
                [np.asarray(r.positions, dtype=float).reshape(-1, 3) for r in records]
            )
            cell = np.stack([np.asarray(r.cell, dtype=float).reshape(3, 3) for r in records])
            pbc = np.stack([np.asarray(r.pbc, dtype=bool).reshape(3) for r in records])
        else:
            numbers = np.zeros(0, dtype=np.int64)
            positions = np.zeros((0, 3))
            cell = np.zeros((0, 3, 3))
            pbc = np.zeros((0, 3), dtype=bool)
        array_keys: dict[str, None] = {}
        for r in records:
            array_keys.update(dict.fromkeys(r.arrays))
        info, missing = stack_info_dicts([r.info for r in records])
        arrays = {}
        for key in array_keys:
            present = np.array([key in r.arrays for r in records])
            arrays[key] = _stack_arrays(
                [r.arrays.get(key) for r in records], counts, present
            )
            if not present.all():
                missing[key] = ~present
        return cls(
            numbers=numbers,
            positions=positions,
            offsets=offsets,
            cell=cell,
            pbc=pbc,
            info=info,
            arrays=arrays,
            missing=missing,
            index=np.array([r.index for r in records], dtype=np.int64),
            rejects=list(rejects),
        )


def _move_mask(atoms: Atoms) -> np.ndarray | None:
    """ASE's ``move_mask`` column for FixAtoms / FixCartesian constraints (True = free)."""
    if not atoms.constraints:
        return None
    from ase.constraints import FixAtoms, FixCartesian

    mask = np.ones((len(atoms), 3), dtype=bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            mask[c.index] = False
        elif isinstance(c, FixCartesian):
            mask[c.index] &= ~np.asarray(c.mask, dtype=bool)
    if mask.all():
        return None
    if (mask == mask[:, :1]).all():
        return mask[:, 0].copy()
    return mask


def _set_constraints(atoms: Atoms, move_mask: np.ndarray) -> None:
    """``move_mask`` back into constraints, as ``ase.io.read`` does."""
    from ase.constraints import FixAtoms, FixCartesian

    if move_mask.ndim == 1:
        atoms.set_constraint(FixAtoms(mask=~move_mask))
    else:
        atoms.set_constraint([FixCartesian(a, mask=~move_mask[a]) for a in range(len(atoms))])


# ----------------------------------------------------------------------------- validation
_ENERGY_NAMES = {"energy", "free_energy"}
_ENERGY_PREFIXES = ("REF_energy", "orig_energy", "energy_", "d3_energy")
_FORCE_NAMES = {"forces"}
_FORCE_PREFIXES = ("REF_forces", "orig_forces", "forces_", "d3_forces")


def energy_like(key: str) -> bool:
    """Keys that hold a total energy in eV (ASE's names and those of docs/architecture.md §4.3)."""
    return key in _ENERGY_NAMES or key.startswith(_ENERGY_PREFIXES)


def forces_like(key: str) -> bool:
    """Per-atom keys that hold forces (n × 3, eV/Å)."""
    return key in _FORCE_NAMES or key.startswith(_FORCE_PREFIXES)


def tensor_kind(key: str) -> str | None:
    """'stress' or 'virials' for keys holding a 3×3 tensor (3×3, 6 Voigt or 9 values)."""
    base = key.removeprefix("REF_").removeprefix("orig_").removeprefix("d3_")
    if base == "stress" or base.startswith("stress_"):
        return "stress"
    if base in ("virial", "virials") or base.startswith(("virial_", "virials_")):
        return "virials"
    return None


def other_keys_of(batch, kind: str, key: str | None) -> set[str]:
    """The keys of ``batch`` other than ``key`` that hold ``kind`` ("forces" or "stress") by
    their name, in the store where that kind lives (:func:`tealign.keys.store_of`), without
    the reference, original and D3 copies (``REF_``, ``orig_``, ``d3_``)."""
    from tealign.keys import store_of

    looks = forces_like if kind == "forces" else (lambda k: tensor_kind(k) == kind)
    return {k for k in store_of(batch, kind) if k != key and looks(k)
            and not k.startswith(("REF_", "orig_", "d3_"))}


def as_tensor(value) -> np.ndarray | None:
    """A 3×3 float tensor from 3×3, 6 (Voigt xx yy zz yz xz xy) or 9 (row-major) numbers;
    None if ``value`` is none of these or not all numbers."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind not in "iuf" or arr.size not in (6, 9):
        return None
    arr = arr.astype(float)
    if arr.shape == (3, 3) or arr.shape == (9,):
        return arr.reshape(3, 3)
    if arr.shape == (6,):
        xx, yy, zz, yz, xz, xy = arr
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    return None


def validate_batch(batch: FrameBatch, file: str, energy_keys=(), forces_keys=(),
                   tensor_keys=()) -> FrameBatch:
    """Boundary checks (docs/architecture.md §6.3): reject, with reason, frames whose physical
    values are unusable; return the batch of the others (rejects appended).

    Checked: positions finite, at least one atom; energies (ASE's keys and those of
    docs/architecture.md §4.3, and ``energy_keys``) finite real numbers; forces (and
    ``forces_keys``) n × 3 finite numbers; stress and virials (and ``tensor_keys``) 3×3, 6 or
    9 finite numbers, which are stored as (n_frames, 3, 3). Other keys are carried as they are
    (ASE's values, NaN included).
    """
    n = batch.n_frames
    if n == 0:
        return batch
    bad = np.zeros(n, dtype=bool)
    rejects = list(batch.rejects)

    def mark(frames, field_name, reason):
        for i in np.flatnonzero(frames & ~bad):
            rejects.append(FrameError(file, int(batch.index[i]), field_name, reason))
        bad[:] |= frames

    fa = batch.frame_of_atom()
    mark(batch.n_atoms == 0, "natoms", "frame has no atoms")
    nonfinite = np.zeros(n, dtype=bool)
    np.logical_or.at(nonfinite, fa, ~np.isfinite(batch.positions).all(axis=1))
    mark(nonfinite, "pos", "NaN or inf position")
    mark(~np.isfinite(batch.cell.reshape(n, 9)).all(axis=1), "Lattice", "NaN or inf in the cell")
    for key, col in list(batch.arrays.items()):
        if not (forces_like(key) or key in forces_keys):
            continue
        present = batch.has(key)
        shape_ok = col.ndim == 2 and col.shape[1] == 3 and col.dtype.kind in "iuf"
        if not shape_ok:
            ncols = 1 if col.ndim == 1 else int(np.prod(col.shape[1:]))
            mark(present, key, f"forces need 3 columns (n × 3 numbers), found {ncols}")
            continue
        fin = np.ones(n, dtype=bool)
        np.logical_and.at(fin, fa, np.isfinite(col.astype(float)).all(axis=1))
        mark(present & ~fin, key, "NaN or inf value")
    for key, col in list(batch.info.items()):
        present = batch.has(key)
        if energy_like(key) or key in energy_keys:
            if col.dtype.kind in "iuf" and col.ndim == 1:
                mark(present & ~np.isfinite(col.astype(float)), key, "NaN or inf energy")
                continue
            ok = np.array([_is_real(v) for v in col])
            mark(present & ~ok, key, "energy is not a number")
            fin = np.array([_is_real(v) and np.isfinite(float(v)) for v in col])
            mark(present & ok & ~fin, key, "NaN or inf energy")
            batch.info[key] = np.array([float(v) if _is_real(v) else np.nan for v in col])
            continue
        kind = tensor_kind(key) or ("stress" if key in tensor_keys else None)
        if kind is None:
            continue
        tensors = np.full((n, 3, 3), np.nan)
        # integer tensors in every frame stay integers, as ASE keeps them in info; ASE's
        # calculator key 'stress' is float there
        ints = bool(present.all()) and key != "stress"
        for i in np.flatnonzero(present):
            t = as_tensor(col[i])
            if t is None:
                mark(_one(n, i), key, f"{kind} needs 3×3, 6 or 9 numbers")
            elif not np.isfinite(t).all():
                mark(_one(n, i), key, "NaN or inf value")
            else:
                tensors[i] = t
                ints &= np.asarray(col[i]).dtype.kind in "iu"
        if ints:  # frames rejected above (NaN rows) are dropped below
            tensors = np.where(np.isfinite(tensors), tensors, 0).astype(np.int64)
        batch.info[key] = tensors
    if not bad.any():
        batch.rejects = rejects
        return batch
    out = batch.select(~bad)
    out.rejects = rejects
    return out


def _one(n: int, i: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[i] = True
    return m


def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


def stack_info_dicts(dicts: list[dict]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-frame dicts → (columns, missing masks for keys some frames lack)."""
    keys: dict[str, None] = {}
    for d in dicts:
        keys.update(dict.fromkeys(d))
    info, missing = {}, {}
    for key in keys:
        present = np.array([key in d for d in dicts])
        info[key] = _stack_info([d.get(key) for d in dicts], present)
        if not present.all():
            missing[key] = ~present
    return info, missing


def _stack_info(values: list, present: np.ndarray) -> np.ndarray:
    """Column for per-frame values; numeric scalars/fixed-shape arrays become float/int/bool."""
    real = [v for v, p in zip(values, present) if p]
    if real and all(isinstance(v, (bool, np.bool_)) for v in real):
        return np.array([bool(v) if p else False for v, p in zip(values, present)])
    if real and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
        and -(2**63) <= int(v) < 2**63 for v in real
    ):
        return np.array([int(v) if p else 0 for v, p in zip(values, present)], dtype=np.int64)
    if real and all(
        isinstance(v, (float, np.floating)) or (
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
            and -(2**63) <= int(v) < 2**63)
        for v in real
    ):
        return np.array([float(v) if p else np.nan for v, p in zip(values, present)])
    if real and all(
        isinstance(v, np.ndarray) and v.dtype.kind in "fiub" for v in real
    ):
        shapes = {v.shape for v in real}
        kinds = {v.dtype.kind for v in real}
        if len(shapes) == 1 and (present.all() or kinds <= {"f"}):
            shape = shapes.pop()
            if kinds == {"b"}:
                dtype, fill = bool, False
            elif kinds <= {"i", "u"}:
                dtype, fill = np.int64, 0
            elif "b" in kinds:
                dtype = None
            else:
                dtype, fill = float, np.nan
            if dtype is not None:
                out = np.full((len(values),) + shape, fill, dtype=dtype)
                for i, (v, p) in enumerate(zip(values, present)):
                    if p:
                        out[i] = v
                return out
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _stack_arrays(values: list, counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Column for per-atom arrays, concatenated over frames. The column keeps the kind of
    the frames that have it (float, int64, bool, else object); the atoms of absent frames
    hold a fill (NaN, 0, False, None) that the batch's ``missing`` mask marks as absent, so
    an integer array stays integer when some frames lack it."""
    real = [np.asarray(v) for v, p in zip(values, present) if p]
    tail = real[0].shape[1:]
    kinds = {v.dtype.kind for v in real}
    if kinds <= {"f", "i", "u"}:
        dtype, fill = (float, np.nan) if "f" in kinds else (np.int64, 0)
    elif kinds == {"b"}:
        dtype, fill = bool, False
    else:
        dtype, fill = object, None
    parts = []
    for v, p, c in zip(values, present, counts):
        if p:
            parts.append(np.asarray(v, dtype=dtype).reshape((c,) + tail))
        else:
            parts.append(np.full((c,) + tail, fill, dtype=dtype))
    if not parts:
        return np.zeros((0,) + tail)
    return np.concatenate(parts)


def concat_batches(batches: Sequence[FrameBatch]) -> FrameBatch:
    """Concatenate batches (through records; meant for small batches such as test sets)."""
    records = [b.record(i) for b in batches for i in range(b.n_frames)]
    rejects = [r for b in batches for r in b.rejects]
    return FrameBatch.from_records(records, rejects)
