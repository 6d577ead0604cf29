"""Lyapunov exponents of the recurrent network as a dynamical system (paper §2.2).

The exponents measure how fast small perturbations of the state grow or shrink on
average along a trajectory: ‖∂h_t/∂h_0 v‖ ~ e^{μ t} for a generic direction v, where
μ is the largest exponent. They are the long-run version of the Jacobian products of
eq. 7: a negative leading exponent means the state forgets its past, and the
long-term components of the gradient vanish; a positive one means nearby trajectories
separate, and the gradient explodes.

Computed with the standard QR method: k tangent vectors are pushed through the
Jacobians J_t = ∂h_t/∂h_{t−1} = diag(σ'(a_t)) W_recᵀ and re-orthonormalised at every
step (Q_t R_t = J_t Q_{t−1}); after a transient, the exponents are the time averages
of log |diag R_t| (natural log, per step). For a constant Jacobian W (a linear
network) they are the logs of the moduli of W's eigenvalues.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bptt.diagnostics.recurrent import elman_weight, is_wrapped, wrapped_lyapunov
from bptt.diagnostics.spectra import as_square_matrix
from bptt.engine.units import check_unit

__all__ = ["LyapunovSpectrum", "lyapunov_exponents", "model_lyapunov"]


@dataclass(frozen=True)
class LyapunovSpectrum:
    """Leading Lyapunov exponents of one trajectory.

    Attributes:
        exponents: ``[k]`` per-step exponents (natural log), largest first.
        mode: ``"autonomous"`` (u = 0) or ``"driven"`` (by a given input sequence).
        steps: steps iterated in all, transient included.
        transient: steps discarded before averaging.
        history: ``[steps − transient, k]`` the running averages, for convergence.
        unit: the recurrent unit.
        label: a free description (used in figure legends).
    """

    exponents: np.ndarray
    mode: str
    steps: int
    transient: int
    history: np.ndarray
    unit: str
    label: str = ""

    @property
    def leading(self) -> float:
        return float(self.exponents[0])

    @property
    def timescales(self) -> np.ndarray:
        """1/|μ_i|: the steps over which a perturbation changes by a factor e."""
        with np.errstate(divide="ignore"):
            return 1.0 / np.abs(self.exponents)


def _sigma(a: np.ndarray, unit: str) -> np.ndarray:
    if unit == "tanh":
        return np.tanh(a)
    if unit == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * a))
    if unit == "relu":
        return np.maximum(a, 0.0)
    return a


def _slope(h: np.ndarray, unit: str) -> np.ndarray:
    if unit == "tanh":
        return 1.0 - h * h
    if unit == "sigmoid":
        return h * (1.0 - h)
    return (h > 0).astype(np.float64)


def lyapunov_exponents(W_rec, unit: str = "tanh", *, b=None, W_in=None, inputs=None,
                       k: int | None = None, steps: int = 2000, transient: int = 200,
                       h0=None, seed: int = 0, label: str = "", n_in: int | None = None,
                       state=None) -> LyapunovSpectrum:
    """Leading ``k`` (default: all H) Lyapunov exponents by QR re-orthonormalisation.

    The network is h_t = σ(h_{t−1} W_rec + u_t W_in + b) in this library's row
    convention (W_rec as :class:`bptt.models.ElmanRNN` stores it).

    Args:
        W_rec: ``[H, H]`` recurrent weights.
        unit: ``"tanh"``, ``"sigmoid"``, ``"relu"`` or ``"linear"``.
        b: ``[H]`` bias (zero by default).
        W_in: ``[I, H]`` input weights, needed with ``inputs``.
        inputs: ``None`` for the autonomous network (u = 0, ``steps`` steps), or an
            input sequence ``[T, I]`` that drives it (then T steps, ``steps`` unused).
        k: how many leading exponents.
        steps: length of the autonomous trajectory.
        transient: steps discarded before averaging (the state settles, and the
            tangent vectors align with the leading directions).
        h0: ``[H]`` initial state; by default N(0, 0.5²) entries drawn from ``seed``.
        seed: seeds the initial state and the initial tangent vectors.
        n_in, state: for a wrapped module only (below).

    ``W_rec`` may instead be any recurrent module wrapped in :class:`bptt.omega.Omega`:
    then the map is the module's step on the concatenated state of every layer
    (:mod:`bptt.diagnostics.recurrent`), its Jacobians come from autograd, ``unit``,
    ``b`` and ``W_in`` are unused, ``inputs`` is ``[T, I]`` (the autonomous run feeds
    zeros of the module's input size, or ``n_in``), ``h0`` covers the whole state, and
    a user cell needs ``state``, a state of one sequence giving its layout.

    Returns:
        :class:`LyapunovSpectrum` with the exponents sorted, largest first.

    Raises:
        ValueError: for bad shapes or counts, or when the trajectory of a nonlinear
            network leaves the finite numbers (its Jacobians are then undefined).
    """
    if is_wrapped(W_rec):
        exps, history, n = wrapped_lyapunov(W_rec, inputs, k=k, steps=steps, transient=transient, h0=h0,
                                             seed=seed, n_in=n_in, state=state)
        ew = elman_weight(W_rec)
        order = np.argsort(-exps, kind="stable")
        return LyapunovSpectrum(exponents=exps[order], mode="autonomous" if inputs is None else "driven",
                                steps=n, transient=int(transient), history=history[:, order],
                                unit=ew[1] if ew is not None else W_rec.kind, label=label)
    W = as_square_matrix(W_rec)
    unit = check_unit(unit)
    H = W.shape[0]
    k = H if k is None else k
    if int(k) != k or not (1 <= k <= H):
        raise ValueError(f"k must be an integer in [1, {H}], got {k!r}")
    k = int(k)
    bias = np.zeros(H) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
    if bias.shape != (H,):
        raise ValueError(f"b must have {H} entries, got {bias.size}")
    if inputs is None:
        mode, drive = "autonomous", None
        n = int(steps)
        if n != steps:
            raise ValueError(f"steps must be an integer, got {steps!r}")
    else:
        mode = "driven"
        u = np.asarray(inputs.detach().cpu().double().numpy() if hasattr(inputs, "detach") else inputs,
                       dtype=np.float64)
        if u.ndim != 2:
            raise ValueError(f"inputs must be one sequence [T, I], got shape {u.shape}")
        if W_in is None:
            raise ValueError("W_in is needed to drive the network with inputs")
        Win = np.asarray(W_in.detach().cpu().double().numpy() if hasattr(W_in, "detach") else W_in,
                         dtype=np.float64)
        if Win.shape != (u.shape[1], H):
            raise ValueError(f"W_in must be [I, H] = [{u.shape[1]}, {H}], got {Win.shape}")
        drive = u @ Win + bias                                  # [T, H]
        n = u.shape[0]
    if int(transient) != transient or not (0 <= transient < n):
        raise ValueError(f"transient must be an integer in [0, {n - 1}] (fewer than the {n} steps), "
                         f"got {transient!r}")
    transient = int(transient)
    rng = np.random.default_rng(seed)
    h = rng.normal(0.0, 0.5, H) if h0 is None else np.asarray(h0, dtype=np.float64).reshape(-1)
    if h.shape != (H,):
        raise ValueError(f"h0 must have {H} entries, got {h.size}")
    Q, _ = np.linalg.qr(rng.standard_normal((H, k)))
    WT = W.T
    total = np.zeros(k)
    history = np.empty((n - transient, k))
    linear = unit == "linear"
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for t in range(n):
            if linear:
                J = WT
            else:
                a = h @ W + (bias if drive is None else drive[t])
                h = _sigma(a, unit)
                if not np.all(np.isfinite(h)):
                    raise ValueError(f"the state became non-finite at step {t + 1}; "
                                     "the exponents of this trajectory are undefined")
                J = _slope(h, unit)[:, None] * WT
            Q, R = np.linalg.qr(J @ Q)
            if t >= transient:
                total += np.log(np.abs(np.diagonal(R)))
                history[t - transient] = total / (t - transient + 1)
    exps = total / (n - transient)
    order = np.argsort(-exps, kind="stable")
    return LyapunovSpectrum(exponents=exps[order], mode=mode, steps=n, transient=transient,
                            history=history[:, order], unit=unit, label=label)


def model_lyapunov(model, inputs=None, *, member: int = 0, sequence: int = 0,
                   **options) -> LyapunovSpectrum:
    """:func:`lyapunov_exponents` of member ``member`` of an :class:`bptt.models.ElmanRNN`
    (or of a module wrapped in :class:`bptt.omega.Omega`; ``member`` is then unused).

    ``inputs`` may be ``[T, I]`` or a batch ``[T, B, I]`` (sequence ``sequence`` is used);
    ``options`` are passed on (``k``, ``steps``, ``transient``, ``h0``, ``seed``, ``label``).
    """
    from bptt.diagnostics.gradient_flow import member_params

    if inputs is not None:
        u = np.asarray(inputs.detach().cpu().double().numpy() if hasattr(inputs, "detach") else inputs,
                       dtype=np.float64)
        if u.ndim == 3:
            if not (0 <= sequence < u.shape[1]):
                raise ValueError(f"sequence must be in [0, {u.shape[1] - 1}], got {sequence}")
            u = u[:, sequence]
        inputs = u
    if is_wrapped(model):
        return lyapunov_exponents(model, inputs=inputs, **options)
    p = member_params(model, member)
    return lyapunov_exponents(p["W_rec"].numpy(), model.unit, b=p["b"].numpy(),
                              W_in=p["W_in"].numpy(), inputs=inputs, **options)
