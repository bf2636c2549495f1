"""SPICE HDF5 reader (one group per molecule, docs/architecture.md §7.2).

Conversions: ``conformations`` bohr → Å; ``dft_total_energy`` hartree → eV (it INCLUDES
D3(BJ), so frames are labelled with ``dispersion="d3bj-included"``); forces =
−``dft_total_gradient`` (hartree/bohr → eV/Å); ``dispersion_correction_energy`` (hartree),
where present, is kept as ``d3_energy`` in eV. The total charge is the sum of the SMILES'
formal charges. Each conformer becomes one frame with ``mol_id`` = the group name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tealign import units
from tealign.errors import FrameError, SetupError
from tealign.io.frames import FrameBatch, FrameRecord

#: Level of theory of SPICE 1.x / 2.x (and MACE-OFF23), as recorded on every frame.
SPICE_METHOD = "wb97m-d3bj/def2-tzvppd (psi4); energy includes D3(BJ)"

_BRACKET = re.compile(r"\[([^\]]+)\]")
_CHARGE = re.compile(r"([+-])(\d+|[+-]*)$")


def smiles_charge(smiles: str) -> int:
    """Total formal charge of a (mapped) SMILES: the sum over bracket atoms.

    ``[N+:9]`` → +1, ``[O-]`` → −1, ``[Fe+3]`` → +3, ``[Cu++]`` → +2.
    """
    total = 0
    for atom in _BRACKET.findall(smiles):
        atom = re.sub(r":\d+$", "", atom)
        m = _CHARGE.search(atom)
        if not m:
            continue
        sign = 1 if m.group(1) == "+" else -1
        rest = m.group(2)
        if rest.isdigit():
            total += sign * int(rest)
        else:
            total += sign * (1 + len(rest))
    return total


#: Datasets every SPICE molecule group holds.
_REQUIRED = ("atomic_numbers", "conformations", "dft_total_energy")


class _GroupBad(Exception):
    """A group whose datasets cannot be read as conformations: every one is rejected."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason


def _dataset(grp, key: str, kinds: str):
    """Dataset ``key`` as a numpy array whose dtype kind is one of ``kinds`` (else
    :class:`_GroupBad` naming it: strings, objects and compound types are not numbers)."""
    try:
        arr = np.asarray(grp[key][()])
    except (TypeError, ValueError, OSError) as exc:
        raise _GroupBad(key, f"unreadable dataset ({exc})") from None
    if arr.dtype.kind not in kinds:
        what = "integers" if kinds == "iu" else "numbers"
        raise _GroupBad(key, f"must hold {what}, not dtype {arr.dtype}")
    return arr


def _atomic_numbers(grp) -> np.ndarray:
    """``atomic_numbers`` as int64: integers 1–118 (integral floats accepted), one per atom."""
    z = _dataset(grp, "atomic_numbers", "iuf")
    if z.ndim != 1 or z.size == 0:
        raise _GroupBad("atomic_numbers", f"must be a non-empty list (shape {z.shape})")
    if z.dtype.kind == "f" and (not np.isfinite(z).all() or (z != np.round(z)).any()):
        bad = next(v for v in z if not np.isfinite(v) or v != round(v))
        raise _GroupBad("atomic_numbers", f"not an integer: {bad}")
    if ((z < 1) | (z > 118)).any():
        bad = next(v for v in z if v < 1 or v > 118)
        raise _GroupBad("atomic_numbers", f"{bad} is not an atomic number (1–118)")
    return z.astype(np.int64)


def _group(grp, name: str):
    """The group's checked arrays (SI conversions applied): numbers, conformations (Å),
    energies (eV), gradients (hartree/bohr) or None, D3 energies (eV) or None."""
    numbers = _atomic_numbers(grp)
    conf = _dataset(grp, "conformations", "iuf")
    if conf.ndim != 3 or conf.shape[1:] != (len(numbers), 3):
        raise _GroupBad("conformations", f"shape {conf.shape}, expected (conformations, "
                        f"{len(numbers)}, 3) for {len(numbers)} atoms")
    n_conf = conf.shape[0]

    def per_conf(key, tail):
        arr = _dataset(grp, key, "iuf")
        if arr.shape != (n_conf,) + tail:
            raise _GroupBad(key, f"shape {arr.shape}, expected {(n_conf,) + tail}: one value "
                            f"per conformation ({n_conf})")
        return arr.astype(np.float64)

    energy = per_conf("dft_total_energy", ()) * units.HARTREE_TO_EV
    grad = per_conf("dft_total_gradient", (len(numbers), 3)) \
        if "dft_total_gradient" in grp else None
    d3 = per_conf("dispersion_correction_energy", ()) * units.HARTREE_TO_EV \
        if "dispersion_correction_energy" in grp else None
    return numbers, conf.astype(np.float64) * units.BOHR_TO_ANGSTROM, energy, grad, d3


