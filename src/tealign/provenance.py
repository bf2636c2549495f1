"""Provenance guards: is an isolated-atom table of the same level of theory as the data?

TEA subtracts isolated-atom energies computed with the *same* method as the molecular
energies; a table of another basis, functional or code family shifts every atomization energy
and the fit silently absorbs the error into ``a``. This module keeps one small record of the
level behind an energy (:class:`Level`: functional, basis, code, whether D3 is included),
fills it from what each format says, and compares it with a table's:

* data: the per-frame ``method_<energy_key>`` that ``tealign compute`` writes (its SPEC), else
  the sibling ``<stem>.atoms_<label>.json`` of a compute output for ``energy_<label>``, else the
  readers' ``method`` (SPICE: ωB97M-D3(BJ)/def2-TZVPPD Psi4, D3 included; MPtrj: VASP PBE(+U)),
  which describes the reader's ``energy`` key;
* tables: their ``settings.spec`` (computed by tealign) or their ``method`` and ``code`` texts.

Levels compare by a normalised string ``functional/basis@family``. All-electron Gaussian-basis
codes (PySCF, Psi4, Gaussian, ORCA, ...) form one family: they give the same absolute atom
energies for one functional and basis. Plane-wave PAW codes do not (GPAW's and VASP's
setups differ by whole eV per atom), so ``gpaw`` and ``vasp`` are families of their own. A
basis is compared when both sides name one.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from tealign.errors import SetupError

#: codes that share absolute all-electron Gaussian-basis energies
GTO_CODES = frozenset({"pyscf", "gpu4pyscf", "psi4", "gaussian", "orca", "qchem", "q-chem",
                       "turbomole", "nwchem", "molpro", "terachem", "cfour"})
#: the override option that each command accepts
OVERRIDE = "--allow-method-mismatch"

_DISP = re.compile(r"[-+_]?(d3\(?bj\)?|d3zero|d3|d4|nl|vv10)$")


def _registry_gto_codes() -> frozenset[str]:
    """The codes of the backend registry (:func:`tealign.compute.backends.registry`) with
    all-electron Gaussian-basis energies: their entry's ``core`` is ``all-electron``."""
    from tealign.compute.backends import registry

    return frozenset(name for name, b in registry().items() if b.core == "all-electron")


@dataclass(frozen=True)
class Level:
    """The level of theory behind one energy key or one isolated-atom table.

    ``functional`` and ``basis`` are lower case (basis ``None`` where unknown or a plane-wave
    setting that the code family already fixes); ``code`` is the program, lower case;
    ``d3_included``: True when the stored energy includes D3(BJ), False when it is known to
    be dispersion-free, None when unknown.
    """

    functional: str | None
    basis: str | None = None
    code: str | None = None
    d3_included: bool | None = None

    @property
    def family(self) -> str | None:
        """``gto`` for all-electron Gaussian-basis codes (:data:`GTO_CODES`, and the codes of
        tealign's backend registry whose entry says ``all-electron``), else the code itself."""
        if self.code is None:
            return None
        return "gto" if self.code in GTO_CODES or self.code in _registry_gto_codes() \
            else self.code

    def normalised(self) -> str:
        """``functional/basis@family`` with ``?`` for what is unknown."""
        return f"{self.functional or '?'}/{self.basis or '?'}@{self.family or '?'}"

    def describe(self) -> str:
        """Human form: ``wb97m/def2-svp (pyscf)``."""
        text = self.functional or "unknown functional"
        if self.basis:
            text += f"/{self.basis}"
        return text + (f" ({self.code})" if self.code else "")

    def mismatch(self, other: Level) -> str | None:
        """Why the two levels give different absolute energies, or None when compatible
        (unknown parts are not held against them)."""
        if self.functional and other.functional and self.functional != other.functional:
            return "different functional"
        if self.basis and other.basis and self.basis != other.basis:
            return "different basis"
        if self.family and other.family and self.family != other.family:
            return "different code family (absolute atom energies differ)"
        return None


def _functional(text: str) -> tuple[str, bool]:
    """Lower-case functional without its dispersion suffix, and whether it had one."""
    f = text.strip().lower()
    m = _DISP.search(f)
    if m and m.start() > 0:
        return f[: m.start()], True
    return f, False


