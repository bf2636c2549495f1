"""`tealign info` in constant memory: exact running energy statistics, and a units verdict
taken on a bounded, evenly spread sample of frames."""

import numpy as np

from tealign import summary
from tealign.summary import DatasetSummary


def test_running_statistics_are_exact_and_the_verdict_sample_is_bounded(monkeypatch):
    monkeypatch.setattr(summary, "VERDICT_SAMPLE", 100)
    rng = np.random.default_rng(3)
    s = DatasetSummary()
    n_all, e_all = [], []
    for size in (37, 250, 1, 613, 99):  # batches of uneven size
        n = rng.integers(2, 30, size)
        e = -rng.uniform(1.0, 9.0, size) * n  # eV, valence-like magnitudes
        s.add_energies(e, e * 300.0, n)  # all-electron estimate far from e: ratio 1/300
        n_all.append(n)
        e_all.append(e)
    n_all, e_all = np.concatenate(n_all), np.concatenate(e_all)
    per_atom = e_all / n_all
    out = s.as_json()["energy_per_atom_eV"]
    assert out["min"] == per_atom.min() and out["max"] == per_atom.max()
    assert np.isclose(out["mean"], per_atom.mean(), rtol=1e-12)
    k = len(s.sample["energy"])
    assert 50 < k <= 100  # halved only when over the cap
    # every stride-th frame of the whole stream, in order: the sample is the file's, evenly
    np.testing.assert_array_equal(s.sample["energy"], e_all[::s.stride][:k])
    np.testing.assert_array_equal(s.sample["n_atoms"], n_all[::s.stride][:k])
    assert s.as_json()["units_verdict_frames"] == k
