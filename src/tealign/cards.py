"""Alignment cards: fitted alignments of public datasets onto the MPtrj scale, shipped as
package data (``tealign/data/cards/<name>.json``, built by ``datasets/cards/make_cards.py``).

A card is a saved alignment (the JSON ``tealign fit`` writes, under ``alignment``) plus what
a user needs to trust it: source and target method and code, the isolated-atom tables with
their citations, every correction model's held-out error, the 95 % interval of a, the
elements calibrated, the D3 and charge policies, and the calibration's command and cost.

    from tealign import cards
    cards.names()                        # ['ani1x-to-mptrj', 'off23-to-mptrj', ...]
    card = cards.load("spice-to-mptrj")  # the card, validated
    tea = cards.alignment("spice-to-mptrj")   # a fitted TotalEnergyAlignment
    aligned = tea.transform(frames, remove_d3="wb97m")

Applying a card (``tealign align DATA --alignment NAME``) is the saved alignment's
transform, with two refusals the card carries: an element outside the calibration (no
calibration data for it), and a source whose D3 state is not the card's (its source must be
D3-free). Exports (:func:`export`): MACE's ``--E0s`` (the target's isolated-atom energies),
fairchem-style element references, and a shift/scale table. All energies eV, forces eV/Å.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from tealign.align.estimator import TotalEnergyAlignment
from tealign.errors import SetupError

FORMAT = "tealign-card/1"
EXPORT_FORMATS = ("mace-e0s", "fairchem", "shift-scale")
#: what a bare ``--remove-d3`` (no functional) means: the card's own functional
CARD_D3 = "auto"
_REQUIRED = ("format", "name", "dataset", "source", "target", "model", "models", "coverage",
             "d3", "charge", "transfer_error", "calibration", "alignment")


def _dir():
    return resources.files("tealign") / "data" / "cards"


def names() -> list[str]:
    """Names of the shipped cards, sorted."""
    return sorted(p.name[:-5] for p in _dir().iterdir() if p.name.endswith(".json"))


def is_card(name) -> bool:
    """True when ``name`` is a shipped card's name and no file of that name exists."""
    return isinstance(name, str) and name in names() and not Path(name).exists()


def load(name: str) -> dict:
    """The card ``name``, validated (:func:`validate`); :class:`SetupError` naming the
    shipped cards for an unknown name."""
    if name not in names():
        raise SetupError(f"no alignment card {name!r}; the cards are: {', '.join(names())} "
                         "(`tealign alignments`)", field="alignment card")
    text = (_dir() / f"{name}.json").read_text()
    card = json.loads(text)
    validate(card, source=f"card {name}")
    if card["name"] != name:
        raise SetupError(f"card file {name}.json names itself {card['name']!r}",
                         file=f"card {name}", field="name")
    return card


def validate(card, source: str = "<card>") -> None:
    """Raise :class:`SetupError` (naming the field) unless ``card`` is a well-formed card:
    format, the required sections, a valid saved alignment (schema and sha256), and the
    card's own numbers agreeing with it (a, offsets, covered elements = the alignment's
    source table)."""
    def bad(field, why):
        return SetupError(why, file=source, field=field)

    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise bad("format", f"not an alignment card (expected format {FORMAT!r})")
    for key in _REQUIRED:
        if key not in card:
            raise bad(key, "required section is missing")
    tea = TotalEnergyAlignment.from_dict(card["alignment"], source=source)
    model = card["model"]
    if model.get("chosen") != tea.model_:
        raise bad("model.chosen", f"{model.get('chosen')!r} but the alignment's model is "
                  f"{tea.model_!r}")
    if not isinstance(model.get("a"), float) or abs(model["a"] - tea.a_) > 1e-12:
        raise bad("model.a", f"{model.get('a')!r} is not the alignment's a = {tea.a_!r}")
    ci = model.get("a_ci95")
    if not (isinstance(ci, list) and len(ci) == 2 and ci[0] <= tea.a_ <= ci[1]):
        raise bad("model.a_ci95", f"must be [lo, hi] around a = {tea.a_}")
    if {k: float(v) for k, v in model.get("offsets_eV", {}).items()} != tea.offsets_:
        raise bad("model.offsets_eV", "are not the alignment's offsets")
    elements = card["coverage"].get("elements")
    if not isinstance(elements, list) or set(elements) != set(tea.source_table_.energies):
        raise bad("coverage.elements", "must be the elements of the alignment's source table")
    d3 = card["d3"]
    if d3.get("source_must_be_d3_free") is not True:
        raise bad("d3.source_must_be_d3_free", "must be true (TEA aligns D3-free energies)")
    if d3.get("published_with_d3") and not isinstance(d3.get("functional"), str):
        raise bad("d3.functional", "a source published with D3 needs its functional")


