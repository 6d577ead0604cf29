"""Basins of attraction of the one-unit map and orbits across their boundary (§2.3).

Near a basin boundary a tiny change of ``b`` or ``x0`` sends the state to another
attractor (a jump of O(1) in ``x_T``); across a fold the change can be small or,
with a slow passage past the vanishing attractor, delayed. These are the paper's two
mechanisms of sudden changes in the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bptt.dynamics.fixed_points import (
    Bifurcation,
    bifurcation,
    default_b_range,
    fixed_points,
    fold_points,
    state_bounds,
)
from bptt.dynamics.unit_map import (
    Unit,
    activation,
    check_count,
    check_finite,
    check_positive,
    check_range,
    iterate,
    orbit,
)

__all__ = ["Basins", "Trajectories", "PerturbationPair", "default_basin_b_range", "basins", "trajectories",
           "perturbation_pairs", "compare_pairs"]


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


def _default_x0_range(w: float, b_range: tuple[float, float], unit: Unit) -> tuple[float, float]:
    lo, hi = state_bounds(w, b_range[0], b_range[1], unit)
    return float(math.floor(lo)), float(math.ceil(hi))


def basins(w: float = 5.0, b_range: Sequence[float] | None = None,
           x0_range: Sequence[float] | None = None, n_b: int = 301, n_x0: int = 301,
           steps: int = 500, unit: str = "sigmoid", tol: float = 1e-6) -> Basins:
    """Basins of attraction in the ``(b, x0)`` plane, iterating the whole grid at once."""
    u = activation(unit)
    w = check_finite(w, "w")
    b_rng = check_range(default_basin_b_range(w, unit) if b_range is None else b_range, "b_range")
    x_rng = check_range(_default_x0_range(w, b_rng, u) if x0_range is None else x0_range, "x0_range")
    n_b = check_count(n_b, "n_b", 2)
    n_x0 = check_count(n_x0, "n_x0", 2)
    steps = check_count(steps, "steps", 1)
    tol = check_positive(tol, "tol")
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
    w = check_finite(w, "w")
    b, x0 = np.broadcast_arrays(np.atleast_1d(np.asarray(b_values, dtype=float)),
                                np.atleast_1d(np.asarray(x0_values, dtype=float)))
    if b.ndim != 1 or b.size == 0:
        raise ValueError("b_values and x0_values must broadcast to a non-empty 1-D array")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(x0))):
        raise ValueError("b_values and x0_values must be finite")
    steps = check_count(steps, "steps", 1)
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
    w = check_finite(w, "w")
    eps = check_positive(eps, "eps")
    folds = fold_points(w, unit)
    if not folds:
        raise ValueError(f"w={w} gives no folds for unit {u.name!r}: the map has a single "
                         "fixed point for every b and no basin boundary")
    b_lo, b_hi = folds[0].b, folds[-1].b
    if b is None:
        b = 0.5 * (b_lo + b_hi)
    b = check_finite(b, "b")
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
