"""Calculators by name for the benchmarks, all from here: a MACE model file, a compute
backend that offers itself to the benchmarks (``xtb``: GFN2-xTB through tealign's tblite
backend, CODATA 2018 units; :func:`tealign.compute.backends.bench_specs`), a calculator of
:data:`NAMED` (``chgnet``: its wheel's MPtrj weights), or any ASE calculator from Python;
``d3`` adds D3(BJ) for a functional through ``dftd3``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ase.calculators.calculator import Calculator, all_changes

from tealign.errors import SetupError


class BackendCalculator(Calculator):
    """ASE calculator over a tealign compute backend (energy, forces, stress)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, spec: str, **kwargs) -> None:
        from tealign.compute.spec import parse_spec

        super().__init__(**kwargs)
        self.spec = parse_spec(spec)

    def check_state(self, atoms, tol=1e-15):
        """ASE's changes, plus the charge (``atoms.info["charge"]``) the backend computes at."""
        changes = list(super().check_state(atoms, tol))
        if self.atoms is not None and "charge" not in changes and \
                atoms.info.get("charge", 0) != self.atoms.info.get("charge", 0):
            changes.append("charge")
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from tealign.compute.backends import run_calculation

        super().calculate(atoms, properties, system_changes)
        # forces (and the stress that comes with them) only when asked: an energy is one SCF
        want = any(p in properties for p in ("forces", "stress"))
        r = run_calculation(self.spec, self.atoms, charge=int(self.atoms.info.get("charge", 0)),
                            forces=want)
        self.results = {"energy": r.energy, "free_energy": r.energy}
        if r.forces is not None:
            self.results["forces"] = r.forces
        if r.stress is not None:
            s = r.stress
            self.results["stress"] = s.flat[[0, 4, 8, 5, 2, 1]]


class D3Calculator(Calculator):
    """D3(BJ) of a functional through ``tealign.dispersion`` (eV, eV/Å, eV/Å³)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, functional: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.functional = functional

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from tealign.dispersion import d3_bj

        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        r = d3_bj(a.numbers, a.positions, a.cell[:], a.pbc, self.functional)
        self.results = {"energy": r.energy, "free_energy": r.energy, "forces": r.forces}
        if r.stress is not None:
            self.results["stress"] = r.stress.flat[[0, 4, 8, 5, 2, 1]]


@dataclass(frozen=True)
class Named:
    """A calculator the benchmarks know by name (not a compute backend)."""

    build: Callable[[str], Calculator]  #: the calculator on ``device`` ("cpu", "cuda")
    needs_cell: bool = False  #: periodic structures only: molecules go into a box


def _chgnet(device: str) -> Calculator:
    try:
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError:
        raise SetupError("chgnet is not installed: pip install chgnet",
                         field="--calculator") from None
    return CHGNetCalculator(use_device=device)


#: calculators by name besides MACE model files and the compute backends' (``xtb``)
NAMED: dict[str, Named] = {"chgnet": Named(_chgnet, needs_cell=True)}


def names() -> list[str]:
    """Every calculator name ``--calculator`` takes besides a model file."""
    from tealign.compute.backends import bench_specs

    return [*bench_specs(), *NAMED]


def needs_cell(name) -> bool:
    """Whether the named calculator works on periodic structures only (CHGNet)."""
    return isinstance(name, str) and name in NAMED and NAMED[name].needs_cell


def own_dispersion(name) -> bool:
    """Whether the named calculator is a method with its own dispersion (xTB): no D3 on top."""
    from tealign.compute.backends import BACKENDS, bench_specs

    return isinstance(name, str) and name in bench_specs() and BACKENDS[name].own_dispersion


def get_calculator(name: str, d3: str | None = None, device: str = "cpu"):
    """Build the calculator named on the command line (with D3(BJ) added if asked).

    ``name`` may also be any ASE calculator object (used as it is).
    """
    from tealign.compute.backends import bench_specs

    if not isinstance(name, (str, Path)):
        calc = name
    elif name in bench_specs():
        calc = BackendCalculator(bench_specs()[name])
    elif name in NAMED:
        calc = NAMED[name].build(device)
    else:
        p = Path(name)
        if not p.exists():
            raise SetupError(f"not a calculator name ({', '.join(names())}) nor a model file",
                             file=name, field="--calculator")
        from tealign._mace import calculator

        calc = calculator(p, device=device, default_dtype="float64")
    if d3 and d3 != "none":
        from ase.calculators.mixing import SumCalculator

        calc = SumCalculator([calc, D3Calculator(d3)])
    return calc


def model_r_max(name: str) -> float | None:
    """r_max (Å) of a MACE model file, None for other calculators."""
    if not isinstance(name, (str, Path)):
        return None
    p = Path(name)
    if not p.exists():
        return None
    from tealign._mace import load_model

    model = load_model(p)
    return float(model.r_max) if hasattr(model, "r_max") else None


def model_elements(name) -> set[int] | None:
    """Atomic numbers a MACE model file was trained on; None for other calculators."""
    if not isinstance(name, (str, Path)) or not Path(name).exists():
        return None
    from tealign.evaluate import load_model

    return {int(z) for z in load_model(name).atomic_numbers}
