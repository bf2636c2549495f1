"""Method SPEC strings (docs/architecture.md §4.2) parsed into complete, provenance-ready settings.

    [LABEL=]code:functional/basis-or-cutoff[;key=value...]

Examples: ``pyscf:wb97m-d3bj/def2-svp``, ``pyscf:b3lyp/6-31g(2df,p)``,
``gpaw:pbe/pw800;vacuum=5.0;smearing=0.1``, ``xtb:gfn2``, ``pbe=gpaw:pbe/pw800``.

A ``-d3bj`` suffix on the functional means the D3(BJ) term is computed separately (dftd3,
that functional's rational-damping parameters) and stored beside the DFT energy, never folded
in. Every setting that changes the energy is written out with its default, so two SPECs that
compute the same thing hash to the same store key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from tealign.errors import SetupError
from tealign.methods import Method

LABEL_RE = re.compile(r"^[a-z0-9_]+$")

#: Every energy-changing setting of each backend, with its default (lengths Å, energies eV).
DEFAULTS: dict[str, dict] = {
    "pyscf": {
        "density_fit": True,    # RI-J/K with PySCF's default auxiliary basis for the basis
        "grid_level": 3,        # PySCF's default DFT grid
        "conv_tol": 1e-10,      # Ha, SCF energy convergence
        "max_cycle": 200,
        "nlc": False,           # VV10 off, as SPICE/OFF23 (docs/architecture.md §7.5)
        "spin_restricted": "auto",  # RKS for closed shells, UKS otherwise
    },
    "gpaw": {
        "vacuum": 5.0,          # Å on each side of a molecule (ASE's center(vacuum=))
        "smearing": 0.1,        # eV, Fermi-Dirac width
        "kpt_density": 4.0,     # k-points per Å⁻¹ (ASE/GPAW 'density') for periodic cells
        "hund": True,           # spin-polarised Hund's-rule isolated atoms
        "energy_tol": 5e-6,     # eV per valence electron (GPAW 'energy' convergence)
        "density_tol": 1e-6,    # GPAW 'density' convergence
        "setups": "paw",
        # stress of periodic cells (tealign.compute.pulay): "formula" adds the Pulay term
        # (2/3)·E_cut·(∂E/∂E_cut)/V with ∂E/∂E_cut from two energy-only probes at
        # E_cut ± pulay_step eV, once per (formula, k-mesh); "fd" probes every frame; "none"
        # keeps GPAW's fixed-basis stress (60 GPa off for MgO at 400 eV)
        "pulay_stress": "formula",
        "pulay_step": 25.0,
    },
    "xtb": {
        "accuracy": 1.0,
        "electronic_temperature": 300.0,  # K
        "max_iterations": 250,
    },
}

#: PySCF settings that only enter a SPEC (and its store key) when set away from their default,
#: so the keys of SPECs written before they existed stay what they were. ``cartesian``: which
#: shells use Cartesian functions — "none" (PySCF's spherical default), "d" (Cartesian d, pure
#: f and higher: Gaussian's 6D 7F, its default for the 6-31G family) or "all" (6D 10F);
#: ``pople``: "pyscf" (PySCF's basis file) or "gaussian" (Gaussian's exponents for 6-31G
#: multiple d polarization, 2x and 1/2 x the 6-31G* d exponent; PySCF's file has 6-311G's
#: for C-F). Needed to reproduce Gaussian's B3LYP/6-31G(2df,p) (QM9) and wB97X/6-31G(d)
#: (ANI-1x) energies; see docs/published_references.md.
PYSCF_OPTIONAL: dict[str, tuple] = {
    "cartesian": ("none", "d", "all"),
    "pople": ("pyscf", "gaussian"),
}

CODES = tuple(DEFAULTS)
#: Settings that act on periodic cells only (left out of molecules' and atoms' store keys).
PERIODIC_ONLY = frozenset({"kpt_density", "pulay_stress", "pulay_step"})


@dataclass(frozen=True)
class MethodSpec:
    """A parsed SPEC: the backend, the level of theory and every setting, defaults included."""

    label: str
    code: str
    functional: str
    basis: str
    d3: str | None  # dftd3 method name when the SPEC asks for a separate D3(BJ) term
    settings: dict = field(default_factory=dict)
    spec: str = ""

    @property
    def method(self) -> Method:
        # def2 bases put an ECP on elements beyond Kr (I included); lighter ones are
        # all-electron
        from tealign.compute.external import CORE

        core = {"pyscf": "all-electron", "gpaw": "paw", "xtb": "unknown", **CORE}[self.code]
        return Method(functional=self.functional, code=self.code, basis=self.basis, core=core,
                      dispersion="none" if self.d3 is None else f"d3bj({self.d3}) stored apart",
                      settings=dict(self.settings))

    def settings_key(self, periodic: bool = True) -> str:
        """SHA-256 of everything that changes the energy (the store key's method part).

        For a non-periodic structure the settings that act only on periodic cells (k-points,
        the Pulay stress) are left out: a molecule or an isolated atom is the same calculation
        whatever they say, and stores share it.
        """
        settings = self.settings if periodic else {
            k: v for k, v in self.settings.items() if k not in PERIODIC_ONLY}
        payload = {"code": self.code, "functional": self.functional, "basis": self.basis,
                   "d3": self.d3, "settings": settings}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def provenance(self) -> dict:
        return {"label": self.label, "spec": self.spec, "code": self.code,
                "functional": self.functional, "basis": self.basis,
                "d3": self.d3 or "none", "settings": dict(sorted(self.settings.items())),
                "settings_sha256": self.settings_key()}


def default_label(spec: str) -> str:
    """The SPEC lowercased with each character outside [a-z0-9] replaced by ``_``."""
    return re.sub(r"[^a-z0-9]", "_", spec.lower())


def _value(text: str):
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


def parse_spec(text: str) -> MethodSpec:
    """Parse ``[LABEL=]code:functional/basis[;key=value...]``; SetupError on anything off."""
    raw = text.strip()
    label = None
    head = raw.split(";", 1)[0]
    if "=" in head and ":" in head and head.index("=") < head.index(":"):
        label, raw = raw.split("=", 1)
        label = label.strip()
        if not LABEL_RE.match(label):
            raise SetupError(f"label {label!r} must match [a-z0-9_]+", field="--method")
    parts = raw.split(";")
    main, options = parts[0].strip(), parts[1:]
    if ":" not in main:
        raise SetupError(f"method {text!r} is not code:functional/basis (e.g. "
                         "pyscf:wb97m-d3bj/def2-svp, gpaw:pbe/pw800, xtb:gfn2)",
                         field="--method")
    code, rest = main.split(":", 1)
    code = code.strip().lower()
    from tealign.compute.external import EXTERNAL_CODES, parse_external

    if code in EXTERNAL_CODES:  # code:PRESET (tealign.compute.external)
        functional, basis, d3, settings = parse_external(code, rest, options)
        return MethodSpec(label=label or default_label(raw), code=code, functional=functional,
                          basis=basis, d3=d3, settings=settings, spec=raw)
    if code not in DEFAULTS:
        raise SetupError(f"unknown code {code!r}; tealign computes with "
                         f"{', '.join(CODES + EXTERNAL_CODES)}", field="--method")
    functional, _, basis = rest.partition("/")
    functional, basis = functional.strip().lower(), basis.strip().lower()
    settings = dict(DEFAULTS[code])
    for opt in options:
        if not opt.strip():
            continue
        if "=" not in opt:
            raise SetupError(f"option {opt!r} is not key=value", field="--method")
        k, v = (s.strip() for s in opt.split("=", 1))
        optional = PYSCF_OPTIONAL if code == "pyscf" else {}
        if k not in settings and not (code == "pyscf" and k in ("auxbasis", "ecp")) \
                and k not in optional:
            known = sorted(DEFAULTS[code]) + sorted(optional)
            raise SetupError(f"unknown {code} setting {k!r}; known: "
                             f"{', '.join(known)}", field="--method")
        if k in optional:
            v = v.lower()
            if v not in optional[k]:
                raise SetupError(f"{code} setting {k} is one of {', '.join(optional[k])}, "
                                 f"not {v!r}", field="--method")
            if v == optional[k][0]:  # the default: absent, as in SPECs that never named it
                settings.pop(k, None)
                continue
        settings[k] = _value(v)
    d3 = None
    if functional.endswith("-d3bj"):
        functional = functional[: -len("-d3bj")]
        d3 = functional.replace("-v", "") if functional.endswith("-v") else functional
        if code == "xtb":
            raise SetupError("xtb has its own dispersion; drop -d3bj", field="--method")
    if code == "pyscf":
        if not basis:
            raise SetupError("pyscf needs a basis: pyscf:functional/basis", field="--method")
        if settings.get("pople") == "gaussian" and not re.fullmatch(
                r"6-31\+{0,2}g\(2df?(,(p|pd))?\)", basis):
            # only the heavy atoms' d pair is replaced: a basis with several p shells on H
            # (2pd, 3pd, ...) would keep PySCF's pair there, which is not checked against
            # Gaussian's
            raise SetupError("pople=gaussian applies to 6-31G bases with 2d polarization on "
                             "heavy atoms and one p on H (6-31g(2d), 6-31g(2df,p), "
                             f"6-31g(2df,pd)), not {basis!r}", field="--method")
    elif code == "gpaw":
        m = re.fullmatch(r"pw(\d+(?:\.\d+)?)", basis)
        if not m:
            raise SetupError("gpaw needs a plane-wave cutoff in eV: gpaw:pbe/pw800",
                             field="--method")
        settings["ecut"] = float(m.group(1))
        if settings["pulay_stress"] not in ("formula", "fd", "none"):
            raise SetupError("gpaw pulay_stress is 'formula' (Pulay term once per formula), "
                             "'fd' (every frame) or 'none'", field="--method")
    elif code == "xtb" and functional not in ("gfn2", "gfn1", "ipea1"):
        raise SetupError("xtb methods: gfn2, gfn1, ipea1", field="--method")
    spec_text = raw
    return MethodSpec(label=label or default_label(spec_text), code=code,
                      functional=functional, basis=basis, d3=d3, settings=settings,
                      spec=spec_text)