def _basis(text: str | None) -> str | None:
    if not text:
        return None
    b = text.strip().lower()
    return None if b in ("", "paw", "pw", "?") else b


def _code(text: str | None) -> str | None:
    if not text:
        return None
    m = re.match(r"\s*([A-Za-z][A-Za-z0-9\-]*)", str(text))
    return m.group(1).lower() if m else None


def level_from_spec(spec: str) -> Level:
    """Level of a tealign SPEC: ``code:functional[-d3bj]/basis[;key=value...]``."""
    code, _, rest = spec.partition(":")
    rest = rest.split(";")[0]
    functional, _, basis = rest.partition("/")
    f, _ = _functional(functional)
    return Level(f, _basis(basis), code.strip().lower() or None, None)


def _strip_groups(text: str) -> tuple[str, list[str]]:
    """``text`` without its parenthesised remarks (a ``(`` after a space, balanced), and the
    remarks. ``(BJ)``, ``(d)``, ``(2df,p)`` (no space before) stay part of the name."""
    out: list[str] = []
    groups: list[str] = []
    cur: list[str] = []
    depth = 0
    for i, ch in enumerate(text):
        if depth == 0 and ch == "(" and i > 0 and text[i - 1] == " ":
            depth, cur = 1, []
        elif depth:
            depth += (ch == "(") - (ch == ")")
            if depth:
                cur.append(ch)
            else:
                groups.append("".join(cur))
        else:
            out.append(ch)
    return "".join(out).strip(), groups


def level_from_text(method: str, code: str | None = None) -> Level | None:
    """Level of a free-text method (``"wB97M-D3(BJ)/def2-TZVPPD (psi4); ..."``,
    ``"pbe/paw (vasp, ...)"``, ``"B3LYP/6-31G(2df,p)"``) or a SPEC, and a code text; None
    when empty. Without ``code``, the first word of the method's first remark names it."""
    if not method or not str(method).strip():
        return None
    text = str(method).strip()
    if re.match(r"^[a-z0-9]+:", text):  # a SPEC
        return level_from_spec(text)
    head, remarks = _strip_groups(text)
    head = head.split(";")[0].strip()
    functional, _, basis = head.partition("/")
    f, _ = _functional(functional)
    c = _code(code) or (_code(remarks[0]) if remarks else None)
    return Level(f or None, _basis(basis), c, None)


def table_level(table) -> Level | None:
    """Level of an :class:`~tealign.methods.IsolatedAtomTable` from its provenance, or None."""
    prov = getattr(table, "provenance", {}) or {}
    settings = prov.get("settings")
    if isinstance(settings, dict) and isinstance(settings.get("spec"), str):
        return level_from_spec(settings["spec"])
    if isinstance(prov.get("method"), str):
        return level_from_text(prov["method"], prov.get("code"))
    return None


def _first_str(batch, key: str) -> str | None:
    if key not in batch.info:
        return None
    has = batch.has(key)
    for v, h in zip(batch.info[key], has):
        if h and str(v).strip():
            return str(v)
    return None


def _flag(batch, key: str) -> bool | None:
    text = _first_str(batch, key)
    if text is None:
        return None
    return text.strip().lower() in ("true", "t", "1")


def data_level(batch, energy_key: str, path: str | None = None) -> Level | None:
    """The recorded level of ``energy_key`` in a batch read from ``path`` (None if nothing
    records it). Reads the per-frame records first, then a compute output's sibling table."""
    d3 = _flag(batch, f"d3_in_{energy_key}") if energy_key.startswith("energy_") else None
    spec = _first_str(batch, f"method_{energy_key}")
    if spec:
        lv = level_from_text(spec)
        return Level(lv.functional, lv.basis, lv.code, d3)
    if path and energy_key.startswith("energy_"):
        p = Path(path)
        stem = p.name.split(".")[0]
        side = p.with_name(f"{stem}.atoms_{energy_key.removeprefix('energy_')}.json")
        if side.is_file():
            try:
                d = json.loads(side.read_text())
                spec = d.get("settings", {}).get("spec")
            except (OSError, ValueError, AttributeError):
                spec = None
            if isinstance(spec, str):
                lv = level_from_spec(spec)
                return Level(lv.functional, lv.basis, lv.code, d3)
    if energy_key == "energy":  # the readers' own key: SPICE, MPtrj record their level
        method = _first_str(batch, "method")
        if method:
            lv = level_from_text(method)
            disp = (_first_str(batch, "dispersion") or "").lower()
            inc = True if "included" in disp or "includes d3" in method.lower() else None
            return Level(lv.functional, lv.basis, lv.code, inc)
    if d3 is not None:
        return Level(None, None, None, d3)
    return None


