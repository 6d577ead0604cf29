"""The one-unit map of §2.2 (Pascanu, Mikolov & Bengio 2013) and its iteration.

The map studied throughout :mod:`bptt.dynamics` is

    x_t = F(x_{t-1}) = w * u(x_{t-1}) + b,

with ``u`` the logistic sigmoid (the paper's and Doya's example) or ``tanh``. This
module holds the units with their first two derivatives, the map's iteration, and the
argument checks the other modules share. Everything is float64 NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import expit

__all__ = ["UNITS", "Unit", "activation", "iterate", "orbit", "check_count", "check_finite", "check_positive",
           "check_range"]


@dataclass(frozen=True)
class Unit:
    """A unit ``u`` with its first two derivatives, vectorised over NumPy arrays; ``symbol``
    is its LaTeX name for figures."""

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


_UNITS: dict[str, Unit] = {
    "sigmoid": Unit("sigmoid", expit, _sig_d1, _sig_d2, r"\sigma"),
    "tanh": Unit("tanh", np.tanh, _tanh_d1, _tanh_d2, r"\tanh"),
}

UNITS: tuple[str, ...] = tuple(_UNITS)


def activation(unit: str) -> Unit:
    """The unit named ``unit`` (``"sigmoid"`` or ``"tanh"``) with its first two derivatives."""
    if not isinstance(unit, str) or unit not in _UNITS:
        raise ValueError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    return _UNITS[unit]


def check_finite(value, name: str) -> float:
    """``value`` as a finite float; ``ValueError`` naming ``name`` otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_range(r, name: str) -> tuple[float, float]:
    """``r`` as a finite ``(low, high)`` pair with ``low < high``; ``ValueError`` otherwise."""
    try:
        lo, hi = r
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {r!r}") from None
    lo = check_finite(lo, f"{name}[0]")
    hi = check_finite(hi, f"{name}[1]")
    if not lo < hi:
        raise ValueError(f"{name} must satisfy low < high, got ({lo}, {hi})")
    return lo, hi


def check_count(n, name: str, minimum: int) -> int:
    """``n`` as an int >= ``minimum`` (bools and floats refused); ``ValueError`` otherwise."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return int(n)


def check_positive(value, name: str) -> float:
    """``value`` as a finite float > 0; ``ValueError`` otherwise."""
    v = check_finite(value, name)
    if v <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def iterate(w, b, x0, steps: int, unit: str = "sigmoid") -> np.ndarray:
    """``x_steps`` of the map, broadcasting ``w``, ``b`` and ``x0`` against each other."""
    u = activation(unit)
    steps = check_count(steps, "steps", 0)
    w, b, x = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, b, x0)))
    x = x.copy()
    for _ in range(steps):
        x = w * u.f(x) + b
    return x


def orbit(w, b, x0, steps: int, unit: str = "sigmoid") -> np.ndarray:
    """All states ``x_0..x_steps``; the time axis is the last one."""
    u = activation(unit)
    steps = check_count(steps, "steps", 0)
    w, b, x = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, b, x0)))
    out = np.empty(x.shape + (steps + 1,))
    out[..., 0] = x
    for t in range(1, steps + 1):
        out[..., t] = w * u.f(out[..., t - 1]) + b
    return out
