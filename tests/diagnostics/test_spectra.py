"""λ₁, γ, ρ and the verdict of §2.1; the eigen-modes of the linear network."""

import math

import numpy as np
import pytest
import torch

from bptt import ElmanRNN
from bptt.diagnostics import (
    EXPLOSION_POSSIBLE,
    VANISHING,
    linear_modes,
    model_spectrum,
    recurrent_conditions,
    singular_values,
    spectrum,
)


def rotation(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def test_diagonal_matrix():
    W = np.diag([0.5, -2.0, 0.1])
    c = recurrent_conditions(W, "tanh")
    assert c.lambda1 == pytest.approx(2.0)
    assert c.spectral_radius == pytest.approx(2.0)
    assert c.gamma == 1.0 and c.threshold == 1.0 and c.eta == pytest.approx(2.0)
    assert c.verdict == EXPLOSION_POSSIBLE and not c.vanishing_guaranteed
    np.testing.assert_allclose(singular_values(W), [2.0, 0.5, 0.1])


def test_sigmoid_threshold_is_four():
    W = np.diag([3.0, 1.0])
    c = recurrent_conditions(W, "sigmoid")
    assert c.gamma == 0.25 and c.threshold == 4.0
    assert c.verdict == VANISHING and c.vanishing_guaranteed
    assert c.eta == pytest.approx(0.75)
    assert recurrent_conditions(np.diag([4.5, 1.0]), "sigmoid").verdict == EXPLOSION_POSSIBLE
    assert recurrent_conditions(np.diag([0.99, 0.2]), "tanh").verdict == VANISHING


def test_known_singular_values_differ_from_eigenvalues():
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    s = np.array([3.0, 1.5, 0.7, 0.2])
    W = U @ np.diag(s) @ V.T
    c = recurrent_conditions(torch.tensor(W), "relu")
    assert c.lambda1 == pytest.approx(3.0)
    np.testing.assert_allclose(singular_values(W), s)
    assert c.spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(W)).max())
    assert c.spectral_radius <= c.lambda1 + 1e-12
    # a non-normal matrix: ρ < λ₁, so λ₁ > 1/γ although every eigenvalue is inside the circle
    J = np.array([[0.5, 4.0], [0.0, 0.5]])
    c = recurrent_conditions(J, "tanh")
    assert c.spectral_radius == pytest.approx(0.5) and c.lambda1 > 4
    assert c.verdict == EXPLOSION_POSSIBLE


def test_rotation_times_scale_modes():
    W = 0.9 * rotation(0.3)
    m = linear_modes(W)
    np.testing.assert_allclose(m.factor, [0.9, 0.9])
    np.testing.assert_allclose(np.abs(np.angle(m.eigenvalues)), [0.3, 0.3])
    assert m.behaviour == ("decays", "decays")
    np.testing.assert_allclose(m.half_life, math.log(2) / -math.log(0.9))
    assert np.all(np.isnan(m.doubling_time))
    c = recurrent_conditions(W)
    assert c.lambda1 == pytest.approx(0.9) and c.spectral_radius == pytest.approx(0.9)


def test_linear_modes_sorted_with_growth_and_decay():
    W = np.diag([0.5, 2.0, -1.0, 0.0, 1.25])
    m = linear_modes(W)
    np.testing.assert_allclose(m.factor, [2.0, 1.25, 1.0, 0.5, 0.0])
    assert m.behaviour == ("grows", "grows", "persists", "decays", "decays")
    np.testing.assert_allclose(m.doubling_time[:2], [1.0, math.log(2) / math.log(1.25)])
    np.testing.assert_allclose(m.half_life[3:], [1.0, 0.0])
    assert m.growing.tolist() == [0, 1] and m.decaying.tolist() == [3, 4]
    assert m.spectral_radius == 2.0
    # each column is an eigenvector of the paper's W_rec = the stored matrix transposed
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 5))
    m = linear_modes(A)
    for i in range(5):
        v = m.vectors[:, i]
        np.testing.assert_allclose(A.T @ v, m.eigenvalues[i] * v, atol=1e-10)


def test_spectrum_of_a_model_member_and_bad_input():
    model = ElmanRNN(3, 10, 2, init="smart_tanh", seeds=[0, 1])
    s = model_spectrum(model, member=1)
    assert s.conditions.spectral_radius == pytest.approx(0.95, rel=1e-5)
    assert s.singular_values.shape == (10,) and s.eigenvalues.shape == (10,)
    assert s.unit == "tanh"
    assert spectrum(np.eye(3), "sigmoid").conditions.verdict == VANISHING
    with pytest.raises(ValueError, match="square"):
        recurrent_conditions(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        recurrent_conditions(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="unknown unit"):
        recurrent_conditions(np.eye(2), "softplus")
