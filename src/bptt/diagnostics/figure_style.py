"""How the figures of the diagnostics look: the colours and labels they share, and
log-scale axes for values that span many decades (non-finite and non-positive values
masked, limits set from the positive data)."""

from __future__ import annotations

import numpy as np

__all__ = ["PARAM_LABELS", "PARAM_COLORS", "NONFINITE_COLOR", "CLIP_COLOR", "positive", "spans_decades", "for_log",
           "log_limits"]

PARAM_LABELS = {"W_rec": r"W_{rec}", "W_in": r"W_{in}", "b": r"b"}
PARAM_COLORS = {"W_rec": "#1f4e9c", "W_in": "#d35400", "b": "#27864a"}
NONFINITE_COLOR = "#c0392b"
CLIP_COLOR = "#e67e22"


def positive(values: np.ndarray) -> np.ndarray:
    """The finite, strictly positive entries of ``values``, flattened."""
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v) & (v > 0)]


def spans_decades(values, decades: float = 2.0) -> bool:
    """Whether the positive entries of ``values`` span at least ``decades`` decades."""
    v = positive(values)
    return v.size > 1 and np.log10(v.max() / v.min()) >= decades


def for_log(values) -> np.ndarray:
    """Values with non-positive and non-finite entries masked as NaN (for log axes)."""
    v = np.asarray(values, dtype=np.float64).copy()
    v[~np.isfinite(v) | (v <= 0)] = np.nan
    return v


def log_limits(ax, values, floor_decades: float = 40.0, note: bool = False) -> None:
    """y-limits around the positive data, at most ``floor_decades`` decades deep.

    With ``note``, says on the axes when some values lie below the floor or are 0.
    """
    all_v = np.asarray(values, dtype=np.float64)
    v = positive(all_v)
    if v.size == 0:
        return
    hi = v.max()
    lo = max(v.min(), hi * 10.0 ** (-floor_decades))
    ax.set_ylim(lo / 3.0, hi * 3.0)
    hidden = (v.min() < lo) or np.any(all_v[np.isfinite(all_v)] == 0)
    if note and hidden:
        ax.text(0.99, 0.01, f"values more than {floor_decades:g} decades below the largest, "
                "or exactly 0, are off the axis",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="0.3")
