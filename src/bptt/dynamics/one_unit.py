"""Dynamics of a single recurrent unit (Pascanu, Mikolov & Bengio 2013, §2.2-2.3).

The map studied throughout is

    x_t = F(x_{t-1}) = w * u(x_{t-1}) + b,

with ``u`` the logistic sigmoid (the paper's and Doya's example) or ``tanh``.
Fixed points are the roots of ``g(x) = w u(x) + b - x``; a fixed point is
stable when the multiplier ``|w u'(x*)|`` is below one.

``g'(x) = w u'(x) - 1`` vanishes at most at two points (``u'`` is unimodal),
called the critical points below.  Between consecutive critical points ``g``
is monotone, so each such interval ("branch") holds at most one fixed point;
a fold (saddle-node bifurcation) happens where a fixed point sits on a
critical point, i.e. where ``g(x) = g'(x) = 0``.

Everything here is float64 NumPy/SciPy; figures live in :mod:`.plots`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

__all__ = [
    "UNITS",
    "Fold",
    "Bifurcation",
    "Basins",
    "Trajectories",
    "PerturbationPair",
    "ErrorSurface",
    "DescentPath",
    "CliffDemo",
    "LinearDerivatives",
    "activation",
    "critical_points",
    "fold_points",
    "default_b_range",
    "default_basin_b_range",
    "fixed_points",
    "bifurcation",
    "iterate",
    "orbit",
    "basins",
    "trajectories",
    "perturbation_pairs",
    "compare_pairs",
    "loss_and_grad",
    "error_surface",
    "descent_trajectory",
    "cliff_demo",
    "linear_iterate",
    "linear_derivatives",
]


# ---------------------------------------------------------------------------
# Units and argument checks
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    d2f: Callable[[np.ndarray], np.ndarray]
    symbol: str


def _sig_d1(x):
    s = expit(x)
    return s * (1.0 - s)


def _sig_d2(x):
    s = expit(x)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def _tanh_d1(x):
    t = np.tanh(x)
    return 1.0 - t * t


def _tanh_d2(x):
    t = np.tanh(x)
    return -2.0 * t * (1.0 - t * t)


_UNITS: dict[str, _Unit] = {
    "sigmoid": _Unit("sigmoid", expit, _sig_d1, _sig_d2, r"\sigma"),
    "tanh": _Unit("tanh", np.tanh, _tanh_d1, _tanh_d2, r"\tanh"),
}

UNITS: tuple[str, ...] = tuple(_UNITS)


def activation(unit: str) -> _Unit:
    """The unit named ``unit`` (``"sigmoid"`` or ``"tanh"``) with its first two derivatives."""
    if not isinstance(unit, str) or unit not in _UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    return _UNITS[unit]


def _finite(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _range(r, name: str) -> tuple[float, float]:
    try:
        lo, hi = r
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {r!r}") from None
    lo = _finite(lo, f"{name}[0]")
    hi = _finite(hi, f"{name}[1]")
    if not lo < hi:
        raise ValueError(f"{name} must satisfy low < high, got ({lo}, {hi})")
    return lo, hi


def _count(n, name: str, minimum: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return int(n)


def _positive(value, name: str) -> float:
    v = _finite(value, name)
    if v <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


# ---------------------------------------------------------------------------
# Critical points, folds and fixed points
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """A fold (saddle-node) point: at bias ``b`` the fixed point ``x`` is double.

    ``vanishing`` names the stable branch ("lower" or "upper") that merges with
    the unstable one here and disappears on the far side of ``b``.
    """

    b: float
    x: float
    vanishing: str


def critical_points(w: float, unit: str = "sigmoid") -> np.ndarray:
    """Sorted solutions of ``w u'(x) = 1`` (empty unless there are two distinct ones).

    Sigmoid: ``s(1-s) = 1/w`` with ``s = sigma(x)``, so
    ``s = (1 +- sqrt(1 - 4/w)) / 2`` and ``x = log(s / (1-s))``; needs ``w > 4``.
    Tanh: ``1 - tanh(x)^2 = 1/w``, so ``x = +-artanh(sqrt(1 - 1/w))``; needs ``w > 1``.
    """
    w = _finite(w, "w")
    u = activation(unit)
    if u.name == "sigmoid":
        if w <= 4.0:
            return np.empty(0)
        r = math.sqrt(1.0 - 4.0 / w)
        s_small = (2.0 / w) / (1.0 + r)  # (1 - r)/2 without cancellation
        x = math.log(s_small) - math.log1p(-s_small)
        return np.array([x, -x])
    if w <= 1.0:
        return np.empty(0)
    t = math.sqrt(1.0 - 1.0 / w)
    one_minus_t = (1.0 / w) / (1.0 + t)
    x = 0.5 * (math.log1p(t) - math.log(one_minus_t))
    return np.array([-x, x])


def fold_points(w: float, unit: str = "sigmoid") -> tuple[Fold, ...]:
    """Exact fold points of ``x -> w u(x) + b``, sorted by ``b``.

    At a critical point ``x_c`` (``w u'(x_c) = 1``) the bias that makes ``x_c``
    a fixed point is ``b = x_c - w u(x_c)``.  Empty when ``w <= 4`` (sigmoid)
    or ``w <= 1`` (tanh): then ``g`` is monotone and there is exactly one
    fixed point for every ``b``.
    """
    u = activation(unit)
    xc = critical_points(w, unit)
    folds = []
    for i, x in enumerate(xc):
        b = float(x - w * u.f(x))
        # The critical point with the larger x joins the middle and upper branches.
        folds.append(Fold(b=b, x=float(x), vanishing="upper" if i == len(xc) - 1 else "lower"))
    return tuple(sorted(folds, key=lambda f: f.b))


def default_b_range(w: float, unit: str = "sigmoid") -> tuple[float, float]:
    """An integer-rounded bias range containing both folds with some margin.

    With no folds, a window of width 6 centred on the bias that puts the
    fixed point at the inflection point of the unit.
    """
    u = activation(unit)
    folds = fold_points(w, unit)
    if folds:
        lo, hi = folds[0].b, folds[-1].b
        margin = max(1.0, 0.5 * (hi - lo))
        return float(math.floor(lo - margin)), float(math.ceil(hi + margin))
    centre = float(-w * u.f(0.0))
    return float(math.floor(centre - 3.0)), float(math.ceil(centre + 3.0))


def _state_bounds(w: float, b_lo: float, b_hi: float, unit: _Unit) -> tuple[float, float]:
    """An interval that holds every fixed point for every b in [b_lo, b_hi], with g > 0 at
    its left end and g < 0 at its right end."""
    if unit.name == "sigmoid":
        lo, hi = b_lo + min(0.0, w), b_hi + max(0.0, w)
    else:
        lo, hi = b_lo - abs(w), b_hi + abs(w)
    return lo - 1.0, hi + 1.0


def _roots_one_b(w: float, b: float, unit: _Unit, grid: np.ndarray, gvals: np.ndarray,
                 crit: np.ndarray) -> np.ndarray:
    """Roots of g for a single b, from sign changes of g on ``grid`` refined by brentq."""

    def g(x: float) -> float:
        return float(w * unit.f(x) + b - x)

    roots: list[float] = []
    zero_nodes = np.flatnonzero(gvals == 0.0)
    roots.extend(float(grid[j]) for j in zero_nodes)
    changes = np.flatnonzero(gvals[:-1] * gvals[1:] < 0.0)
    for j in changes:
        a, c = float(grid[j]), float(grid[j + 1])
        fa, fc = g(a), g(c)
        if fa == 0.0:
            roots.append(a)
        elif fc == 0.0:
            roots.append(c)
        elif fa * fc < 0.0:
            roots.append(brentq(g, a, c, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200))
    # A double root exactly at a fold touches zero without a sign change.
    scale = 1.0 + abs(w) + abs(b)
    for xc in crit:
        if abs(g(float(xc))) <= 1e-13 * scale:
            roots.append(float(xc))
    if not roots:
        return np.empty(0)
    roots_arr = np.sort(np.asarray(roots, dtype=float))
    keep = np.concatenate(([True], np.diff(roots_arr) > 1e-12 * (1.0 + np.abs(roots_arr[1:]))))
    return roots_arr[keep]


def _grid_with_nodes(lo: float, hi: float, n_grid: int, nodes: np.ndarray) -> np.ndarray:
    grid = np.linspace(lo, hi, n_grid)
    inside = nodes[(nodes > lo) & (nodes < hi)]
    return np.unique(np.concatenate((grid, inside)))


def fixed_points(w: float, b: float, unit: str = "sigmoid",
                 n_grid: int = 2001) -> tuple[np.ndarray, np.ndarray]:
    """Fixed points of ``x -> w u(x) + b`` for one ``b``: ``(x_star, stable)``, sorted.

    Roots of ``g`` are bracketed by sign changes on a uniform grid (to which
    the critical points of ``g`` are added, so that every monotone piece of
    ``g`` is bracketed separately) and refined with Brent's method.
    ``stable[i]`` is ``|w u'(x_star[i])| < 1``.
    """
    u = activation(unit)
    w = _finite(w, "w")
    b = _finite(b, "b")
    n_grid = _count(n_grid, "n_grid", 3)
    crit = critical_points(w, unit)
    lo, hi = _state_bounds(w, b, b, u)
    grid = _grid_with_nodes(lo, hi, n_grid, crit)
    gvals = w * u.f(grid) + b - grid
    x = _roots_one_b(w, b, u, grid, gvals, crit)
    return x, np.abs(w * u.df(x)) < 1.0


@dataclass(frozen=True)
class Bifurcation:
    """Fixed points of ``x -> w u(x) + b`` over a range of ``b``.

    ``x[i, k]`` is the fixed point on branch ``k`` at bias ``b[i]`` (NaN when
    that branch has none); branches are the monotone pieces of ``g`` cut at
    ``critical_x``, so with folds branch 0 is the lower stable branch, branch
    1 the unstable middle one and branch 2 the upper stable one.
    ``multiplier`` is ``w u'(x)``, ``stable`` is ``|multiplier| < 1``.
    """

    w: float
    unit: str
    b: np.ndarray
    x: np.ndarray
    stable: np.ndarray
    multiplier: np.ndarray
    n_fixed: np.ndarray
    folds: tuple[Fold, ...]
    critical_x: np.ndarray

    @property
    def n_branches(self) -> int:
        return self.x.shape[1]

    def branch_names(self) -> tuple[str, ...]:
        if self.n_branches == 3:
            return ("lower", "middle", "upper")
        return tuple(f"branch {k}" for k in range(self.n_branches))

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Flat view ``(b, x, branch, stable)`` with one entry per fixed point."""
        i, k = np.nonzero(np.isfinite(self.x))
        return self.b[i], self.x[i, k], k, self.stable[i, k]


def bifurcation(w: float = 5.0, b_range: Sequence[float] | None = None, n: int = 801,
                unit: str = "sigmoid", n_grid: int = 2001) -> Bifurcation:
    """Bifurcation diagram of ``x_t = w u(x_{t-1}) + b`` for ``b`` on a uniform grid.

    ``b_range=None`` picks :func:`default_b_range` (``(-4, -1)`` for Doya's
    ``w = 5`` sigmoid unit, containing both folds at b = -2.656 and -2.344).
    """
    u = activation(unit)
    w = _finite(w, "w")
    b_lo, b_hi = _range(default_b_range(w, unit) if b_range is None else b_range, "b_range")
    n = _count(n, "n", 2)
    n_grid = _count(n_grid, "n_grid", 3)
    crit = critical_points(w, unit)
    b = np.linspace(b_lo, b_hi, n)
    lo, hi = _state_bounds(w, b_lo, b_hi, u)
    grid = _grid_with_nodes(lo, hi, n_grid, crit)
    fgrid = w * u.f(grid)
    k = len(crit) + 1
    x = np.full((n, k), np.nan)
    for i, bi in enumerate(b):
        gvals = fgrid + bi - grid
        roots = _roots_one_b(w, float(bi), u, grid, gvals, crit)
        branch = np.searchsorted(crit, roots, side="left")
        x[i, branch] = roots
    finite = np.isfinite(x)
    mult = np.where(finite, w * u.df(np.where(finite, x, 0.0)), np.nan)
    stable = finite & (np.abs(np.where(finite, mult, np.inf)) < 1.0)
    return Bifurcation(w=w, unit=u.name, b=b, x=x, stable=stable, multiplier=mult,
                       n_fixed=finite.sum(axis=1), folds=fold_points(w, unit), critical_x=crit)


# ---------------------------------------------------------------------------
# Iteration, basins of attraction, trajectories
# ---------------------------------------------------------------------------


def iterate(w, b, x0, steps: int, unit: str = "sigmoid") -> np.ndarray:
    """``x_steps`` of the map, broadcasting ``w``, ``b`` and ``x0`` against each other."""
    u = activation(unit)
    steps = _count(steps, "steps", 0)
    w, b, x = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, b, x0)))
    x = x.copy()
    for _ in range(steps):
        x = w * u.f(x) + b
    return x


