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

import gzip
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers as _ATOMIC_NUMBERS
from ase.data import chemical_symbols as _SYMBOLS

from tealign.errors import FrameError, SetupError
from tealign.io.atomic import atomic_path
from tealign.io.frames import FrameBatch, FrameRecord, stack_info_dicts

DEFAULT_PROPERTIES = "species:S:1:pos:R:3"
BLOCK_BYTES = 32 << 20

_KV = re.compile(
    r"""([A-Za-z_][\w\-.:]*)        # key
        (?:\s*=\s*
          ("(?:[^"\\]|\\.)*"        # "quoted"
          |\{[^}]*\}|\[[^\]]*\]     # {..} or [..]
          |[^\s"]+))?               # bare
    """,
    re.X,
)
_TRUE = {"T", "True", "true", "TRUE"}
_FALSE = {"F", "False", "false", "FALSE"}


# ----------------------------------------------------------------------------- header
def parse_comment(line: str) -> dict:
    """Parse an extxyz comment line into a dict of Python values.

    Numbers become int/float, ``T``/``F`` bools, quoted or bracketed lists of numbers
    numpy arrays, anything else a string. ``Lattice`` becomes a (3, 3) array.
    """
    out: dict = {}
    for key, raw in _KV.findall(line):
        out[key] = _convert(key, raw)
    return out


def _convert(key: str, raw: str):
    if raw == "":
        return True
    if raw[0] == '"':
        text = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        quoted = True
    elif raw[0] in "[{":
        text = raw[1:-1].replace(",", " ")
        quoted = True
    else:
        text = raw
        quoted = False
    if key == "Properties":
        return text
    tokens = text.split()
    if not quoted or len(tokens) == 1:
        value = _scalar(text.strip())
        if key == "Lattice":
            raise ValueError("Lattice needs 9 numbers")
        if not quoted or not isinstance(value, str):
            return value
        return text
    if all(t in _TRUE or t in _FALSE for t in tokens):
        return np.array([t in _TRUE for t in tokens])
    try:
        if all(_is_int(t) for t in tokens):
            arr = np.array([int(t) for t in tokens], dtype=np.int64)
        else:
            arr = np.array([float(t) for t in tokens])
    except ValueError:
        if key == "Lattice":
            raise
        return text
    if key == "Lattice":
        return arr.astype(float).reshape(3, 3)
    if arr.size == 9:  # stress, virials and other 3x3 tensors (row-major)
        return arr.reshape(3, 3)
    return arr


def _is_int(t: str) -> bool:
    return t.lstrip("+-").isdigit()


def _scalar(t: str):
    if _is_int(t):
        return int(t)
    try:
        return float(t)
    except ValueError:
        pass
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    return t


def parse_properties(spec: str) -> list[tuple[str, str, int]]:
    """``species:S:1:pos:R:3`` → ``[("species", "S", 1), ("pos", "R", 3)]``."""
    parts = spec.split(":")
    if len(parts) % 3:
        raise ValueError(f"Properties {spec!r} is not a list of name:type:ncols triples")
    props = []
    for i in range(0, len(parts), 3):
        name, kind, ncols = parts[i], parts[i + 1].upper(), parts[i + 2]
        if kind not in "SRIL" or not ncols.isdigit():
            raise ValueError(f"Properties entry {name}:{kind}:{ncols} is not valid")
        props.append((name, kind, int(ncols)))
    return props


# ----------------------------------------------------------------------------- reading
class _Pending:
    """Frames framed but not yet parsed, sharing one Properties spec."""

    def __init__(self, spec: str):
        self.spec = spec
        self.props = parse_properties(spec)
        self.headers: list[dict] = []
        self.counts: list[int] = []
        self.index: list[int] = []
        self.chunks: list[bytes] = []

    def __len__(self) -> int:
        return len(self.counts)


