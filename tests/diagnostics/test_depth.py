"""Shared (recurrent) versus untied (deep feedforward) random weights over depth."""

import numpy as np
import pytest

from bptt.diagnostics import backprop_norms, depth_experiment, growth_rate


def test_untied_linear_expectation_is_g_to_the_2s():
    # E‖v W_1…W_s‖² = g^{2s}‖v‖²; the product of s factors χ²_H/H has relative variance
    # (1 + 2/H)^s − 1 = 0.28 for H = 64, s = 8, so 200 draws give a standard error of 4 %.
    r = depth_experiment(hidden=64, depth=8, gains=(0.8, 1.0, 1.25), units=("linear",),
                         draws=200, seed=1)
    s = r.steps
    ratio = r.rms("untied")[0] ** 2 / r.gains[:, None] ** (2.0 * s)
    np.testing.assert_allclose(ratio, 1.0, atol=0.15)
    assert np.all(np.abs(r.rms("untied")[0, 1] - 1.0) < 0.1)         # g = 1: flat


def test_tied_weights_follow_the_spectrum_of_the_particular_matrix():
    r = depth_experiment(hidden=24, depth=300, gains=(0.9, 1.1), units=("linear",), draws=4, seed=2)
    rate = growth_rate(r.tied[0], start=150)                           # [G, N]
    np.testing.assert_allclose(rate, np.log(r.rho), atol=0.02)
    # never above λ₁(W)^s
    bound = r.sigma1[..., None] ** r.steps.astype(float)
    assert np.all(r.tied[0] <= bound * (1 + 1e-9))
    # the same draw scaled by the gain: the curves differ by g^s exactly
    want = np.broadcast_to((1.1 / 0.9) ** r.steps.astype(float), r.tied[0, 0].shape)
    np.testing.assert_allclose(r.tied[0, 1] / r.tied[0, 0], want, rtol=1e-9)


def test_symmetric_tied_matrix_top_eigenvector_is_exactly_geometric():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6))
    W = (A + A.T) / 4
    vals, vecs = np.linalg.eigh(W)
    v = vecs[:, -1]
    n = backprop_norms(W[None], "linear", v[None], depth=30)
    np.testing.assert_allclose(n[0], np.abs(vals[-1]) ** np.arange(31), rtol=1e-9)


def test_tanh_shrinks_the_signal_and_shapes():
    r = depth_experiment(hidden=16, depth=20, gains=(1.0,), units=("linear", "tanh"), draws=5)
    assert r.tied.shape == (2, 1, 5, 21) and r.untied.shape == (2, 1, 5, 21)
    np.testing.assert_allclose(r.tied[:, :, :, 0], 1.0)
    # σ' ≤ 1: through one step with the same weights, tanh passes on no more than linear units
    assert np.all(r.tied[1, 0, :, 1] <= r.tied[0, 0, :, 1] + 1e-12)
    assert r.geometric_mean("tied").shape == (2, 1, 21)
    with pytest.raises(ValueError, match="gains"):
        depth_experiment(gains=(0.0,))
    with pytest.raises(ValueError, match="unknown unit"):
        depth_experiment(units=("softplus",))
    with pytest.raises(ValueError, match="kind"):
        r.rms("shared")