def orbit(w, b, x0, steps: int, unit: str = "sigmoid") -> np.ndarray:
    """All states ``x_0..x_steps``; the time axis is the last one."""
    u = activation(unit)
    steps = _count(steps, "steps", 0)
    w, b, x = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, b, x0)))
    out = np.empty(x.shape + (steps + 1,))
    out[..., 0] = x
    for t in range(1, steps + 1):
        out[..., t] = w * u.f(out[..., t - 1]) + b
    return out


@dataclass(frozen=True)
class Basins:
    """Which attractor each ``(b, x0)`` reaches after ``steps`` iterations.

    ``label[j, i]`` (``x0[j]``, ``b[i]``) is the branch index of the stable
    fixed point nearest to ``x_final[j, i]`` when that distance is at most
    ``tol``, else -1 (not settled: slow passage near a fold, or no stable
    fixed point at all).  ``fixed`` holds the fixed points on the same ``b``
    grid (the unstable middle branch is the basin boundary).
    """

    w: float
    unit: str
    b: np.ndarray
    x0: np.ndarray
    steps: int
    tol: float
    x_final: np.ndarray
    label: np.ndarray
    fixed: Bifurcation

    def label_names(self) -> dict[int, str]:
        names = {-1: "not settled"}
        names.update(enumerate(self.fixed.branch_names()))
        return names


