"""Lyapunov exponents by QR re-orthonormalisation."""

import numpy as np
import pytest
import torch

from bptt import ElmanRNN
from bptt.diagnostics import lyapunov_exponents, model_lyapunov


def test_linear_diagonal_gives_log_moduli():
    a = np.array([1.3, 0.9, -0.5, 0.2, 0.05])
    r = lyapunov_exponents(np.diag(a), "linear", steps=400, transient=100)
    np.testing.assert_allclose(r.exponents, np.sort(np.log(np.abs(a)))[::-1], atol=1e-6)
    assert np.all(np.diff(r.exponents) <= 0)
    assert r.mode == "autonomous" and r.history.shape == (300, 5)


def test_linear_orthogonal_times_scale():
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 6)))
    r = lyapunov_exponents(1.7 * Q, "linear", steps=200, transient=10)
    np.testing.assert_allclose(r.exponents, np.log(1.7), atol=1e-6)
    r = lyapunov_exponents(0.6 * Q, "linear", k=2, steps=200, transient=10)
    np.testing.assert_allclose(r.exponents, np.log(0.6), atol=1e-6)
    assert r.exponents.shape == (2,)


def test_tanh_near_the_origin_follows_the_eigenvalues_not_the_singular_values():
    rng = np.random.default_rng(2)
    P = rng.standard_normal((4, 4))
    W = P @ np.diag([0.45, -0.25, 0.1, 0.05]) @ np.linalg.inv(P)      # non-normal
    r = lyapunov_exponents(W, "tanh", steps=1500, transient=100)
    want = np.sort(np.log(np.abs(np.linalg.eigvals(W))))[::-1]
    np.testing.assert_allclose(r.exponents, want, atol=1e-3)
    sv = np.log(np.linalg.svd(W, compute_uv=False))
    assert np.abs(r.exponents[0] - sv[0]) > 0.1                        # λ₁ is not the rate
    assert np.all(np.diff(r.exponents) <= 0)


def test_tanh_tiny_weights_exponents_are_log_singular_values_for_normal_matrix():
    Q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((5, 5)))
    s = np.array([0.02, 0.015, 0.01, 0.005, 0.002])
    W = Q @ np.diag(s) @ Q.T                                          # symmetric: |λ| = σ
    r = lyapunov_exponents(W, "tanh", steps=300, transient=20)
    np.testing.assert_allclose(r.exponents, np.log(s), atol=1e-6)


def test_driven_network():
    rng = np.random.default_rng(4)
    H, I = 8, 3
    W = rng.standard_normal((H, H)) / np.sqrt(H) * 1.5
    W_in = rng.standard_normal((I, H))
    u = rng.standard_normal((800, I))
    # inputs do not change the Jacobian of a linear network
    lin_auto = lyapunov_exponents(0.5 * W, "linear", steps=800, transient=100)
    lin_drv = lyapunov_exponents(0.5 * W, "linear", W_in=W_in, inputs=u, transient=100)
    np.testing.assert_allclose(lin_drv.exponents, lin_auto.exponents, atol=1e-12)
    assert lin_drv.mode == "driven"
    # strong inputs saturate tanh units: perturbations shrink faster
    auto = lyapunov_exponents(W, "tanh", steps=800, transient=100)
    drv = lyapunov_exponents(W, "tanh", W_in=3.0 * W_in, inputs=u, transient=100)
    assert drv.leading < auto.leading


def test_model_wrapper_and_errors():
    model = ElmanRNN(3, 6, 2, init="basic_tanh", seeds=[0, 1], dtype=torch.float64)
    x = torch.randn(300, 4, 3, generator=torch.Generator().manual_seed(0))
    r = model_lyapunov(model, x, member=1, sequence=2, transient=50, k=3)
    assert r.exponents.shape == (3,) and r.steps == 300 and r.mode == "driven"
    r = model_lyapunov(model, member=0, steps=300, transient=50)
    assert r.exponents.shape == (6,)
    with pytest.raises(ValueError, match="transient"):
        lyapunov_exponents(np.eye(2), "tanh", steps=10, transient=10)
    with pytest.raises(ValueError, match="k must be"):
        lyapunov_exponents(np.eye(2), "tanh", k=3)
    with pytest.raises(ValueError, match="W_in"):
        lyapunov_exponents(np.eye(2), "tanh", inputs=np.zeros((5, 1)), transient=1)
    with pytest.raises(ValueError, match="non-finite"):
        lyapunov_exponents(3.0 * np.eye(2), "relu", b=np.ones(2), steps=2000, transient=1)
