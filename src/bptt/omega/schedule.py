"""Schedules for Ω's weight α (paper §4: constant for the pathological problems, α/t for
the natural ones)."""

from __future__ import annotations

import math
from dataclasses import dataclass


class AlphaSchedule:
    """α as a function of the update number t (1-based)."""

    def __call__(self, t: int) -> float:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantAlpha(AlphaSchedule):
    """α_t = α₀ (the synthetic experiments)."""

    alpha0: float

    def __call__(self, t: int) -> float:
        return self.alpha0


@dataclass(frozen=True)
class InverseTimeAlpha(AlphaSchedule):
    """α_t = α₀ / t (the music experiments: α₀ = 1/2 gives α_t = 1/(2t))."""

    alpha0: float

    def __call__(self, t: int) -> float:
        return self.alpha0 / max(t, 1)


def alpha_schedule(kind: str, alpha0: float) -> AlphaSchedule:
    """Build a schedule by name: ``"constant"`` or ``"inverse"`` (α₀/t)."""
    if not (alpha0 >= 0 and math.isfinite(alpha0)):
        raise ValueError(f"alpha must be finite and >= 0, got {alpha0}")
    if kind == "constant":
        return ConstantAlpha(alpha0)
    if kind == "inverse":
        return InverseTimeAlpha(alpha0)
    raise ValueError(f"unknown alpha schedule {kind!r}; choose 'constant' or 'inverse'")