def default_basin_b_range(w: float, unit: str = "sigmoid") -> tuple[float, float]:
    """A bias window around the bistable region, wide enough to show both folds clearly
    (``(-3.1, -1.9)`` for ``w = 5`` sigmoid); :func:`default_b_range` without folds."""
    folds = fold_points(w, unit)
    if not folds:
        return default_b_range(w, unit)
    lo, hi = folds[0].b, folds[-1].b
    pad = 1.2 * (hi - lo)
    return math.floor((lo - pad) * 10.0) / 10.0, math.ceil((hi + pad) * 10.0) / 10.0


def _default_x0_range(w: float, b_range: tuple[float, float], unit: _Unit) -> tuple[float, float]:
    lo, hi = _state_bounds(w, b_range[0], b_range[1], unit)
    return float(math.floor(lo)), float(math.ceil(hi))


def basins(w: float = 5.0, b_range: Sequence[float] | None = None,
           x0_range: Sequence[float] | None = None, n_b: int = 301, n_x0: int = 301,
           steps: int = 500, unit: str = "sigmoid", tol: float = 1e-6) -> Basins:
    """Basins of attraction in the ``(b, x0)`` plane, iterating the whole grid at once."""
    u = activation(unit)
    w = _finite(w, "w")
    b_rng = _range(default_basin_b_range(w, unit) if b_range is None else b_range, "b_range")
    x_rng = _range(_default_x0_range(w, b_rng, u) if x0_range is None else x0_range, "x0_range")
    n_b = _count(n_b, "n_b", 2)
    n_x0 = _count(n_x0, "n_x0", 2)
    steps = _count(steps, "steps", 1)
    tol = _positive(tol, "tol")
    fixed = bifurcation(w, b_rng, n=n_b, unit=unit)
    b = fixed.b
    x0 = np.linspace(x_rng[0], x_rng[1], n_x0)
    x_final = iterate(w, b[None, :], x0[:, None], steps, unit)
    attractors = np.where(fixed.stable, fixed.x, np.nan)  # (n_b, k)
    dist = np.abs(x_final[:, :, None] - attractors[None, :, :])
    dist = np.where(np.isnan(dist), np.inf, dist)
    label = np.argmin(dist, axis=2)
    settled = np.min(dist, axis=2) <= tol
    label = np.where(settled, label, -1)
    return Basins(w=w, unit=u.name, b=b, x0=x0, steps=steps, tol=tol, x_final=x_final,
                  label=label, fixed=fixed)


