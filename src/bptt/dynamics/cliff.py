"""The error surface of Figure 6 and gradient descent on it, plain and with norm
clipping (Algorithm 1): the "cliff" of §3.2 on the one-unit map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bptt.dynamics.unit_map import activation, check_count, check_finite, check_positive, check_range

__all__ = ["ErrorSurface", "DescentPath", "CliffDemo", "loss_and_grad", "error_surface", "descent_trajectory",
           "cliff_demo"]


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
    steps = check_count(steps, "steps", 1)
    x0 = check_finite(x0, "x0")
    target = check_finite(target, "target")
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
    w_lo, w_hi = check_range(w_range, "w_range")
    b_lo, b_hi = check_range(b_range, "b_range")
    n_w = check_count(n_w, "n_w", 2)
    n_b = check_count(n_b, "n_b", 2)
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
    w = check_finite(w0, "w0")
    b = check_finite(b0, "b0")
    lr = check_positive(lr, "lr")
    n_steps = check_count(n_steps, "n_steps", 0)
    thr = None if clip_threshold is None else check_positive(clip_threshold, "clip_threshold")
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
