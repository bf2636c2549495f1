"""fairchem's ASE-LMDB (``.aselmdb``) as a MACE training format: row layout, writer, reader.

mace-torch 0.3.16 trains from a directory of ``.aselmdb`` files (its ``LMDBDataset`` through
fairchem's ``AseDBDataset``): every row's ``data`` dict is merged into ``atoms.info``, its
``__arrays__`` entries become per-atom arrays, and ``config_from_atoms`` then reads MACE's
*default* keys whatever ``--energy_key`` says. So a row holds

- the row's own ``energy`` (eV), ``forces`` (n × 3, eV/Å) and ``stress`` (Voigt 6, eV/Å³,
  ASE's sign) on a ``SinglePointCalculator``, as ASE and fairchem's ``AseDBDataset`` read
  them (``row.energy``, ``row.toatoms().calc.get_potential_energy()``); mace-torch's
  ``LMDBDataset`` takes these calculator values first (the same numbers as below);
- ``REF_energy`` (eV), ``REF_stress`` / ``REF_virials`` (3×3, eV/Å³ with ASE's sign / eV),
  ``__arrays__: {"REF_forces": (n, 3)}`` — only the properties the frame has;
- ``config_<name>_weight`` for energy, forces, stress and virials (0 for an absent
  property), ``config_weight`` and ``config_type``;
- ``tealign: {"info": ..., "arrays": ...}``: everything else the frame carries (``source``,
  ``mp_id``, ``orig_*``, ``split``, ...; arrays with their dtype, as in the HDF5 sidecar),
  which MACE ignores and :func:`iter_lmdb` restores, so no sidecar file is needed.

Rows are ASE ``AtomsRow`` dicts encoded as the ASE-LMDB backends store them (orjson + zlib,
keys ``"1"``…``"N"`` and ``"nextid"``, one transaction per shard), written by
:func:`write_lmdb_file` into a map sized to the data: it starts small and doubles when LMDB
reports the map full, so a shard reserves about as much address space as it holds (the
backends' writers reserve 2 TiB, which a job under ``ulimit -v`` cannot map). They are read
back here through the ``ase-db-backends`` package (fairchem's reader), so every shard is
checked by an implementation other than the one that wrote it; :func:`check_lmdb_file`
refuses a truncated or foreign file from its header before LMDB maps it (a truncated map is
a bus error, not an exception). Shards (:func:`write_lmdb_shard`, the registry's shard
writer) are written in parallel by :mod:`tealign.io.shards`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from tealign.errors import FrameError, SetupError
from tealign.io.common import existing_shards, from_jsonable, jsonable
from tealign.io.frames import FrameBatch, FrameRecord
from tealign.io.outputs import remove_inside
from tealign.keys import REF, Keys, per_atom

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
        elif per_atom(name):
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
    extra_info = {k: jsonable(v) for k, v in rec.info.items() if k not in skip_info}
    extra_arrays = {k: jsonable(np.asarray(v)) for k, v in rec.arrays.items()
                    if k != keys["forces"]}
    data["tealign"] = {"info": extra_info, "arrays": extra_arrays}
    return data


def row_atoms(rec: FrameRecord, keys: dict[str, str]):
    """The ``ase.Atoms`` of one row: geometry, and the frame's MACE energy (eV), forces
    (eV/Å) and stress (eV/Å³, stored in ASE's Voigt order) on a ``SinglePointCalculator``,
    which ASE's database code turns into the row's ``energy``/``forces``/``stress``."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.stress import full_3x3_to_voigt_6_stress

    atoms = Atoms(numbers=rec.numbers, positions=rec.positions, cell=rec.cell, pbc=rec.pbc)
    source = {**rec.info, **rec.arrays}
    results = {}
    if source.get(keys["energy"]) is not None:
        results["energy"] = float(source[keys["energy"]])
    if source.get(keys["forces"]) is not None:
        results["forces"] = np.asarray(source[keys["forces"]], dtype=float)
    if source.get(keys["stress"]) is not None:
        v = np.asarray(source[keys["stress"]], dtype=float)
        results["stress"] = full_3x3_to_voigt_6_stress(v.reshape(3, 3)) if v.size == 9 else v
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def _encode(obj) -> bytes:
    import zlib

    import orjson

    return zlib.compress(orjson.dumps(obj, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY))


def _plain(obj):
    """What orjson's numpy support leaves out (views that are not C-contiguous, scalars)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in an ASE-LMDB row")


def _row_dict(atoms, data: dict, when: float, user: str | None) -> dict:
    """An ``AtomsRow`` as the ASE-LMDB backends store it (calculator results at top level)."""
    from ase.db.row import AtomsRow

    row = AtomsRow(atoms)
    dct = {k: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v
           for k, v in row.__dict__.items() if not k.startswith("_") and k != "id"}
    dct["cell"] = np.asarray(dct["cell"], dtype=float)
    dct.pop("constraints", None)
    if row.get("constraints"):
        dct["constraints"] = [c.todict() for c in row.constraints]
    dct.update(ctime=when, mtime=when, user=user, data=data)
    return dct


#: First map size of a shard (bytes): room for this much per frame and per atom; the map
#: doubles whenever LMDB finds it full.
MAP_PER_FRAME, MAP_PER_ATOM, MAP_MIN = 8192, 512, 1 << 20


def _lmdb_message(exc: Exception, path: str) -> str:
    text = str(exc).replace(f"{path}: ", "")
    return f"ASE-LMDB {type(exc).__name__}: {text}"


def _write_failed(exc: Exception, path: str) -> OSError:
    # a write that fails (full disk, file-size limit, read-only file system) is a file-system
    # error naming the file; atomic_path renames a temporary's path to the output's. LMDB
    # reports a full disk as EIO from mdb_txn_commit: say ENOSPC when the disk is full.
    code = errno.EIO
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
        if st.f_flag & os.ST_RDONLY:
            code = errno.EROFS
        elif st.f_bavail * st.f_frsize < (1 << 20):
            code = errno.ENOSPC
    except OSError:
        pass
    return OSError(code, f"{os.strerror(code)}: LMDB write failed: "
                   f"{_lmdb_message(exc, path)}", path)


def write_lmdb_file(path: str | os.PathLike, rows: Callable[[], Iterable[tuple]],
                    n_frames: int = 0, n_atoms: int = 0) -> int:
    """Write one ``.aselmdb`` file from ``rows()`` (a callable returning ``(atoms, data)``
    pairs; called again if the map must grow); returns rows written.

    The map starts at ``MAP_MIN + MAP_PER_FRAME·n_frames + MAP_PER_ATOM·n_atoms`` bytes and
    doubles on ``MapFullError`` (the file is rewritten from the start), so the address space
    a shard reserves stays near its size. Any LMDB error is an ``OSError`` (EIO) naming
    the file.
    """
    import time

    import lmdb

    path = str(path)
    size = MAP_MIN + MAP_PER_FRAME * n_frames + MAP_PER_ATOM * n_atoms
    size = -(-size // 65536) * 65536
    user = os.getenv("USER")
    while True:
        for stale in (path, path + "-lock"):
            remove_inside(os.path.dirname(path) or ".", stale)
        try:
            env = lmdb.open(path, map_size=size, subdir=False, meminit=False, lock=False)
        except lmdb.Error as exc:
            raise _write_failed(exc, path) from None
        try:
            n = 0
            with env.begin(write=True) as txn:
                when = time.time() / (365.25 * 24 * 3600)  # ASE's ctime unit: years
                for atoms, data in rows():
                    n += 1
                    txn.put(str(n).encode("ascii"), _encode(_row_dict(atoms, data, when, user)))
                txn.put(b"nextid", _encode(n + 1))
            env.sync(True)
            return n
        except lmdb.MapFullError:
            size *= 2
        except lmdb.Error as exc:
            raise _write_failed(exc, path) from None
        finally:
            env.close()


#: LMDB's meta page: magic at byte 16, page size at 40, map size at 32, last page at 136,
#: transaction id at 144 (64-bit builds); two meta pages, at 0 and at one page size.
_MAGIC = 0xBEEFC0DE


def check_lmdb_file(path: str | os.PathLike) -> None:
    """Refuse (:class:`SetupError`) a file that is not a whole LMDB environment: a foreign
    file (no LMDB meta page) or a truncated one (shorter than its last committed page).
    LMDB itself would map the missing pages and die of SIGBUS on first touch."""
    import struct

    path = str(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(160)
            if len(head) < 160 or struct.unpack_from("<I", head, 16)[0] != _MAGIC:
                raise SetupError("not an LMDB file (no LMDB header)", file=path)
            psize = struct.unpack_from("<I", head, 40)[0]
            if psize < 512 or psize & (psize - 1) or psize > 1 << 16:
                raise SetupError(f"not an LMDB file (page size {psize})", file=path)
            fh.seek(psize)
            second = fh.read(160)
    except OSError as exc:
        raise SetupError(f"cannot read: {exc.strerror or exc}", file=path) from None
    metas = [head]
    if len(second) == 160 and struct.unpack_from("<I", second, 16)[0] == _MAGIC:
        metas.append(second)
    meta = max(metas, key=lambda m: struct.unpack_from("<Q", m, 144)[0])
    last = struct.unpack_from("<Q", meta, 136)[0]
    need = (last + 1) * psize
    if len(metas) < 2 or size < need:
        raise SetupError(f"truncated LMDB file: {size} bytes, its last page ends at byte "
                         f"{max(need, 2 * psize)}", file=path)


def write_lmdb(batches: Iterable[FrameBatch], shard_dir: str | os.PathLike, *,
               keys: Keys = REF, **options) -> int:
    """Write frames as a directory of ``.aselmdb`` shards (atomically); returns frames
    written. ``keys`` and ``options`` as in :func:`tealign.io.shards.write_shards`."""
    from tealign.io.shards import write_shards

    return write_shards("lmdb", batches, shard_dir, keys=keys, **options)


def write_lmdb_shard(path: str, batches: list[FrameBatch], frame0: int, keys: dict,
                     weights: dict) -> int:
    """One ``.aselmdb`` shard (:func:`write_lmdb_file`: rows with their calculator results
    and MACE's ``data``, in a map sized to the data); returns frames written. ``frame0`` is
    the first frame's number in the directory (rows are numbered per file)."""
    def rows():
        for batch in batches:
            for i in range(batch.n_frames):
                rec = batch.record(i)
                yield row_atoms(rec, keys), row_data(rec, keys, weights)

    return write_lmdb_file(path, rows, n_frames=sum(b.n_frames for b in batches),
                           n_atoms=sum(int(b.offsets[-1]) for b in batches))


def write_lmdb_single(batches: Iterable[FrameBatch], path: str | os.PathLike, *,
                      keys: Keys = REF, weights: dict[str, float] | None = None) -> int:
    """Write frames as one ``.aselmdb`` file (atomically; rows as in the module text, all
    frames of ``batches`` held in memory while writing); returns frames written."""
    from tealign.io.outputs import atomic_path

    keys_d = {**LMDB_KEYS, **keys.as_dict()}
    with atomic_path(path) as tmp:
        return write_lmdb_shard(str(tmp), list(batches), 0, keys_d, dict(weights or {}))


def iter_lmdb(path: str | os.PathLike, batch_size: int = 2048,
              keys: dict[str, str] | None = None) -> Iterator[FrameBatch]:
    """Read an ``.aselmdb`` file or shard directory back into frames.

    MACE's properties come back under ``keys`` (default ``REF_*``), their weights as
    ``config_<name>_weight`` (for properties present), and the rest of each frame from its
    ``tealign`` entry. Rows written by other tools (no ``tealign`` entry) are read too: their
    ``data`` and key-value pairs land in ``info``, a calculator's energy/forces/stress under
    ``energy``/``forces``/``stress``.
    """
    import lmdb

    keys = {**LMDB_KEYS, **(keys or {})}
    p = Path(path)
    files = existing_shards(p, SUFFIXES)
    records: list[FrameRecord] = []
    rejects: list[FrameError] = []
    n = 0
    for file in files:
        db = _open_for_reading(file)
        try:
            for rid in list(db.ids):
                try:
                    records.append(_record(db._get_row(rid), keys, n))
                except lmdb.Error:
                    raise
                except _RowError as exc:
                    rejects.append(FrameError(str(file), n, exc.field, exc.reason))
                except Exception as exc:  # noqa: BLE001 (zlib/JSON: a row that does not decode)
                    rejects.append(FrameError(str(file), n, "row",
                                              f"row {rid} does not decode: "
                                              f"{type(exc).__name__}: {exc}"))
                n += 1
                if len(records) + len(rejects) >= batch_size:
                    yield FrameBatch.from_records(records, rejects)
                    records, rejects = [], []
        except lmdb.Error as exc:
            raise SetupError(_lmdb_message(exc, str(file)), file=str(file)) from None
        finally:
            db.close()
    if records or rejects:
        yield FrameBatch.from_records(records, rejects)


def iter_lmdb_atoms(path: str | os.PathLike) -> Iterator:
    """The rows of an ``.aselmdb`` file (or of every shard of a directory, in order) as
    ``ase.io.read`` gives them (``AtomsRow.toatoms()`` through fairchem's ASE-LMDB
    backend): energy (eV), forces (eV/Å) and stress (Voigt, eV/Å³) on a
    ``SinglePointCalculator``, the row's stored arrays (tags, charges, ...) and an empty
    ``info``; the ``data`` dict (``REF_*``, weights, tealign's extras) stays in the row, as
    in ASE (:func:`iter_lmdb` reads it). A row that does not decode is a
    :class:`SetupError` naming the file and row."""
    import lmdb

    for file in existing_shards(Path(path), SUFFIXES):
        db = _open_for_reading(file)
        try:
            for n, rid in enumerate(list(db.ids)):
                try:
                    atoms = db._get_row(rid).toatoms()
                except lmdb.Error:
                    raise
                except Exception as exc:  # noqa: BLE001 (zlib/JSON: a row that does not decode)
                    raise SetupError(f"row {rid} does not decode: {type(exc).__name__}: {exc}",
                                     file=str(file), frame=n, field="row") from None
                yield atoms
        except lmdb.Error as exc:
            raise SetupError(_lmdb_message(exc, str(file)), file=str(file)) from None
        finally:
            db.close()


def _open_for_reading(file: Path):
    """fairchem's reader (``ase-db-backends``) on a file that :func:`check_lmdb_file`
    accepted and LMDB opens; anything else is one :class:`SetupError` line."""
    import lmdb
    from ase_db_backends.aselmdb import LMDBDatabase

    check_lmdb_file(file)
    try:  # open once ourselves: the backend's half-built object would complain at exit
        lmdb.open(str(file), subdir=False, readonly=True, lock=False).close()
        return LMDBDatabase(file, readonly=True, use_lock_file=False)
    except lmdb.Error as exc:
        raise SetupError(_lmdb_message(exc, str(file)), file=str(file)) from None


class _RowError(Exception):
    """One row's field that is not what a frame needs (becomes a FrameError)."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


def _array(value, field: str, shape: tuple, kind: str = "f") -> np.ndarray:
    """``value`` as a float (``kind="f"``) or integer array of ``shape`` (-1: any length)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise _RowError(field, "not an array of numbers") from None
    if len(shape) != arr.ndim or any(s not in (-1, d) for s, d in zip(shape, arr.shape,
                                                                         strict=True)):
        raise _RowError(field, f"shape {arr.shape}, expected "
                        f"{tuple('n' if s == -1 else s for s in shape)}")
    if kind == "i":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise _RowError(field, "not integers")
        return arr.astype(np.int64)
    return arr


def _record(row, keys: dict[str, str], index: int) -> FrameRecord:
    """One row as a frame; a field of the wrong type or shape raises :class:`_RowError`."""
    numbers = _array(row.get("numbers"), "numbers", (-1,), "i")
    if numbers.size and (numbers.min() < 1 or numbers.max() > 118):
        raise _RowError("numbers", "atomic numbers must be 1-118")
    nat = numbers.size
    positions = _array(row.get("positions"), "positions", (nat, 3))
    cell = row.get("cell")
    cell = np.zeros((3, 3)) if cell is None else _array(cell, "cell", (3, 3))
    pbc = np.asarray(row.get("pbc", [False] * 3))
    if pbc.shape != (3,):
        raise _RowError("pbc", f"shape {pbc.shape}, expected (3,)")
    data = row.get("data") or {}
    if not isinstance(data, dict):
        raise _RowError("data", "not a mapping")
    data = dict(data)
    info: dict = {}
    arrays: dict = {}
    mace_arrays = data.pop("__arrays__", {}) or {}
    meta = data.pop("tealign", None)
    for name, key in LMDB_KEYS.items():
        value = (mace_arrays if per_atom(name) else data).pop(key, None)
        weight = data.pop(f"config_{name}_weight", None)
        if value is None:
            continue
        if per_atom(name):
            arrays[keys[name]] = _array(value, key, (nat, 3))
        elif name == "energy":
            info[keys[name]] = float(_array(value, key, ()))
        else:
            v = _array(value, key, (-1,) if np.size(value) == 6 else (3, 3))
            info[keys[name]] = v
        if weight is not None:
            info[f"config_{name}_weight"] = float(_array(weight, f"config_{name}_weight", ()))
    for k in ("config_weight", "config_type"):
        if k in data:
            info[k] = data.pop(k)
    if meta is not None:
        try:
            info.update({k: from_jsonable(v) for k, v in meta.get("info", {}).items()})
            extra = {k: np.asarray(from_jsonable(v)) for k, v in meta.get("arrays", {}).items()}
        except (AttributeError, TypeError, ValueError) as exc:
            raise _RowError("tealign", f"metadata does not decode: {exc}") from None
        for k, v in extra.items():
            if v.ndim == 0 or v.shape[0] != nat:
                raise _RowError(k, f"per-atom array of shape {v.shape} for {nat} atoms")
        arrays.update(extra)
    else:  # a row from another writer
        info.update(data)
        info.update(row.get("key_value_pairs") or {})
        arrays.update({k: np.asarray(v) for k, v in mace_arrays.items()})
        if row.get("energy") is not None:
            info["energy"] = float(_array(row.get("energy"), "energy", ()))
        if row.get("stress") is not None:
            stress = row.get("stress")
            info["stress"] = _array(stress, "stress", (6,) if np.size(stress) == 6 else (3, 3))
        if row.get("forces") is not None:
            arrays["forces"] = _array(row.get("forces"), "forces", (nat, 3))
    return FrameRecord(numbers=numbers, positions=positions, cell=cell,
                       pbc=pbc.astype(bool), info=info, arrays=arrays, index=index)
