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
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from tealign import units
from tealign.errors import FrameError, SetupError
from tealign.io.frames import FrameBatch, FrameRecord

MPTRJ_METHOD = "pbe/paw (vasp, Materials Project settings)"


def iter_mptrj(path: str | Path, batch_size: int = 2048) -> Iterator[FrameBatch]:
    import ijson

    fname = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed in finally)
    except OSError as exc:
        raise SetupError(f"cannot open file: {exc.strerror}", file=fname) from None
    stream = _NonFiniteAsNull(fh)
    records: list[FrameRecord] = []
    rejects: list[FrameError] = []
    frame = 0
    try:
        if stream.first_token() != b"{":
            raise SetupError("MPtrj JSON must map mp_id to frames", file=fname)
        for mp_id, frames in ijson.kvitems(stream, "", use_float=True):
            if not isinstance(frames, dict):
                raise SetupError("expected {frame_id: frame} under each mp_id", file=fname,
                                 field=mp_id)
            for frame_id, entry in frames.items():
                try:
                    records.append(_record(entry, mp_id, frame_id, frame))
                except _Bad as bad:
                    rejects.append(FrameError(fname, frame, bad.field, bad.reason))
                frame += 1
                if len(records) >= batch_size:
                    yield FrameBatch.from_records(records, rejects)
                    records, rejects = [], []
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SetupError(
            f"not valid JSON near byte {stream.consumed:,} ({reason}) after {frame} frames; "
            "a truncated MPtrj file cannot be read further",
            file=fname,
        ) from None
    finally:
        fh.close()
    if records or rejects:
        yield FrameBatch.from_records(records, rejects)


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


def _element(species: list) -> str:
    """The site's element: the only species, or the one of highest occupancy."""
    if len(species) == 1:
        return species[0]["element"]
    return max(species, key=lambda sp: sp.get("occu", 1))["element"]


def _record(entry: dict, mp_id: str, frame_id: str, index: int) -> FrameRecord:
    try:
        s = entry["structure"]
        cell = np.array(s["lattice"]["matrix"], dtype=float)
        sites = s["sites"]
        symbols = [_element(site["species"]) for site in sites]
        positions = np.array([site["xyz"] for site in sites], dtype=float).reshape(-1, 3)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _Bad("structure", f"malformed pymatgen structure ({exc})") from None
    try:
        numbers = [atomic_numbers[sym] for sym in symbols]
    except (KeyError, TypeError):
        bad = next(sym for sym in symbols if sym not in atomic_numbers)
        raise _Bad("structure", f"unknown element symbol {bad!r}") from None
    n = len(numbers)
    if positions.shape != (n, 3):
        raise _Bad("structure", f"{positions.shape[0]} positions for {n} sites")
    if "uncorrected_total_energy" not in entry:
        raise _Bad("uncorrected_total_energy", "missing")
    energy = entry["uncorrected_total_energy"]
    if not isinstance(energy, (int, float)) or not np.isfinite(energy):
        raise _Bad("uncorrected_total_energy", f"not a finite number: {energy!r}")
    info = {
        "energy": float(energy),
        "mp_id": str(entry.get("mp_id", mp_id)),
        "frame_id": str(frame_id),
        "method": MPTRJ_METHOD,
    }
    if s.get("charge"):
        info["charge"] = int(s["charge"])
    arrays = {}
    if "force" in entry:
        forces = np.array(entry["force"], dtype=float)
        if forces.shape != (n, 3):
            raise _Bad("force", f"shape {forces.shape}, expected ({n}, 3)")
        if not np.isfinite(forces).all():
            raise _Bad("force", "NaN or inf value")
        arrays["forces"] = forces
    if "stress" in entry and entry["stress"] is not None:
        stress = np.array(entry["stress"], dtype=float)
        if stress.shape != (3, 3):
            raise _Bad("stress", f"shape {stress.shape}, expected (3, 3)")
        info["stress"] = units.kbar_stress_vasp_to_ase(stress)
    magmom = entry.get("magmom")
    if magmom is not None:
        mag = np.array(magmom, dtype=float).reshape(-1)
        if mag.shape != (n,):
            raise _Bad("magmom", f"{mag.size} values for {n} atoms")
        arrays["magmom"] = mag
    return FrameRecord(numbers=np.array(numbers), positions=positions, cell=cell,
                       pbc=np.ones(3, dtype=bool), info=info, arrays=arrays, index=index)