@dataclass(frozen=True)
class Trajectories:
    """Orbits ``x[r, t]`` (``t = 0..steps``) for parameters ``b[r]`` and starts ``x0[r]``.

    Rows sharing ``group[r]`` belong together (one panel per group when
    plotted); ``titles[g]`` describes group ``g`` and ``labels[r]`` row ``r``.
    """

    w: float
    unit: str
    b: np.ndarray
    x0: np.ndarray
    x: np.ndarray
    group: np.ndarray
    titles: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def steps(self) -> int:
        return self.x.shape[1] - 1

    def final_gap(self, g: int) -> float:
        """Largest ``|x_T|`` difference between the rows of group ``g``."""
        xt = self.x[self.group == g, -1]
        return float(xt.max() - xt.min())


def trajectories(w: float, b_values, x0_values, steps: int = 100, unit: str = "sigmoid",
                 labels: Sequence[str] | None = None, title: str = "") -> Trajectories:
    """Orbits for paired ``b_values`` and ``x0_values`` (broadcast to a common 1-D length)."""
    u = activation(unit)
    w = _finite(w, "w")
    b, x0 = np.broadcast_arrays(np.atleast_1d(np.asarray(b_values, dtype=float)),
                                np.atleast_1d(np.asarray(x0_values, dtype=float)))
    if b.ndim != 1 or b.size == 0:
        raise ValueError("b_values and x0_values must broadcast to a non-empty 1-D array")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(x0))):
        raise ValueError("b_values and x0_values must be finite")
    steps = _count(steps, "steps", 1)
    if labels is None:
        labels = tuple(f"b={bi:.6g}, x0={xi:.6g}" for bi, xi in zip(b, x0))
    elif len(labels) != b.size:
        raise ValueError(f"expected {b.size} labels, got {len(labels)}")
    return Trajectories(w=w, unit=u.name, b=b.copy(), x0=x0.copy(), x=orbit(w, b, x0, steps, unit),
                        group=np.zeros(b.size, dtype=int), titles=(title,), labels=tuple(labels))