class CardAlignment(TotalEnergyAlignment):
    """A card's saved alignment with the card's refusals (see :mod:`tealign.cards`).

    ``transform`` refuses (:class:`SetupError`, one line naming file, frame and field) a
    frame holding an element outside ``coverage_``, and a source whose D3 state breaks the
    card's D3 policy: with a published-with-D3 source (SPICE, OFF23) it needs ``remove_d3``
    (the card's functional), unless the frames mark the energy D3-free
    (``d3_in_<key> = F``); with a dispersion-free source (ANI-1x, QM9) ``remove_d3`` and
    frames marked as including D3 are refused. ``inverse_transform`` is the alignment's.
    """

    card_name_: str = ""
    coverage_: tuple[str, ...] = ()
    d3_policy_: dict = {}
    dataset_: str = ""

    def transform(self, frames, energy_key=None, forces_key="forces", stress_key="stress",
                  virials_key="virials", source_name=None, file=None, remove_d3=None, *,
                  allow_realign=False, check=True, allow_charged=False):
        from tealign.align.estimator import _single_batch

        batch = _single_batch(frames)
        fname = file or "<frames>"
        self._check_coverage(batch, fname)
        if energy_key is None:
            fitted = self.calibration_.get("source_key")
            energy_key = fitted if fitted and not batch.has("energy").any() \
                and batch.has(fitted).any() else "energy"
        remove_d3 = self.check_d3(batch, energy_key, remove_d3, fname)
        return super().transform(frames if isinstance(frames, list) else batch, energy_key,
                                 forces_key, stress_key, virials_key, source_name, file,
                                 remove_d3, allow_realign=allow_realign, check=check,
                                 allow_charged=allow_charged)

    def _check_coverage(self, batch, fname: str) -> None:
        ok = np.zeros(119, dtype=bool)
        ok[[atomic_numbers[s] for s in self.coverage_]] = True
        z = np.asarray(batch.numbers, dtype=np.int64)
        bad = ~ok[np.clip(z, 0, 118)] | (z < 1) | (z > 118)
        if not bad.any():
            return
        atom = int(np.flatnonzero(bad)[0])
        frame = int(np.searchsorted(batch.offsets, atom, side="right") - 1)
        zz = int(z[atom])
        sym = chemical_symbols[zz] if 1 <= zz <= 118 else str(zz)
        raise SetupError(
            f"card {self.card_name_}: no calibration data for {sym} (the card covers "
            f"{' '.join(self.coverage_)}); remove frames with {sym} or fit an alignment "
            "with a calibration set that has it (`tealign fit`)", file=fname,
            frame=int(batch.index[frame]), field="numbers")

    def resolve_d3(self, remove_d3: str | None) -> str | None:
        """``remove_d3`` as given, with a bare ``--remove-d3`` (:data:`CARD_D3`) replaced by
        the card's functional; a functional other than the card's is refused."""
        d3 = self.d3_policy_
        if remove_d3 is None:
            return None
        if not d3.get("published_with_d3"):
            raise SetupError(
                f"card {self.card_name_}: the {self.dataset_} energies have no dispersion "
                "term, so there is no D3(BJ) to remove; drop --remove-d3",
                field="--remove-d3")
        if remove_d3 == CARD_D3:
            return d3["functional"]
        if remove_d3.lower() != d3["functional"]:
            raise SetupError(
                f"card {self.card_name_}: --remove-d3 {remove_d3}, but the source's D3(BJ) "
                f"is that of {d3['functional']} (give --remove-d3 alone or --remove-d3 "
                f"{d3['functional']})", field="--remove-d3")
        return remove_d3

    def check_d3(self, batch, energy_key: str, remove_d3: str | None, fname: str
                 ) -> str | None:
        """Enforce the card's D3 policy on one batch; returns the functional to remove."""
        from tealign.dispersion import d3_marker_key

        remove_d3 = self.resolve_d3(remove_d3)
        marker = d3_marker_key(energy_key)
        flags = batch.info.get(marker)
        has = batch.has(marker) if flags is not None else np.zeros(batch.n_frames, bool)
        # per frame: (includes D3?, how we know); None where nothing says
        state = [(str(flags[i]).lower() in ("true", "t", "1"), f"{marker} = {flags[i]}")
                 if has[i] else None for i in range(batch.n_frames)]
        # readers label what they know: SPICE's reader writes dispersion = "d3bj-included"
        disp = batch.info.get("dispersion")
        if disp is not None:
            has_disp = batch.has("dispersion")
            state = [(True, f"dispersion = {disp[i]}") if s is None and has_disp[i]
                     and "included" in str(disp[i]) else s for i, s in enumerate(state)]
        published = bool(self.d3_policy_.get("published_with_d3"))
        for i, s in enumerate(state):
            with_d3, why = s if s is not None else (
                published, f"{self.dataset_} energies include D3(BJ) as published")
            if remove_d3 is None and with_d3:
                raise SetupError(
                    f"card {self.card_name_}: the source must be D3-free, but {why}; "
                    + ("pass --remove-d3" if published else
                       f"the {self.dataset_} card has no D3 to remove: align D3-free "
                       "energies"), file=fname, frame=int(batch.index[i]), field=energy_key)
        return remove_d3


