"""Where a frame keeps its energy, forces, stress and virials: one object for the four names.

Frames carry their labels under free-form keys (docs/architecture.md §4.3). Every step that
reads or writes them takes one :class:`Keys` instead of four separate names:

    Keys()                    # energy, forces, stress, virials (a source dataset)
    REF                       # REF_energy, ... (aligned, what MACE trains on)
    ORIG                      # orig_energy, ... (the source values kept beside REF_*)
    Keys.suffixed("pbe")      # energy_pbe, forces_pbe, stress_pbe, virials_pbe

``None`` for a key means "this dataset has no such property".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

KINDS = ("energy", "forces", "stress", "virials")


@dataclass(frozen=True)
class Keys:
    """The four key names of one energy scale (energy eV, forces eV/Å, stress eV/Å³,
    virials eV)."""

    energy: str = "energy"
    forces: str | None = "forces"
    stress: str | None = "stress"
    virials: str | None = "virials"

    @classmethod
    def prefixed(cls, prefix: str) -> Keys:
        """``PREFIX_energy``, ``PREFIX_forces``, ... (e.g. ``REF``, ``orig``)."""
        return cls(*(f"{prefix}_{k}" for k in KINDS))

    @classmethod
    def suffixed(cls, suffix: str) -> Keys:
        """``energy_SUFFIX``, ``forces_SUFFIX``, ... (a method's labels, e.g. ``pbe``)."""
        return cls(*(f"{k}_{suffix}" for k in KINDS))

    def as_dict(self) -> dict[str, str | None]:
        """{kind: key} for the four kinds, in the order energy, forces, stress, virials."""
        return asdict(self)

    def items(self):
        return self.as_dict().items()

    def replace(self, **changes) -> Keys:
        return replace(self, **changes)


REF = Keys.prefixed("REF")
ORIG = Keys.prefixed("orig")

#: the kinds stored per atom: a frame's ``arrays`` (forces, eV/Å); the others (energy,
#: stress, virials) are one value per frame, in its ``info``
PER_ATOM_KINDS = frozenset({"forces"})


def per_atom(kind: str) -> bool:
    """True when values of ``kind`` (one of :data:`KINDS`) live in a frame's ``arrays`` (one
    row per atom: forces), False when they live in its ``info`` (energy, stress, virials)."""
    return kind in PER_ATOM_KINDS


def store_of(frames, kind: str) -> dict:
    """The mapping of ``frames`` (a FrameBatch or one frame's record: anything with
    ``arrays`` and ``info``) where values of ``kind`` live (:func:`per_atom`)."""
    return frames.arrays if per_atom(kind) else frames.info


__all__ = ["KINDS", "ORIG", "PER_ATOM_KINDS", "REF", "Keys", "per_atom", "store_of"]