@dataclass(frozen=True)
class PerturbationPair:
    """Two runs of the map that differ by a small change of ``b`` or of ``x0``."""

    name: str
    description: str
    b: tuple[float, float]
    x0: tuple[float, float]


def perturbation_pairs(w: float = 5.0, unit: str = "sigmoid", eps: float = 1e-3,
                       b: float | None = None) -> tuple[PerturbationPair, ...]:
    """Pairs of nearby settings around a basin boundary and around a fold.

    * ``x0_boundary``: ``b`` inside the bistable window, ``x0 = x_u -+ eps``
      on both sides of the unstable fixed point ``x_u``: the orbits go to
      different attractors, so ``x_T`` changes by O(1) for an ``eps`` change.
    * ``b_boundary``: ``x0 = x_u(b)`` fixed, ``b -+ eps``: moving the boundary
      across the state has the same effect.
    * ``fold_other_basin``: ``b`` crosses the fold where the upper attractor
      vanishes while the state sits on the lower attractor: ``x_T`` changes by
      O(eps) only.
    * ``fold_slow_passage``: same fold, state on the vanishing upper attractor.
      Past the fold the orbit creeps through the bottleneck left by the
      attractor for ~ pi / sqrt(a eps) steps (``a = |w u''(x_c)| / 2``), so at a
      horizon shorter than that ``x_T`` still barely changes.

    ``b`` defaults to the middle of the bistable window.
    """
    u = activation(unit)
    w = _finite(w, "w")
    eps = _positive(eps, "eps")
    folds = fold_points(w, unit)
    if not folds:
        raise ValueError(f"w={w} gives no folds for unit {u.name!r}: the map has a single "
                         "fixed point for every b and no basin boundary")
    b_lo, b_hi = folds[0].b, folds[-1].b
    if b is None:
        b = 0.5 * (b_lo + b_hi)
    b = _finite(b, "b")
    if not b_lo + eps < b < b_hi - eps:
        raise ValueError(f"b={b} must lie inside the bistable window ({b_lo:.6g}, {b_hi:.6g}) "
                         f"by more than eps={eps}")
    x, stable = fixed_points(w, b, unit)
    if x.size != 3:
        raise ValueError(f"expected three fixed points at b={b}, found {x.size}")
    x_u = float(x[1])
    up_fold = next(f for f in folds if f.vanishing == "upper")
    b_keep = up_fold.b + eps  # upper attractor still exists
    b_gone = up_fold.b - eps  # only the lower attractor is left
    x_keep, _ = fixed_points(w, b_keep, unit)
    lower_attr, upper_attr = float(x_keep[0]), float(x_keep[-1])
    a = 0.5 * abs(w * float(u.d2f(up_fold.x)))
    passage = math.pi / math.sqrt(a * eps)
    return (
        PerturbationPair("x0_boundary",
                         f"x0 across the basin boundary (b={b:.3f}, x0=x_u{chr(0x2213)}{eps:g})",
                         (b, b), (x_u - eps, x_u + eps)),
        PerturbationPair("b_boundary",
                         f"b across the basin boundary (x0=x_u={x_u:.3f}, b{chr(0x2213)}{eps:g})",
                         (b - eps, b + eps), (x_u, x_u)),
        PerturbationPair("fold_other_basin",
                         f"b across the fold b={up_fold.b:.3f}, state in the lower basin",
                         (b_gone, b_keep), (lower_attr, lower_attr)),
        PerturbationPair("fold_slow_passage",
                         f"b across the fold b={up_fold.b:.3f}, state on the vanishing attractor\n"
                         f"(slow passage past the fold: ~{passage:.0f} steps)",
                         (b_gone, b_keep), (upper_attr, upper_attr)),
    )


