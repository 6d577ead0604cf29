"""Basins of attraction, orbits and perturbations across a basin boundary or a fold (§2.3)."""

import math

import numpy as np
import pytest

from bptt.dynamics import (
    basins,
    compare_pairs,
    perturbation_pairs,
    trajectories,
)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_basin_labels_agree_with_iterating_by_hand():
    w = 5.0
    res = basins(w, (-3.0, -2.0), (-4.0, 4.0), n_b=41, n_x0=33, steps=400)
    lo_fp = res.fixed.x[:, 0]
    hi_fp = res.fixed.x[:, 2]
    rng = np.random.default_rng(0)
    checked = 0
    for j, i in zip(rng.integers(0, 33, 60), rng.integers(0, 41, 60)):
        b, x = float(res.b[i]), float(res.x0[j])
        for _ in range(3000):
            x = w * _sigmoid(x) + b
        if res.label[j, i] == -1:
            continue
        target = lo_fp[i] if res.label[j, i] == 0 else hi_fp[i]
        assert abs(x - target) < 1e-6
        checked += 1
    assert checked >= 50
    assert set(np.unique(res.label).tolist()) <= {-1, 0, 2}


def test_basin_boundary_is_the_unstable_fixed_point():
    # The map is increasing for w > 0, so orbits never cross a fixed point: in the bistable
    # window a start below the unstable point goes to the lower attractor, above it upper.
    w = 5.0
    res = basins(w, (-2.62, -2.38), (-3.0, 3.0), n_b=25, n_x0=121, steps=2000)
    xu = res.fixed.x[:, 1]
    assert np.all(np.isfinite(xu))
    below = res.x0[:, None] < xu[None, :] - 1e-3
    above = res.x0[:, None] > xu[None, :] + 1e-3
    assert np.all(res.label[below] == 0)
    assert np.all(res.label[above] == 2)
    # Outside the window there is a single attractor whatever x0 is.
    outside = basins(w, (-4.0, -2.7), (-5.0, 5.0), n_b=20, n_x0=20, steps=300)
    assert np.all(outside.label == 0)


def test_perturbation_pairs_basin_boundary_vs_fold():
    eps = 1e-3
    pairs = {p.name: p for p in perturbation_pairs(5.0, eps=eps)}
    tr = compare_pairs(list(pairs.values()), w=5.0, steps=100)
    names = list(pairs)
    gap = {n: tr.final_gap(i) for i, n in enumerate(names)}
    # A 2e-3 change across the basin boundary moves x_T by O(1) ...
    assert gap["x0_boundary"] > 3.0
    assert gap["b_boundary"] > 3.0
    # ... while crossing the fold does not, at this horizon.
    assert gap["fold_other_basin"] < 10 * eps
    assert gap["fold_slow_passage"] < 0.5
    # The slow passage ends: at a longer horizon the orbit has left for the lower attractor.
    long = compare_pairs([pairs["fold_slow_passage"]], w=5.0, steps=600)
    assert long.final_gap(0) > 3.0
    # Each pair really is a small change.
    for p in pairs.values():
        assert abs(p.b[1] - p.b[0]) <= 2 * eps + 1e-15
        assert abs(p.x0[1] - p.x0[0]) <= 2 * eps + 1e-15


def test_trajectories_shape_and_values():
    tr = trajectories(5.0, [-2.5, -2.4], 0.0, steps=10)
    assert tr.x.shape == (2, 11)
    assert np.allclose(tr.x[:, 0], 0.0)
    assert np.allclose(tr.x[:, 1], 5.0 * 0.5 + np.array([-2.5, -2.4]))


@pytest.mark.parametrize("call", [
    lambda: basins(5.0, x0_range=(2.0, 1.0)),
    lambda: basins(5.0, n_b=0),
    lambda: basins(5.0, steps=0),
    lambda: trajectories(5.0, [], [], steps=5),
    lambda: trajectories(5.0, [0.0, 1.0, 2.0], [0.0, 1.0], steps=5),
    lambda: perturbation_pairs(3.0),
    lambda: perturbation_pairs(5.0, b=0.0),
])
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
