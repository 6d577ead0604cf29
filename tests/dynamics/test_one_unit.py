import csv
import math

import numpy as np
import pytest

from bptt.dynamics import (
    basins,
    bifurcation,
    cliff_demo,
    compare_pairs,
    critical_points,
    descent_trajectory,
    error_surface,
    fixed_points,
    fold_points,
    iterate,
    linear_derivatives,
    linear_iterate,
    loss_and_grad,
    perturbation_pairs,
    trajectories,
)
from bptt.dynamics.one_unit import activation


def _g(w, b, x, unit):
    u = activation(unit)
    return w * u.f(x) + b - x


def _dg(w, x, unit):
    return w * activation(unit).df(x) - 1.0


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------------------
# Folds and fixed points
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Basins and trajectories
# ---------------------------------------------------------------------------


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


def test_iterate_matches_loop():
    x = iterate(5.0, -2.5, 0.3, 25)
    y = 0.3
    for _ in range(25):
        y = 5.0 * _sigmoid(y) - 2.5
    assert float(x) == pytest.approx(y, abs=1e-13)


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


# ---------------------------------------------------------------------------
# Error surface, gradients, clipping
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Linear case
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("w,x0,t", [(0.9, 1.3, 20), (1.1, -0.7, 15), (-1.05, 2.0, 9),
                                    (0.5, 1.0, 2), (2.0, 1.0, 1), (1.7, 0.4, 0)])
def test_linear_derivatives_finite_differences(w, x0, t):
    d = linear_derivatives(w, x0, t)
    assert float(d.x) == pytest.approx(float(linear_iterate(w, x0, t)), rel=1e-13, abs=1e-15)
    h = 1e-5
    fp = float(linear_iterate(w + h, x0, t))
    fm = float(linear_iterate(w - h, x0, t))
    f0 = float(linear_iterate(w, x0, t))
    assert float(d.dx_dw) == pytest.approx((fp - fm) / (2 * h), rel=1e-7, abs=1e-8)
    assert float(d.d2x_dw2) == pytest.approx((fp - 2 * f0 + fm) / h ** 2, rel=1e-4, abs=1e-4)
    assert float(d.dx_dw) == pytest.approx(t * w ** (t - 1) * x0 if t else 0.0, rel=1e-14)


def test_linear_derivatives_match_autograd():
    torch = pytest.importorskip("torch")
    for w0, x0, t in [(0.95, 1.2, 30), (1.05, -0.5, 25), (-0.8, 3.0, 7)]:
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        x = torch.tensor(x0, dtype=torch.float64)
        for _ in range(t):
            x = w * x
        (g1,) = torch.autograd.grad(x, w, create_graph=True)
        (g2,) = torch.autograd.grad(g1, w)
        d = linear_derivatives(w0, x0, t)
        assert float(d.x) == pytest.approx(x.item(), rel=1e-13)
        assert float(d.dx_dw) == pytest.approx(g1.item(), rel=1e-12)
        assert float(d.d2x_dw2) == pytest.approx(g2.item(), rel=1e-12)


def test_linear_derivatives_vectorised_and_ratio():
    w = np.array([0.5, 0.9, 1.1, 2.0])
    d = linear_derivatives(w, 1.0, 10)
    assert d.dx_dw.shape == (4,)
    # Curvature over gradient is (t - 1) / w.
    assert np.allclose(d.d2x_dw2 / d.dx_dw, 9.0 / w, rtol=1e-13)
    z = linear_derivatives(0.0, 1.0, 1)
    assert float(z.dx_dw) == 1.0 and float(z.d2x_dw2) == 0.0


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda: bifurcation(unit="relu"),
    lambda: fold_points(5.0, "Sigmoid"),
    lambda: bifurcation(5.0, (-1.0, -1.0)),
    lambda: bifurcation(5.0, (0.0, -5.0)),
    lambda: bifurcation(5.0, (float("nan"), 0.0)),
    lambda: bifurcation(5.0, (-5.0,)),
    lambda: bifurcation(5.0, (-5.0, 0.0), n=1),
    lambda: bifurcation(float("inf")),
    lambda: basins(5.0, x0_range=(2.0, 1.0)),
    lambda: basins(5.0, n_b=0),
    lambda: basins(5.0, steps=0),
    lambda: trajectories(5.0, [], [], steps=5),
    lambda: trajectories(5.0, [0.0, 1.0, 2.0], [0.0, 1.0], steps=5),
    lambda: perturbation_pairs(3.0),
    lambda: perturbation_pairs(5.0, b=0.0),
    lambda: error_surface((1.0, 1.0), (-1.0, 0.0)),
    lambda: error_surface(unit="linear"),
    lambda: descent_trajectory(5.0, -3.0, lr=0.0, n_steps=3),
    lambda: descent_trajectory(5.0, -3.0, lr=0.1, n_steps=3, clip_threshold=-1.0),
    lambda: descent_trajectory(5.0, -3.0, lr=0.1, n_steps=-1),
    lambda: linear_derivatives(1.0, 1.0, -1),
    lambda: linear_derivatives(1.0, 1.0, 2.5),
])
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def test_plots_write_png_svg_csv(tmp_path):
    from bptt.dynamics import plots

    written = []
    written += plots.plot_bifurcation(bifurcation(5.0, n=101), tmp_path / "bif")
    written += plots.plot_basins(basins(5.0, n_b=30, n_x0=30, steps=100), tmp_path / "bas")
    written += plots.plot_trajectories(compare_pairs(perturbation_pairs(), steps=50),
                                       tmp_path / "traj")
    written += plots.plot_cliff(cliff_demo(n_w=40, n_b=30, n_steps=40), tmp_path / "sub" / "cliff")
    suffixes = sorted(p.name for p in written)
    assert suffixes == sorted(["bif.png", "bif.svg", "bif.csv", "bas.png", "bas.svg", "bas.csv",
                               "traj.png", "traj.svg", "traj.csv", "cliff.png", "cliff.svg",
                               "cliff.csv", "cliff_paths.csv"])
    for p in written:
        assert p.exists() and p.stat().st_size > 0
    assert (tmp_path / "bif.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "bif.csv") as fh:
        rows = list(csv.DictReader(fh))
    folds = [r for r in rows if r["kind"] == "fold"]
    assert len(folds) == 2
    pts = [r for r in rows if r["kind"] == "fixed_point"]
    b = np.array([float(r["b"]) for r in pts])
    x = np.array([float(r["x"]) for r in pts])
    assert np.max(np.abs(_g(5.0, b, x, "sigmoid"))) < 1e-9
    with open(tmp_path / "sub" / "cliff_paths.csv") as fh:
        assert next(csv.reader(fh))[:4] == ["path", "iteration", "w", "b"]
