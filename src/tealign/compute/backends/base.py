"""What every compute backend is: a :class:`Backend` entry (its settings and defaults, the
optional extra that installs it, its SPEC checks and its ``run``), the :class:`CalculationResult`
it returns and the :class:`CalculationFailed` it raises. Energies eV, forces eV/Å, stress eV/Å³
(ASE sign), lengths Å."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tealign.deprecation import renamed

if TYPE_CHECKING:
    from ase import Atoms


class Spec(Protocol):
    """What a backend reads of a parsed SPEC (:class:`tealign.compute.spec.MethodSpec`, which
    is built from the backends' entries and so is not imported here)."""

    label: str
    code: str
    functional: str
    basis: str
    d3: str | None
    settings: dict


class CalculationFailed(RuntimeError):
    """An SCF that did not converge or a backend error, with the reason."""


@dataclass
class CalculationResult:
    """One calculation: energy (eV), forces (eV/Å), stress (eV/Å³), the separate D3(BJ) term
    where the SPEC asks for one, and backend notes (``info``)."""

    energy: float
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    d3_energy: float | None = None
    d3_forces: np.ndarray | None = None
    d3_stress: np.ndarray | None = None
    info: dict = field(default_factory=dict)


#: ``Result``: the former name of :class:`CalculationResult` (deprecated; ``tealign.api.Result``
#: is a verb's result, this one calculation's).
__getattr__ = renamed(__name__, {"Result": "CalculationResult"})


#: ``run(spec, atoms, charge, multiplicity, forces, isolated_atom, kpts) -> Result``: the
#: calculation without any D3(BJ) term (:func:`tealign.compute.backends.run_calculation` adds
#: that); ``forces`` is False for isolated atoms; ``kpts`` is a fixed mesh of a periodic cell
#: or None. Raises :class:`CalculationFailed` with the reason when the SCF fails.
RunFn = Callable[[Spec, "Atoms", int, "int | None", bool, bool,
                  "tuple[int, int, int] | None"], CalculationResult]


@dataclass(frozen=True)
class Backend:
    """One compute backend: the code a SPEC names (``code:functional/basis;key=value``)."""

    name: str             #: the SPEC's code, e.g. ``pyscf``
    title: str            #: how help texts name it, e.g. ``PySCF``
    defaults: dict        #: every energy-changing setting with its default (lengths Å, eV)
    extra: str            #: the optional extra that installs it: ``pip install 'tealign[extra]'``
    modules: tuple[str, ...]  #: import names of the packages that extra installs
    core: str             #: core treatment recorded in the method's provenance
    run: RunFn            #: the calculation (see :data:`RunFn`)
    #: checks the functional and basis of a SPEC (SetupError, field ``--method``) and adds
    #: settings derived from them (GPAW: ``ecut`` from ``pwNNN``)
    check: Callable[[str, str, dict], None] | None = None
    #: settings that enter a SPEC (and its store key) only when set away from their default,
    #: the first value of each tuple (the allowed values)
    optional: dict[str, tuple] = field(default_factory=dict)
    #: settings accepted without a default (free text, absent unless given)
    free: tuple[str, ...] = ()
    #: settings that act on periodic cells only (left out of molecules' store keys)
    periodic_only: frozenset[str] = frozenset()
    own_dispersion: bool = False  #: has its own dispersion: ``-d3bj`` is refused
    #: periodic cells take one fixed k-point mesh per crystal (``run``'s ``kpts``), chosen at
    #: the backend's ``kpt_density`` setting (k-points per Å⁻¹)
    kpoint_mesh: bool = False
    #: the SPEC the benchmarks compute with when ``--calculator`` names this backend (None:
    #: not offered as a benchmark calculator)
    bench_spec: str | None = None
    example: str = ""     #: an example SPEC for error messages
    #: reads a preset SPEC ``code:PRESET[;key=value...]`` instead of ``functional/basis``:
    #: ``parse(code, rest, options) -> (functional, basis, d3, settings)`` (the external codes)
    parse: Callable[[str, str, list[str]], tuple[str, str, str | None, dict]] | None = None
    #: runs outside tealign's process (VASP, ORCA, Psi4): ``run`` gets ``forces`` as asked
    #: and returns the D3(BJ) term itself; ``tealign compute export`` writes its jobs
    external: bool = False


def option_value(text: str):
    """A SPEC option's value: ``true/yes/on`` and ``false/no/off`` as booleans, then an int, a
    float, or the text itself."""
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def key_values(options: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of each non-empty ``key=value`` option of a SPEC (stripped), in turn;
    SetupError (field ``--method``) at the first that has no ``=``."""
    from tealign.errors import SetupError

    for opt in options:
        if not opt.strip():
            continue
        if "=" not in opt:
            raise SetupError(f"option {opt!r} is not key=value", field="--method")
        k, v = opt.split("=", 1)
        yield k.strip(), v.strip()


def default_multiplicity(atoms: Atoms, charge: int) -> int:
    """The lowest allowed multiplicity 2S+1 (1 or 2) of ``atoms`` at ``charge``."""
    return 1 + (int(atoms.numbers.sum()) - charge) % 2


def place_in_box(work: Atoms, vacuum: float, isolated_atom: bool) -> None:
    """Put a molecule (in place) in a periodic box for a plane-wave code: ``vacuum`` Å on each
    side, or for a single atom a box of 2·vacuum + (0, 0.1, 0.2) Å with the atom at its
    centre (the slight anisotropy breaks the spherical symmetry that stalls open shells).
    ``pbc`` becomes True: plane waves need periodic images, the vacuum separates them."""
    if isolated_atom:
        v = float(vacuum)
        work.cell = [2 * v, 2 * v + 0.1, 2 * v + 0.2]
        work.positions = work.cell.lengths() / 2
    else:
        work.center(vacuum=float(vacuum))
    work.pbc = True
