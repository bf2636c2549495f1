"""The estimator on scikit-learn's contract: settings in the constructor, fitted attributes
only after fit, get_params/set_params, and transform returning what it was given plus the
rejects."""

import numpy as np
import pytest
from test_alignment import SRC, TGT, synthetic

from tealign.align import TotalEnergyAlignment
from tealign.align.aec import ScaleModel
from tealign.errors import SetupError


def test_settings_in_constructor_fitted_attributes_after_fit():
    tea = TotalEnergyAlignment(SRC, TGT, source_key="e_src", target_key="e_tgt")
    for name in ("a_", "offsets_", "source_table_", "target_table_", "rejects_"):
        assert not hasattr(tea, name), name
    assert not hasattr(ScaleModel(), "a_")
    assert tea.fit(synthetic(30, seed=1)) is tea
    assert tea.a_ == pytest.approx(0.93, abs=0.01)
    assert tea.source_table_.energies == SRC.energies
    # keys given to fit override the settings for that call only
    b = synthetic(30, seed=1, src_key="x", tgt_key="y")
    other = TotalEnergyAlignment(SRC, TGT).fit(b, "x", "y")
    assert other.get_params()["source_key"] is None and other.a_ == pytest.approx(tea.a_)


def test_get_params_set_params_clone():
    tea = TotalEnergyAlignment(SRC, TGT, model="auto", cv_folds=3, source_key="e_src",
                               target_key="e_tgt")
    params = tea.get_params(deep=True)
    assert params["model"] == "auto" and params["cv_folds"] == 3
    clone = TotalEnergyAlignment(**params)
    assert clone.get_params() == params
    assert clone.set_params(model="scale", n_bootstrap=10) is clone
    assert clone.model == "scale" and tea.model == "auto"
    with pytest.raises(ValueError, match="invalid parameter"):
        clone.set_params(bogus=1)
    assert "auto" in repr(tea)


def test_settings_validated_in_fit_not_constructor():
    tea = TotalEnergyAlignment(SRC, TGT, model="nonsense", source_key="e_src",
                               target_key="e_tgt")
    with pytest.raises(SetupError, match="unknown model"):
        tea.fit(synthetic(10))
    with pytest.raises(SetupError, match="source_key is not set"):
        TotalEnergyAlignment(SRC, TGT).fit(synthetic(10))


def test_composed_alignment_can_be_refitted():
    a = TotalEnergyAlignment(SRC, SRC, source_key="e_src", target_key="e_tgt").fit(
        synthetic(30, seed=2, tgt=SRC))
    b = TotalEnergyAlignment(SRC, TGT, source_key="e_src", target_key="e_tgt").fit(
        synthetic(30, seed=3))
    chain = TotalEnergyAlignment.compose(a, b)
    assert chain.model_ == "chain"
    refit = TotalEnergyAlignment(**chain.get_params())
    refit.set_params(source_key="e_src", target_key="e_tgt").fit(synthetic(30, seed=4))
    assert refit.model_ == "scale"


def test_transform_returns_what_it_was_given_with_rejects():
    tea = TotalEnergyAlignment(SRC, TGT, source_key="e_src", target_key="e_tgt").fit(
        synthetic(30, seed=5))
    data = synthetic(4, seed=6)
    data.info["energy"] = data.info["e_src"].copy()
    data.info["energy"][1] = np.nan
    out = tea.transform(data)
    assert out.n_frames == 3 and len(out.rejects) == 1 and out.rejects[0].frame == 1
    atoms = data.to_atoms()
    res = tea.transform(atoms)
    assert isinstance(res, list) and len(res) == 3 and len(res.rejects) == 1
    assert "REF_energy" in res[0].info
    strict = TotalEnergyAlignment(**tea.get_params()).set_params(strict=True).fit(
        synthetic(30, seed=5))
    with pytest.raises(SetupError, match="NaN"):
        strict.transform(data)