def iter_extxyz(
    path: str | os.PathLike, batch_size: int = 2048, start: int = 0
) -> Iterator[FrameBatch]:
    """Stream an extxyz file as :class:`FrameBatch` chunks of at most ``batch_size`` frames.

    Memory stays bounded by the block size and the batch size, whatever the file size.
    Frames that cannot be parsed are reported in each batch's ``rejects``.

    Raises :class:`SetupError` if the file cannot be opened or is not extxyz at all.
    """
    path = Path(path)
    fname = str(path)
    try:
        fh = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SetupError(f"cannot open file: {exc.strerror}", file=fname) from None
    with fh:
        frame = 0
        pending: _Pending | None = None
        rejects: list[FrameError] = []
        buf = b""
        eof = False
        first = True
        while True:
            # -- fill the buffer with whole lines
            if not eof:
                block = fh.read(BLOCK_BYTES)
                if not block:
                    eof = True
                buf += block
                if first and buf:
                    _check_looks_like_xyz(buf, fname)
                    first = False
            if not buf:
                break
            view = memoryview(buf)
            nl = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
            if eof and (len(nl) == 0 or nl[-1] != len(buf) - 1):
                nl = np.append(nl, len(buf))
            n_lines = len(nl)
            line = 0
            consumed = 0

            def line_bytes(k: int, nl=nl, view=view) -> bytes:
                s = 0 if k == 0 else nl[k - 1] + 1
                return bytes(view[s : nl[k]])

            while line < n_lines:
                head = line_bytes(line).strip()
                if not head:
                    line += 1
                    consumed = int(nl[line - 1]) + 1
                    continue
                try:
                    natoms = int(head)
                    if natoms < 0:
                        raise ValueError
                except ValueError:
                    rejects.append(
                        FrameError(
                            fname,
                            frame,
                            "natoms",
                            f"line {head[:40]!r} is not an atom count; the rest of the file "
                            "cannot be framed and was not read",
                        )
                    )
                    consumed = len(buf)
                    eof = True
                    line = n_lines
                    break
                end = line + 2 + natoms
                if end > n_lines:
                    if not eof:
                        break  # need more data
                    got = max(0, n_lines - line - 2)
                    rejects.append(
                        FrameError(
                            fname,
                            frame,
                            "atoms",
                            f"truncated frame: file ends after {got} of {natoms} atom lines",
                        )
                    )
                    consumed = len(buf)
                    line = n_lines
                    break
                comment = line_bytes(line + 1).decode("utf-8", errors="replace")
                try:
                    header = parse_comment(comment)
                    spec = header.pop("Properties", DEFAULT_PROPERTIES)
                    if not isinstance(spec, str):
                        raise ValueError("Properties must be a name:type:ncols list")
                    if pending is not None and spec != pending.spec:
                        yield from _flush(pending, fname, rejects)
                        rejects = []
                        pending = None
                    if pending is None:
                        pending = _Pending(spec)
                except ValueError as exc:
                    rejects.append(FrameError(fname, frame, "comment", str(exc)))
                else:
                    a = int(nl[line + 1]) + 1
                    b = int(nl[end - 1]) + 1 if natoms else a
                    pending.headers.append(header)
                    pending.counts.append(natoms)
                    pending.index.append(frame)
                    chunk = bytes(view[a:b])
                    if chunk and not chunk.endswith(b"\n"):
                        chunk += b"\n"
                    pending.chunks.append(chunk)
                frame += 1
                line = end
                consumed = int(nl[end - 1]) + 1 if end > 0 else 0
                if pending is not None and len(pending) >= batch_size:
                    yield from _flush(pending, fname, rejects)
                    rejects = []
                    pending = _Pending(pending.spec)
            del view
            buf = buf[consumed:]
            if eof:
                break
        if pending is not None and len(pending):
            yield from _flush(pending, fname, rejects)
        elif rejects:
            yield _empty_batch(rejects)


def _check_looks_like_xyz(buf: bytes, fname: str) -> None:
    first = buf.lstrip().split(b"\n", 1)[0].strip()
    if b"\x00" in buf[:4096]:
        raise SetupError("not a text extxyz file (binary content)", file=fname)
    try:
        int(first)
    except ValueError:
        raise SetupError(
            f"not an extxyz file: first line {first[:40]!r} is not an atom count",
            file=fname,
            frame=0,
        ) from None


def _empty_batch(rejects: list[FrameError]) -> FrameBatch:
    return FrameBatch.from_records([], rejects)