def check_table(table, role: str, level: Level | None, energy_key: str, file: str | None,
                allow: bool, override: str = OVERRIDE) -> None:
    """Refuse (:class:`SetupError`, exit 2) a table whose level differs from the data's.

    ``role`` names the table's option (``--source-e0``, ``alignment source table``...).
    Data without a recorded level get one warning; ``allow`` turns a refusal into a warning.
    """
    if level is None or level.functional is None:
        warnings.warn(f"{file}: {energy_key} records no method: cannot check that {role} "
                      f"'{table.name}' is of the same level of theory (tealign compute "
                      f"outputs record it as method_{energy_key}); proceeding", stacklevel=2)
        return
    tl = table_level(table)
    if tl is None:
        warnings.warn(f"{role} '{table.name}' records no method: cannot check it against "
                      f"{energy_key} ({level.describe()}); proceeding", stacklevel=2)
        return
    why = level.mismatch(tl)
    if why is None:
        return
    line = (f"{role} '{table.name}' is {tl.describe()} but {energy_key} is "
            f"{level.describe()} ({why})")
    if allow:
        warnings.warn(f"{file}: {line}; used anyway ({override})", stacklevel=2)
        return
    raise SetupError(f"{line}: isolated atoms must be computed with the data's method; pass "
                     f"{override} to use it anyway", file=file, field=energy_key)


def check_d3(level: Level | None, energy_key: str, file: str | None, removed: bool,
             how: str = "--remove-d3 FUNCTIONAL") -> None:
    """Refuse (exit 2) to align energies that the data flag as including D3(BJ) unless it is
    removed (TEA aligns dispersion-free DFT energies, docs/architecture.md §1.2)."""
    if level is not None and level.d3_included and not removed:
        raise SetupError(f"{energy_key} includes D3(BJ) (as the data record it): remove it "
                         f"with {how} before aligning (TEA aligns dispersion-free DFT "
                         "energies)", file=file, field=energy_key)


def peek(path: str, fmt: str | None = None):
    """The first batch of ``path`` that has frames (at most 64, read lazily; the reader is
    closed at once), or None."""
    from tealign.io import iter_batches

    batches = iter_batches(path, fmt, batch_size=64)
    try:
        for batch in batches:
            if batch.n_frames:
                return batch
        return None
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


#: The measured error of neutral-atom TEA on ions (datasets/charged-ions/charged.json, issue 28
#: item 6): 15 closed-shell H C N O F ions (charge ±1, 2-7 atoms), ωB97M/def2-TZVPPD →
#: PBE/def2-QZVPP (PySCF), a fitted on 44 neutral molecules. RMSE per molecule and per atom,
#: against the leave-one-out RMSE of the 10 neutrals of the same size. A test keeps these
#: equal to the JSON.
CHARGED_CHECK = {"n_ions": 15, "rmse_eV_per_molecule": 0.548, "rmse_eV_per_atom": 0.1803,
                 "neutral_heldout_rmse_eV": 0.4829,
                 "neutral_heldout_rmse_eV_per_atom": 0.0587, "policy": "reject"}


def charged_error_note() -> str:
    """One phrase stating the measured error of aligning ions with neutral-atom tables."""
    c = CHARGED_CHECK
    return (f"measured on {c['n_ions']} small H C N O F ions, RMSE {c['rmse_eV_per_molecule']:g}"
            f" eV per molecule, {c['rmse_eV_per_atom']:g} eV/atom, against "
            f"{c['neutral_heldout_rmse_eV_per_atom']:g} eV/atom for neutrals of that size")
