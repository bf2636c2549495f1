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

from tealign.compute.backends import BACKENDS, get
from tealign.compute.backends.base import key_values
from tealign.compute.backends.base import option_value as _value
from tealign.errors import SetupError
from tealign.methods import Method

LABEL_RE = re.compile(r"^[a-z0-9_]+$")

#: Every energy-changing setting of each backend, with its default (lengths Å, energies eV):
#: each backend's own ``DEFAULTS`` (:mod:`tealign.compute.backends`).
DEFAULTS: dict[str, dict] = {name: b.defaults for name, b in BACKENDS.items()}

CODES = tuple(BACKENDS)
#: Settings that act on periodic cells only (left out of molecules' and atoms' store keys).
PERIODIC_ONLY = frozenset().union(*(b.periodic_only for b in BACKENDS.values()))


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
        core = get(self.code).core
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
        examples = ", ".join(b.example for b in BACKENDS.values() if b.example)
        raise SetupError(f"method {text!r} is not code:functional/basis (e.g. {examples})",
                         field="--method")
    code, rest = main.split(":", 1)
    code = code.strip().lower()
    backend = get(code)
    if backend.parse is not None:  # code:PRESET, run outside tealign (tealign.compute.external)
        functional, basis, d3, settings = backend.parse(code, rest, options)
        return MethodSpec(label=label or default_label(raw), code=code, functional=functional,
                          basis=basis, d3=d3, settings=settings, spec=raw)
    functional, _, basis = rest.partition("/")
    functional, basis = functional.strip().lower(), basis.strip().lower()
    settings = dict(backend.defaults)
    optional = backend.optional
    for k, v in key_values(options):
        if k not in settings and k not in backend.free and k not in optional:
            known = sorted(backend.defaults) + sorted(optional)
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
        if backend.own_dispersion:
            raise SetupError(f"{code} has its own dispersion; drop -d3bj", field="--method")
    if backend.check is not None:
        backend.check(functional, basis, settings)
    spec_text = raw
    return MethodSpec(label=label or default_label(spec_text), code=code,
                      functional=functional, basis=basis, d3=d3, settings=settings,
                      spec=spec_text)
