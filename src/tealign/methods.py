"""Levels of theory and their isolated-atom energy tables.

A :class:`Method` names everything that changes a total energy: functional, code, basis or
plane-wave cutoff, core treatment (all-electron / PAW / ECP), dispersion, and the numerical
settings (vacuum, smearing, k-point density, grids). An :class:`IsolatedAtomTable` holds the
energies of neutral, spin-polarised isolated atoms at one such method, in eV, with the
provenance of where they came from (docs/architecture.md §4.4).

Built-in tables (published figures, with their citations inside each JSON file):
``vasp-pbe-mp``, ``wb97m-d3bj-def2-tzvppd``, ``wb97x-6-31gd``, ``b3lyp-6-31g2dfp``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from tealign import units
from tealign.errors import SetupError

#: Elements whose isolated-atom energy is sensitive to spin state and smearing (3d-5d metals
#: and lanthanides): public tables disagree by 0.1-0.4 eV for them (docs/architecture.md §7.4).
TRANSITION_METALS = frozenset(
    chemical_symbols[z] for z in [*range(21, 31), *range(39, 49), *range(57, 81)]
)

CORE_TREATMENTS = ("all-electron", "paw", "ecp", "unknown")


@dataclass(frozen=True)
class Method:
    """A level of theory and every setting that changes its total energies.

    Parameters
    ----------
    functional : exchange-correlation functional or wavefunction method, e.g. ``"pbe"``.
    code : program, e.g. ``"gpaw"``, ``"pyscf"``, ``"vasp"``, ``"psi4"``, ``"xtb"``.
    basis : Gaussian basis set or plane-wave cutoff, e.g. ``"def2-svp"``, ``"pw800"``.
    core : ``"all-electron"``, ``"paw"``, ``"ecp"`` or ``"unknown"``.
    dispersion : dispersion included in the stored energies (``"none"``, ``"d3bj"``...).
    settings : every other setting that changes the energy, defaults written out
        (e.g. ``{"vacuum": 5.0, "smearing": 0.1}``; lengths in Å, energies in eV).
    """

    functional: str
    code: str = "unknown"
    basis: str = ""
    core: str = "unknown"
    dispersion: str = "none"
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.core not in CORE_TREATMENTS:
            raise ValueError(f"core must be one of {CORE_TREATMENTS}, not {self.core!r}")

    @classmethod
    def from_dict(cls, d: dict) -> Method:
        return cls(**{k: d[k] for k in ("functional", "code", "basis", "core", "dispersion",
                                         "settings") if k in d})


@dataclass
class IsolatedAtomTable:
    """Energies of neutral isolated atoms at one method, in eV.

    ``energies`` maps element symbol → eV. ``provenance`` keeps every other key of the
    JSON (method, code, spin, source, citation, original units, conversion constant).
    """

    name: str
    energies: dict[str, float]
    provenance: dict = field(default_factory=dict)
    charged: dict = field(default_factory=dict)

    @property
    def method_description(self) -> str:
        """Code and method of the table as its provenance records them (``"gpaw pbe/pw800"``),
        or its name when the provenance does not say."""
        parts = [str(self.provenance[k]) for k in ("code", "method") if self.provenance.get(k)]
        return " ".join(parts) if parts else self.name

    # -- lookup ---------------------------------------------------------------------------
    def energy(self, symbol: str) -> float:
        """Isolated-atom energy of ``symbol`` in eV; :class:`SetupError` if the table lacks it."""
        try:
            return self.energies[symbol]
        except KeyError:
            raise SetupError(
                f"isolated-atom table '{self.name}' has no energy for element {symbol}; "
                f"it covers {', '.join(sorted(self.energies, key=_z))}. Compute it with "
                "`tealign compute atoms` or pass a table that has it",
                field=f"e0[{symbol}]",
            ) from None

    def by_number(self, zmax: int = 119) -> np.ndarray:
        """Lookup array: ``E[z]`` in eV, NaN where the table has no entry."""
        out = np.full(zmax, np.nan)
        for sym, e in self.energies.items():
            out[atomic_numbers[sym]] = e
        return out

    def check_covers(self, numbers, file: str | None = None) -> None:
        """Raise :class:`SetupError` unless every atomic number in ``numbers`` is covered."""
        present = np.unique(np.asarray(numbers, dtype=int))
        for z in present:
            sym = chemical_symbols[int(z)]
            if sym not in self.energies:
                err = SetupError(
                    f"element {sym} occurs in the data but isolated-atom table "
                    f"'{self.name}' has no energy for it; compute it with `tealign compute "
                    "atoms` or pass a table that covers it",
                    file=file,
                    field=f"e0[{sym}]",
                )
                raise err

    def warn_unknown_settings(self, numbers) -> list[str]:
        """Warn (and return the symbols) for transition metals from a table of unknown settings."""
        if self.provenance.get("settings_known", True):
            return []
        present = {chemical_symbols[int(z)] for z in np.unique(numbers)}
        risky = sorted(present & TRANSITION_METALS, key=_z)
        if risky:
            warnings.warn(
                f"isolated-atom table '{self.name}' has unknown spin/smearing settings; its "
                f"energies for {', '.join(risky)} may be off by 0.1-0.4 eV "
                "(docs/architecture.md §7.4)",
                stacklevel=2,
            )
        return risky

    # -- (de)serialisation ----------------------------------------------------------------
    def to_json_dict(self) -> dict:
        """The isolated-atom table JSON object (docs/architecture.md §4.4), energies in eV."""
        d = {"name": self.name, "units": "eV", "energies": dict(self.energies)}
        if self.charged:
            d["charged"] = self.charged
        for k, v in self.provenance.items():
            if k not in d:
                d[k] = v
        d.setdefault("original_units", "eV")
        d["hartree_to_eV"] = units.HARTREE_TO_EV
        return d

    def save(self, path: str | Path) -> Path:
        """Write the table's JSON atomically; returns the path."""
        from tealign.io.outputs import write_json

        write_json(path, self.to_json_dict())
        return Path(path)

    @classmethod
    def from_json_dict(cls, d: dict, source: str = "<dict>") -> IsolatedAtomTable:
        """Build a table from an isolated-atom table JSON object (docs/architecture.md §4.4);
        energies are converted to eV."""
        for key in ("units", "energies"):
            if key not in d:
                raise SetupError(
                    "isolated-atom table lacks required key; it needs 'units' and 'energies'",
                    file=source,
                    field=key,
                )
        try:
            factor = units.energy_factor(str(d["units"]))
        except ValueError as exc:
            raise SetupError(str(exc), file=source, field="units") from None
        if not isinstance(d["energies"], dict) or not d["energies"]:
            raise SetupError("'energies' must map element symbols to numbers", file=source,
                             field="energies")
        energies = {}
        for sym, value in d["energies"].items():
            if sym not in atomic_numbers or sym == "X":
                raise SetupError(f"unknown element symbol {sym!r}", file=source,
                                 field=f"energies.{sym}")
            energies[sym] = _plausible_atom_energy(value, factor, sym, source,
                                                   f"energies.{sym}")
        charged = {}
        for sym, states in d.get("charged", {}).items():
            charged[sym] = {q: _plausible_atom_energy(e, factor, sym, source,
                                                      f"charged.{sym}.{q}")
                            for q, e in states.items()}
        provenance = {k: v for k, v in d.items() if k not in ("energies", "charged", "name")}
        provenance.setdefault("original_units", d["units"])
        provenance.pop("units", None)
        name = str(d.get("name") or Path(source).stem)
        return cls(name=name, energies=energies, provenance=provenance, charged=charged)


