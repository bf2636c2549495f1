"""A correction model added as one module and one registry entry (issue 29, docs/architecture.md
§3.6): the estimator, ``model="auto"``, the API's ``fit``, the command line and a saved
alignment find it with no other change. The toy model, y = x + Σ_el n_el c_el (ICEA plus one
offset per element, a fixed at 1), is written here as its own module would be."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_alignment import SRC, TGT, synthetic

from tealign.align import TotalEnergyAlignment, models
from tealign.align.models.base import CorrectionModel

#: the offsets (eV per atom) the synthetic calibration set is built with
OFFSETS = {"H": -0.05, "C": 0.12, "N": 0.0, "O": -0.2}


class OffsetsModel(CorrectionModel):
    """y = x + counts @ c: per-element offsets (eV) by least squares, the factor fixed at 1."""

    name = "offsets"
    summary = "ICEA and one offset per element"
    in_auto = True

    def n_params(self, n_elements: int) -> int:
        return n_elements

    def _solve(self, x, counts, y):
        c, *_ = np.linalg.lstsq(counts, y - x, rcond=None)
        return 1.0, c


@pytest.fixture
def registered(monkeypatch):
    """The one entry: the model under its name in the registry."""
    monkeypatch.setitem(models.REGISTRY, OffsetsModel.name, OffsetsModel)
    return OffsetsModel.name


def test_the_estimator_fits_saves_and_loads_a_registered_model(registered, tmp_path):
    data = synthetic(40, a=1.0, noise=1e-6, seed=3, offsets=OFFSETS)
    tea = TotalEnergyAlignment(SRC, TGT, model=registered, source_key="e_src",
                               target_key="e_tgt", n_bootstrap=20).fit(data)
    assert tea.model_ == "offsets" and tea.a_ == 1.0
    for el, c in OFFSETS.items():  # the offsets the data were built with, to the noise
        assert tea.offsets_[el] == pytest.approx(c, abs=1e-5), el
    path = tea.save(tmp_path / "alignment.json")
    back = TotalEnergyAlignment.load(path)
    assert back.model_ == "offsets" and back.offsets_ == pytest.approx(tea.offsets_)
    out = back.transform(data, forces_key=None)
    ref = tea.transform(data, forces_key=None)
    assert np.array_equal(out.info["REF_energy"], ref.info["REF_energy"])


def test_auto_considers_a_registered_model(registered):
    # data with per-element offsets and a = 1: the toy model's cross-validated error is the
    # least, so ``auto`` (which lists no model by name) picks it
    data = synthetic(60, a=1.0, noise=1e-3, seed=5, offsets=OFFSETS)
    tea = TotalEnergyAlignment(SRC, TGT, model="auto", source_key="e_src", target_key="e_tgt",
                               n_bootstrap=20).fit(data)
    assert set(tea.cv_rmse_) == {"scale", "scale+elements", "offsets"}
    assert tea.model_ in ("offsets", "scale+elements")
    assert tea.cv_rmse_["offsets"] < tea.cv_rmse_["scale"]


def test_the_command_line_and_its_help_take_a_registered_model(registered, tmp_path):
    from typer.testing import CliRunner

    from tealign import api
    from tealign.cli import app
    from tealign.io import write

    assert "offsets (ICEA and one offset per element)" in api.fit_model_help()
    calib = tmp_path / "calib.extxyz"
    write(calib, synthetic(30, a=1.0, noise=1e-6, seed=7, offsets=OFFSETS))
    src, tgt = tmp_path / "src.json", tmp_path / "tgt.json"
    SRC.save(src)
    TGT.save(tgt)
    out = tmp_path / "alignment.json"
    res = CliRunner().invoke(app, [
        "fit", str(calib), "--source-key", "e_src", "--target-key", "e_tgt",
        "--source-e0", str(src), "--target-e0", str(tgt), "--model", registered,
        "--bootstrap", "20", "-o", str(out)])
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    assert saved["model"]["name"] == "offsets"
    assert saved["model"]["offsets_eV"]["O"] == pytest.approx(OFFSETS["O"], abs=1e-5)


def test_an_unregistered_name_lists_the_registry(registered):
    from tealign.errors import SetupError

    with pytest.raises(SetupError, match="scale, scale\\+elements, icea, offsets or auto"):
        TotalEnergyAlignment(SRC, TGT, model="nope").fit(synthetic(10))
