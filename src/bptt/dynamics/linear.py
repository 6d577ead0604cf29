"""The linear one-unit case: ``x_t = w^t x0`` and its derivatives with respect to ``w``,
where the gradient and the curvature explode together."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bptt.dynamics.unit_map import check_count

__all__ = ["LinearDerivatives", "linear_iterate", "linear_derivatives"]


class LinearDerivatives(NamedTuple):
    """``x_t = w^t x0`` and its first two derivatives with respect to ``w``."""

    x: np.ndarray
    dx_dw: np.ndarray
    d2x_dw2: np.ndarray


def _check_t(t) -> int:
    return check_count(t, "t", 0)


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
