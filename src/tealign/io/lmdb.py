"""fairchem's ASE-LMDB (``.aselmdb``) as a MACE training format: row layout, writer, reader.

mace-torch 0.3.16 trains from a directory of ``.aselmdb`` files (its ``LMDBDataset`` through
fairchem's ``AseDBDataset``): every row's ``data`` dict is merged into ``atoms.info``, its
``__arrays__`` entries become per-atom arrays, and ``config_from_atoms`` then reads MACE's
*default* keys whatever ``--energy_key`` says. So a row holds

- ``REF_energy`` (eV), ``REF_stress`` / ``REF_virials`` (3×3, eV/Å³ with ASE's sign / eV),
  ``__arrays__: {"REF_forces": (n, 3)}`` — only the properties the frame has;
- ``config_<name>_weight`` for energy, forces, stress and virials (0 for an absent
  property), ``config_weight`` and ``config_type``;
- ``tealign: {"info": ..., "arrays": ...}``: everything else the frame carries (``source``,
  ``mp_id``, ``orig_*``, ``split``, ...; arrays with their dtype, as in the HDF5 sidecar),
  which MACE ignores and :func:`iter_lmdb` restores, so no sidecar file is needed.

Rows are written by mace-torch's own copy of fairchem's ``LMDBDatabase`` (orjson + zlib, one
transaction per shard; 2× the ``ase-db-backends`` writer's speed on the same rows) and read
back here through the ``ase-db-backends`` package (fairchem's reader), so every shard is
checked by an implementation other than the one that wrote it. Shards are written in
parallel by :mod:`tealign.io.shards`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tealign.errors import SetupError
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.io.mace_h5 import _from_jsonable, _jsonable
from tealign.keys import REF, Keys

#: MACE property → the key mace-torch's LMDBDataset reads it from (DefaultKeys).
LMDB_KEYS = REF.as_dict()
SUFFIXES = (".aselmdb", ".lmdb")


def row_data(rec: FrameRecord, keys: dict[str, str], weights: dict[str, float]) -> dict:
    """The ``data`` dict of one row (see the module docstring); ``keys`` name where each
    MACE property lives in the frame."""
    source = {**rec.info, **rec.arrays}
    data: dict = {}
    arrays: dict = {}
    for name, key in keys.items():
        value = source.get(key)
        if value is None:
            data[f"config_{name}_weight"] = 0.0
            continue
        if name == "energy":
            data[LMDB_KEYS[name]] = float(value)
        elif name == "forces":
            arrays[LMDB_KEYS[name]] = np.asarray(value, dtype=float)
        else:
            v = np.asarray(value, dtype=float)
            data[LMDB_KEYS[name]] = v.reshape(3, 3) if v.size == 9 else v
        data[f"config_{name}_weight"] = float(
            rec.info.get(f"config_{name}_weight", weights.get(name, 1.0)))
    data["config_weight"] = float(rec.info.get("config_weight", 1.0))
    data["config_type"] = str(rec.info.get("config_type", "Default"))
    data["__arrays__"] = arrays
    skip_info = {keys["energy"], keys["stress"], keys["virials"], "config_type",
                 "config_weight"} | {f"config_{n}_weight" for n in keys}
    extra_info = {k: _jsonable(v) for k, v in rec.info.items() if k not in skip_info}
    extra_arrays = {k: _jsonable(np.asarray(v)) for k, v in rec.arrays.items()
                    if k != keys["forces"]}
    data["tealign"] = {"info": extra_info, "arrays": extra_arrays}
    return data


def write_lmdb(batches: Iterable[FrameBatch], shard_dir: str | os.PathLike, *,
               keys: Keys = REF, **options) -> int:
    """Write frames as a directory of ``.aselmdb`` shards (atomically); returns frames
    written. ``keys`` and ``options`` as in :func:`tealign.io.shards.write_shards`."""
    from tealign.io.shards import write_shards

    return write_shards("lmdb", batches, shard_dir, keys=keys, **options)


def iter_lmdb(path: str | os.PathLike, batch_size: int = 2048,
              keys: dict[str, str] | None = None) -> Iterator[FrameBatch]:
    """Read an ``.aselmdb`` file or shard directory back into frames.

    MACE's properties come back under ``keys`` (default ``REF_*``), their weights as
    ``config_<name>_weight`` (for properties present), and the rest of each frame from its
    ``tealign`` entry. Rows written by other tools (no ``tealign`` entry) are read too: their
    ``data`` and key-value pairs land in ``info``, a calculator's energy/forces/stress under
    ``energy``/``forces``/``stress``.
    """
    from ase_db_backends.aselmdb import LMDBDatabase

    keys = {**LMDB_KEYS, **(keys or {})}
    from tealign.io.shards import existing_shards

    p = Path(path)
    files = existing_shards(p, SUFFIXES)
    records: list[FrameRecord] = []
    n = 0
    for file in files:
        try:
            db = LMDBDatabase(file, readonly=True, use_lock_file=False)
        except Exception as exc:  # lmdb.Error and friends: not an LMDB file
            raise SetupError(f"cannot open as ASE-LMDB: {exc}", file=str(file)) from None
        try:
            for row in db.select():
                records.append(_record(row, keys, n))
                n += 1
                if len(records) >= batch_size:
                    yield FrameBatch.from_records(records)
                    records = []
        finally:
            db.close()
    if records:
        yield FrameBatch.from_records(records)


def _record(row, keys: dict[str, str], index: int) -> FrameRecord:
    data = dict(row.data or {})
    info: dict = {}
    arrays: dict = {}
    mace_arrays = data.pop("__arrays__", {}) or {}
    meta = data.pop("tealign", None)
    for name, key in LMDB_KEYS.items():
        value = mace_arrays.pop(key, None) if name == "forces" else data.pop(key, None)
        weight = data.pop(f"config_{name}_weight", None)
        if value is None:
            continue
        if name == "forces":
            arrays[keys[name]] = np.asarray(value, dtype=float)
        elif name == "energy":
            info[keys[name]] = float(value)
        else:
            info[keys[name]] = np.asarray(value, dtype=float)
        if weight is not None:
            info[f"config_{name}_weight"] = float(weight)
    for k in ("config_weight", "config_type"):
        if k in data:
            info[k] = data.pop(k)
    if meta is not None:
        info.update({k: _from_jsonable(v) for k, v in meta.get("info", {}).items()})
        arrays.update({k: np.asarray(_from_jsonable(v))
                       for k, v in meta.get("arrays", {}).items()})
    else:  # a row from another writer
        info.update(data)
        info.update(row.key_value_pairs or {})
        arrays.update({k: np.asarray(v) for k, v in mace_arrays.items()})
        for prop in ("energy", "stress"):
            if row.get(prop) is not None:
                info[prop] = np.asarray(row.get(prop)) if prop == "stress" \
                    else float(row.get(prop))
        if row.get("forces") is not None:
            arrays["forces"] = np.asarray(row.get("forces"), dtype=float)
    return FrameRecord(numbers=np.asarray(row.numbers, dtype=np.int64),
                       positions=np.asarray(row.positions, dtype=float),
                       cell=np.asarray(row.cell, dtype=float).reshape(3, 3),
                       pbc=np.asarray(row.pbc, dtype=bool).reshape(3),
                       info=info, arrays=arrays, index=index)
