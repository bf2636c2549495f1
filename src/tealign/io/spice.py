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


def iter_spice(path: str | Path, batch_size: int = 2048) -> Iterator[FrameBatch]:
    """Stream a SPICE HDF5 file as batches; one molecule group is read at a time."""
    from tealign.io.hdf5 import open_hdf5

    fname = str(path)
    fh = open_hdf5(path)
    records: list[FrameRecord] = []
    rejects: list[FrameError] = []
    frame = 0
    with fh:
        for name in fh:
            grp = fh[name]
            for key in ("atomic_numbers", "conformations", "dft_total_energy"):
                if key not in grp:
                    raise SetupError(
                        "not a SPICE group: dataset missing", file=fname, field=f"{name}/{key}"
                    )
            numbers = grp["atomic_numbers"][()].astype(np.int64)
            conf = grp["conformations"][()].astype(np.float64) * units.BOHR_TO_ANGSTROM
            energy = grp["dft_total_energy"][()].astype(np.float64) * units.HARTREE_TO_EV
            grad = grp["dft_total_gradient"][()] if "dft_total_gradient" in grp else None
            d3 = (
                grp["dispersion_correction_energy"][()] * units.HARTREE_TO_EV
                if "dispersion_correction_energy" in grp
                else None
            )
            smiles = _text(grp["smiles"][()]) if "smiles" in grp else ""
            subset = _text(grp["subset"][()]) if "subset" in grp else ""
            charge = smiles_charge(smiles) if smiles else 0
            if conf.ndim != 3 or energy.ndim != 1:
                raise SetupError(f"conformations {conf.shape} / dft_total_energy "
                                 f"{energy.shape} are not (n, atoms, 3) / (n,)", file=fname,
                                 field=f"{name}/conformations")
            for k in range(conf.shape[0]):
                short = [(key, len(arr)) for key, arr in (("dft_total_energy", energy),
                                                          ("dft_total_gradient", grad),
                                                          ("dispersion_correction_energy", d3))
                         if arr is not None and k >= len(arr)]
                if short:
                    key, n_have = short[0]
                    rejects.append(FrameError(fname, frame, key,
                                              f"conformation {k} of {name} has no value: {key} "
                                              f"holds {n_have} of {conf.shape[0]}"))
                    frame += 1
                    continue
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
                    arrays["forces"] = -grad[k].astype(np.float64) * (
                        units.HARTREE_PER_BOHR_TO_EV_PER_A
                    )
                if d3 is not None:
                    info["d3_energy"] = float(d3[k])
                bad = _check(numbers, conf[k], info, arrays)
                if bad:
                    rejects.append(FrameError(fname, frame, bad[0], bad[1]))
                else:
                    records.append(
                        FrameRecord(numbers=numbers, positions=conf[k], info=info,
                                    arrays=arrays, index=frame)
                    )
                frame += 1
                if len(records) >= batch_size:
                    yield FrameBatch.from_records(records, rejects)
                    records, rejects = [], []
    if records or rejects:
        yield FrameBatch.from_records(records, rejects)


def _check(numbers, positions, info, arrays) -> tuple[str, str] | None:
    if positions.shape != (len(numbers), 3):
        return "conformations", f"shape {positions.shape} does not match {len(numbers)} atoms"
    if not np.isfinite(positions).all():
        return "conformations", "NaN or inf value"
    if not np.isfinite(info["energy"]):
        return "dft_total_energy", "NaN or inf value"
    f = arrays.get("forces")
    if f is not None and (f.shape != (len(numbers), 3) or not np.isfinite(f).all()):
        return "dft_total_gradient", "NaN, inf or wrong shape"
    return None


def _text(value) -> str:
    v = value[0] if isinstance(value, np.ndarray) and value.shape else value
    return v.decode() if isinstance(v, bytes) else str(v)