def _flush(pending: _Pending, fname: str, rejects: list[FrameError]) -> Iterator[FrameBatch]:
    """Parse the pending frames' atom lines in one go; fall back per frame on trouble."""
    ncols = sum(p[2] for p in pending.props)
    blob = b"".join(pending.chunks)
    total = sum(pending.counts)
    table = _parse_table(blob, pending.props, ncols, total)
    if table is not None:
        batch = _build(pending, table, list(range(len(pending))), fname, rejects)
        if batch is not None:
            yield batch
            return
    # slow path: one frame at a time, to name the bad ones
    good: list[int] = []
    tables = []
    for k, chunk in enumerate(pending.chunks):
        t = _parse_table(chunk, pending.props, ncols, pending.counts[k])
        if t is None:
            rejects.append(
                FrameError(
                    fname,
                    pending.index[k],
                    "atoms",
                    f"atom lines do not match Properties={pending.spec} "
                    f"({pending.counts[k]} lines of {ncols} columns expected)",
                )
            )
            continue
        good.append(k)
        tables.append(t)
    table = {}
    if tables:
        for name in tables[0]:
            table[name] = np.concatenate([t[name] for t in tables])
    batch = _build(pending, table, good, fname, rejects)
    yield batch if batch is not None else _empty_batch(rejects)


def _parse_table(blob: bytes, props, ncols: int, expected_rows: int) -> dict | None:
    """Parse whitespace-separated atom lines into named columns, or None if malformed."""
    import pandas as pd

    if expected_rows == 0:
        return {name: np.zeros((0, n)) for name, _, n in props}
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
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if df.shape != (expected_rows, ncols):
        return None
    out = {}
    col = 0
    for name, kind, n in props:
        block = df.iloc[:, col : col + n]
        if kind == "L":
            vals = block.to_numpy(dtype=str)
            ok = np.isin(vals, list(_TRUE | _FALSE))
            if not ok.all():
                return None
            arr = np.isin(vals, list(_TRUE))
        elif kind == "S":
            arr = block.to_numpy(dtype=object)
        else:
            arr = block.to_numpy()
        out[name] = arr[:, 0] if n == 1 else arr
        col += n
    return out


def _build(
    pending: _Pending, table: dict, keep: list[int], fname: str, rejects: list[FrameError]
) -> FrameBatch | None:
    """Assemble a batch from parsed columns; per-frame checks become frame errors."""
    counts_all = np.array(pending.counts, dtype=np.int64)
    counts = counts_all[keep]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    names = [p[0] for p in pending.props]
    if "species" not in names and "Z" not in names:
        raise SetupError(
            f"Properties={pending.spec} has neither species nor Z", file=fname,
            frame=pending.index[0], field="Properties",
        )
    if "pos" not in names:
        raise SetupError(
            f"Properties={pending.spec} has no pos column", file=fname,
            frame=pending.index[0], field="Properties",
        )
    bad = np.zeros(len(keep), dtype=bool)
    reasons: dict[int, tuple[str, str]] = {}
    atom_frame = np.repeat(np.arange(len(keep)), counts)
    if "Z" in table:
        numbers = np.asarray(table["Z"], dtype=np.int64)
    else:
        species = table["species"]
        uniq, inverse = np.unique(species.astype(str), return_inverse=True)
        lut = np.array([_ATOMIC_NUMBERS.get(s, -1) for s in uniq], dtype=np.int64)
        numbers = lut[inverse] if len(uniq) else np.zeros(0, dtype=np.int64)
        for u, z in zip(uniq, lut):
            if z < 0:
                frames = np.unique(atom_frame[species == u])
                for f in frames:
                    bad[f] = True
                    reasons.setdefault(int(f), ("species", f"unknown element symbol {u!r}"))
    arrays = {}
    for name, _kind, _ in pending.props:
        if name in ("species", "pos", "Z"):
            continue
        arrays[name] = table[name]
    positions = np.asarray(table["pos"], dtype=float).reshape(-1, 3)
    # non-finite per-atom values
    for name, arr in [("pos", positions), *arrays.items()]:
        if arr.dtype.kind == "f":
            nonfinite = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
            if nonfinite.any():
                for f in np.unique(atom_frame[nonfinite]):
                    bad[f] = True
                    reasons.setdefault(int(f), (name, "NaN or inf value"))
    headers = [pending.headers[k] for k in keep]
    cells = np.zeros((len(keep), 3, 3))
    pbcs = np.zeros((len(keep), 3), dtype=bool)
    for i, h in enumerate(headers):
        lat = h.pop("Lattice", None)
        pbc = h.pop("pbc", None)
        if lat is not None:
            cells[i] = lat
            pbcs[i] = True
        if pbc is not None:
            pbc_arr = np.atleast_1d(np.asarray(pbc, dtype=bool))
            if pbc_arr.shape == (1,):
                pbc_arr = np.repeat(pbc_arr, 3)
            if pbc_arr.shape != (3,):
                bad[i] = True
                reasons.setdefault(i, ("pbc", "pbc must hold 3 booleans"))
            else:
                pbcs[i] = pbc_arr
        for key, value in h.items():
            if isinstance(value, float) and not np.isfinite(value) or (
                isinstance(value, np.ndarray)
                and value.dtype.kind == "f"
                and not np.isfinite(value).all()
            ):
                bad[i] = True
                reasons.setdefault(i, (key, "NaN or inf value"))
    info, missing = stack_info_dicts(headers)
    batch = FrameBatch(
        numbers=numbers,
        positions=positions,
        offsets=offsets,
        cell=cells,
        pbc=pbcs,
        info=info,
        arrays=arrays,
        missing=missing,
        index=np.array([pending.index[k] for k in keep], dtype=np.int64),
        rejects=rejects,
    )
    if bad.any():
        for i in np.flatnonzero(bad):
            fld, why = reasons[int(i)]
            rejects.append(FrameError(fname, int(batch.index[i]), fld, why))
        batch = batch.select(~bad)
        batch.rejects = rejects
    return batch


