"""Fixed points, folds and the bifurcation diagram of the one-unit map (§2.2)."""

import math

import numpy as np
import pytest

from bptt.dynamics import (
    activation,
    bifurcation,
    critical_points,
    fixed_points,
    fold_points,
)


def _g(w, b, x, unit):
    u = activation(unit)
    return w * u.f(x) + b - x


def _dg(w, x, unit):
    return w * activation(unit).df(x) - 1.0


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("unit,w", [("sigmoid", 4.2), ("sigmoid", 5.0), ("sigmoid", 8.0),
                                    ("sigmoid", 30.0), ("sigmoid", 1e4), ("tanh", 1.2),
                                    ("tanh", 5.0), ("tanh", 200.0)])
def test_folds_are_double_roots(unit, w):
    folds = fold_points(w, unit)
    assert len(folds) == 2
    assert folds[0].b < folds[1].b
    for f in folds:
        assert abs(_g(w, f.b, f.x, unit)) < 1e-10
        assert abs(_dg(w, f.x, unit)) < 1e-10
    xc = critical_points(w, unit)
    assert np.allclose(np.sort([f.x for f in folds]), xc, rtol=0, atol=0)
    # Symmetry of the units: sigma(-x) = 1 - sigma(x) gives b1 + b2 = -w; tanh is odd.
    total = folds[0].b + folds[1].b
    assert total == pytest.approx(-w if unit == "sigmoid" else 0.0, abs=1e-9 * (1 + w))


def test_doya_example_fold_values():
    # w = 5: sigma(1 - sigma) = 1/5 gives sigma = (1 +- sqrt(1/5)) / 2.
    s = (1 + math.sqrt(0.2)) / 2
    x = math.log(s / (1 - s))
    folds = fold_points(5.0)
    assert folds[0].x == pytest.approx(x, abs=1e-12)
    assert folds[0].b == pytest.approx(x - 5 * s, abs=1e-12)
    assert folds[0].vanishing == "upper" and folds[1].vanishing == "lower"
    assert folds[0].b == pytest.approx(-2.65561, abs=1e-5)
    assert folds[1].b == pytest.approx(-2.34439, abs=1e-5)


@pytest.mark.parametrize("unit,w", [("sigmoid", 5.0), ("sigmoid", 12.0), ("tanh", 3.0)])
def test_number_of_fixed_points_goes_1_3_1_across_the_folds(unit, w):
    lo, hi = (f.b for f in fold_points(w, unit))
    for delta in (1e-3, 1e-2, 0.3):
        assert fixed_points(w, lo - delta, unit)[0].size == 1
        assert fixed_points(w, hi + delta, unit)[0].size == 1
    for b in np.linspace(lo, hi, 9)[1:-1]:
        x, stable = fixed_points(w, b, unit)
        assert x.size == 3
        assert stable.tolist() == [True, False, True]
    # On a bifurcation grid: one block of 3s, exactly between the folds.
    res = bifurcation(w, (lo - 1.0, hi + 1.0), n=401, unit=unit)
    three = res.n_fixed == 3
    assert set(res.n_fixed.tolist()) == {1, 3}
    assert np.all(res.b[three] > lo) and np.all(res.b[three] < hi)
    assert np.all(res.n_fixed[(res.b < lo) | (res.b > hi)] == 1)
    idx = np.flatnonzero(three)
    assert np.all(np.diff(idx) == 1)


def test_fold_vanishing_sides():
    w = 5.0
    up, low = fold_points(w)
    x_left = fixed_points(w, up.b - 1e-3)[0]
    x_right = fixed_points(w, low.b + 1e-3)[0]
    # Left of the "upper" fold only the lower attractor (below the fold state) is left.
    assert x_left.size == 1 and x_left[0] < critical_points(w)[0]
    assert x_right.size == 1 and x_right[0] > critical_points(w)[1]


@pytest.mark.parametrize("unit,w,b_range", [("sigmoid", 5.0, (-4.0, -1.0)),
                                            ("sigmoid", 9.0, (-8.0, -1.0)),
                                            ("sigmoid", -7.0, (-2.0, 9.0)),
                                            ("tanh", 2.5, (-3.0, 3.0))])
def test_fixed_points_are_roots_and_stability_matches_multiplier(unit, w, b_range):
    res = bifurcation(w, b_range, n=301, unit=unit)
    b, x, branch, stable = res.points()
    assert b.size >= res.b.size
    assert np.max(np.abs(_g(w, b, x, unit))) < 1e-9
    mult = w * activation(unit).df(x)
    assert np.array_equal(stable, np.abs(mult) < 1.0)
    # Branches are the monotone pieces of g cut at the critical points.
    assert np.array_equal(branch, np.searchsorted(res.critical_x, x))
    assert np.all(res.n_fixed >= 1)


def test_roots_are_found_very_close_to_a_fold():
    w = 5.0
    up = fold_points(w)[0]
    for delta in (1e-6, 1e-8):
        x, stable = fixed_points(w, up.b + delta)
        assert x.size == 3
        assert np.max(np.abs(_g(w, up.b + delta, x, "sigmoid"))) < 1e-12
        # The two merging roots are ~ sqrt(delta) apart around the fold state.
        assert abs(x[1] - up.x) < 10 * math.sqrt(delta)
        assert abs(x[2] - up.x) < 10 * math.sqrt(delta)


@pytest.mark.parametrize("unit,w", [("sigmoid", 4.0), ("sigmoid", 3.0), ("sigmoid", 0.0),
                                    ("sigmoid", -20.0), ("tanh", 1.0), ("tanh", 0.5),
                                    ("tanh", -3.0)])
def test_no_folds_for_small_w(unit, w):
    assert fold_points(w, unit) == ()
    assert critical_points(w, unit).size == 0
    res = bifurcation(w, (-10.0, 10.0), n=201, unit=unit)
    assert res.n_branches == 1
    assert np.all(res.n_fixed == 1)


def test_negative_w_flip_instability():
    # w = -10: a single fixed point, unstable where w sigma'(x*) < -1.
    res = bifurcation(-10.0, (-6.0, 16.0), n=221)
    x = res.x[:, 0]
    assert np.array_equal(res.stable[:, 0], np.abs(-10.0 * activation("sigmoid").df(x)) < 1)
    assert res.stable[:, 0].any() and (~res.stable[:, 0]).any()


@pytest.mark.parametrize("call", [
    lambda: bifurcation(unit="relu"),
    lambda: fold_points(5.0, "Sigmoid"),
    lambda: bifurcation(5.0, (-1.0, -1.0)),
    lambda: bifurcation(5.0, (0.0, -5.0)),
    lambda: bifurcation(5.0, (float("nan"), 0.0)),
    lambda: bifurcation(5.0, (-5.0,)),
    lambda: bifurcation(5.0, (-5.0, 0.0), n=1),
    lambda: bifurcation(float("inf")),
])
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
