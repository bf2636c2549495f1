"""Worker processes that never outlive the process that started them (issue 26, item 3).

Every local pool tealign starts (align's byte ranges and formatting, merge's shard writers,
``compute``'s jobs) runs :func:`init_worker` first in each worker: on Linux the kernel is
asked (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to kill the worker when its parent dies,
``kill -9`` included; elsewhere a daemon thread polls the parent every second. Right after,
the worker checks that its parent is still the process that started it (the parent may have
died between the fork and the ``prctl``) and kills itself if not.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _kernel_kills_orphans() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(parent: int) -> None:
    """Make this (worker) process die when process ``parent`` (the one that started it)
    dies; kill it now if ``parent`` is already gone."""
    if not _kernel_kills_orphans():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                         name="tealign-parent-watch").start()
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def _init(parent: int, then: Callable | None, args: tuple) -> None:
    die_with_parent(parent)
    if then is not None:
        then(*args)


def init_worker(then: Callable | None = None, *args) -> Callable[[], None]:
    """The ``initializer`` for a pool started by this process: :func:`die_with_parent`,
    then ``then(*args)`` if given (picklable: a partial of module-level functions)."""
    return functools.partial(_init, os.getpid(), then, args)


def children(pid: int | None = None) -> list[int]:
    """The live child processes of ``pid`` (default: this process), from ``/proc``
    (Linux; empty elsewhere)."""
    pid = os.getpid() if pid is None else pid
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat") as fh:
                    rest = fh.read().rsplit(")", 1)[1].split()
                if int(rest[1]) == pid and rest[0] != "Z":
                    found.append(int(entry))
    return found
