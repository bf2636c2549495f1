"""Bounded relaxations and MD for the benchmarks: a runaway guard, a force-call counter and
torch's thread count.

A poor model can drive a cell relaxation or an MD run anywhere: a cell that collapses makes the
neighbour list (and the model's graph) grow with 1/volume until the machine runs out of memory
(issue 17: MgO under a 1-epoch model reached 24 GB). :class:`GuardedCalculator` checks every
geometry *before* the wrapped calculator sees it (so before any neighbour list is built) and
raises :class:`Runaway` with the reason when

* a position or cell vector is not finite;
* a periodic cell's volume leaves [V0 / f, f · V0] (``volume_factor`` f, default 3), or a cell
  height shrinks below h0 / f (periodic images multiply);
* a molecule's radius of gyration leaves [Rg0 / g, g · Rg0] (``gyration_factor`` g, default 2,
  i.e. a volume ratio of 8; atoms flying apart or collapsing);
* the number of neighbour pairs within the cutoff exceeds ``neighbour_factor`` (default 3) times
  the start's (counted only once the checks above have passed, so the count itself is bounded).

The benchmarks catch :class:`Runaway` and list the item under ``skipped`` with its reason.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

VOLUME_FACTOR = 3.0
GYRATION_FACTOR = 2.0
NEIGHBOUR_FACTOR = 3.0
DEFAULT_CUTOFF = 5.0  # Å, when the calculator has no cutoff of its own


class Runaway(RuntimeError):
    """A geometry or cell left the guard's bounds; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ForceCallCapReached(RuntimeError):
    """The benchmark's force-call cap is spent."""


def _heights(cell: np.ndarray) -> np.ndarray:
    """Perpendicular heights of a cell (distance between opposite faces), Å."""
    vol = abs(np.linalg.det(cell))
    return np.array([vol / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                     for i in range(3)])


def _gyration(positions: np.ndarray) -> float:
    c = positions - positions.mean(axis=0)
    return float(np.sqrt((c**2).sum(axis=1).mean()))


def neighbour_pairs(atoms, cutoff: float) -> int:
    """Number of ordered neighbour pairs (i, j, image) within ``cutoff`` Å."""
    from ase.neighborlist import neighbor_list

    return int(len(neighbor_list("i", atoms, cutoff)))


class RunawayGuard:
    """Bounds of one item (a crystal, a scan point's molecule, a water box) from its start."""

    def __init__(self, start, cutoff: float | None = None, volume_factor: float = VOLUME_FACTOR,
                 gyration_factor: float = GYRATION_FACTOR,
                 neighbour_factor: float = NEIGHBOUR_FACTOR) -> None:
        self.cutoff = float(cutoff or DEFAULT_CUTOFF)
        self.volume_factor = volume_factor
        self.gyration_factor = gyration_factor
        self.neighbour_factor = neighbour_factor
        self.periodic = bool(np.asarray(start.pbc).any())
        if self.periodic:
            self.v0 = abs(float(np.linalg.det(start.cell[:])))
            self.h0 = _heights(start.cell[:])
        else:
            # a diatomic's Rg is half its bond; a floor keeps tiny molecules from tripping
            self.rg0 = max(_gyration(start.positions), 0.5)
        self.pairs0 = neighbour_pairs(start, self.cutoff)
        # a start with few neighbours (a sparse box) still allows this many pairs per atom
        self.max_pairs = self.neighbour_factor * max(self.pairs0, 4 * len(start))

    def reason(self, atoms) -> str | None:
        """Why ``atoms`` ran away from the start, or None when it is within bounds."""
        pos = atoms.positions
        if not np.isfinite(pos).all():
            return "non-finite positions"
        if self.periodic:
            cell = atoms.cell[:]
            if not np.isfinite(cell).all():
                return "non-finite cell"
            v = abs(float(np.linalg.det(cell)))
            f = self.volume_factor
            if not (self.v0 / f <= v <= f * self.v0):
                return (f"cell volume {v:.4g} Å³ is {v / self.v0:.3g}× the start's "
                        f"{self.v0:.4g} Å³ (allowed {1 / f:.3g}–{f:g}×)")
            h = _heights(cell)
            if (h < self.h0 / f).any():
                return (f"a cell height shrank to {h.min():.3g} Å from {self.h0.min():.3g} Å "
                        f"(below 1/{f:g} of the start)")
        else:
            rg = _gyration(pos)
            g = self.gyration_factor
            if not (self.rg0 / g <= rg <= g * self.rg0):
                return (f"radius of gyration {rg:.3g} Å is {rg / self.rg0:.3g}× the start's "
                        f"{self.rg0:.3g} Å (allowed {1 / g:.3g}–{g:g}×)")
        pairs = neighbour_pairs(atoms, self.cutoff)
        if pairs > self.max_pairs:
            return (f"{pairs} neighbour pairs within {self.cutoff:g} Å, more than "
                    f"{self.neighbour_factor:g}× the start's {self.pairs0}")
        return None

    def check(self, atoms) -> None:
        why = self.reason(atoms)
        if why is not None:
            raise Runaway(why)


class ForceCounter:
    """Force calls (one per structure evaluated) of one benchmark, against an optional cap."""

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self.calls = 0

    def take(self, n: int = 1) -> None:
        if self.cap is not None and self.calls + n > self.cap:
            raise ForceCallCapReached(f"force-call cap {self.cap} reached")
        self.calls += n


class GuardedCalculator(Calculator):
    """Wraps an ASE calculator: every new geometry is checked by ``guard`` (and counted by
    ``counter``) before the wrapped calculator sees it."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, calc, guard: RunawayGuard | None = None,
                 counter: ForceCounter | None = None) -> None:
        super().__init__()
        self.inner, self.guard, self.counter = calc, guard, counter

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.guard is not None:
            self.guard.check(self.atoms)
        if self.counter is not None:
            self.counter.take(1)
        a = self.atoms.copy()
        a.calc = self.inner
        results = {p: self.inner.get_property(p, a) for p in properties}
        for p in ("energy", "free_energy", "forces", "stress"):
            if p not in results and p in getattr(self.inner, "results", {}):
                results[p] = self.inner.results[p]
        self.results = results


# ----------------------------------------------------------------------------- threads
def available_cores() -> int:
    """CPU cores this process may use: its affinity mask, limited by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(float(quota) / float(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def torch_threads(threads: int | None = None) -> tuple[int, str]:
    """Set torch's intra-op threads; returns (threads, where the number came from).

    Order: ``threads``, ``$TEALIGN_THREADS``, ``$OMP_NUM_THREADS``, the available cores
    (:func:`available_cores`; torch's own default counts every core of the machine, also
    those another process or a container quota holds, and oversubscribes them).
    """
    import torch

    if threads is not None:
        n, src = int(threads), "--threads"
    elif os.environ.get("TEALIGN_THREADS"):
        n, src = int(os.environ["TEALIGN_THREADS"]), "TEALIGN_THREADS"
    elif os.environ.get("OMP_NUM_THREADS"):
        n, src = int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    else:
        n, src = available_cores(), "available cores"
    n = max(1, n)
    torch.set_num_threads(n)
    # only allowed before torch's first parallel region; one inter-op thread is enough
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return n, src
