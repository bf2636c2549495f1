"""The MACE model that ships with tealign: ``tealign-mini``.

Trained by tealign on its own corrected, TEA-merged mini datasets (organic-mini aligned onto
the GPAW PBE/PW800 scale with calib-qm9's single factor, plus inorganic-mini); it is the TEA
model (variant e, seed 1) of ``experiments/multidomain``. The model file and a card
(``tealign-mini.json``: the training command, the data, the recorded test-split metrics) sit in
the package data. Any ``--calculator`` option takes the name ``tealign-mini`` for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tealign.errors import SetupError

HERE = Path(__file__).resolve().parents[1] / "data" / "models"
NAMES = ("tealign-mini",)


def model_path(name: str = "tealign-mini") -> Path:
    """The shipped model file of ``name``; SetupError when it is not part of this install."""
    if name not in NAMES:
        raise SetupError(f"unknown pretrained model {name!r}; choose {', '.join(NAMES)}",
                         field="--calculator")
    p = HERE / f"{name}.model"
    if not p.exists():
        raise SetupError(f"the pretrained model {name} is not in this install (looked for {p})",
                         field="--calculator")
    return p


def card(name: str = "tealign-mini") -> dict:
    """The model card: training command, data and recorded metrics (``<name>.json``)."""
    return json.loads(model_path(name).with_suffix(".json").read_text())


def resolve(name: str | None) -> str | None:
    """A ``--calculator`` value with a pretrained model's name replaced by its file path."""
    return str(model_path(name)) if name in NAMES else name
