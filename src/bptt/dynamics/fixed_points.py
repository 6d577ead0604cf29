"""Fixed points, folds and the bifurcation diagram of the one-unit map (§2.2).

Fixed points of ``x -> w u(x) + b`` are the roots of ``g(x) = w u(x) + b - x``; a
fixed point is stable when the multiplier ``|w u'(x*)|`` is below one.

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
from typing import Sequence

import numpy as np
from scipy.optimize import brentq

from bptt.dynamics.unit_map import Unit, activation, check_count, check_finite, check_range

__all__ = ["Fold", "Bifurcation", "critical_points", "fold_points", "default_b_range", "fixed_points",
           "bifurcation"]


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
    w = check_finite(w, "w")
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


def state_bounds(w: float, b_lo: float, b_hi: float, unit: Unit) -> tuple[float, float]:
    """An interval that holds every fixed point for every b in [b_lo, b_hi], with g > 0 at
    its left end and g < 0 at its right end."""
    if unit.name == "sigmoid":
        lo, hi = b_lo + min(0.0, w), b_hi + max(0.0, w)
    else:
        lo, hi = b_lo - abs(w), b_hi + abs(w)
    return lo - 1.0, hi + 1.0


def _roots_one_b(w: float, b: float, unit: Unit, grid: np.ndarray, gvals: np.ndarray,
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
    w = check_finite(w, "w")
    b = check_finite(b, "b")
    n_grid = check_count(n_grid, "n_grid", 3)
    crit = critical_points(w, unit)
    lo, hi = state_bounds(w, b, b, u)
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
    w = check_finite(w, "w")
    b_lo, b_hi = check_range(default_b_range(w, unit) if b_range is None else b_range, "b_range")
    n = check_count(n, "n", 2)
    n_grid = check_count(n_grid, "n_grid", 3)
    crit = critical_points(w, unit)
    b = np.linspace(b_lo, b_hi, n)
    lo, hi = state_bounds(w, b_lo, b_hi, u)
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