#: eV above which no isolated-atom energy lies: valence-only (PAW) energies are near zero
#: (Materials Project's largest is +0.001 eV), all-electron ones far below
ATOM_ENERGY_MAX_EV = 10.0


def atom_energy_min_ev(symbol: str) -> float:
    """eV below which no isolated neutral atom's total energy lies: twice the Thomas–Fermi
    energy −0.7687·Z^(7/3) Ha (Lieb and Simon, Adv. Math. 23, 22 (1977)). Published tables
    reach 0.84 of it (ωB97M/def2-TZVPPD Br); relativistic heavy atoms stay within 2."""
    return -2.0 * 0.7687 * atomic_numbers[symbol] ** (7 / 3) * units.HARTREE_TO_EV


def _plausible_atom_energy(value, factor: float, sym: str, source: str, field: str) -> float:
    """``value`` (in the table's units) as eV, or a :class:`SetupError` naming the field when
    it is not a finite number within [atom_energy_min_ev, ATOM_ENERGY_MAX_EV]."""
    if isinstance(value, bool):
        raise SetupError(f"energy {value!r} is not a number", file=source, field=field)
    try:
        v = float(value) * factor
    except (TypeError, ValueError):
        raise SetupError(f"energy {value!r} is not a number", file=source, field=field) from None
    except OverflowError:
        raise SetupError("energy is too large to be a number", file=source,
                         field=field) from None
    if not np.isfinite(v):
        raise SetupError("energy is NaN or inf", file=source, field=field)
    lo = atom_energy_min_ev(sym)
    if not lo <= v <= ATOM_ENERGY_MAX_EV:
        raise SetupError(f"{v:.6g} eV is not a plausible isolated-atom energy of {sym} "
                         f"(between {lo:.4g} and {ATOM_ENERGY_MAX_EV:g} eV)", file=source,
                         field=field)
    return v


