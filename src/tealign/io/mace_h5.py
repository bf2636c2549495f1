"""MACE's sharded HDF5 layout: writer (through mace-torch's own functions), reader, statistics.

A shard directory holds only ``<prefix>_<k>.h5`` files, each with one ``config_batch_0``
group written by :func:`mace.data.utils.save_configurations_as_HDF5`, exactly what
``mace_run_train --train_file DIR`` globs and reads. MACE's layout holds positions, atomic
numbers, cell, pbc, energy, forces, stress, virials, per-property weights, the config weight
and ``config_type``; everything else a frame carries (``mp_id``, ``source``, SMILES, ...)
goes to a sidecar ``<DIR>.meta.jsonl`` beside the directory, one JSON line per frame keyed
by its index in the written order, so the metadata survives a round trip.

:func:`write_h5_shard` writes one shard (the registry's shard writer, run by
:mod:`tealign.io.shards`), :func:`write_mace_h5_file` one ``.h5`` file.

``statistics.json`` (for ``--statistics_file``) is computed by mace-torch's own
:func:`mace.cli.preprocess_data.compute_stats_target` on each shard and averaged as its
``pool_compute_stats`` does; ``atomic_energies`` and ``atomic_numbers`` are Python-literal
strings as mace-torch writes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tealign.errors import SetupError
from tealign.io.common import (
    existing_shards,
    from_jsonable,
    jsonable,
    shard_files,
    sidecar_path,
)
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.io.outputs import write_json
from tealign.keys import REF, Keys, per_atom

#: MACE property name → default tealign/extxyz key (MACE's REF_* convention).
MACE_KEYS = REF.as_dict()
SHARD_SIZE = 10_000


def _config(rec: FrameRecord, keys: dict[str, str], weights: dict[str, float]):
    from tealign._mace import import_mace

    import_mace()
    from mace.data.utils import Configuration

    properties, property_weights = {}, {}
    source = {**rec.info, **rec.arrays}
    for name, key in keys.items():
        value = source.get(key)
        if value is not None and name in ("stress", "virials"):
            value = np.asarray(value, dtype=float).reshape(3, 3) if np.size(value) == 9 else \
                np.asarray(value, dtype=float)
        properties[name] = None if value is None else np.asarray(value, dtype=float) \
            if name != "energy" else float(value)
        w = rec.info.get(f"config_{name}_weight", weights.get(name, 1.0))
        property_weights[name] = float(w) if value is not None else 0.0
    return Configuration(
        atomic_numbers=np.asarray(rec.numbers, dtype=np.int64),
        positions=np.asarray(rec.positions, dtype=float),
        properties=properties,
        property_weights=property_weights,
        cell=np.asarray(rec.cell, dtype=float),
        pbc=tuple(bool(x) for x in rec.pbc),
        weight=float(rec.info.get("config_weight", 1.0)),
        config_type=str(rec.info.get("config_type", "Default")),
    )


def write_mace_h5(batches: Iterable[FrameBatch], shard_dir: str | os.PathLike, *,
                  keys: Keys = REF, **options) -> int:
    """Write frames as MACE sharded HDF5 into ``shard_dir`` (atomically, each shard by
    mace-torch's ``save_configurations_as_HDF5``); returns frames written. ``keys`` and
    ``options`` (weights, prefix, shard_size, workers, scheduler) as in
    :func:`tealign.io.shards.write_shards`."""
    from tealign.io.shards import write_shards

    return write_shards("mace-h5", batches, shard_dir, keys=keys, **options)


def write_h5_shard(path: str, batches: list[FrameBatch], frame0: int, keys: dict,
                   weights: dict) -> int:
    """One MACE HDF5 file through mace-torch's writer (one ``config_batch_0`` group), and
    its sidecar part (:func:`tealign.io.common.sidecar_part`: one JSON line per frame,
    numbered from ``frame0``, with what MACE's layout does not hold); returns frames written.
    The registry's shard writer of ``mace-h5``."""
    import io

    import h5py

    from tealign._mace import import_mace

    import_mace()
    from mace.data.utils import save_configurations_as_HDF5

    from tealign.io.common import sidecar_part

    mace_info = {keys["energy"], keys["stress"], keys["virials"], "config_type",
                 "config_weight"} | {f"config_{n}_weight" for n in keys}
    mace_arrays = {keys["forces"]}
    configs, lines = [], []
    n = frame0
    for batch in batches:
        for i in range(batch.n_frames):
            rec = batch.record(i)
            configs.append(_config(rec, keys, weights))
            extra_info = {k: jsonable(v) for k, v in rec.info.items() if k not in mace_info}
            extra_arrays = {k: jsonable(np.asarray(v)) for k, v in rec.arrays.items()
                            if k not in mace_arrays}
            lines.append(json.dumps({"frame": n, "info": extra_info, "arrays": extra_arrays}))
            n += 1
    # HDF5 builds the shard in memory and Python writes it: a full disk or ``ulimit -f`` is
    # then an OSError naming the file, where HDF5 writing to disk itself crashed the process
    # (segmentation fault on a full tmpfs, issue 26)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["drop_last"] = False
        save_configurations_as_HDF5(configs, 0, f)
    with open(path, "wb") as fh:
        fh.write(buf.getbuffer())
    del buf
    sidecar_part(path).write_text("".join(line + "\n" for line in lines))
    return n - frame0


def write_mace_h5_file(batches, path: str | os.PathLike, *, keys=None,
                       weights: dict[str, float] | None = None) -> int:
    """Write frames as one MACE HDF5 file (mace-torch's ``save_configurations_as_HDF5``, one
    ``config_batch_0`` group) plus its sidecar ``<path>.meta.jsonl``, both atomically;
    returns frames written. All frames are held in memory: use a shard directory
    (:func:`write_mace_h5`) for large data."""
    from tealign.io.common import sidecar_part
    from tealign.io.outputs import atomic_path

    path = Path(path)
    keys_d = {**MACE_KEYS, **(keys or REF).as_dict()}
    with atomic_path(path) as tmp, \
            atomic_path(path.with_name(path.name + ".meta.jsonl")) as side:
        n = write_h5_shard(str(tmp), list(batches), 0, keys_d, dict(weights or {}))
        os.replace(sidecar_part(tmp), side)
    return n


H5_SUFFIXES = (".h5", ".hdf5")


def iter_mace_h5(
    path: str | os.PathLike,
    batch_size: int = 2048,
    keys: dict[str, str] | None = None,
) -> Iterator[FrameBatch]:
    """Read a MACE HDF5 file or shard directory back into frames.

    Properties come back under ``keys`` (default MACE's ``REF_*``); per-property weights
    as ``config_<name>_weight``, the config weight as ``config_weight``. Metadata from the
    sidecar, when present, is merged back by frame index.
    """
    from tealign._mace import import_mace

    import_mace()
    from mace.data.hdf5_dataset import unpack_value

    from tealign.io.hdf5 import open_hdf5

    keys = {**MACE_KEYS, **(keys or {})}
    path = Path(path)
    files = existing_shards(path, H5_SUFFIXES)
    side = sidecar_path(path) if path.is_dir() else path.with_name(path.name + ".meta.jsonl")
    side_fh = open(side) if side.exists() else None  # noqa: SIM115 (closed in finally)
    records: list[FrameRecord] = []
    n = 0
    try:
        for file in files:
            with open_hdf5(file) as fh:
                for gname in sorted(fh.keys(), key=lambda s: int(s.rsplit("_", 1)[-1])):
                    grp = fh[gname]
                    for cname in sorted(grp.keys(), key=lambda s: int(s.rsplit("_", 1)[-1])):
                        sub = grp[cname]
                        info, arrays = {}, {}
                        for name in sub["properties"]:
                            value = unpack_value(sub["properties"][name][()])
                            if value is None or name not in keys:
                                continue
                            if per_atom(name):
                                arrays[keys[name]] = np.asarray(value, dtype=float)
                            elif name == "energy":
                                info[keys[name]] = float(value)
                            else:
                                info[keys[name]] = np.asarray(value, dtype=float)
                        for name in sub["property_weights"]:
                            w = unpack_value(sub["property_weights"][name][()])
                            if name in keys and (keys[name] in info or keys[name] in arrays):
                                info[f"config_{name}_weight"] = float(w)
                        info["config_weight"] = float(unpack_value(sub["weight"][()]))
                        info["config_type"] = str(unpack_value(sub["config_type"][()]))
                        cell = unpack_value(sub["cell"][()])
                        pbc = unpack_value(sub["pbc"][()])
                        if side_fh is not None:
                            line = side_fh.readline()
                            if line:
                                meta = json.loads(line)
                                if meta.get("frame") != n:
                                    raise SetupError(
                                        f"sidecar out of step: line for frame {meta.get('frame')}",
                                        file=str(side), frame=n,
                                    )
                                info.update({k: from_jsonable(v)
                                             for k, v in meta["info"].items()})
                                arrays.update({k: from_jsonable(v)
                                               for k, v in meta["arrays"].items()})
                        records.append(FrameRecord(
                            numbers=np.asarray(sub["atomic_numbers"][()], dtype=np.int64),
                            positions=np.asarray(sub["positions"][()], dtype=float),
                            cell=np.zeros((3, 3)) if cell is None else np.asarray(cell, float),
                            pbc=np.zeros(3, bool) if pbc is None else np.asarray(pbc, bool),
                            info=info, arrays=arrays, index=n,
                        ))
                        n += 1
                        if len(records) >= batch_size:
                            yield FrameBatch.from_records(records)
                            records = []
        if records:
            yield FrameBatch.from_records(records)
    finally:
        if side_fh is not None:
            side_fh.close()


def write_statistics(
    shard_dir: str | os.PathLike,
    atomic_energies: dict[int, float],
    out: str | os.PathLike,
    r_max: float = 4.5,
    batch_size: int = 16,
) -> dict:
    """Compute MACE's ``statistics.json`` for the training shards with mace-torch's functions.

    ``atomic_energies`` maps atomic number → E0 in eV (the target scale's isolated atoms);
    ``r_max`` (Å) fixes ``avg_num_neighbors``. Written atomically to ``out``.
    """
    from tealign._mace import import_mace

    import_mace()
    from mace.cli.preprocess_data import compute_stats_target
    from mace.tools.utils import AtomicNumberTable

    zs = sorted(int(z) for z in atomic_energies)
    z_table = AtomicNumberTable(zs)
    e0 = np.array([atomic_energies[z] for z in zs])
    results = [
        compute_stats_target(str(f), z_table, r_max, e0, batch_size)
        for f in shard_files(Path(shard_dir), H5_SUFFIXES)
    ]
    if not results:
        raise SetupError("no training shards to compute statistics from", file=str(shard_dir))
    stats = {
        "atomic_energies": str({z: float(atomic_energies[z]) for z in zs}),
        "avg_num_neighbors": float(np.mean([r[0] for r in results])),
        "mean": _scalar_or_list(np.mean([np.asarray(r[1]) for r in results], axis=0)),
        "std": _scalar_or_list(np.mean([np.asarray(r[2]) for r in results], axis=0)),
        "atomic_numbers": str(zs),
        "r_max": float(r_max),
    }
    write_json(out, stats)
    return stats


def _scalar_or_list(v: np.ndarray):
    v = np.asarray(v)
    return float(v.item()) if v.size == 1 else v.tolist()
