"""Extended XYZ: a streaming, columnar reader and an exact writer.

Reading walks the file in blocks of bytes, frames each record from its atom-count line, and
parses the atom lines of many frames at once with pandas' C tokenizer; per frame only the
comment line is parsed in Python. Frames that do not parse (wrong column count, bad
numbers, unknown element, a truncated last frame) become frame errors naming the frame and
field, and the rest of the file is still read.

Writing renders float columns with vectorised fixed-point formatting (``tealign.io.fixed``),
choosing per column the fewest decimals that reproduce every value exactly and falling back to
Python's shortest ``repr`` otherwise, so a read → write → read cycle reproduces every value
bit for bit.

The comment line follows ASE's conventions: ``key=value`` pairs, ``Lattice="9 numbers"``
(cell rows), ``Properties=name:type:ncols:...`` with types S, R, I, L, ``pbc="T T F"``.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS
from ase.data import chemical_symbols as _SYMBOLS

from tealign.errors import FrameError, SetupError
from tealign.io.frames import FrameBatch, stack_info_dicts, validate_batch
from tealign.io.outputs import atomic_path

DEFAULT_PROPERTIES = "species:S:1:pos:R:3"
BLOCK_BYTES = 8 << 20



# ----------------------------------------------------------------------------- header
_DELIMITERS = {"'": "'", '"': '"', "{": "}", "[": "]"}
_BOOL_WORDS = {"T": True, "F": False, "true": True, "false": False, "True": True,
               "False": False, "TRUE": True, "FALSE": False}
_TRUE = {k for k, v in _BOOL_WORDS.items() if v}
_FALSE = {k for k, v in _BOOL_WORDS.items() if not v}
#: keys ASE keeps as the raw string, and keys ASE reads as 3x3 matrices (Fortran order)
_UNPROCESSED = {"uid"}
_SPECIAL_3X3 = {"Lattice", "virial", "stress"}
_SIMPLE_LINE = re.compile(r"""[^\\'{}\[\]]*""")
_FAST_KV = re.compile(r'(([^\s="]+)(?:(=)("[^"]+"|[^\s"=]+))?(\s+|$))')
_TOKENS = re.compile(r'\s+|=|(?:[^\s="]|"[^"]*")+')
_VALUE_SPLIT = re.compile(r"[^\s,]+")
_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_I64 = (-(2**63), 2**63 - 1)


class CommentError(ValueError):
    """A comment line that cannot be read; ``field`` names the key at fault."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field


def _next_pair(pairs: list) -> None:
    """Whitespace ends the current key=value pair (runs of it, and leading, count once)."""
    if not (pairs == [[""]] or pairs[-1][-1] == ""):
        pairs.append([""])


def split_comment(line: str) -> list[tuple[str, str | None]]:
    """Split an extxyz comment line into ``(key, raw value or None)`` pairs, in order.

    Follows ASE's ``key_val_str_to_dict`` exactly: values (and keys) may be delimited by
    ``"…"``, ``'…'``, ``{…}`` or ``[…]``; a backslash takes the next character verbatim;
    ``key = value`` is allowed; a bare key stands for True; further ``=`` join the value.
    """
    line = line.strip()
    if _SIMPLE_LINE.fullmatch(line):
        found = _FAST_KV.findall(line)
        if sum(len(m[0]) for m in found) == len(line):  # plain key=value / key="…" / key
            return [(key, None if not eq else value[1:-1] if value[:1] == '"' else value)
                    for _, key, eq, value, _ws in found]
    pairs: list[list[str]] = [[""]]
    if _SIMPLE_LINE.fullmatch(line) and line.count('"') % 2 == 0:
        for m in _TOKENS.finditer(line):
            tok = m.group()
            if tok[0].isspace():
                _next_pair(pairs)
            elif tok == "=":
                _equals(pairs)
            else:
                pairs[-1][-1] += tok.replace('"', "")
    else:
        closing = None
        escaped = False
        for ch in line:
            if escaped:
                pairs[-1][-1] += ch
                escaped = False
            elif ch == "\\":
                escaped = True
            elif closing:
                if ch == closing:
                    closing = None
                else:
                    pairs[-1][-1] += ch
            elif ch in _DELIMITERS:
                closing = _DELIMITERS[ch]
            elif ch.isspace():
                _next_pair(pairs)
            elif ch == "=":
                _equals(pairs)
            else:
                pairs[-1][-1] += ch
    out = []
    for pair in pairs:
        if not pair:
            continue
        if len(pair) == 1:
            if pair[0] == "":
                continue
            out.append((pair[0], None))
        else:
            out.append((pair[0], "=".join(pair[1:])))
    return out


def _equals(pairs: list[list[str]]) -> None:
    if pairs[-1] == [""]:
        del pairs[-1]
        if not pairs:
            raise CommentError("comment", "'=' with no key before it")
    pairs[-1].append("")


def convert_value(key: str, value: str | None):
    """An extxyz header value as ASE reads it: int / float / bool (or arrays of them), JSON
    after ``_JSON ``, else the string. Raises :class:`CommentError` where ASE cannot read
    it (a special 3x3 key without 9 numbers, bad ``_JSON``)."""
    if value is None:
        return True
    if "\x00" in value:
        raise CommentError(key, "NUL byte in the value")
    if key.lower() in _UNPROCESSED:
        return value
    tokens = _VALUE_SPLIT.findall(value)
    out = _numbers(tokens)
    if out is None:
        out = value
    if key in _SPECIAL_3X3:
        nine = isinstance(out, np.ndarray) and out.shape == (9,) and out.dtype.kind in "if"
        if nine and key == "Lattice":
            return out.astype(float).reshape(3, 3)  # cell rows (ASE: the F-order matrix, .T)
        if nine:  # integers stay integers, as ASE reads them
            return out.reshape((3, 3), order="F")
        if key == "Lattice":
            raise CommentError(key, "Lattice needs 9 numbers")
        return out  # stress/virial of another shape: validated with the other values
    if isinstance(out, str):
        if tokens and all(t in _BOOL_WORDS for t in tokens):
            flags = [_BOOL_WORDS[t] for t in tokens]
            return flags[0] if len(flags) == 1 else np.array(flags)
        if out.startswith("_JSON "):
            try:
                d = json.loads(out[6:])
            except ValueError as exc:
                raise CommentError(key, f"_JSON value is not JSON ({exc.msg})") from None
            try:
                arr = np.array(d)
            except (ValueError, OverflowError):  # ragged lists: ase.io.read fails on them
                raise CommentError(key, "_JSON value is a ragged array (rows of different "
                                   "lengths), which ase.io.read cannot read") from None
            return arr if arr.dtype.kind in "ifb" else d
    return out


def _numbers(tokens: list[str]):
    """ASE's number parsing: all ints → int(s); else all floats → float(s); else None."""
    if not tokens:
        return np.zeros(0, dtype=np.int64)
    if all(_INT.match(t) for t in tokens):
        ints = [int(t) for t in tokens]
        if all(_I64[0] <= i <= _I64[1] for i in ints):
            return ints[0] if len(ints) == 1 else np.array(ints, dtype=np.int64)
        floats = [float(i) for i in ints]
        return floats[0] if len(floats) == 1 else np.array(floats)
    if all(_FLOAT.match(t) for t in tokens):
        floats = [float(t) for t in tokens]
        return floats[0] if len(floats) == 1 else np.array(floats)
    # anything unusual: let numpy decide, exactly as ASE does
    try:
        try:
            arr = np.array(tokens, dtype=int)
        except (ValueError, OverflowError):
            arr = np.array(tokens, dtype=float)
    except (ValueError, OverflowError):
        return None
    if len(arr) == 1:
        return arr[0].item()
    return arr


def parse_comment(line: str) -> dict:
    """Parse an extxyz comment line into a dict of Python values (ASE's semantics).

    Numbers become int/float, ``T``/``F`` bools, lists of numbers numpy arrays, ``_JSON``
    values their JSON, anything else a string. ``Lattice`` becomes a (3, 3) array of cell
    rows. A key given twice raises :class:`CommentError` (ASE would keep the last silently).
    """
    out: dict = {}
    for key, raw in split_comment(line):
        if key in out:
            raise CommentError(key, f"key {key!r} appears twice in the header")
        out[key] = raw if key == "Properties" else convert_value(key, raw)
    if "Properties" in out and out["Properties"] is None:
        raise CommentError("Properties", "Properties has no value")
    return out


def parse_properties(spec: str) -> list[tuple[str, str, int]]:
    """``species:S:1:pos:R:3`` → ``[("species", "S", 1), ("pos", "R", 3)]``."""
    parts = spec.split(":")
    if len(parts) % 3:
        raise CommentError("Properties",
                           f"Properties {spec!r} is not a list of name:type:ncols triples")
    props = []
    seen = set()
    for i in range(0, len(parts), 3):
        name, kind, ncols = parts[i], parts[i + 1].upper(), parts[i + 2]
        if not name or kind not in ("S", "R", "I", "L") or not ncols.isdigit() \
                or int(ncols) < 1:
            raise CommentError("Properties", f"Properties entry {name}:{kind}:{ncols} is not "
                               "valid (type S, R, I or L; at least one column)")
        if name in seen:
            raise CommentError("Properties", f"Properties names {name!r} twice")
        seen.add(name)
        props.append((name, kind, int(ncols)))
    names = [p[0] for p in props]
    if "species" not in names and "Z" not in names:
        raise CommentError("Properties", f"Properties={spec} has neither species nor Z")
    if "pos" not in names or dict((p[0], p[2]) for p in props)["pos"] != 3:
        raise CommentError("Properties", f"Properties={spec} has no pos:R:3 column")
    return props


# ----------------------------------------------------------------------------- header fast path
#: a number token of a comment line (ASE's int, then float, syntax) standing as a whole
#: word: after the line start, whitespace, ``=`` or ``"``; before whitespace, ``"`` or the end
_NUM_SLOT = re.compile(r'(?<![^\s="])(?:([+-]?[0-9]+)|([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)'
                       r'(?:[eE][+-]?[0-9]+)?))(?![^\s"])')
_PLAN_CACHE_MAX = 512


class _CommentPlans:
    """Comment lines parsed through templates: the numbers of a line are cut out, and the
    rest (keys, strings, the Properties spec, ``pbc``) is parsed once per distinct template
    with :func:`parse_comment`. A new line of a known template only converts its numbers,
    with the very conversions :func:`convert_value` applies (``int``/``float`` per token,
    ``Lattice``/``stress``/``virial`` as 3x3). Lines outside the simple ``key=value`` form,
    templates whose plan does not reproduce :func:`parse_comment` on their first line, and
    integers that could leave the int64 range go through :func:`parse_comment` itself."""

    def __init__(self):
        self.plans: dict = {}
        self.hits = 0
        self.misses = 0

    def parse(self, line: str) -> dict:
        if self.misses > 256 and self.misses > 4 * self.hits:
            return parse_comment(line)  # templates do not repeat: plans would not pay
        parts = _NUM_SLOT.split(line)
        ints = parts[1::3]
        key = (tuple(parts[0::3]), tuple(map(bool, ints)))
        plan = self.plans.get(key, 0)
        if plan == 0:
            self.misses += 1
            if len(self.plans) >= _PLAN_CACHE_MAX:
                self.plans.clear()
            plan = self.plans[key] = _make_plan(line, key[1])
        else:
            self.hits += 1
        if plan is None:
            return parse_comment(line)
        slots = [i if i is not None else f for i, f in zip(ints, parts[2::3])]
        if plan[1] and any(len(slots[j]) > 18 for j in plan[1]):
            return parse_comment(line)  # may pass the int64 range: ASE's own rules
        return _apply_plan(plan[0], slots)


def _apply_plan(steps, slots: list[str]) -> dict:
    out = {}
    for key, how, arg in steps:
        if how == 0:  # literal: the value parse_comment gave the template
            # (pbc is only read, by _build, which recognises the shared value)
            out[key] = arg.copy() if isinstance(arg, np.ndarray) and key != "pbc" else arg
        elif how == 1:
            out[key] = int(slots[arg])
        elif how == 2:
            out[key] = float(slots[arg])
        elif how == 3:
            out[key] = np.array([int(slots[j]) for j in arg], dtype=np.int64)
        elif how == 4:
            out[key] = np.array([float(slots[j]) for j in arg])
        elif how == 5:  # Lattice: cell rows
            out[key] = np.array([float(slots[j]) for j in arg]).reshape(3, 3)
        else:  # stress / virial: ASE's Fortran order
            out[key] = np.array([float(slots[j]) for j in arg]).reshape((3, 3), order="F")
    return out


def _make_plan(line: str, is_int: tuple):
    """The steps that rebuild ``parse_comment(line)`` from the line's number slots, the
    indices of integer slots, or None where the template needs the full parser."""
    try:
        ref = parse_comment(line)
    except CommentError:
        return None
    s = line.strip()
    lead = len(line) - len(line.lstrip())
    if not _SIMPLE_LINE.fullmatch(s):
        return None
    found = list(_FAST_KV.finditer(s))
    if sum(len(m.group(0)) for m in found) != len(s):
        return None
    slot_spans = [(m.start() - lead, m.end() - lead) for m in _NUM_SLOT.finditer(line)]
    if len(slot_spans) != len(is_int):
        return None
    steps = []
    used = 0
    for m in found:
        key, eq, value = m.group(2), m.group(3), m.group(4)
        if key not in ref:
            return None
        inside = [j for j, (a, b) in enumerate(slot_spans)
                  if eq and m.start(4) <= a and b <= m.end(4)]
        if any(a < m.end(2) and b > m.start(2) for a, b in slot_spans):
            return None  # a number as a key
        used += len(inside)
        if not inside:
            steps.append((key, 0, ref[key]))
            continue
        raw = value[1:-1] if value[:1] == '"' else value
        if key == "Properties" or key.lower() in _UNPROCESSED \
                or len(_VALUE_SPLIT.findall(raw)) != len(inside):
            return None
        all_int = all(is_int[j] for j in inside)
        if key in _SPECIAL_3X3 and len(inside) == 9:
            how = 5 if key == "Lattice" else 6
        elif key in _SPECIAL_3X3 and key == "Lattice":
            return None
        elif len(inside) == 1:
            how = 1 if all_int else 2
        else:
            how = 3 if all_int else 4
        steps.append((key, how, inside[0] if how in (1, 2) else tuple(inside)))
    if used != len(slot_spans) or len(steps) != len(ref):
        return None
    int_slots = tuple(j for j, f in enumerate(is_int) if f)
    parts = _NUM_SLOT.split(line)
    slots = [i if i is not None else f for i, f in zip(parts[1::3], parts[2::3])]
    if any(len(slots[j]) > 18 for j in int_slots):
        return None
    if not _same_header(_apply_plan(steps, slots), ref):
        return None
    return steps, int_slots


def _same_header(a: dict, b: dict) -> bool:
    if list(a) != list(b):
        return False
    for k, va in a.items():
        vb = b[k]
        if type(va) is not type(vb):
            return False
        if isinstance(va, np.ndarray):
            if va.dtype != vb.dtype or va.shape != vb.shape or not np.array_equal(va, vb):
                return False
        elif va != vb:
            return False
    return True


# ----------------------------------------------------------------------------- reading
class _Pending:
    """Frames framed but not yet parsed, sharing one Properties spec."""

    def __init__(self, spec: str):
        self.spec = spec
        self.props = parse_properties(spec)
        self.ncols = sum(p[2] for p in self.props)
        self.headers: list[dict] = []
        self.counts: list[int] = []
        self.index: list[int] = []
        self.chunks: list[bytes] = []
        self.lines: list[int] = []

    def __len__(self) -> int:
        return len(self.counts)


def _line_tokens(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Newline positions (a virtual one at the end for a last line without one) and the
    number of whitespace-separated fields on each line."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    if len(nl) == 0 or nl[-1] != len(buf) - 1:
        nl = np.append(nl, len(buf))
    ws = _WHITESPACE[arr]
    first = np.flatnonzero(ws[:-1] & ~ws[1:]) + 1  # where a field starts
    if len(buf) and not ws[0]:
        first = np.concatenate([[0], first])
    # a field starting at p lies on the first line whose newline is at or after p
    counts = np.bincount(np.searchsorted(nl, first), minlength=len(nl)).astype(np.int64)
    return nl, counts


_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True


def _int_line(text: bytes) -> int | None:
    t = text.strip()
    if not t or not (t.isdigit() or (t[:1] in b"+" and t[1:].isdigit())):
        return None
    return int(t)


def iter_extxyz(
    path: str | os.PathLike, batch_size: int = 2048,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[FrameBatch]:
    """Stream an extxyz file as :class:`FrameBatch` chunks of at most ``batch_size`` frames.

    Every frame the reader can delimit is counted: parsed, or reported in a batch's
    ``rejects`` with its reason (a count line that is not a count, atom lines that do not
    match the count or the Properties, bad values). After a broken frame the reader
    resynchronises on the next atom-count line. Memory stays bounded by the block size and
    the batch size, whatever the file size.

    ``byte_range=(start, stop)`` reads only those bytes of an uncompressed file, as if they
    were the whole file (``start`` should be a frame's atom-count line: see
    :func:`tealign.io.extxyz_ranges.frame_ranges`); frame numbers and line numbers then
    count from ``start``.

    Raises :class:`SetupError` if the file cannot be opened, is not extxyz at all, holds no
    frame, or its compressed stream breaks (naming the line reached).
    """
    path = Path(path)
    fname = str(path)
    if byte_range is not None and path.suffix == ".gz":
        raise ValueError("byte_range needs an uncompressed file")
    try:
        fh = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SetupError(f"cannot open file: {exc.strerror}", file=fname) from None
    with fh:
        src = fh if byte_range is None else _Slice(fh, *byte_range)
        src = _LineEnds(src, strip_bom=byte_range is None or byte_range[0] == 0)
        reader = _Reader(src, fname, batch_size)
        reader.more_after = byte_range is not None and byte_range[1] < path.stat().st_size
        for batch in reader.run():
            yield validate_batch(batch, fname)


class _LineEnds:
    """Reads a binary stream with a leading UTF-8 byte-order mark removed and, when the
    first block has carriage returns but no line feed (classic Mac line ends, which
    ``ase.io.read`` reads through Python's universal newlines), every CR read as LF.
    Windows CRLF needs nothing: the reader strips the CR with the other whitespace."""

    BOM = b"\xef\xbb\xbf"

    def __init__(self, fh, strip_bom: bool = True):
        self.fh = fh
        self.first = True
        self.strip_bom = strip_bom
        self.cr_only = False

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if self.first:
            self.first = False
            if self.strip_bom and data.startswith(self.BOM):
                data = data[len(self.BOM):]
            self.cr_only = b"\r" in data and b"\n" not in data
        if self.cr_only:
            data = data.replace(b"\r", b"\n")
        return data


class _Slice:
    """The bytes ``[start, stop)`` of an open binary file, read like a whole file."""

    def __init__(self, fh, start: int, stop: int):
        fh.seek(start)
        self.fh = fh
        self.left = max(0, stop - start)

    def read(self, n: int) -> bytes:
        data = self.fh.read(min(n, self.left))
        self.left -= len(data)
        return data


class _Reader:
    """The framing state machine of :func:`iter_extxyz`."""

    def __init__(self, fh, fname: str, batch_size: int):
        self.fh = fh
        self.fname = fname
        self.batch_size = batch_size
        self.frame = 0
        self.line0 = 0  # file line number of the buffer's first line (0-based)
        self.pending: _Pending | None = None
        self.rejects: list[FrameError] = []
        self.skipping = False  # inside the debris of a broken frame
        self.comments = _CommentPlans()
        self.more_after = False  # a byte range with more of the file after its end

    def reject(self, field: str, reason: str) -> None:
        self.rejects.append(FrameError(self.fname, self.frame, field, reason))
        self.frame += 1

    def read_block(self) -> bytes:
        try:
            return self.fh.read(BLOCK_BYTES)
        except EOFError:
            raise SetupError(
                f"compressed stream is truncated after line {self.line0 + 1}; the frames "
                "after it cannot be delimited", file=self.fname, frame=self.frame) from None
        except (OSError, zlib.error) as exc:
            kind = "not a gzip file" if "gzip" in str(exc).lower() else "cannot read"
            raise SetupError(f"{kind}: {exc} (at line {self.line0 + 1})", file=self.fname,
                             frame=self.frame) from None

    def run(self) -> Iterator[FrameBatch]:
        buf = b""
        eof = False
        first = True
        while True:
            if not eof:
                block = self.read_block()
                eof = not block
                buf += block
                if first and (buf.strip() or eof):
                    _check_start(buf, self.fname)
                    first = False
            if not buf:
                break
            consumed, lines_done = yield from self._frames(buf, eof)
            self.line0 += lines_done
            buf = buf[consumed:]
            if eof:
                break
        if self.pending is not None and len(self.pending):
            yield from self._flush()
        elif self.rejects:
            yield _empty_batch(self.rejects)
            self.rejects = []

    def _blank_line_error(self, line: int) -> None:
        """A blank line where an atom count is due, with more lines after it: ``ase.io.read``
        ends the file there and drops the rest in silence; tealign refuses the file."""
        raise SetupError(
            f"line {self.line0 + line + 1} is blank where frame {self.frame}'s atom count is "
            f"due, and more lines follow; ase.io.read stops at a blank line (it would read "
            f"{self.frame} frame{'s' if self.frame != 1 else ''} and drop the rest): remove the "
            "blank line(s) between frames", file=self.fname, frame=self.frame, field="natoms")

    def _frames(self, buf: bytes, eof: bool):
        """Frame what the buffer holds; returns (bytes consumed, lines consumed)."""
        nl, tok = _line_tokens(buf)
        n_lines = len(nl)
        if not eof:
            n_lines -= 1  # the last line may be incomplete
        starts = np.concatenate([[0], nl[:-1] + 1])
        ones = np.flatnonzero(tok[:n_lines] == 1)

        def text(k: int) -> bytes:
            return buf[starts[k]: nl[k]]

        def header_at(k: int) -> int | None:
            return _int_line(text(k)) if tok[k] == 1 else None

        def next_header(k: int) -> int | None:
            """The first line ≥ k that is an atom count, or None in this buffer."""
            pos = int(np.searchsorted(ones, k))
            while pos < len(ones):
                j = int(ones[pos])
                if header_at(j) is not None:
                    return j
                pos += 1
            return None

        lists = (starts.tolist(), nl.tolist(), tok.tolist(), {})
        line = 0
        while line < n_lines:
            if not self.skipping:
                line = yield from self._plain_frames(buf, line, n_lines, tok, lists)
                if line >= n_lines:
                    break
            if self.skipping:
                j = next_header(line)
                if j is None:
                    line = n_lines
                    break
                self.skipping = False
                line = j
            if tok[line] == 0:
                rest = np.flatnonzero(tok[line:n_lines] != 0)
                if len(rest) or (eof and self.more_after):
                    self._blank_line_error(line)
                if not eof:
                    break  # blank lines up to here: whether more follows needs more data
                line = n_lines
                break
            where = self.line0 + line + 1
            natoms = header_at(line)
            if natoms is None:
                head = text(line).strip()[:40]
                self.reject("natoms", f"line {where}: {head!r} is not an atom count; skipped "
                            "to the next frame")
                self.skipping = True
                line += 1
                continue
            if line + 1 >= n_lines:
                if not eof:
                    break
                self.reject("atoms", f"truncated frame: file ends after the atom-count line "
                            f"{where}")
                line = n_lines
                break
            # comment line: Properties decides the column count that frames the atom lines
            error = None
            header: dict = {}
            spec = DEFAULT_PROPERTIES
            ncols = None
            try:
                comment = text(line + 1).decode("utf-8")
            except UnicodeDecodeError:
                error = ("comment", "comment line is not UTF-8 text")
            else:
                try:
                    header = self.comments.parse(comment)
                    spec = header.pop("Properties", DEFAULT_PROPERTIES)
                    ncols = _spec_columns(spec)
                except CommentError as exc:
                    error = (exc.field, str(exc))
                    with contextlib.suppress(CommentError, KeyError):
                        ncols = _spec_columns(_properties_of(comment))
            end = line + 2 + natoms
            avail = min(end, n_lines)
            rows = tok[line + 2: avail]
            bad = np.flatnonzero(rows <= 1 if ncols is None else rows != ncols)
            if len(bad):
                j = line + 2 + int(bad[0])
                if tok[j] == 1 and header_at(j) is not None:
                    self.reject("natoms", f"line {where} declares {natoms} atoms but the next "
                                f"frame starts after {int(bad[0])} atom lines (line "
                                f"{self.line0 + j + 1})")
                    line = j
                    continue
                if tok[j] == 0:
                    self.reject("natoms", f"blank line {self.line0 + j + 1} inside the atom "
                                f"lines of a frame declaring {natoms} atoms")
                    self.skipping = True
                    line = j
                    continue
                if end > n_lines and j == n_lines - 1:  # the last line, cut short
                    if not eof:
                        break
                    self.reject("atoms", f"truncated frame: file ends after "
                                f"{n_lines - line - 2} of {natoms} atom lines")
                    line = n_lines
                    break
                # a line that is not an atom line of this frame: its count cannot be
                # trusted past it, so resynchronise on the next count line from there
                self.reject("atoms", f"atom line {self.line0 + j + 1} has {tok[j]} fields, "
                            f"Properties={spec} needs {ncols} columns" if ncols is not None
                            else f"line {self.line0 + j + 1} is not an atom line")
                self.skipping = True
                line = j
                continue
            if end > n_lines:
                if not eof:
                    break
                self.reject("atoms", f"truncated frame: file ends after {n_lines - line - 2} "
                            f"of {natoms} atom lines")
                line = n_lines
                break
            # VEC lines (ASE's vec_cell) follow the atoms
            nvec = 0
            while end < n_lines and nvec < 3 and text(end).lstrip().startswith(b"VEC"):
                nvec += 1
                end += 1
            if end >= n_lines and not eof:
                break
            if end < n_lines and ncols is not None and tok[end] == ncols \
                    and header_at(end) is None:
                self.reject("natoms", f"line {where} declares {natoms} atoms but more atom "
                            f"lines follow (line {self.line0 + end + 1})")
                self.skipping = True
                line = end
                continue
            if error is None and natoms == 0:
                error = ("natoms", "frame has no atoms")
            if error is None and nvec:
                error = _vec_header(header, text, line, natoms, nvec, comment)
            if error is not None:
                self.reject(*error)
                line = end
                continue
            if self.pending is not None and spec != self.pending.spec:
                yield from self._flush()
            chunk = buf[int(starts[line + 2]): int(nl[line + 1 + natoms]) + 1]
            if not chunk.endswith(b"\n"):
                chunk += b"\n"
            if self._append(spec, header, natoms, line, chunk) >= self.batch_size:
                yield from self._flush()
            line = end
        line = min(line, n_lines)
        consumed = int(starts[line]) if line < len(starts) else len(buf)
        return consumed, line

    def _plain_frames(self, buf: bytes, line: int, n_lines: int, tok: np.ndarray, lists):
        """Frame the plain frames from ``line`` on (a count, a comment line that parses, exactly
        ``natoms`` lines of the Properties' column count, then the next count line) in Python
        lists, without the checks the general loop runs; returns the first line of the first
        frame that is anything else, for the general loop to judge."""
        starts, nl, ntok, same = lists
        comments = self.comments
        while line < n_lines:
            if ntok[line] != 1:
                return line
            natoms = _int_line(buf[starts[line]: nl[line]])
            if not natoms:
                return line
            end = line + 2 + natoms
            if end >= n_lines or ntok[end] != 1 \
                    or _int_line(buf[starts[end]: nl[end]]) is None:
                return line
            try:
                header = comments.parse(buf[starts[line + 1]: nl[line + 1]].decode("utf-8"))
                spec = header.pop("Properties", DEFAULT_PROPERTIES)
                ncols = _spec_columns(spec)
            except (UnicodeDecodeError, CommentError):
                return line
            cum = same.get(ncols)
            if cum is None:  # lines before k with exactly ncols fields
                cum = same[ncols] = np.concatenate(
                    [[0], np.cumsum(tok == ncols)]).tolist()
            if cum[end] - cum[line + 2] != natoms:
                return line
            if self.pending is not None and spec != self.pending.spec:
                yield from self._flush()
            chunk = buf[starts[line + 2]: nl[end - 1] + 1]
            if self._append(spec, header, natoms, line, chunk) >= self.batch_size:
                yield from self._flush()
            line = end
        return line

    def _append(self, spec: str, header: dict, natoms: int, line: int, chunk: bytes) -> int:
        """Queue one framed frame (its atom lines, ``chunk``, start on buffer line
        ``line + 2``); returns how many frames are pending."""
        if self.pending is None:
            self.pending = _Pending(spec)
        p = self.pending
        p.headers.append(header)
        p.counts.append(natoms)
        p.index.append(self.frame)
        p.lines.append(self.line0 + line + 3)
        p.chunks.append(chunk)
        self.frame += 1
        return len(p)

    def _flush(self) -> Iterator[FrameBatch]:
        pending, self.pending = self.pending, None
        rejects, self.rejects = self.rejects, []
        if pending is not None and len(pending):
            yield from _flush(pending, self.fname, rejects)
        elif rejects:
            yield _empty_batch(rejects)


def _check_start(buf: bytes, fname: str) -> None:
    """Refuse a file that is empty, binary, or does not open with an atom count."""
    if not buf.strip():
        raise SetupError("empty file: no frames", file=fname)
    first = buf.lstrip().split(b"\n", 1)[0].strip()
    if _int_line(first) is None:
        if b"\x00" in buf[:4096]:
            raise SetupError("not a text extxyz file (binary content)", file=fname)
        raise SetupError(
            f"not an extxyz file: first line {first[:40]!r} is not an atom count",
            file=fname, frame=0)


def _vec_header(header, text, line, natoms, nvec, comment):
    """ASE's vec_cell frames: cell rows as VEC1..VEC3 lines; the comment is kept whole."""
    cell = np.zeros((3, 3))
    for k in range(nvec):
        parts = text(line + 2 + natoms + k).split()
        if parts[0] != f"VEC{k + 1}".encode() or len(parts) != 4:
            return ("Lattice", f"expected VEC{k + 1} and 3 numbers, got {parts[:1]}")
        try:
            cell[k] = [float(x) for x in parts[1:]]
        except ValueError:
            return ("Lattice", f"VEC{k + 1} holds a value that is not a number")
    header.clear()
    header["comment"] = comment.strip()
    header["Lattice"] = cell
    header["pbc"] = np.array([k < nvec for k in range(3)])
    return None


def _properties_of(comment: str) -> str:
    for key, raw in split_comment(comment):
        if key == "Properties" and raw:
            return raw
    return DEFAULT_PROPERTIES


@functools.lru_cache(maxsize=256)
def _spec_columns(spec) -> int:
    if not isinstance(spec, str):
        raise CommentError("Properties", "Properties must be a name:type:ncols list")
    return sum(p[2] for p in parse_properties(spec))


def _empty_batch(rejects: list[FrameError]) -> FrameBatch:
    return FrameBatch.from_records([], rejects)


def _flush(pending: _Pending, fname: str, rejects: list[FrameError]) -> Iterator[FrameBatch]:
    """Parse the pending frames' atom lines in one go; fall back per frame on trouble."""
    blob = b"".join(pending.chunks)
    total = sum(pending.counts)
    table = _parse_table(blob, pending.props, pending.ncols, total)
    if table is not None:
        yield _build(pending, table, list(range(len(pending))), fname, rejects)
        return
    # slow path: one frame at a time, exactly as ASE converts values, naming the bad ones
    good: list[int] = []
    tables = []
    for k, chunk in enumerate(pending.chunks):
        t = _parse_table(chunk, pending.props, pending.ncols, pending.counts[k])
        if t is None:
            t, why = _parse_rows_exactly(chunk, pending.props, pending.counts[k])
            if t is None:
                rejects.append(FrameError(fname, pending.index[k], why[0],
                                          f"line {pending.lines[k] + why[2]}: {why[1]}"))
                continue
        good.append(k)
        tables.append(t)
    table = {}
    if tables:
        for name in tables[0]:
            table[name] = np.concatenate([t[name] for t in tables])
    yield _build(pending, table, good, fname, rejects)


@functools.cache
def _exact_floats() -> dict:
    """read_csv options that parse every float exactly: pandas 2 rounds by default
    ("high" precision: the last bit may differ) unless asked for "round_trip"; pandas 3
    parses exactly and deprecates the option."""
    import pandas as pd

    return {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _parse_table(blob: bytes, props, ncols: int, expected_rows: int) -> dict | None:
    """Parse whitespace-separated atom lines into named columns, or None if any value is
    not what its column type needs (the caller then goes frame by frame)."""
    import pandas as pd

    dtypes = {}
    col = 0
    for _, kind, n in props:
        for j in range(col, col + n):
            dtypes[j] = {"R": "float64", "I": "int64", "S": "str", "L": "str"}[kind]
        col += n
    try:
        df = pd.read_csv(
            io.BytesIO(blob),
            sep=r"\s+",
            header=None,
            engine="c",
            dtype=dtypes,
            keep_default_na=False,
            na_values={j: ["nan", "NaN", "NAN", "-nan"] for j, t in dtypes.items()
                       if t == "float64"},
            comment=None,
            quoting=3,
            **_exact_floats(),
        )
    except (ValueError, OverflowError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError):
        return None
    if df.shape != (expected_rows, ncols):
        return None
    out = {}
    col = 0
    nul = b"\x00" in blob  # no string value can hold a NUL byte the blob lacks
    for name, kind, n in props:
        block = df.iloc[:, col : col + n]
        if kind == "L":
            vals = block.to_numpy(dtype=str)
            if not np.isin(vals, _L_WORDS).all():
                return None
            arr = np.isin(vals, _L_TRUE)
        elif kind == "S":
            arr = block.to_numpy(dtype=object)
            if nul and any(("\x00" in s) for s in arr.ravel().tolist()):
                return None
        else:
            arr = block.to_numpy()
        out[name] = arr[:, 0] if n == 1 else arr
        col += n
    return out


_L_WORDS = ["T", "F", "True", "False"]
_L_TRUE = ["T", "True"]


def _parse_rows_exactly(chunk: bytes, props, natoms: int):
    """One frame's atom lines converted value by value the way ASE does (Python ``float``,
    ``int``, ``T``/``F``), plus Fortran ``d`` exponents; returns (columns, None) or
    (None, (field, reason, line offset))."""
    cols: dict[str, list] = {name: [] for name, _, _ in props}
    for r, raw in enumerate(chunk.split(b"\n")[:natoms]):
        try:
            fields = raw.decode("utf-8").split()
        except UnicodeDecodeError:
            return None, ("atoms", "atom line is not UTF-8 text", r)
        c = 0
        for name, kind, n in props:
            vals = fields[c: c + n]
            c += n
            try:
                if kind == "R":
                    conv = [_real(v) for v in vals]
                elif kind == "I":
                    conv = [int(v) for v in vals]
                    if any(not (_I64[0] <= v <= _I64[1]) for v in conv):
                        return None, (name, "integer beyond the int64 range", r)
                elif kind == "L":
                    if any(v not in _L_WORDS for v in vals):
                        return None, (name, "logical value is not T or F", r)
                    conv = [v in _L_TRUE for v in vals]
                else:
                    if any("\x00" in v for v in vals):
                        return None, (name, "NUL byte in a string value", r)
                    conv = vals
            except ValueError:
                what = {"R": "a real number", "I": "an integer"}[kind]
                return None, (name, f"value is not {what}", r)
            cols[name].append(conv)
    out = {}
    for name, kind, n in props:
        dtype = {"R": float, "I": np.int64, "L": bool, "S": object}[kind]
        arr = np.array(cols[name], dtype=dtype).reshape(natoms, n)
        out[name] = arr[:, 0] if n == 1 else arr
    return out, None


def _species_reason(u: str) -> str:
    """Why a species column entry is not an element symbol (as ``ase.io.read`` refuses it)."""
    if u.lstrip("+-").isdigit():
        return (f"species '{u}' is an atomic number, not an element symbol; give numbers in "
                "a Z:I:1 column (ase.io.read refuses numbers in species:S too)")
    if u.capitalize() == "X":
        return ("species 'X' is a dummy atom (atomic number 0), not an element: TEA needs "
                "an isolated-atom energy for every atom")
    return f"unknown element symbol '{u}'"


def _real(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        if "d" in v or "D" in v:  # Fortran double exponent, 1.0d-3
            return float(v.replace("d", "e").replace("D", "e"))
        raise


def _build(
    pending: _Pending, table: dict, keep: list[int], fname: str, rejects: list[FrameError]
) -> FrameBatch:
    """Assemble a batch from parsed columns; per-frame checks become frame errors."""
    counts_all = np.array(pending.counts, dtype=np.int64)
    counts = counts_all[keep]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    bad = np.zeros(len(keep), dtype=bool)
    reasons: dict[int, tuple[str, str]] = {}
    atom_frame = np.repeat(np.arange(len(keep)), counts)
    if not keep:
        numbers = np.zeros(0, dtype=np.int64)
    elif "Z" in table:
        raw = np.asarray(table["Z"])
        if raw.dtype.kind == "f":  # a Z:R column: whole numbers only, never truncated
            frac = ~np.isfinite(raw) | (raw != np.round(np.nan_to_num(raw)))
            for f in np.unique(atom_frame[frac]):
                bad[f] = True
                z = raw[frac & (atom_frame == f)][0]
                reasons.setdefault(int(f), ("Z", f"atomic number {z} is not an integer"))
            raw = np.where(frac, 1, np.nan_to_num(raw))
        numbers = raw.astype(np.int64)
        wrong = (numbers < 1) | (numbers > 118)
        for f in np.unique(atom_frame[wrong]):
            bad[f] = True
            z = numbers[wrong & (atom_frame == f)][0]
            reasons.setdefault(int(f), ("Z", f"{z} is not an atomic number (1–118)"))
        numbers = np.where(wrong, 1, numbers)
    else:
        species = table["species"]
        uniq, inverse = np.unique(species.astype(str), return_inverse=True)
        # 'X' (ASE's dummy atom, number 0) is no element: rejected like an unknown symbol
        lut = np.array([_ATOMIC_NUMBERS.get(s.capitalize(), -1) or -1 for s in uniq],
                       dtype=np.int64)
        numbers = lut[inverse] if len(uniq) else np.zeros(0, dtype=np.int64)
        for u, z in zip(uniq, lut):
            if z < 0:
                frames = np.unique(atom_frame[species == u])
                for f in frames:
                    bad[f] = True
                    reasons.setdefault(int(f), ("species", _species_reason(str(u))))
    arrays = {}
    for name, _kind, n in pending.props:
        if name in ("species", "pos", "Z"):
            continue
        arrays[_ARRAY_NAMES.get(name, name)] = (table[name] if keep else
                                                np.zeros((0, n) if n > 1 else (0,)))
        if name == "move_mask" and keep:  # ASE reads an integer move_mask as flags
            arrays[name] = np.asarray(arrays[name]).astype(bool)
    positions = (np.asarray(table["pos"], dtype=float).reshape(-1, 3) if keep
                 else np.zeros((0, 3)))
    headers = [pending.headers[k] for k in keep]
    cells = np.zeros((len(keep), 3, 3))
    pbcs = np.zeros((len(keep), 3), dtype=bool)
    last_pbc, last_row = None, None  # frames of one comment template share their pbc value
    for i, h in enumerate(headers):
        lat = h.pop("Lattice", None)
        pbc = h.pop("pbc", None)
        if lat is not None:
            cells[i] = lat
            pbcs[i] = True
        if pbc is None:
            continue
        if pbc is not last_pbc:
            last_pbc = pbc
            pbc_arr = np.atleast_1d(np.asarray(pbc))
            if pbc_arr.shape == (1,):
                pbc_arr = np.repeat(pbc_arr, 3)
            ok = pbc_arr.shape == (3,) and pbc_arr.dtype.kind == "b"
            last_row = pbc_arr if ok else None
        if last_row is None:
            bad[i] = True
            reasons.setdefault(i, ("pbc", "pbc must hold 3 booleans (T/F)"))
        else:
            pbcs[i] = last_row
    info, missing = stack_info_dicts(headers)
    index = np.array([pending.index[k] for k in keep], dtype=np.int64)
    batch = FrameBatch(numbers, positions, offsets, cells, pbcs, info, arrays, missing,
                       index=index, rejects=rejects)
    if bad.any():
        for i in np.flatnonzero(bad):
            fld, why = reasons[int(i)]
            rejects.append(FrameError(fname, int(batch.index[i]), fld, why))
        batch = batch.select(~bad)
        batch.rejects = rejects
    return batch


#: per-atom property names that ASE maps to other array names when reading (and back)
_ARRAY_NAMES = {"charge": "charges"}
_COLUMN_NAMES = {v: k for k, v in _ARRAY_NAMES.items()}


# ----------------------------------------------------------------------------- writing
_PLAIN_TEXT = re.compile(r"[^\s\"'{}\[\]\\=,]+\Z")


def _ase_reads_as_string(key: str, text: str) -> bool:
    """Would ASE read ``text`` (written quoted) under ``key`` back as this very string?"""
    if key.lower() in _UNPROCESSED:
        return True
    if text == "" or text.startswith("_JSON ") or "\n" in text or "\r" in text:
        return False
    tokens = _VALUE_SPLIT.findall(text)
    if _numbers(tokens) is not None:
        return False
    return not (tokens and all(t in _BOOL_WORDS for t in tokens))


def _quote(text: str) -> str:
    """``text`` as one extxyz key or value: bare if plain, else double-quoted with ``\\`` and
    ``"`` escaped (ASE's reader takes the character after a backslash verbatim)."""
    if _PLAIN_TEXT.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _json_value(key: str, value) -> str:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SetupError(f"info value cannot be written to extxyz ({exc})", field=key) from None
    return _quote("_JSON " + text)


def _fmt_value(key: str, value) -> str:
    """One header value, written so that ASE (and tealign) read back the same value and kind."""
    if isinstance(value, (bool, np.bool_)):
        return "T" if value else "F"
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return str(v) if _I64[0] <= v <= _I64[1] else _json_value(key, v)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value) if value else np.zeros(0)
        if arr.dtype.kind in "biuf" and arr.ndim == 1:
            value = arr
        else:
            return _json_value(key, _jsonable(value))
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        if kind not in "biuf":
            return _json_value(key, _jsonable(value.tolist()))
        if value.ndim == 2 and (key in _SPECIAL_3X3 or _is_tensor_key(key)) \
                and value.shape == (3, 3):
            # ASE reads its special keys in Fortran order; MACE reads REF_stress row-major
            flat = value.ravel(order="F" if key in _SPECIAL_3X3 else "C")
        elif value.ndim == 1 and len(value) > 1:
            flat = value
        else:
            return _json_value(key, _jsonable(value.tolist()))
        if kind == "b":
            text = " ".join("T" if v else "F" for v in flat)
        elif kind in "iu":
            if not all(_I64[0] <= int(v) <= _I64[1] for v in flat):
                return _json_value(key, _jsonable(value.tolist()))
            text = " ".join(str(int(v)) for v in flat)
        else:
            text = " ".join(repr(float(v)) for v in flat)
        return f'"{text}"'
    if isinstance(value, str):
        if _ase_reads_as_string(key, value):
            return _quote(value)
        return _json_value(key, value)
    if value is None:
        return _json_value(key, None)
    return _json_value(key, _jsonable(value))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_tensor_key(key: str) -> bool:
    from tealign.io.frames import tensor_kind

    return tensor_kind(key) is not None


def _column_kind(arr: np.ndarray) -> tuple[str, int]:
    ncols = 1 if arr.ndim == 1 else int(np.prod(arr.shape[1:]))
    kind = arr.dtype.kind
    if kind == "b":
        return "L", ncols
    if kind in "iu":
        return "I", ncols
    if kind == "f":
        return "R", ncols
    return "S", ncols


def _format_info_column(key: str, col: np.ndarray) -> list[str]:
    """``key=value`` strings of one per-frame column, formatted column-wise (fast path)."""
    qkey = _quote(key)
    if col.ndim == 1 and col.dtype.kind == "f":
        return [f"{qkey}={v!r}" for v in col.tolist()]
    if col.ndim == 1 and col.dtype.kind in "iu":
        return [f"{qkey}={_fmt_value(key, v)}" for v in col.tolist()]
    if col.ndim == 1 and col.dtype.kind == "b":
        return [f"{qkey}=T" if v else f"{qkey}=F" for v in col.tolist()]
    cache: dict = {}
    out = []
    for v in col:
        try:
            text = cache.get(v) if isinstance(v, str) else None
        except TypeError:
            text = None
        if text is None:
            text = f"{qkey}={_fmt_value(key, v)}"
            if isinstance(v, str):
                cache[v] = text
        out.append(text)
    return out


def _headers(batch: FrameBatch, cols) -> list[str]:
    """The atom-count and comment lines of every frame."""
    n = batch.n_frames
    spec_cache: dict[tuple, str] = {}
    specs = []
    for i in range(n):
        present = tuple(
            name for name, _, _ in cols[2:]
            if not (name in batch.missing and batch.missing[name][i])
        )
        spec = spec_cache.get(present)
        if spec is None:
            parts = ["species:S:1", "pos:R:3"]
            parts += [f"{_COLUMN_NAMES.get(name, name)}:{kind}:{arr.shape[1]}"
                      for name, arr, kind in cols[2:] if name in present]
            spec = spec_cache[present] = "Properties=" + ":".join(parts)
        specs.append(spec)
    periodic = batch.pbc.any(axis=1) | batch.cell.reshape(n, 9).any(axis=1)
    lattice = ['Lattice="' + " ".join(repr(float(v)) for v in batch.cell[i].ravel()) + '"'
               if periodic[i] else None for i in range(n)]
    columns = []
    for key, values in batch.info.items():
        strs = _format_info_column(key, values)
        if key in batch.missing:
            strs = [None if m else t for t, m in zip(strs, batch.missing[key])]
        columns.append(strs)
    pbc_text = {(False, False, False): 'pbc="F F F"', (True, True, True): 'pbc="T T T"'}
    pbcs = [pbc_text.get(t) or "pbc=" + _fmt_value("pbc", np.array(t))
            for t in map(tuple, batch.pbc.tolist())]
    counts = np.diff(batch.offsets).tolist()
    out = []
    for i in range(n):
        parts = [p for p in (lattice[i], specs[i], *(c[i] for c in columns), pbcs[i])
                 if p is not None]
        out.append(f"{counts[i]}\n{' '.join(parts)}\n")
    return out


def _columns(batch: FrameBatch):
    symbols = np.array(_SYMBOLS, dtype=object)[batch.numbers]
    cols = [("species", symbols.reshape(-1, 1), "S"), ("pos", batch.positions, "R")]
    for name, arr in batch.arrays.items():
        kind, n = _column_kind(arr)
        cols.append((name, arr.reshape(len(arr), n), kind))
    return cols


def _atom_matrix(batch: FrameBatch, cols, rounded: frozenset) -> np.ndarray | None:
    """All atom lines as one (n_atoms, width) uint8 matrix, or None if a column needs the
    per-value path (non-float columns, missing keys, values no fixed format writes)."""
    from tealign.io.fixed import format_float_columns

    if batch.missing and any(name in batch.missing for name, _, _ in cols[2:]):
        return None
    n = len(batch.numbers)
    width_sym = max((len(s) for s in _SYMBOLS[1:]), default=2) if n else 1
    sym = np.array(_SYMBOLS, dtype=f"S{width_sym}")[batch.numbers].view(np.uint8)
    sym = sym.reshape(n, width_sym).copy()
    sym[sym == 0] = ord(" ")
    pieces = [sym]
    for name, arr, kind in cols[1:]:
        if kind != "R":
            return None
        block, failed = format_float_columns(arr, exact=name not in rounded)
        if failed:
            return None
        pieces.append(block)
    pieces.append(np.full((n, 1), ord("\n"), dtype=np.uint8))
    return np.concatenate(pieces, axis=1)


def format_batch(batch: FrameBatch, rounded: frozenset = frozenset()) -> str:
    """Render a batch as extxyz text.

    Float columns are written in fixed notation with the fewest decimals (4, 8 or 12) that
    reproduce every value exactly; columns no fixed format writes exactly fall back to
    Python's shortest ``repr``, so reading the file back gives every value bit for bit.
    Per-atom columns named in ``rounded`` (computed values, e.g. aligned forces) are instead
    written with 12 decimals (rounded at 1e-12 absolute), which is much faster.
    """
    cols = _columns(batch)
    headers = _headers(batch, cols)
    matrix = _atom_matrix(batch, cols, frozenset(rounded))
    if matrix is not None:
        offsets = batch.offsets
        text = matrix.tobytes()
        w = matrix.shape[1]
        return "".join(
            h + text[offsets[i] * w : offsets[i + 1] * w].decode("ascii")
            for i, h in enumerate(headers)
        )
    return _format_batch_per_value(batch, cols, headers)


def _format_batch_per_value(batch: FrameBatch, cols, headers: list[str]) -> str:
    width = sum(c[1].shape[1] for c in cols)
    table = np.empty((len(batch.numbers), width), dtype=object)
    fmt_parts = []
    col = 0
    for name, arr, kind in cols:
        n = arr.shape[1]
        if kind == "L":
            table[:, col : col + n] = np.where(arr, "T", "F")
            fmt_parts += ["%s"] * n
        elif kind == "R":
            table[:, col : col + n] = arr
            fmt_parts += ["%r"] * n
        elif kind == "I":
            table[:, col : col + n] = arr
            fmt_parts += ["%d"] * n
        else:
            rows = arr
            if name in batch.missing:  # only the frames that have the column
                rows = arr[np.repeat(~batch.missing[name], np.diff(batch.offsets))]
            flat = rows.ravel().tolist()
            if any(not isinstance(v, str) or not v or any(c.isspace() for c in v)
                   for v in flat):
                raise SetupError("per-atom strings must be non-empty words without spaces "
                                 "to be written to extxyz", field=name)
            table[:, col : col + n] = arr
            fmt_parts += ["%s"] * n
        col += n
    line_fmt = " ".join(fmt_parts) + "\n"
    flat = table.ravel().tolist()
    out = []
    for i in range(batch.n_frames):
        a, b = int(batch.offsets[i]), int(batch.offsets[i + 1])
        out.append(headers[i])
        present = [name for name, _, _ in cols[2:]
                   if not (name in batch.missing and batch.missing[name][i])]
        if len(present) == len(cols) - 2:
            out.append((line_fmt * (b - a)) % tuple(flat[a * width : b * width]))
            continue
        keepcols = []
        c = 0
        for name, arr, _ in cols:
            n = arr.shape[1]
            if name in ("species", "pos") or name in present:
                keepcols.extend(range(c, c + n))
            c += n
        sub_fmt = " ".join(fmt_parts[j] for j in keepcols) + "\n"
        rows = table[a:b][:, keepcols]
        out.append((sub_fmt * (b - a)) % tuple(rows.ravel().tolist()))
    return "".join(out)


def write_extxyz(path: str | os.PathLike, batches, append: bool = False,
                 rounded: frozenset = frozenset(), workers: int = 1) -> int:
    """Write batches (an iterable of :class:`FrameBatch`) atomically; returns frames written.

    Per-atom float columns named in ``rounded`` may be written with 12 decimals when no
    exact fixed format exists (see :func:`format_batch`); all others are exact. With
    ``workers > 1`` batches are formatted in worker processes while this process keeps
    reading (at most ``2 × workers`` batches in flight, so memory stays bounded).
    """
    if append:
        with open(path, "a") as fh:
            return _write_stream(fh, batches, frozenset(rounded), workers)
    with atomic_path(path) as tmp, open_text_output(tmp, path) as fh:  # .gz: gzip (issue 26)
        return _write_stream(fh, batches, frozenset(rounded), workers)


def write_batches(batches, path: str | os.PathLike, *, scheduler=None, **options) -> int:
    """:func:`write_extxyz` with the writer argument order of the format registry; with a
    Dask ``scheduler`` (an address or a ``Client``) the batches are formatted there
    (:func:`write_extxyz_on`)."""
    if scheduler:
        from tealign.workers import Executor

        with Executor(scheduler=scheduler) as ex:
            return write_extxyz_on(ex, path, batches, rounded=options.get("rounded", frozenset()))
    return write_extxyz(path, batches, **options)


@contextlib.contextmanager
def open_text_output(tmp, path):
    """``tmp`` (the temporary of output ``path``) opened for text; gzip-compressed when
    ``path`` ends in ``.gz``, the gzip header naming ``path`` without ``.gz``."""
    if not str(path).lower().endswith(".gz"):
        with open(tmp, "w") as fh:
            yield fh
        return
    with open(tmp, "wb") as raw, \
            gzip.GzipFile(filename=Path(path).name[:-3], mode="wb", fileobj=raw) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8") as fh:
        yield fh


def write_extxyz_on(executor, path: str | os.PathLike, batches,
                    rounded: frozenset = frozenset()) -> int:
    """Like :func:`write_extxyz`, with the formatting done by ``executor`` (a
    :class:`tealign.workers.Executor`, e.g. on a Dask cluster) and the text written here in
    input order; returns frames written."""
    from collections import deque

    n = 0
    pending: deque = deque()
    with atomic_path(path) as tmp, open_text_output(tmp, path) as fh:
        for batch in batches:
            pending.append((executor.submit(format_batch, batch, frozenset(rounded)),
                            batch.n_frames))
            while pending and pending[0][0].done():
                fut, k = pending.popleft()
                fh.write(fut.result())
                n += k
        while pending:
            fut, k = pending.popleft()
            fh.write(fut.result())
            n += k
    return n




def _format_counted(batch: FrameBatch, rounded: frozenset) -> tuple[str, int]:
    return format_batch(batch, rounded), batch.n_frames


def _write_stream(fh, batches, rounded: frozenset, workers: int) -> int:
    n = 0
    if workers <= 1:
        for batch in batches:
            fh.write(format_batch(batch, rounded))
            n += batch.n_frames
        return n
    import multiprocessing as mp
    from collections import deque

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    from tealign.workers import init_worker

    with ctx.Pool(workers, initializer=init_worker()) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.apply_async(_format_counted, (batch, rounded)))
            if len(pending) >= 2 * workers:
                text, k = pending.popleft().get()
                fh.write(text)
                n += k
        while pending:
            text, k = pending.popleft().get()
            fh.write(text)
            n += k
    return n