def _z(sym: str) -> int:
    return atomic_numbers.get(sym, 999)


def builtin_tables() -> list[str]:
    """Names of the isolated-atom tables that ship with tealign."""
    folder = resources.files("tealign") / "data" / "e0"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_table(name_or_path: str | Path) -> IsolatedAtomTable:
    """Load a built-in table by name, or an isolated-atom table JSON file
    (docs/architecture.md §4.4) by path.

    Raises :class:`SetupError` (one line, naming the file and field) for unknown names,
    unreadable files and malformed tables.
    """
    text = str(name_or_path)
    if text in builtin_tables():
        path = resources.files("tealign") / "data" / "e0" / f"{text}.json"
        return IsolatedAtomTable.from_json_dict(json.loads(path.read_text()), source=text)
    p = Path(text)
    if not p.exists():
        raise SetupError(
            f"no built-in isolated-atom table or file of that name; built-in tables: "
            f"{', '.join(builtin_tables())}",
            file=text,
        )
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read isolated-atom table: {exc}", file=text) from None
    except json.JSONDecodeError as exc:
        raise SetupError(f"not valid JSON (line {exc.lineno}: {exc.msg})", file=text) from None
    if not isinstance(d, dict):
        raise SetupError("an isolated-atom table must be a JSON object", file=text)
    return IsolatedAtomTable.from_json_dict(d, source=text)


def union_tables(tables: list[IsolatedAtomTable], tol_eV: float = 1e-6) -> IsolatedAtomTable:
    """One table from several computed at the same settings (e.g. the GPAW atoms of two
    datasets): every element of each; an element in two tables must agree within ``tol_eV``
    or they are not one target scale (:class:`SetupError`)."""
    energies: dict[str, float] = {}
    origin: dict[str, str] = {}
    for t in tables:
        for sym, e in t.energies.items():
            if sym in energies and abs(energies[sym] - e) > tol_eV:
                raise SetupError(
                    f"tables '{origin[sym]}' and '{t.name}' disagree for {sym} "
                    f"({energies[sym]:.6f} vs {e:.6f} eV): not one target scale "
                    "(docs/architecture.md §4.3)",
                    file=t.name, field=f"e0[{sym}]")
            energies.setdefault(sym, e)
            origin.setdefault(sym, t.name)
    name = " + ".join(t.name for t in tables)
    return IsolatedAtomTable(name=name, energies=dict(sorted(energies.items(),
                                                             key=lambda kv: _z(kv[0]))),
                             provenance={"union_of": [t.name for t in tables],
                                         **tables[0].provenance})
