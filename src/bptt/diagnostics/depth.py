"""Shared versus untied weights: a recurrent network is not just a deep network (§2).

Backpropagating a signal v through s steps multiplies it by s Jacobians. In a deep
feedforward network every layer has its own weights W_1, …, W_s; drawn independently
from N(0, g²/H), they give, for linear units and any fixed v,

    E‖v W_1 W_2 ⋯ W_s‖² = g^{2s} ‖v‖²,

so with g = 1 the signal keeps its size in expectation (the products' directions
wander, and no single direction is amplified step after step). A recurrent network
applies the *same* W at every step: then v W^s grows or shrinks geometrically at the
rate of W's own spectrum, ‖v W^s‖ ~ c ρ(W)^s, bounded by λ₁(W)^s, and the particular
draw of W, not its variance, decides whether the signal vanishes or explodes. This
is why the paper studies the spectrum of W_rec (§2.1) rather than layer-wise scales.

The signal here is the error backpropagated from the top: with states
h_t = σ(h_{t−1} W_t) from a random h_0, v_D is a random unit vector and
v_{t−1} = (v_t ⊙ σ'(a_t)) W_tᵀ; the norms ‖v_{D−s}‖ are reported for s = 0..D.
Tied and untied runs share their random numbers across gains (W = g·Z), so the curves
for different gains differ by the gain alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bptt.engine.units import check_unit

__all__ = ["DepthExperiment", "backprop_norms", "depth_experiment", "growth_rate"]


@dataclass(frozen=True)
class DepthExperiment:
    """Norms of a backpropagated signal over depth, tied (recurrent) vs untied weights.

    Attributes:
        hidden: H.
        depth: D, the number of steps.
        draws: N, the random draws per gain.
        seed: the seed of the draws.
        gains: ``[G]`` the gains g (weights N(0, g²/H)).
        units: the units, e.g. ``("linear", "tanh")``.
        tied: ``[U, G, N, D+1]`` ‖v_{D−s}‖ for s = 0..D with one W for all steps.
        untied: ``[U, G, N, D+1]`` the same with independent W_t per step.
        rho: ``[G, N]`` spectral radius ρ(W) of each tied W.
        sigma1: ``[G, N]`` largest singular value λ₁(W) of each tied W.
    """

    hidden: int
    depth: int
    draws: int
    seed: int
    gains: np.ndarray
    units: tuple[str, ...]
    tied: np.ndarray
    untied: np.ndarray
    rho: np.ndarray
    sigma1: np.ndarray

    @property
    def steps(self) -> np.ndarray:
        """``0 .. D``, the number of steps backpropagated through."""
        return np.arange(self.depth + 1)

    def _norms(self, kind: str) -> np.ndarray:
        if kind not in ("tied", "untied"):
            raise ValueError(f"kind must be 'tied' or 'untied', got {kind!r}")
        return self.tied if kind == "tied" else self.untied

    def rms(self, kind: str) -> np.ndarray:
        """``[U, G, D+1]`` √(mean over draws of ‖v‖²), the estimate of √E‖v‖²."""
        return np.sqrt(np.mean(self._norms(kind) ** 2, axis=2))

    def geometric_mean(self, kind: str) -> np.ndarray:
        """``[U, G, D+1]`` exp(mean over draws of log ‖v‖), the typical draw."""
        with np.errstate(divide="ignore"):
            return np.exp(np.mean(np.log(self._norms(kind)), axis=2))

    def unit_index(self, unit: str) -> int:
        return self.units.index(unit)


def _sigma(a: np.ndarray, unit: str) -> np.ndarray:
    if unit == "tanh":
        return np.tanh(a)
    if unit == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * a))
    if unit == "relu":
        return np.maximum(a, 0.0)
    return a


def _slope(h: np.ndarray, unit: str) -> np.ndarray | None:
    if unit == "tanh":
        return 1.0 - h * h
    if unit == "sigmoid":
        return h * (1.0 - h)
    if unit == "relu":
        return (h > 0).astype(np.float64)
    return None


def backprop_norms(weights, unit: str, v: np.ndarray, h0: np.ndarray | None = None,
                   depth: int | None = None) -> np.ndarray:
    """‖v_{D−s}‖ for s = 0..D, for a batch of independent networks.

    Args:
        weights: either an array ``[N, H, H]`` used at every step (tied), or a
            callable ``t -> [N, H, H]`` giving the weights of step t = 1..D (untied;
            it must return the same array when called again with the same t).
        unit: the unit σ.
        v: ``[N, H]`` the signal at the top, ∂E/∂h_D.
        h0: ``[N, H]`` the bottom state (not needed for linear units).
        depth: D (required for callable weights; for an array, default 1).

    Returns:
        ``[N, D+1]`` the norms, column s for the signal s steps below the top.
    """
    unit = check_unit(unit)
    tied = not callable(weights)
    D = int(depth if depth is not None else 1)

    def W_at(t: int) -> np.ndarray:
        return weights if tied else weights(t)

    slopes: list[np.ndarray | None] = [None] * (D + 1)
    if unit != "linear":
        if h0 is None:
            raise ValueError(f"h0 is needed for {unit} units")
        h = np.asarray(h0, dtype=np.float64)
        for t in range(1, D + 1):
            h = _sigma(np.matmul(h[:, None, :], W_at(t))[:, 0], unit)
            slopes[t] = _slope(h, unit)
    g = np.asarray(v, dtype=np.float64)
    out = np.empty((g.shape[0], D + 1))
    out[:, 0] = np.linalg.norm(g, axis=1)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for s in range(1, D + 1):
            t = D - s + 1                                    # the step passed through
            if slopes[t] is not None:
                g = g * slopes[t]
            g = np.matmul(W_at(t), g[:, :, None])[:, :, 0]   # g W_tᵀ
            out[:, s] = np.linalg.norm(g, axis=1)
    return out


def depth_experiment(hidden: int = 50, depth: int = 100,
                     gains=(0.8, 0.9, 1.0, 1.1, 1.2), units=("linear", "tanh"),
                     draws: int = 20, seed: int = 0) -> DepthExperiment:
    """Backpropagate through ``depth`` steps with tied and with untied Gaussian weights.

    For every draw, one matrix Z ~ N(0, 1/H) is the tied W = g·Z of every gain, and
    independent Z_1..Z_D give the untied W_t = g·Z_t; the bottom state h_0 ~ N(0, 1)
    and the top signal v (a random unit vector) are shared by all runs of the draw.
    """
    for name, value, lo in (("hidden", hidden, 1), ("depth", depth, 1), ("draws", draws, 1)):
        if int(value) != value or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    H, D, N = int(hidden), int(depth), int(draws)
    gains = np.asarray(gains, dtype=np.float64).reshape(-1)
    if gains.size == 0 or not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise ValueError(f"gains must be positive numbers, got {gains.tolist()}")
    units = tuple(check_unit(u) for u in ([units] if isinstance(units, str) else units))
    if not units:
        raise ValueError("units must name at least one unit")
    scale = 1.0 / np.sqrt(H)
    Z = np.random.default_rng([seed, 0]).standard_normal((N, H, H)) * scale
    h0 = np.random.default_rng([seed, 1]).standard_normal((N, H))
    v = np.random.default_rng([seed, 2]).standard_normal((N, H))
    v /= np.linalg.norm(v, axis=1, keepdims=True)

    cache: dict[int, np.ndarray] | None = {} if D * N * H * H <= 2**24 else None

    def untied_Z(t: int) -> np.ndarray:
        if cache is not None and t in cache:
            return cache[t]
        z = np.random.default_rng([seed, 3, t]).standard_normal((N, H, H)) * scale
        if cache is not None:
            cache[t] = z
        return z

    tied = np.empty((len(units), gains.size, N, D + 1))
    untied = np.empty_like(tied)
    rho = np.empty((gains.size, N))
    sigma1 = np.empty((gains.size, N))
    rho_Z = np.abs(np.linalg.eigvals(Z)).max(axis=1)
    sig_Z = np.linalg.svd(Z, compute_uv=False)[:, 0]
    for gi, g in enumerate(gains):
        rho[gi] = g * rho_Z
        sigma1[gi] = g * sig_Z
        for ui, unit in enumerate(units):
            tied[ui, gi] = backprop_norms(g * Z, unit, v, h0, depth=D)
            untied[ui, gi] = backprop_norms(lambda t, g=g: g * untied_Z(t), unit, v, h0, depth=D)
    return DepthExperiment(hidden=H, depth=D, draws=N, seed=int(seed), gains=gains, units=units,
                           tied=tied, untied=untied, rho=rho, sigma1=sigma1)


def growth_rate(norms: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Per-step log growth rate, the least-squares slope of log ‖v_s‖ over s in [start, stop).

    ``norms`` is ``[..., D+1]``; the result has the leading shape. Compare it with
    log ρ(W) for tied weights and with log g for untied ones.
    """
    norms = np.asarray(norms, dtype=np.float64)
    s = np.arange(norms.shape[-1])[start:stop].astype(np.float64)
    if s.size < 2:
        raise ValueError("need at least two steps to fit a growth rate")
    with np.errstate(divide="ignore"):
        y = np.log(norms[..., start:stop])
    sc = s - s.mean()
    return ((y - y.mean(-1, keepdims=True)) * sc).sum(-1) / (sc * sc).sum()