def read_extxyz(path: str | os.PathLike) -> FrameBatch:
    """Read a whole (small) extxyz file into one batch."""
    from tealign.io.frames import concat_batches

    return concat_batches(list(iter_extxyz(path)))


# ----------------------------------------------------------------------------- writing
def _fmt_scalar(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "T" if value else "F"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        if flat.dtype.kind == "b":
            text = " ".join("T" if v else "F" for v in flat)
        elif flat.dtype.kind in "iu":
            text = " ".join(str(int(v)) for v in flat)
        else:
            text = " ".join(repr(float(v)) for v in flat)
        return f'"{text}"'
    if isinstance(value, (list, tuple)):
        return _fmt_scalar(np.asarray(value))
    text = str(value)
    if text == "" or re.search(r'[\s"=\\]', text) or text in _TRUE or text in _FALSE or (
        _scalar(text) is not text
    ):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


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
    if col.ndim == 1 and col.dtype.kind == "f":
        return [f"{key}={v!r}" for v in col.tolist()]
    if col.ndim == 1 and col.dtype.kind in "iu":
        return [f"{key}={v}" for v in col.tolist()]
    if col.ndim == 1 and col.dtype.kind == "b":
        return [f"{key}=T" if v else f"{key}=F" for v in col.tolist()]
    cache: dict = {}
    out = []
    for v in col:
        try:
            text = cache.get(v) if isinstance(v, str) else None
        except TypeError:
            text = None
        if text is None:
            text = f"{key}={_fmt_scalar(v)}"
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
            parts += [f"{name}:{kind}:{arr.shape[1]}" for name, arr, kind in cols[2:]
                      if name in present]
            spec = spec_cache[present] = "Properties=" + ":".join(parts)
        specs.append(spec)
    periodic = batch.pbc.any(axis=1) | batch.cell.reshape(n, 9).any(axis=1)
    lattice = ["Lattice=" + _fmt_scalar(batch.cell[i]) if periodic[i] else None
               for i in range(n)]
    columns = []
    for key, values in batch.info.items():
        strs = _format_info_column(key, values)
        if key in batch.missing:
            strs = [None if m else t for t, m in zip(strs, batch.missing[key])]
        columns.append(strs)
    pbc_text = {(False, False, False): 'pbc="F F F"', (True, True, True): 'pbc="T T T"'}
    pbcs = [pbc_text.get(t) or "pbc=" + _fmt_scalar(np.array(t))
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
    for _, arr, kind in cols:
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
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        return _write_stream(fh, batches, frozenset(rounded), workers)


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
    with ctx.Pool(workers) as pool:
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


def records_to_batch(records: list[FrameRecord]) -> FrameBatch:
    return FrameBatch.from_records(records)