def _n_conformations(grp) -> int:
    """How many frames a group holds, for counting its rejects (1 if unreadable)."""
    try:
        shape = grp["conformations"].shape
        return int(shape[0]) if shape and shape[0] > 0 else 1
    except (TypeError, ValueError, OSError, KeyError):
        return 1


def iter_spice(path: str | Path, batch_size: int = 2048) -> Iterator[FrameBatch]:
    """Stream a SPICE HDF5 file as batches; one molecule group is read at a time.

    Every group is checked: atomic numbers integers 1–118; conformations (n, atoms, 3)
    numbers; ``dft_total_energy``, ``dft_total_gradient`` and
    ``dispersion_correction_energy`` one (finite) value per conformation. A group that
    fails is one reject per conformation (naming the dataset); a conformation with a NaN is
    rejected alone. A group lacking one of the required datasets (:data:`_REQUIRED`) is
    rejected the same way (one reject when its conformations cannot be counted, naming
    ``group/dataset``); only a file in which no group holds them is a setup error (not
    SPICE)."""
    import h5py

    from tealign.io.hdf5 import open_hdf5

    fname = str(path)
    fh = open_hdf5(path)
    records: list[FrameRecord] = []
    rejects: list[FrameError] = []
    frame = 0
    groups = usable = 0  # groups seen; those holding the required datasets
    with fh:
        for name in fh:
            grp = fh[name]
            groups += 1
            if not isinstance(grp, h5py.Group):
                raise SetupError("not a SPICE group (a dataset at the top level)", file=fname,
                                 field=name)
            try:
                missing = next((key for key in _REQUIRED if key not in grp), None)
                if missing is not None:
                    raise _GroupBad(missing, "dataset missing: not a SPICE group")
                usable += 1
                numbers, conf, energy, grad, d3 = _group(grp, name)
                smiles = _text(grp["smiles"][()]) if "smiles" in grp else ""
                subset = _text(grp["subset"][()]) if "subset" in grp else ""
                charge = smiles_charge(smiles) if smiles else 0
            except _GroupBad as bad:
                for _ in range(_n_conformations(grp)):
                    rejects.append(FrameError(fname, frame, f"{name}/{bad.field}",
                                              bad.reason))
                    frame += 1
                continue
            except (TypeError, ValueError, UnicodeDecodeError, OSError) as exc:
                for _ in range(_n_conformations(grp)):
                    rejects.append(FrameError(fname, frame, f"{name}/smiles",
                                              f"unreadable text ({exc})"))
                    frame += 1
                continue
            for k in range(conf.shape[0]):
                info = {
                    "energy": float(energy[k]),
                    "charge": charge,
                    "mol_id": name,
                    "smiles": smiles,
                    "subset": subset,
                    "method": SPICE_METHOD,
                    "dispersion": "d3bj-included",
                }
                arrays = {}
                if grad is not None:
                    arrays["forces"] = -grad[k] * units.HARTREE_PER_BOHR_TO_EV_PER_A
                if d3 is not None:
                    info["d3_energy"] = float(d3[k])
                bad = _check(numbers, conf[k], info, arrays)
                if bad:
                    rejects.append(FrameError(fname, frame, f"{name}/{bad[0]}", bad[1]))
                else:
                    records.append(
                        FrameRecord(numbers=numbers, positions=conf[k], info=info,
                                    arrays=arrays, index=frame)
                    )
                frame += 1
                if len(records) >= batch_size:
                    yield FrameBatch.from_records(records, rejects)
                    records, rejects = [], []
    if groups and not usable:  # rejects are held until then: no batch has gone out
        raise SetupError(f"not a SPICE file: none of its {groups} groups holds "
                         f"{', '.join(_REQUIRED)}", file=fname)
    if records or rejects:
        yield FrameBatch.from_records(records, rejects)


def _check(numbers, positions, info, arrays) -> tuple[str, str] | None:
    if not np.isfinite(positions).all():
        return "conformations", "NaN or inf value"
    if not np.isfinite(info["energy"]):
        return "dft_total_energy", "NaN or inf value"
    f = arrays.get("forces")
    if f is not None and not np.isfinite(f).all():
        return "dft_total_gradient", "NaN or inf value"
    if "d3_energy" in info and not np.isfinite(info["d3_energy"]):
        return "dispersion_correction_energy", "NaN or inf value"
    return None


def _text(value) -> str:
    """One string from a scalar or a one-element text dataset; else :class:`TypeError`."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise TypeError(f"expected one string, found an array of shape {value.shape}")
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (str, np.str_)):
        return str(value)
    raise TypeError(f"expected text, found {type(value).__name__}")
