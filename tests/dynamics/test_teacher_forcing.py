"""Teacher forcing on the one-unit network (Doya 1993): exact gradients, the spike at the
fold crossing free running, none with forcing, and the tasks that have no trajectory."""

import numpy as np
import pytest
import torch

from bptt.dynamics.fixed_points import fold_points
from bptt.dynamics.teacher_forcing import (
    bistable,
    fold_crossings,
    forced_loss_and_grad,
    free_loss_and_grad,
    target_trajectory,
    teacher_forcing_demo,
    train_one_unit,
)


def _autograd(w, b, x0, y, unit, forced):
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    yt = torch.as_tensor(y, dtype=torch.float64)
    f = torch.sigmoid if unit == "sigmoid" else torch.tanh
    x = torch.tensor(x0, dtype=torch.float64)
    loss = 0.0
    for t in range(len(y)):
        prev = (yt[t - 1] if t > 0 else x) if forced else x
        x = wt * f(prev) + bt
        loss = loss + (x - yt[t]) ** 2
    loss = loss / len(y)
    gw, gb = torch.autograd.grad(loss, [wt, bt])
    return float(loss.detach()), float(gw), float(gb)


@pytest.mark.parametrize("unit", ["sigmoid", "tanh"])
@pytest.mark.parametrize("forced", [False, True])
def test_gradients_match_autograd_in_float64(unit, forced):
    rng = np.random.default_rng(3)
    y = rng.normal(size=17)
    fn = forced_loss_and_grad if forced else free_loss_and_grad
    for w, b in [(5.0, -2.5), (-1.3, 0.4), (2.2, 1.1)]:
        L, gw, gb, _ = fn(w, b, 0.3, y, unit)
        La, gwa, gba = _autograd(w, b, 0.3, y, unit, forced)
        np.testing.assert_allclose([L, gw, gb], [La, gwa, gba], rtol=1e-12, atol=1e-14)


def test_forced_loss_is_the_one_step_loss_from_the_targets():
    y = np.array([0.5, -0.2, 1.0])
    L, _, _, pred = forced_loss_and_grad(2.0, 0.1, -1.0, y)
    prev = np.array([-1.0, 0.5, -0.2])
    np.testing.assert_allclose(pred, 2.0 / (1 + np.exp(-prev)) + 0.1, rtol=1e-15)
    assert L == pytest.approx(np.mean((pred - y) ** 2), rel=1e-14)


def _vanishing_crossing(path):
    """The iteration at which the path leaves the bistable region through the fold where
    the attractor the free-running state sits on vanishes."""
    crossings = fold_crossings(path.params, path.unit)
    out = []
    for k in crossings:
        w, b = path.params[k + 1]
        if bistable(*path.params[k], path.unit) and not bistable(w, b, path.unit):
            fold = min(fold_points(w, path.unit), key=lambda f: abs(f.b - b))
            sits_low = path.x_final[k] < fold.x
            if (fold.vanishing == "lower") == bool(sits_low):
                out.append(k)
    return out


def test_free_running_gradient_spikes_at_the_fold_crossing():
    demo = teacher_forcing_demo()
    free = demo.free
    crossings = _vanishing_crossing(free)
    assert len(crossings) == 1
    k = crossings[0]
    spike = int(np.argmax(free.grad_norm))
    assert abs(spike - k) <= 3
    before = free.grad_norm[max(0, k - 20):k - 3]
    assert free.grad_norm[spike] > 5 * np.max(before)            # a spike, not a trend
    assert free.x_final[k + 3] - free.x_final[k - 3] > 2.0       # the state jumped to the other attractor


def test_teacher_forcing_leaves_no_spike_at_the_crossing():
    demo = teacher_forcing_demo()
    forced = demo.forced
    ratio = forced.grad_norm[1:] / forced.grad_norm[:-1]
    assert np.all((ratio > 0.9) & (ratio < 1.1))                  # smooth all along
    assert fold_crossings(forced.params)                          # it does cross a fold
    # Seen from the forced states, the free path's crossing is unremarkable too.
    k = _vanishing_crossing(demo.free)[0]
    y = demo.target
    # ∂L/∂b of the forced loss changes by exactly 2 Δb (it is quadratic in b); the free
    # one changes by orders of magnitude more across the fold.
    b = demo.free.params[k - 5:k + 6, 1]
    forced_gb = np.array([forced_loss_and_grad(5.0, bi, demo.x0, y)[2] for bi in b])
    free_gb = np.array([free_loss_and_grad(5.0, bi, demo.x0, y)[2] for bi in b])
    np.testing.assert_allclose(np.abs(np.diff(forced_gb)), 2 * np.abs(np.diff(b)), rtol=1e-9)
    assert np.max(np.abs(np.diff(free_gb)) / np.abs(np.diff(b))) > 1000


def test_teacher_forcing_needs_a_target_trajectory():
    with pytest.raises(ValueError, match="no target trajectory"):
        target_trajectory("temporal_order")
    with pytest.raises(ValueError, match="no target trajectory"):
        train_one_unit(5.0, -2.8, "adding", forcing=True)
    with pytest.raises(ValueError, match="number"):
        target_trajectory("up")
    with pytest.raises(ValueError, match="steps"):
        target_trajectory(1.0)
    np.testing.assert_array_equal(target_trajectory(2.0, 3), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="train"):
        train_one_unit(5.0, -2.8, 1.0, train=("x",))


def test_only_the_named_parameters_train():
    p = train_one_unit(5.0, -2.8, 2.0, n_steps=20, lr=0.001, train=("b",))
    assert np.all(p.params[:, 0] == 5.0) and p.params[-1, 1] != -2.8
    p = train_one_unit(5.0, -2.8, [1.0, 2.0, 2.0], n_steps=20, lr=0.001, train=("w",), forcing=True)
    assert np.all(p.params[:, 1] == -2.8) and p.params[-1, 0] != 5.0
