"""MPtrj JSON reader (``MPtrj_2022.9_full.json`` layout, docs/architecture.md §7.1).

``{mp_id: {frame_id: {"structure": <pymatgen Structure dict>, "uncorrected_total_energy",
"force", "stress", "magmom", ...}}}``. The energy is ``uncorrected_total_energy`` (eV, the
raw PAW total that matches raw isolated atoms; never the MP2020-corrected energy); forces
in eV/Å; stress converted from kbar with VASP's sign to eV/Å³ with ASE's sign. ``mp_id``,
``frame_id`` and per-atom ``magmom`` are kept.

The file is streamed with ``ijson`` (its yajl2 C backend): one material (``mp_id``) is
parsed at a time, so memory is bounded by the largest material's trajectory and one batch,
whatever the file size (the real 11 GB file included). ``NaN``/``Infinity`` tokens, which
Python's ``json`` writes but JSON does not allow, are read as missing values, so such a
frame is rejected on its own instead of stopping the file.

Physical range: an entry whose ``uncorrected_total_energy`` exceeds
:data:`MAX_ABS_ENERGY_PER_ATOM` (1e3 eV per atom in magnitude; MPtrj's PBE totals lie within
about −15…+5 eV/atom) is rejected, as is any number a float cannot hold (``1e400``, an
integer of hundreds of digits).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from tealign import units
from tealign.errors import FrameError, SetupError
from tealign.io.frames import FrameBatch, FrameRecord

MPTRJ_METHOD = "pbe/paw (vasp, Materials Project settings)"

#: Largest plausible |uncorrected_total_energy| per atom, eV; beyond it an entry is rejected.
MAX_ABS_ENERGY_PER_ATOM = 1e3


def iter_mptrj(path: str | Path, batch_size: int = 2048) -> Iterator[FrameBatch]:
    """Stream an MPtrj JSON file as batches; one material (``mp_id``) is parsed at a time.

    Every entry is checked (types, shapes, finiteness, integer charges, energy within
    :data:`MAX_ABS_ENERGY_PER_ATOM` eV/atom): a bad value rejects that entry only. A JSON
    number the fast C parser cannot hold (an integer beyond 64 bits, a float beyond
    ±1.8e308: valid JSON) makes the reader start again with ijson's pure-Python parser, which
    reads numbers exactly (``int``/``Decimal``), skipping the frames already handed on; such
    a number is then a reject of its entry when it matters (energy, charge, arrays)."""
    import ijson

    try:
        yield from _iter_mptrj(path, batch_size, ijson, skip=0, exact=False)
    except _Overflow as done:
        from ijson.backends import python as slow

        yield from _iter_mptrj(path, batch_size, slow, skip=done.frames, exact=True)


class _Overflow(Exception):
    """The C parser met an integer it cannot hold after ``frames`` frames were handed on."""

    def __init__(self, frames: int):
        self.frames = frames


def _iter_mptrj(path, batch_size: int, backend, skip: int,
                exact: bool) -> Iterator[FrameBatch]:
    """Read with ``backend``; ``exact``: numbers come as ``int``/``Decimal`` (the
    pure-Python parser's exact mode, which never overflows) and are turned into floats here
    (``inf`` or 0 beyond float range) before the checks."""
    from ijson.common import JSONError  # every backend's parse errors derive from it

    fname = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed in finally)
    except OSError as exc:
        raise SetupError(f"cannot open file: {exc.strerror}", file=fname) from None
    stream = _NonFiniteAsNull(fh)
    records: list[FrameRecord] = []
    rejects: list[FrameError] = []
    frame = 0
    handed = 0  # frames already yielded (counted when a batch goes out)
    try:
        if stream.first_token() != b"{":
            raise SetupError("MPtrj JSON must map mp_id to frames", file=fname)
        for mp_id, frames in backend.kvitems(stream, "", use_float=not exact):
            if exact:
                frames = _as_floats(frames)
            if not isinstance(frames, dict):
                raise SetupError("expected {frame_id: frame} under each mp_id", file=fname,
                                 field=mp_id)
            for frame_id, entry in frames.items():
                if frame >= skip:
                    try:
                        records.append(_record(entry, mp_id, frame_id, frame))
                    except _Bad as bad:
                        rejects.append(FrameError(fname, frame, bad.field, bad.reason))
                frame += 1
                if len(records) >= batch_size:
                    yield FrameBatch.from_records(records, rejects)
                    records, rejects = [], []
                    handed = frame
    except JSONError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "overflow" in reason and not exact:  # integer or floating-point overflow
            raise _Overflow(handed) from None
        raise SetupError(
            f"not valid JSON near byte {stream.consumed:,} ({reason}) after {frame} frames; "
            "a truncated MPtrj file cannot be read further",
            file=fname,
        ) from None
    finally:
        fh.close()
    if records or rejects:
        yield FrameBatch.from_records(records, rejects)


def _as_floats(obj):
    """``Decimal`` → ``float`` throughout a parsed JSON value (beyond float range: ``inf`` or
    0.0); integers stay ``int`` (a huge one is caught by the checks)."""
    if isinstance(obj, dict):
        return {k: _as_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_as_floats(v) for v in obj]
    if isinstance(obj, Decimal):
        return float(obj)
    return obj


class _NonFiniteAsNull:
    """A binary reader that turns the NaN/Infinity tokens Python's ``json`` writes into
    ``null`` (same framing, chunk boundaries handled) for a strict JSON parser."""

    _TOKENS = ((b"-Infinity", b"null"), (b"Infinity", b"null"), (b"NaN", b"null"))
    _HOLD = 8  # longest token minus one: a token split across reads is completed first

    def __init__(self, fh, chunk: int = 1 << 20):
        self.fh, self.chunk = fh, chunk
        self.tail = b""
        self.consumed = 0
        self.eof = False

    def first_token(self) -> bytes:
        head = self.fh.read(self.chunk)
        self.tail = head
        stripped = head.lstrip()
        return stripped[:1]

    def read(self, n: int = -1) -> bytes:
        if n == 0:  # ijson probes the stream's type with read(0)
            return b""
        while True:
            if not self.eof and len(self.tail) < self.chunk:
                more = self.fh.read(self.chunk)
                self.eof = not more
                self.tail += more
            if self.eof:
                out, self.tail = self.tail, b""
                break
            cut = len(self.tail) - self._HOLD
            # never cut inside a token: a partial token's start stays in the tail
            start = cut
            for tok, _ in self._TOKENS:
                for p in range(max(0, cut - len(tok) + 1), cut):
                    if self.tail.startswith(tok, p):
                        start = min(start, p)
            cut = start
            if cut > 0:
                out, self.tail = self.tail[:cut], self.tail[cut:]
                break
            more = self.fh.read(self.chunk)
            self.eof = not more
            self.tail += more
        self.consumed += len(out)
        if b"N" in out or b"I" in out:
            for tok, rep in self._TOKENS:
                out = out.replace(tok, rep)
        return out


class _Bad(Exception):
    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason


def _element(species) -> str:
    """The site's element: the only species, or the one of highest occupancy."""
    if not isinstance(species, list) or not species \
            or not all(isinstance(sp, dict) for sp in species):
        raise TypeError("species must be a non-empty list of objects")
    if len(species) == 1:
        return species[0]["element"]
    return max(species, key=lambda sp: _number(sp.get("occu", 1), "occu"))["element"]


def _number(v, field: str) -> float:
    """A real JSON number (never a bool, a string or null) as float; else :class:`_Bad`."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(field, f"not a number: {_show(v)}")
    try:
        return float(v)
    except OverflowError:
        raise _Bad(field, f"number out of range: {_show(v)}") from None


def _finite(v) -> bool:
    """Whether the JSON number ``v`` (int or float) is a finite float (huge ints are not)."""
    try:
        return bool(np.isfinite(float(v)))
    except OverflowError:
        return False


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _numeric(v, field: str, shape: tuple | None = None, what: str = "") -> np.ndarray:
    """A nested list of real numbers as a float array of ``shape`` (when given): strings,
    bools, nulls, ragged rows, a wrong shape and NaN/inf are :class:`_Bad` naming ``field``."""
    def ok(x) -> bool:
        if isinstance(x, list):
            return all(ok(y) for y in x)
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def has_null(x) -> bool:
        return x is None or isinstance(x, list) and any(has_null(y) for y in x)

    if isinstance(v, list) and has_null(v):  # NaN/Infinity tokens are read as null
        raise _Bad(field, f"null, NaN or inf value in the list{what}")
    if not isinstance(v, list) or not ok(v):
        raise _Bad(field, f"must be a list of numbers{what}, not {_show(v)}")
    try:
        arr = np.array(v, dtype=float)
    except (ValueError, OverflowError):
        raise _Bad(field, f"ragged or out-of-range list{what}") from None
    if shape is not None and arr.shape != shape:
        raise _Bad(field, f"shape {arr.shape}, expected {shape}")
    if not np.isfinite(arr).all():
        raise _Bad(field, "NaN or inf value")
    return arr


def _record(entry: dict, mp_id: str, frame_id: str, index: int) -> FrameRecord:
    """One MPtrj entry → a frame; every value is checked (types, shapes, finiteness,
    ranges) and a bad one is :class:`_Bad` naming its field, so only that entry is
    rejected."""
    if not isinstance(entry, dict):
        raise _Bad("entry", f"must be a JSON object, not {_show(entry)}")
    s = entry.get("structure")
    if not isinstance(s, dict):
        raise _Bad("structure", "missing or not a pymatgen structure object")
    lattice = s.get("lattice")
    if not isinstance(lattice, dict) or "matrix" not in lattice:
        raise _Bad("structure.lattice", "missing lattice matrix")
    cell = _numeric(lattice["matrix"], "structure.lattice", (3, 3), " (3 × 3 Å)")
    sites = s.get("sites")
    if not isinstance(sites, list) or not sites:
        raise _Bad("structure.sites", "missing or empty list of sites")
    try:
        symbols = [_element(site["species"]) for site in sites]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _Bad("structure.sites", f"malformed site species ({exc})") from None
    bad = next((sym for sym in symbols
                if not isinstance(sym, str) or atomic_numbers.get(sym, 0) == 0), "")
    if bad != "":
        raise _Bad("structure.sites", f"unknown element symbol {_show(bad)}")
    numbers = [atomic_numbers[sym] for sym in symbols]
    n = len(numbers)
    if not all(isinstance(site, dict) and "xyz" in site for site in sites):
        raise _Bad("structure.sites", "a site has no 'xyz' position")
    positions = _numeric([site["xyz"] for site in sites], "structure.sites", (n, 3),
                         " (xyz, Å)")
    if "uncorrected_total_energy" not in entry:
        raise _Bad("uncorrected_total_energy", "missing")
    energy = entry["uncorrected_total_energy"]
    if isinstance(energy, bool) or not isinstance(energy, (int, float)) \
            or not _finite(energy):
        raise _Bad("uncorrected_total_energy", f"not a finite number: {_show(energy)}")
    if abs(float(energy)) > MAX_ABS_ENERGY_PER_ATOM * n:
        raise _Bad("uncorrected_total_energy",
                   f"{float(energy):.6g} eV for {n} atoms is beyond "
                   f"±{MAX_ABS_ENERGY_PER_ATOM:g} eV per atom")
    info = {
        "energy": float(energy),
        "mp_id": str(entry.get("mp_id", mp_id)),
        "frame_id": str(frame_id),
        "method": MPTRJ_METHOD,
    }
    charge = s.get("charge")
    if charge is not None:
        if isinstance(charge, bool) or not isinstance(charge, (int, float)) \
                or not _finite(charge) or float(charge) != int(charge):
            raise _Bad("structure.charge", f"total charge must be an integer (within float "
                       f"range), not {_show(charge)}")
        if int(charge):
            info["charge"] = int(charge)
    arrays = {}
    if entry.get("force") is not None:
        arrays["forces"] = _numeric(entry["force"], "force", (n, 3), " (eV/Å)")
    if entry.get("stress") is not None:
        stress = _numeric(entry["stress"], "stress", (3, 3), " (kbar)")
        info["stress"] = units.kbar_stress_vasp_to_ase(stress)
    if "magmom" in entry:
        magmom = entry["magmom"]
        if magmom is None:
            pass  # MPtrj writes null for non-magnetic runs: no magmom, nothing kept
        else:
            mag = _numeric(magmom, "magmom", None, " (μB per atom)").reshape(-1)
            if mag.shape != (n,):
                raise _Bad("magmom", f"{mag.size} values for {n} atoms")
            arrays["magmom"] = mag
    return FrameRecord(numbers=np.array(numbers), positions=positions, cell=cell,
                       pbc=np.ones(3, dtype=bool), info=info, arrays=arrays, index=index)
