"""Cut an extxyz file into byte ranges that each start on a frame, for readers in parallel.

:func:`frame_ranges` finds the cuts without reading the file through: from each target
offset it reads a little and takes the first line that starts a run of frames that hold
together (an atom count N alone on its line, a comment line, N lines, then the next count
line or the end of the file, three frames in a row; ASE's ``VEC`` cell lines allowed).
:func:`tealign.io.extxyz.iter_extxyz` reads one range with ``byte_range=``.

The rule can be fooled only by a file whose comment lines are bare integers laid out like
frames, so the cuts are a proposal: a range that starts on a frame and reads to its end
without a frame error ends on a frame as well (a cut inside a frame leaves the range's last
frame truncated). Callers that trust the cuts only under that condition
(:func:`tealign.align.pipeline.transform_file`) read the frames of every well-formed file as one
reader would; anything else they read in one pass.
"""

from __future__ import annotations

import os

#: frames in a row that must hold together after a proposed cut
CHECK_FRAMES = 3
#: bytes read after a target offset to find a cut (doubled while the frames run past it)
FIRST_WINDOW = 1 << 18
MAX_WINDOW = 1 << 26


def _count(line: bytes) -> int | None:
    """N if ``line`` is an atom count N ≥ 1 alone on its line, else None."""
    t = line.strip()
    return int(t) if t.isdigit() and int(t) > 0 else None


def _holds(lines: list[bytes], k: int, at_eof: bool) -> bool | None:
    """Whether CHECK_FRAMES frames hold together from line ``k``; None if ``lines`` (the
    complete lines of the window) end before that can be told."""
    for _ in range(CHECK_FRAMES):
        n = _count(lines[k])
        if n is None:
            return False
        k += 2 + n
        while k < len(lines) and lines[k].lstrip().startswith(b"VEC"):
            k += 1
        if k >= len(lines):
            return k == len(lines) if at_eof else None
    return _count(lines[k]) is not None


def _scan(fh, offset: int, size: int, window: int) -> tuple[int | None, bool]:
    """(the first proposed cut at or after ``offset`` within ``window`` bytes, whether a
    larger window could not change the answer)."""
    lo = max(0, offset - 1)
    fh.seek(lo)
    buf = fh.read(window)
    at_eof = lo + len(buf) >= size
    # the first complete line starts after the first newline at or after offset - 1
    head = 0 if offset == 0 else buf.find(b"\n") + 1
    if head == 0 and offset > 0:
        return None, at_eof
    lines = buf[head:].split(b"\n")
    if not at_eof or lines[-1] == b"":
        lines.pop()  # cut short by the window, or the empty piece after a final newline
    pos = lo + head
    for k, line in enumerate(lines):
        if _count(line) is not None:
            ok = _holds(lines, k, at_eof)
            if ok:
                return pos, True
            if ok is None:
                return None, False
        pos += len(line) + 1
    return None, at_eof


def _frame_start(fh, offset: int, size: int) -> int | None:
    """The byte offset of the first line at or after ``offset`` that starts frames that hold
    together; None if there is none within MAX_WINDOW bytes."""
    window = FIRST_WINDOW
    while window <= MAX_WINDOW:
        cut, final = _scan(fh, offset, size, window)
        if cut is not None or final:
            return cut
        window *= 2
    return None


def frame_ranges(path: str | os.PathLike, target_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges ``[(start, stop), ...]`` covering the file in order, about ``target_bytes``
    each, every one after the first starting on a proposed frame start (see the module
    docstring for when the proposal can be trusted). One range if no cut is found."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as fh:
        target = target_bytes
        while target < size:
            cut = _frame_start(fh, max(target, cuts[-1] + 1), size)
            if cut is None or cut >= size:
                break
            cuts.append(cut)
            target = cut + target_bytes
    return list(zip(cuts, cuts[1:] + [size]))
