"""Worker processes that never outlive the process that started them (issue 26, item 3).

Every local pool tealign starts (align's byte ranges and formatting, merge's shard writers,
``compute``'s jobs) runs :func:`init_worker` first in each worker: on Linux the kernel is
asked (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to kill the worker when its parent dies,
``kill -9`` included; elsewhere a daemon thread polls the parent every second. Right after,
the worker checks that its parent is still the process that started it (the parent may have
died between the fork and the ``prctl``) and kills itself if not.

:class:`Executor` is the worker pool behind ``--workers``/``--scheduler`` of ``align`` and
``merge`` (shard writers, extxyz formatting): inline, local processes or a Dask cluster, at
most ``2 × slots`` tasks in flight.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
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


class _Done:
    """A finished future (work run in this process)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value

    def done(self) -> bool:
        return True


def _below_the_reader() -> None:
    """Local workers yield the CPU to the process that reads and aligns (the producer is
    what limits a merge on few cores); they only need to keep up with it."""
    with contextlib.suppress(OSError):
        os.nice(5)


class Executor:
    """Where shard (and formatting) work runs: inline, local processes or a Dask cluster."""

    def __init__(self, workers: int = 1, scheduler=None):
        self._pool = self._client = None
        self._own_client = False
        self._inflight: deque = deque()
        if scheduler is not None:
            from distributed import Client

            if isinstance(scheduler, Client):
                self._client = scheduler
            else:
                self._client = Client(scheduler)
                self._own_client = True
            self.slots = max(1, sum(self._client.nthreads().values()))
        elif workers > 1:
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx,
                                             initializer=init_worker(_below_the_reader))
            self.slots = workers
        else:
            self.slots = 1

    @property
    def parallel(self) -> bool:
        return self._pool is not None or self._client is not None

    def submit(self, fn, *args):
        """Run ``fn(*args)`` somewhere; blocks while ``2 × slots`` tasks are in flight."""
        if not self.parallel:
            return _Done(fn(*args))
        while len(self._inflight) >= 2 * self.slots:
            self._inflight[0].result()  # raises a worker's exception here
            while self._inflight and self._inflight[0].done():
                self._inflight.popleft()
        fut = (self._client.submit(fn, *args, pure=False) if self._client is not None
               else self._pool.submit(fn, *args))
        self._inflight.append(fut)
        return fut

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None and self._own_client:
            self._client.close()
        self._client = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
