"""The error surface of Figure 6, its exact gradients, and descent with and without clipping."""

import math

import numpy as np
import pytest

from bptt.dynamics import (
    cliff_demo,
    descent_trajectory,
    error_surface,
    loss_and_grad,
)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("unit", ["sigmoid", "tanh"])
def test_surface_gradient_matches_finite_differences(unit):
    pts = [(1.5, 0.3), (3.0, -1.0), (4.0, -2.2), (6.0, -2.0), (7.5, -4.5), (-2.0, 1.0)]
    h = 1e-6
    for w, b in pts:
        E, gw, gb, _ = loss_and_grad(w, b, unit=unit)
        fw = (loss_and_grad(w + h, b, unit=unit)[0] - loss_and_grad(w - h, b, unit=unit)[0]) / (2 * h)
        fb = (loss_and_grad(w, b + h, unit=unit)[0] - loss_and_grad(w, b - h, unit=unit)[0]) / (2 * h)
        assert float(gw) == pytest.approx(float(fw), rel=1e-5, abs=1e-9)
        assert float(gb) == pytest.approx(float(fb), rel=1e-5, abs=1e-9)


def test_surface_grid_matches_pointwise_and_has_a_wall():
    s = error_surface((2.0, 8.0), (-5.0, -1.0), n_w=31, n_b=21)
    assert s.E.shape == (21, 31)
    E, gw, gb, _ = loss_and_grad(s.w[7], s.b[5])
    assert s.E[5, 7] == pytest.approx(float(E), abs=1e-15)
    assert s.grad_w[5, 7] == pytest.approx(float(gw), abs=1e-15)
    assert np.all((s.E >= 0) & (s.E <= 0.7 ** 2 + 1e-12))
    # Across the basin boundary b = 0.5 - w sigma(0.5) at w = 6, E jumps between plateaus.
    bw = 0.5 - 6.0 * _sigmoid(0.5)
    below = float(loss_and_grad(6.0, bw - 1e-3)[0])
    above = float(loss_and_grad(6.0, bw + 1e-3)[0])
    assert below > 0.4 and above < 0.05
    g_on = np.hypot(*loss_and_grad(6.0, bw + 1e-9)[1:3])
    g_off = np.hypot(*loss_and_grad(6.0, bw + 1e-2)[1:3])
    assert g_on > 1e4 * g_off


def test_clipping_bounds_every_step():
    lr, thr = 0.3, 1.0
    p = descent_trajectory(5.2, -3.3, lr, 200, clip_threshold=thr)
    assert np.all(p.step_sizes <= lr * thr * (1 + 1e-12))
    assert np.array_equal(p.clipped, p.grad_norms >= thr)
    assert np.allclose(p.step_sizes[~p.clipped], lr * p.grad_norms[~p.clipped], rtol=1e-12)
    assert np.allclose(p.step_sizes[p.clipped], lr * thr, rtol=1e-12)
    assert np.allclose(np.linalg.norm(np.diff(p.params, axis=0), axis=1), p.step_sizes,
                       rtol=1e-9, atol=1e-15)
    assert p.clipped.any()


def test_cliff_demo_unclipped_path_is_thrown_off_clipped_is_not():
    demo = cliff_demo(n_w=11, n_b=11)
    plain, clip = demo.unclipped, demo.clipped
    bound = clip.lr * clip.clip_threshold
    assert clip.step_sizes.max() <= bound * (1 + 1e-12)
    assert plain.step_sizes.max() > 1000 * clip.step_sizes.max()
    k = int(np.argmax(plain.step_sizes))
    # Both paths are identical up to the wall, where the gradient norm explodes.
    assert np.array_equal(plain.params[: k + 1], clip.params[: k + 1])
    assert plain.grad_norms[k] > 1e3 and np.all(plain.grad_norms[:k] < clip.clip_threshold)
    # The plain path lands far outside the window on a flat plateau and stays there.
    assert np.linalg.norm(plain.params[-1] - plain.params[0]) > 100.0
    assert np.all(plain.grad_norms[k + 1:] < 1e-6)
    # The clipped path stays near its start and reaches a much lower error.
    assert np.all(np.abs(clip.params - clip.params[0]) < 3.0)
    assert clip.losses[-1] < 1e-2 * plain.losses[-1]


@pytest.mark.parametrize("call", [
    lambda: error_surface((1.0, 1.0), (-1.0, 0.0)),
    lambda: error_surface(unit="linear"),
    lambda: descent_trajectory(5.0, -3.0, lr=0.0, n_steps=3),
    lambda: descent_trajectory(5.0, -3.0, lr=0.1, n_steps=3, clip_threshold=-1.0),
    lambda: descent_trajectory(5.0, -3.0, lr=0.1, n_steps=-1),
])
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