def compare_pairs(pairs: Sequence[PerturbationPair], w: float = 5.0, steps: int = 100,
                  unit: str = "sigmoid") -> Trajectories:
    """Orbits for every member of every pair; group ``g`` is ``pairs[g]``."""
    if len(pairs) == 0:
        raise ValueError("need at least one pair")
    b = np.array([v for p in pairs for v in p.b], dtype=float)
    x0 = np.array([v for p in pairs for v in p.x0], dtype=float)
    labels = []
    for p in pairs:
        for bi, xi in zip(p.b, p.x0):
            labels.append(f"b={bi:.6f}, x0={xi:.6f}")
    t = trajectories(w, b, x0, steps=steps, unit=unit, labels=labels)
    return Trajectories(w=t.w, unit=t.unit, b=t.b, x0=t.x0, x=t.x,
                        group=np.repeat(np.arange(len(pairs)), 2),
                        titles=tuple(p.description for p in pairs), labels=t.labels)


# ---------------------------------------------------------------------------
# Error surface of Figure 6 and gradient descent with norm clipping
# ---------------------------------------------------------------------------


def loss_and_grad(w, b, steps: int = 50, x0: float = 0.5, target: float = 0.7,
                  unit: str = "sigmoid") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``E = (u(x_T) - target)^2`` and its exact gradient by forward-mode recursion.

    With ``x_t = w u(x_{t-1}) + b``:
    ``dx_t/dw = u(x_{t-1}) + w u'(x_{t-1}) dx_{t-1}/dw``,
    ``dx_t/db = 1 + w u'(x_{t-1}) dx_{t-1}/db`` (both zero at ``t = 0``), and
    ``dE/dtheta = 2 (u(x_T) - target) u'(x_T) dx_T/dtheta``.
    Broadcasts over ``w`` and ``b``; returns ``(E, dE/dw, dE/db, x_T)``.
    """
    u = activation(unit)
    steps = _count(steps, "steps", 1)
    x0 = _finite(x0, "x0")
    target = _finite(target, "target")
    w, b = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(b, dtype=float))
    x = np.full(w.shape, x0)
    dw = np.zeros(w.shape)
    db = np.zeros(w.shape)
    for _ in range(steps):
        f = u.f(x)
        jac = w * u.df(x)
        dw = f + jac * dw
        db = 1.0 + jac * db
        x = w * f + b
    y = u.f(x)
    c = 2.0 * (y - target) * u.df(x)
    return (y - target) ** 2, c * dw, c * db, x


@dataclass(frozen=True)
class ErrorSurface:
    """``E[j, i] = E(w[i], b[j])`` with exact gradients on the same grid."""

    w: np.ndarray
    b: np.ndarray
    E: np.ndarray
    grad_w: np.ndarray
    grad_b: np.ndarray
    steps: int
    x0: float
    target: float
    unit: str

    @property
    def grad_norm(self) -> np.ndarray:
        return np.hypot(self.grad_w, self.grad_b)


DEFAULT_W_RANGE = (2.0, 8.0)
DEFAULT_B_RANGE = (-5.0, -1.0)


def error_surface(w_range: Sequence[float] = DEFAULT_W_RANGE,
                  b_range: Sequence[float] = DEFAULT_B_RANGE, n_w: int = 401, n_b: int = 401,
                  steps: int = 50, x0: float = 0.5, target: float = 0.7,
                  unit: str = "sigmoid") -> ErrorSurface:
    """Figure 6's error surface: ``E = (u(x_steps) - target)^2`` over a ``(w, b)`` grid.

    For ``w`` above about 4.25 the starting state 0.5 can lie on the unstable
    fixed point; the curve of such ``(w, b)`` is a basin boundary, across
    which ``x_50`` jumps between attractors and ``E`` has a thin, tall wall.
    """
    u = activation(unit)
    w_lo, w_hi = _range(w_range, "w_range")
    b_lo, b_hi = _range(b_range, "b_range")
    n_w = _count(n_w, "n_w", 2)
    n_b = _count(n_b, "n_b", 2)
    w = np.linspace(w_lo, w_hi, n_w)
    b = np.linspace(b_lo, b_hi, n_b)
    E, gw, gb, _ = loss_and_grad(w[None, :], b[:, None], steps, x0, target, unit)
    return ErrorSurface(w=w, b=b, E=E, grad_w=gw, grad_b=gb, steps=steps, x0=float(x0),
                        target=float(target), unit=u.name)


@dataclass(frozen=True)
class DescentPath:
    """Gradient descent on ``E(w, b)``.

    ``params[k] = (w_k, b_k)`` for ``k = 0..n_steps``; ``grad_norms[k]`` is
    ``||dE/d(w,b)||`` at ``params[k]`` (``k < n_steps``); ``step_sizes[k]`` is
    the length of the update from ``params[k]``; ``clipped[k]`` tells whether
    that update was rescaled.
    """

    params: np.ndarray
    losses: np.ndarray
    grad_norms: np.ndarray
    step_sizes: np.ndarray
    clipped: np.ndarray
    lr: float
    clip_threshold: float | None

    @property
    def label(self) -> str:
        if self.clip_threshold is None:
            return "plain gradient descent"
        return f"norm clipping, threshold {self.clip_threshold:g}"


def descent_trajectory(w0: float, b0: float, lr: float, n_steps: int,
                       clip_threshold: float | None = None, steps: int = 50, x0: float = 0.5,
                       target: float = 0.7, unit: str = "sigmoid") -> DescentPath:
    """Gradient descent on ``E``; with ``clip_threshold`` the gradient ``g`` is replaced by
    ``threshold * g / ||g||`` whenever ``||g|| >= threshold`` (Algorithm 1 of the paper),
    so no update is longer than ``lr * threshold``."""
    activation(unit)
    w = _finite(w0, "w0")
    b = _finite(b0, "b0")
    lr = _positive(lr, "lr")
    n_steps = _count(n_steps, "n_steps", 0)
    thr = None if clip_threshold is None else _positive(clip_threshold, "clip_threshold")
    params = np.empty((n_steps + 1, 2))
    losses = np.empty(n_steps + 1)
    norms = np.empty(n_steps)
    sizes = np.empty(n_steps)
    clipped = np.zeros(n_steps, dtype=bool)
    params[0] = (w, b)
    for k in range(n_steps + 1):
        E, gw, gb, _ = loss_and_grad(w, b, steps, x0, target, unit)
        losses[k] = float(E)
        if k == n_steps:
            break
        g = np.array([float(gw), float(gb)])
        norm = float(np.hypot(g[0], g[1]))
        norms[k] = norm
        if thr is not None and norm >= thr:
            g *= thr / norm
            clipped[k] = True
        w -= lr * g[0]
        b -= lr * g[1]
        params[k + 1] = (w, b)
        sizes[k] = lr * float(np.hypot(g[0], g[1]))
    return DescentPath(params=params, losses=losses, grad_norms=norms, step_sizes=sizes,
                       clipped=clipped, lr=lr, clip_threshold=thr)


@dataclass(frozen=True)
class CliffDemo:
    """The error surface with a plain and a clipped descent path from the same start."""

    surface: ErrorSurface
    unclipped: DescentPath
    clipped: DescentPath


DEFAULT_START = (5.2, -3.3)
DEFAULT_LR = 0.3
DEFAULT_CLIP = 1.0
DEFAULT_DESCENT_STEPS = 200


def cliff_demo(w0: float = DEFAULT_START[0], b0: float = DEFAULT_START[1],
               lr: float = DEFAULT_LR, n_steps: int = DEFAULT_DESCENT_STEPS,
               clip_threshold: float = DEFAULT_CLIP,
               w_range: Sequence[float] = DEFAULT_W_RANGE,
               b_range: Sequence[float] = DEFAULT_B_RANGE, n_w: int = 401, n_b: int = 401,
               steps: int = 50, x0: float = 0.5, target: float = 0.7,
               unit: str = "sigmoid") -> CliffDemo:
    """Figure 6: the surface plus plain and norm-clipped descent from ``(w0, b0)``.

    With the defaults (sigmoid unit) both paths descend from the high
    plateau to the wall, next to which the low-error valley runs, and zigzag
    across it.  At iteration 25 the plain path lands on the wall
    (``||grad E|| ~ 8e3``) and a single step throws it ~2.5e3 units away onto
    a flat plateau where the gradient is exactly zero; the clipped path takes
    steps of at most ``lr * threshold`` and follows the valley to low error.
    """
    kw = dict(steps=steps, x0=x0, target=target, unit=unit)
    surface = error_surface(w_range, b_range, n_w, n_b, **kw)
    plain = descent_trajectory(w0, b0, lr, n_steps, None, **kw)
    clip = descent_trajectory(w0, b0, lr, n_steps, clip_threshold, **kw)
    return CliffDemo(surface=surface, unclipped=plain, clipped=clip)


# ---------------------------------------------------------------------------
# Linear case
# ---------------------------------------------------------------------------


class LinearDerivatives(NamedTuple):
    """``x_t = w^t x0`` and its first two derivatives with respect to ``w``."""

    x: np.ndarray
    dx_dw: np.ndarray
    d2x_dw2: np.ndarray


def _check_t(t) -> int:
    return _count(t, "t", 0)


def linear_iterate(w, x0, t: int) -> np.ndarray:
    """``x_t`` of ``x_k = w x_{k-1}`` computed by iterating (no closed form)."""
    t = _check_t(t)
    w, x = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(x0, dtype=float))
    x = x.copy()
    for _ in range(t):
        x = w * x
    return x


def linear_derivatives(w, x0, t: int) -> LinearDerivatives:
    """For ``b = 0`` and identity unit, ``x_t = w^t x0`` and

    ``dx_t/dw = t w^(t-1) x0``, ``d2x_t/dw2 = t (t-1) w^(t-2) x0``

    (terms with a negative power of ``w`` have a zero coefficient and are 0).
    The ratio of the second to the first derivative is ``(t-1)/w``: where the
    gradient explodes with ``t`` the curvature explodes faster.
    """
    t = _check_t(t)
    w, x0 = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(x0, dtype=float))
    x = w ** t * x0
    d1 = t * w ** (t - 1) * x0 if t >= 1 else np.zeros(w.shape)
    d2 = t * (t - 1) * w ** (t - 2) * x0 if t >= 2 else np.zeros(w.shape)
    return LinearDerivatives(np.asarray(x, dtype=float), np.asarray(d1, dtype=float),
                             np.asarray(d2, dtype=float))
