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
CALC_ARRAY_KEYS = ("forces", "magmoms", "charges")


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
    rejects : frames the reader could not parse (DESIGN 4.6 frame errors)
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
                        info.setdefault(key, value)
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
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in real
    ):
        return np.array([int(v) if p else 0 for v, p in zip(values, present)], dtype=np.int64)
    if real and all(
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, (bool, np.bool_))
        for v in real
    ):
        return np.array([float(v) if p else np.nan for v, p in zip(values, present)])
    if real and all(
        isinstance(v, np.ndarray) and v.dtype.kind in "fiu" for v in real
    ):
        shapes = {v.shape for v in real}
        if len(shapes) == 1:
            shape = shapes.pop()
            out = np.full((len(values),) + shape, np.nan)
            for i, (v, p) in enumerate(zip(values, present)):
                if p:
                    out[i] = v
            return out
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _stack_arrays(values: list, counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Column for per-atom arrays, concatenated over frames (absent frames filled with NaN)."""
    real = [np.asarray(v) for v, p in zip(values, present) if p]
    tail = real[0].shape[1:]
    kinds = {v.dtype.kind for v in real}
    if kinds <= {"f", "i", "u"}:
        dtype = float if "f" in kinds or not present.all() else np.int64
    elif kinds == {"b"} and present.all():
        dtype = bool
    else:
        dtype = object
    parts = []
    for v, p, c in zip(values, present, counts):
        if p:
            parts.append(np.asarray(v, dtype=dtype).reshape((c,) + tail))
        else:
            fill = np.nan if dtype is float else None
            parts.append(np.full((c,) + tail, fill, dtype=dtype))
    if not parts:
        return np.zeros((0,) + tail)
    return np.concatenate(parts)


def concat_batches(batches: Sequence[FrameBatch]) -> FrameBatch:
    """Concatenate batches (through records; meant for small batches such as test sets)."""
    records = [b.record(i) for b in batches for i in range(b.n_frames)]
    rejects = [r for b in batches for r in b.rejects]
    return FrameBatch.from_records(records, rejects)