def alignment(name: str) -> CardAlignment:
    """The card's fitted alignment (a :class:`CardAlignment`)."""
    card = load(name)
    tea = CardAlignment.from_dict(card["alignment"], source=f"card {name}")
    tea.card_name_ = name
    tea.coverage_ = tuple(card["coverage"]["elements"])
    tea.d3_policy_ = dict(card["d3"])
    tea.dataset_ = card["dataset"]["name"].split(" (")[0]
    return tea


def summary(card: dict) -> dict:
    """One row of ``tealign alignments``."""
    m = card["model"]
    return {"name": card["name"], "dataset": card["dataset"]["name"],
            "source": card["source"]["method"], "target": "MPtrj (VASP PBE)",
            "model": m["chosen"], "a": m["a"], "a_ci95": m["a_ci95"],
            "single_factor_a": card["single_factor"]["a"],
            "single_factor_a_ci95": card["single_factor"]["a_ci95"],
            "heldout_rmse_eV": m["heldout_rmse_eV"],
            "heldout_rmse_eV_by_model": {k: v["heldout_rmse_eV"]
                                         for k, v in card["models"].items()},
            "elements": card["coverage"]["elements"],
            "remove_d3": bool(card["d3"]["published_with_d3"])}


# ------------------------------------------------------------------------------ export
def shift_scale(name: str) -> dict:
    """The card as E_target = scale · E_source + Σ_el n_el · shift_eV[el] (eV), forces and
    stress × scale: shift_el = E_el(target table) − a · E_el(source table) − c_el."""
    tea = alignment(name)
    src, tgt = tea.source_table_, tea.target_table_
    shift = {s: tgt.energy(s) - tea.a_ * src.energy(s) - tea.offsets_.get(s, 0.0)
             for s in tea.coverage_}
    return {"scale": tea.a_, "shift_eV": shift, "elements": list(tea.coverage_),
            "source_table": src.name, "target_table": tgt.name,
            "remove_d3_first": tea.d3_policy_.get("functional")
            if tea.d3_policy_.get("published_with_d3") else None}


def export(name: str, fmt: str, output: str | os.PathLike) -> dict:
    """Write card ``name`` (or every card, ``name="all"``, for ``shift-scale``) in a
    trainer's format; returns what was written.

    - ``mace-e0s``: JSON {atomic number: E0 (eV)} of the target (MPtrj) isolated atoms, what
      mace-torch's ``--E0s`` reads from a ``.json`` file (its keys are cast to int).
    - ``fairchem``: ``.npz`` with ``element_references`` (float64, length 119, index =
      atomic number, 0 where the table has no atom): the target's isolated-atom energies as
      linear element references (fairchem's ``create_element_references`` reads this key).
    - ``shift-scale``: JSON {"cards": {name: :func:`shift_scale`}}.
    """
    from tealign.io.outputs import atomic_path, write_json

    if fmt not in EXPORT_FORMATS:
        raise SetupError(f"unknown export format {fmt!r}; choose {', '.join(EXPORT_FORMATS)}",
                         field="--format")
    out = Path(output)
    if fmt == "shift-scale":
        todo = names() if name == "all" else [name]
        obj = {"format": "tealign-shift-scale/1",
               "formula": "E_target = scale * E_source + sum_el n_el * shift_eV[el]; "
                          "F_target = scale * F_source; stress_target = scale * "
                          "stress_source (E_source without D3; remove_d3_first names the "
                          "functional whose D3(BJ) to subtract first)",
               "cards": {n: shift_scale(n) for n in todo}}
        _suffix(out, ".json", fmt)
        write_json(out, obj)
        return {"format": fmt, "output": str(out), "cards": todo}
    if name == "all":
        raise SetupError(f"--format {fmt} exports one card; name it", field="NAME")
    tea = alignment(name)
    tgt = tea.target_table_
    if fmt == "mace-e0s":
        _suffix(out, ".json", fmt)
        e0s = {str(atomic_numbers[s]): e for s, e in
               sorted(tgt.energies.items(), key=lambda kv: atomic_numbers[kv[0]])}
        write_json(out, e0s)
        return {"format": fmt, "output": str(out), "table": tgt.name, "elements": len(e0s),
                "use": f"mace_run_train ... --E0s {out}"}
    _suffix(out, ".npz", fmt)
    refs = tgt.by_number(119)
    refs = np.where(np.isfinite(refs), refs, 0.0)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, element_references=refs)
    return {"format": fmt, "output": str(out), "table": tgt.name,
            "elements": int(np.count_nonzero(refs))}


def _suffix(out: Path, suffix: str, fmt: str) -> None:
    if out.suffix.lower() != suffix:
        raise SetupError(f"--format {fmt} writes a {suffix} file: name the output *{suffix}",
                         file=str(out))
