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


def test_fitted_attributes_are_the_same_set_after_fit_load_compose_and_icea_only(tmp_path):
    """One fitted state (``FittedAlignment``): every way to a fitted alignment gives the same
    attributes; rejects_ is empty and parity_ None unless fitted here."""
    from tealign.align.fitted import ATTRIBUTES

    expected = {"a_", "offsets_", "a_ci95_", "model_", "n_", "n_rejected_", "rmse_icea_",
                "rmse_tea_", "r2_icea_", "r2_tea_", "cv_rmse_", "calibration_", "chain_",
                "rejects_", "parity_", "source_table_", "target_table_"}
    assert set(ATTRIBUTES) == expected

    def fitted(est):
        return {k for k in vars(est) if k.endswith("_") and not k.startswith("_")}

    fit = TotalEnergyAlignment(SRC, TGT, source_key="e_src", target_key="e_tgt").fit(
        synthetic(30, seed=7))
    fit.save(tmp_path / "a.json")
    loaded = TotalEnergyAlignment.load(tmp_path / "a.json")
    from_dict = TotalEnergyAlignment.from_dict(fit.to_dict() | {"sha256": fit.sha256()})
    icea = TotalEnergyAlignment.icea_only(SRC, TGT)
    first = TotalEnergyAlignment(SRC, SRC, source_key="e_src", target_key="e_tgt").fit(
        synthetic(30, seed=8, tgt=SRC))
    chain = TotalEnergyAlignment.compose(first, fit)
    for est in (fit, loaded, from_dict, icea, chain):
        assert fitted(est) == expected, type(est)
    assert fit.parity_ is not None
    for est in (loaded, from_dict, icea, chain):
        assert est.rejects_ == [] and est.parity_ is None
    assert loaded.sha256() == fit.sha256() and loaded.a_ == fit.a_
    assert fitted(TotalEnergyAlignment(SRC, TGT)) == set()
    # a refit whose factor is implausible leaves none of them behind
    with pytest.raises(SetupError, match="0.5 < a < 2"):
        fit.fit(synthetic(30, a=3.0, seed=10))
    assert fitted(fit) == set()


def test_repr_by_name_and_params_from_the_signature():
    tea = TotalEnergyAlignment(SRC, TGT, cv_folds=3, split="train", strict=True)
    assert TotalEnergyAlignment._get_param_names() == [
        "source", "target", "model", "n_bootstrap", "cv_folds", "alpha", "random_state",
        "source_key", "target_key", "split", "strict"]
    assert repr(tea) == (f"TotalEnergyAlignment({SRC.name!r}, {TGT.name!r}, cv_folds=3, "
                         "split='train', strict=True)")


def test_fit_transform_is_fit_then_transform():
    data = synthetic(30, seed=9)
    data.info["energy"] = data.info["e_src"].copy()
    one = TotalEnergyAlignment(SRC, TGT, source_key="e_src", target_key="e_tgt")
    out = one.fit_transform(data, forces_key=None)
    two = TotalEnergyAlignment(SRC, TGT, source_key="e_src", target_key="e_tgt").fit(data)
    ref = two.transform(data, forces_key=None)
    assert np.array_equal(out.info["REF_energy"], ref.info["REF_energy"])


def test_models_registry_holds_icea_and_auto_keeps_its_choice_set():
    from tealign.align import aec, models

    assert tuple(models.REGISTRY) == ("scale", "scale+elements", "icea")
    assert models.MODELS == aec.MODELS == ("scale", "scale+elements")
    assert models.CHOICES == ("scale", "scale+elements", "icea", "auto")
    icea = models.make_model("icea").fit(np.array([1.0, 2.0]), np.ones((2, 1)),
                                        np.array([3.0, 4.0]))
    assert icea.a_ == 1.0 and not icea.offsets_.any()
    assert icea.interval(None, None, None, 10, None) == [1.0, 1.0]
    assert [models.make_model(m).min_structures(3) for m in models.REGISTRY] == [2, 5, 2]
