"""How the gradient flows through time (paper §2, eqs. 3–5).

The paper writes the gradient of the error E = Σ_t E_t as a sum of temporal components
(eqs. 4–5, with x_k the pre-activation of step k):

    ∂E/∂θ = Σ_t Σ_{k≤t}  ∂E_t/∂x_t · ∂x_t/∂x_k · ∂⁺x_k/∂θ,

where ∂⁺x_k/∂θ is the "immediate" partial derivative of x_k, with x_{k−1} held
fixed. Component (t, k) is how much the error made at step t asks of the parameters
as they were used at step k; its size as a function of the lag t − k is what vanishes
or explodes. In this library's row convention (see :class:`bptt.models.ElmanRNN`),
a_k = h_{k−1} W_rec + u_k W_in + b and h_k = σ(a_k), so with

    δ_k^{(t)} = ∂E_t/∂a_k   (summed over the minibatch in the products below)

the components are

    W_rec:  h_{k−1}ᵀ δ_k^{(t)},     W_in:  u_kᵀ δ_k^{(t)},     b:  Σ_batch δ_k^{(t)},

and δ_k^{(t)} = (δ_{k+1}^{(t)} W_recᵀ) ⊙ σ'(a_k), started from
δ_t^{(t)} = (∂E_t/∂h_t) ⊙ σ'(a_t). For last-step outputs only E_T exists; for per-step
outputs every step has its E_t. Everything here runs in float64 on one member of an
ensemble model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bptt.diagnostics.recurrent import (
    elman_weight,
    is_wrapped,
    wrapped_error_signals,
    wrapped_gradient_flow,
    wrapped_jacobian_norms,
)
from bptt.engine import reference
from bptt.engine.outputs import PER_STEP
from bptt.engine.units import GAMMA, derivative_from_output

__all__ = [
    "COMPONENT_PARAMS",
    "GradientFlow",
    "ErrorSignalNorms",
    "JacobianNorms",
    "member_params",
    "gradient_flow",
    "error_signal_norms",
    "jacobian_norms",
]

#: Parameters whose temporal components :func:`gradient_flow` can take apart.
COMPONENT_PARAMS = ("W_rec", "W_in", "b")

_TARGET_DIMS = {"last_softmax": 1, "softmax": 2, "last_linear": 2, "sigmoid": 3}


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def member_params(model, member: int = 0) -> dict[str, torch.Tensor]:
    """The parameters of one member as float64 tensors without the ensemble axis."""
    E = model.ensemble
    if int(member) != member or not (0 <= member < E):
        raise ValueError(f"member must be an integer in [0, {E - 1}], got {member!r}")
    return {k: p.detach()[int(member)].to("cpu", torch.float64).clone()
            for k, p in model.params.items()}


def _member_inputs(model, x: torch.Tensor, member: int) -> torch.Tensor:
    """``[T, B, I]`` float64 inputs of one member from ``[T, B, I]`` or ``[T, E, B, I]``."""
    x = torch.as_tensor(x)
    if x.dim() not in (3, 4):
        raise ValueError(f"x must be [T, B, I] or [T, E, B, I], got shape {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError("x must have at least one time step")
    if x.shape[-1] != model.n_in:
        raise ValueError(f"x has {x.shape[-1]} input features, the model expects {model.n_in}")
    if x.dim() == 4:
        if x.shape[1] != model.ensemble:
            raise ValueError(f"x has ensemble axis {x.shape[1]}, the model has {model.ensemble} members")
        x = x[:, member]
    return x.detach().to("cpu", torch.float64)


def _member_targets(model, y: torch.Tensor, member: int) -> torch.Tensor:
    """Targets without an ensemble axis (the member's slice if there is one)."""
    y = torch.as_tensor(y).detach().cpu()
    shared = _TARGET_DIMS[model.output]
    if y.dim() == shared + 1:
        y = y[member] if model.output not in PER_STEP else y[:, member]
    elif y.dim() != shared:
        raise ValueError(f"targets for {model.output!r} outputs must have {shared} dimensions "
                         f"(or {shared + 1} with an ensemble axis), got shape {tuple(y.shape)}")
    if y.is_floating_point():
        y = y.to(torch.float64)
    return y


def _initial_state(h0, B: int, H: int, member: int) -> torch.Tensor:
    if h0 is None:
        return torch.zeros(B, H, dtype=torch.float64)
    h0 = torch.as_tensor(h0).detach().to("cpu", torch.float64)
    if h0.dim() == 3:
        h0 = h0[member]
    if tuple(h0.shape) != (B, H):
        raise ValueError(f"h0 must be [B, H] = [{B}, {H}] (or [E, B, H]), got {tuple(h0.shape)}")
    return h0


def _states(p: dict[str, torch.Tensor], x: torch.Tensor, unit: str, h0: torch.Tensor) -> torch.Tensor:
    """h_0..h_T of one member, ``[T+1, B, H]`` float64."""
    hs = reference.run_states({k: v[None] for k, v in p.items()}, x, unit, h0[None])
    return torch.stack(hs)[:, 0]


def _slopes(hs: torch.Tensor, unit: str) -> torch.Tensor:
    """σ'(a_t) at every step, ``[T+1, B, H]`` (index 0 unused)."""
    sp = derivative_from_output(hs, unit)
    return torch.ones_like(hs) if sp is None else sp


def _direct_errors(model, p: dict[str, torch.Tensor], hs: torch.Tensor, y: torch.Tensor,
                   mask: torch.Tensor | None) -> tuple[float, torch.Tensor]:
    """The loss and ∂E/∂h_t through the output of step t only, ``[T+1, B, H]``."""
    leaf = hs.detach().clone().requires_grad_(True)
    states = [s[None] for s in leaf.unbind(0)]
    z = reference.readout({"W_out": p["W_out"][None], "b_out": p["b_out"][None]}, states, model.output)
    loss = reference.loss_of(z, y, model.output, mask)
    (g,) = torch.autograd.grad(loss.sum(), leaf)
    return float(loss.detach().sum()), g.detach()


def _prepare(model, x, y, member, h0, mask):
    p = member_params(model, member)
    xm = _member_inputs(model, x, member)
    B = xm.shape[1]
    h = _initial_state(h0, B, model.n_hidden, member)
    hs = _states(p, xm, model.unit, h)
    out = None
    if y is not None:
        if mask is not None:
            if model.output not in PER_STEP:
                raise ValueError("mask applies to per-step outputs only")
            mask = torch.as_tensor(mask).detach().cpu()
            if tuple(mask.shape) != (xm.shape[0], B):
                raise ValueError(f"mask must be [T, B] = [{xm.shape[0]}, {B}], got {tuple(mask.shape)}")
        out = _direct_errors(model, p, hs, _member_targets(model, y, member), mask)
    return p, xm, hs, out, mask


# ---------------------------------------------------------------------------
# Temporal components of the gradient
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GradientFlow:
    """The temporal components of the gradient of one member (eq. 5).

    Steps are 1-based as in the paper: row ``t − 1`` and column ``k − 1`` of a
    ``[T, T]`` array belong to the pair (t, k).

    Attributes:
        T: sequence length.
        sources: the steps t that carry an error E_t (``[T]`` for last-step outputs,
            every step with a counted target for per-step outputs).
        loss: E of the member.
        params: the parameters taken apart, e.g. ``("W_rec",)``.
        component_norms: name → ``[T, T]`` Frobenius norms ‖component (t, k)‖;
            NaN where k > t or where t is not a source.
        lag_sums: name → ``[T, *shape]`` Σ_{t − k = lag} component (t, k).
        lag_norm: name → ``[T]`` ‖lag_sums[lag]‖, the size of what the lag contributes.
        lag_mean: name → ``[T]`` the mean of ‖component (t, k)‖ over the pairs with that lag.
        lag_count: ``[T]`` how many (t, k) pairs have each lag.
        gradient: name → Σ over all components, the full ∂E/∂θ.
        components: name → ``[T, T, *shape]`` every component (zero where k > t),
            only when asked for with ``keep_components=True``; otherwise ``None``.
    """

    T: int
    sources: np.ndarray
    loss: float
    params: tuple[str, ...]
    component_norms: dict[str, np.ndarray]
    lag_sums: dict[str, np.ndarray]
    lag_norm: dict[str, np.ndarray]
    lag_mean: dict[str, np.ndarray]
    lag_count: np.ndarray
    gradient: dict[str, np.ndarray]
    components: dict[str, np.ndarray] | None = None
    unit: str = ""
    output: str = ""

    @property
    def lags(self) -> np.ndarray:
        """``0 .. T−1``."""
        return np.arange(self.T)


def _check_params(params) -> tuple[str, ...]:
    if isinstance(params, str):
        params = (params,)
    params = tuple(params)
    bad = [p for p in params if p not in COMPONENT_PARAMS]
    if bad or not params:
        raise ValueError(f"params must name some of {', '.join(COMPONENT_PARAMS)}, got {params!r}")
    return params


def gradient_flow(model, x: torch.Tensor, y: torch.Tensor, *, params=("W_rec",), member: int = 0,
                  h0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                  keep_components: bool = False) -> GradientFlow:
    """Take the gradient of one member apart into its temporal components (eqs. 4–5).

    Each error E_t is backpropagated on its own (all of them at once, as a stack), and
    component (t, k) = ∂E_t/∂x_t · ∂x_t/∂x_k · ∂⁺x_k/∂θ is formed at every step k ≤ t.
    The work is O(T² B H²) for per-step outputs and O(T B H²) for last-step outputs.

    Args:
        model: an :class:`bptt.models.ElmanRNN`, or any recurrent module wrapped in
            :class:`bptt.omega.Omega` (see :mod:`bptt.diagnostics.recurrent`: the state
            is every layer's state concatenated, and component (t, k) is
            ∂E_t/∂s_k · ∂⁺s_k/∂θ).
        x: inputs ``[T, B, I]`` (or ``[T, E, B, I]``; the member's slice is used); for a
            wrapped module, what the wrapper takes.
        y: targets as for ``model.forward_backward`` (shared or with an ensemble axis);
            for a wrapped module, ``loss_fn(result)`` of what the wrapper returns,
            giving a scalar (counted as E_T) or the ``[T]`` per-step losses E_t.
        params: which of ``"W_rec"``, ``"W_in"``, ``"b"`` to take apart; for a wrapped
            module, names of its parameters (default: those named ``weight_hh*``).
        member: the ensemble member.
        h0: initial state ``[B, H]`` or ``[E, B, H]`` (zeros by default); for a wrapped
            module, the initial state the wrapper takes.
        mask: ``[T, B]`` for per-step outputs over padded batches (ElmanRNN only).
        keep_components: also return every component matrix (memory T²·|θ|).

    Returns:
        :class:`GradientFlow`; Σ_{t,k} of the components equals the gradient of
        ``model.forward_backward(x, y, omega=None)`` for that member (of the loss, for a
        wrapped module).
    """
    if is_wrapped(model):
        if mask is not None:
            raise ValueError("mask applies to ElmanRNN models; fold it into loss_fn for a wrapped module")
        return _wrapped_flow(model, x, y, None if tuple(params) == ("W_rec",) else params, h0,
                             keep_components)
    names = _check_params(params)
    p, xm, hs, (loss, direct), mask = _prepare(model, x, y, member, h0, mask)
    T, B, H = xm.shape[0], xm.shape[1], model.n_hidden
    sp = _slopes(hs, model.unit)
    if model.output in PER_STEP:
        counted = torch.ones(T, dtype=torch.bool) if mask is None else (mask != 0).any(1)
        sources = torch.nonzero(counted).flatten() + 1
    else:
        sources = torch.tensor([T])
    src = sources.numpy()
    S = src.size
    shapes = {"W_rec": (H, H), "W_in": (model.n_in, H), "b": (H,)}
    norms = {n: np.full((T, T), np.nan) for n in names}
    lag_sums = {n: torch.zeros(T, *shapes[n], dtype=torch.float64) for n in names}
    lag_sq = {n: np.zeros(T) for n in names}
    lag_count = np.zeros(T, dtype=np.int64)
    total = {n: torch.zeros(*shapes[n], dtype=torch.float64) for n in names}
    comps = ({n: np.zeros((T, T, *shapes[n])) for n in names} if keep_components else None)
    W_T = p["W_rec"].T
    d = torch.zeros(S, B, H, dtype=torch.float64)          # d[s] = ∂E_{t_s}/∂h_k
    slot = {int(t): s for s, t in enumerate(src)}
    for k in range(T, 0, -1):
        if k in slot:
            d[slot[k]] = direct[k]
        first = int(np.searchsorted(src, k))                # sources with t ≥ k
        if first == S:
            continue
        t_act = src[first:]
        lags = t_act - k
        delta = d[first:] * sp[k]                           # δ_k^{(t)}  [A,B,H]
        for n in names:
            if n == "W_rec":
                comp = torch.einsum("bi,abj->aij", hs[k - 1], delta)
            elif n == "W_in":
                comp = torch.einsum("bi,abj->aij", xm[k - 1], delta)
            else:
                comp = delta.sum(1)
            c_norm = comp.reshape(comp.shape[0], -1).norm(dim=1).numpy()
            norms[n][t_act - 1, k - 1] = c_norm
            lag_sums[n][lags] += comp
            lag_sq[n][lags] += c_norm
            total[n] += comp.sum(0)
            if comps is not None:
                comps[n][t_act - 1, k - 1] = comp.numpy()
        lag_count[lags] += 1
        d[first:] = delta @ W_T                             # ∂E_t/∂h_{k−1}
    safe = np.maximum(lag_count, 1)
    return GradientFlow(
        T=T, sources=src, loss=loss, params=names, component_norms=norms,
        lag_sums={n: v.numpy() for n, v in lag_sums.items()},
        lag_norm={n: v.reshape(T, -1).norm(dim=1).numpy() for n, v in lag_sums.items()},
        lag_mean={n: np.where(lag_count > 0, lag_sq[n] / safe, np.nan) for n in names},
        lag_count=lag_count, gradient={n: v.numpy() for n, v in total.items()},
        components=comps, unit=model.unit, output=model.output)


def _wrapped_flow(model, x, loss_fn, params, state, keep_components: bool) -> GradientFlow:
    T, src, loss, names, comps = wrapped_gradient_flow(model, x, loss_fn, params, state)
    norms = {n: np.full((T, T), np.nan) for n in names}
    lag_sums = {n: np.zeros((T, *comps[n].shape[2:])) for n in names}
    lag_sq = {n: np.zeros(T) for n in names}
    lag_count = np.zeros(T, dtype=np.int64)
    full = {n: np.zeros((T, T, *comps[n].shape[2:])) for n in names} if keep_components else None
    for a, t in enumerate(src):
        for k in range(1, t + 1):
            lag_count[t - k] += 1
            for n in names:
                c = comps[n][a, k - 1]
                c_norm = float(np.linalg.norm(c.reshape(-1)))
                norms[n][t - 1, k - 1] = c_norm
                lag_sums[n][t - k] += c
                lag_sq[n][t - k] += c_norm
                if full is not None:
                    full[n][t - 1, k - 1] = c
    safe = np.maximum(lag_count, 1)
    return GradientFlow(
        T=T, sources=src, loss=loss, params=tuple(names), component_norms=norms, lag_sums=lag_sums,
        lag_norm={n: np.linalg.norm(v.reshape(T, -1), axis=1) for n, v in lag_sums.items()},
        lag_mean={n: np.where(lag_count > 0, lag_sq[n] / safe, np.nan) for n in names},
        lag_count=lag_count, gradient={n: comps[n].sum(axis=(0, 1)) for n in names},
        components=full, unit=model.kind, output="loss_fn")


# ---------------------------------------------------------------------------
# Error signals ∂E/∂h_k
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorSignalNorms:
    """‖∂E/∂h_k‖ for k = 0..T of one member.

    Attributes:
        norms: ``[T+1]`` the Frobenius norm of ∂E/∂h_k over the batch and the units.
        per_sequence: ``[T+1, B]`` the norm for each sequence of the batch.
        signals: ``[T+1, B, H]`` ∂E/∂h_k itself.
        loss: E of the member.
    """

    norms: np.ndarray
    per_sequence: np.ndarray
    signals: np.ndarray
    loss: float

    @property
    def steps(self) -> np.ndarray:
        return np.arange(self.norms.size)


def error_signal_norms(model, x: torch.Tensor, y: torch.Tensor, *, member: int = 0,
                       h0: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None) -> ErrorSignalNorms:
    """The total error signal ∂E/∂h_k (all E_t, all paths) at every step k = 0..T.

    One backward sweep: ∂E/∂h_k = ∂⁺E/∂h_k + (∂E/∂h_{k+1} ⊙ σ'(a_{k+1})) W_recᵀ, where
    ∂⁺E/∂h_k is the part through the output of step k.

    For a module wrapped in :class:`bptt.omega.Omega`, ``y`` is ``loss_fn(result)`` (a
    scalar) of what the wrapper returns, ``h0`` the initial state it takes, and the
    signals are ∂E/∂s_k of the concatenated state of every layer, ``[T+1, B, S]``.
    """
    if is_wrapped(model):
        if mask is not None:
            raise ValueError("mask applies to ElmanRNN models; fold it into loss_fn for a wrapped module")
        loss, sig = wrapped_error_signals(model, x, y, h0)
        n = sig.shape[0]
        return ErrorSignalNorms(norms=sig.reshape(n, -1).norm(dim=1).cpu().double().numpy(),
                                per_sequence=sig.norm(dim=2).cpu().double().numpy(),
                                signals=sig.cpu().double().numpy(), loss=loss)
    p, xm, hs, (loss, direct), _ = _prepare(model, x, y, member, h0, mask)
    T = xm.shape[0]
    sp = _slopes(hs, model.unit)
    W_T = p["W_rec"].T
    sig = torch.zeros_like(hs)
    g = direct[T].clone()
    for k in range(T, 0, -1):
        sig[k] = g
        g = (g * sp[k]) @ W_T + direct[k - 1]
    sig[0] = g
    per_seq = sig.norm(dim=2)
    return ErrorSignalNorms(norms=sig.reshape(T + 1, -1).norm(dim=1).numpy(),
                            per_sequence=per_seq.numpy(), signals=sig.numpy(), loss=loss)


# ---------------------------------------------------------------------------
# Jacobians ∂h_t/∂h_k
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JacobianNorms:
    """‖∂h_t/∂h_k‖₂ (spectral norm) for a fixed t and every k ≤ t, per sequence.

    Attributes:
        t: the fixed later step.
        lag: ``[t+1]`` lags t − k = 0..t (k = t − lag).
        norms: ``[B, t+1]`` the spectral norm for each sequence and lag.
        lambda1: largest singular value λ₁ of W_rec.
        gamma: γ, the bound on |σ'| of the unit.
    """

    t: int
    lag: np.ndarray
    norms: np.ndarray
    lambda1: float
    gamma: float

    @property
    def k(self) -> np.ndarray:
        return self.t - self.lag

    @property
    def eta(self) -> float:
        """η = γ·λ₁, the per-step bound of eq. 7."""
        return self.gamma * self.lambda1

    @property
    def bound(self) -> np.ndarray:
        """η^(t−k), the upper bound of eq. 7 on every norm."""
        with np.errstate(over="ignore", under="ignore"):
            return self.eta ** self.lag.astype(float)

    def geometric_mean(self) -> np.ndarray:
        """The geometric mean over sequences for each lag (0 where any norm is 0)."""
        with np.errstate(divide="ignore"):
            return np.exp(np.mean(np.log(self.norms), axis=0))


def jacobian_norms(model, x: torch.Tensor, *, t: int | None = None, member: int = 0,
                   h0: torch.Tensor | None = None) -> JacobianNorms:
    """‖∂h_t/∂h_k‖₂ along the sequence for one later step t (default T).

    ∂h_t/∂h_k = J_t J_{t−1} … J_{k+1} with J_i = ∂h_i/∂h_{i−1} = diag(σ'(a_i)) W_recᵀ
    (Jacobian rows index h_i), so ‖∂h_t/∂h_k‖ ≤ (γ λ₁)^(t−k) (paper eq. 7).

    For a module wrapped in :class:`bptt.omega.Omega` the Jacobians are those of the
    concatenated state of every layer (``h0``: the initial state the wrapper takes);
    λ₁ and γ are NaN unless the module is a one-layer Elman-type map.
    """
    if is_wrapped(model):
        t, out = wrapped_jacobian_norms(model, x, t, h0)
        ew = elman_weight(model)
        lam1 = float(torch.linalg.matrix_norm(ew[0].double(), ord=2)) if ew is not None else float("nan")
        gamma = GAMMA[ew[1]] if ew is not None else float("nan")
        return JacobianNorms(t=t, lag=np.arange(t + 1), norms=out, lambda1=lam1, gamma=gamma)
    p, xm, hs, _, _ = _prepare(model, x, None, member, h0, None)
    T, B, H = xm.shape[0], xm.shape[1], model.n_hidden
    if t is None:
        t = T
    if int(t) != t or not (0 <= t <= T):
        raise ValueError(f"t must be an integer in [0, {T}], got {t!r}")
    t = int(t)
    sp = _slopes(hs, model.unit)
    W_T = p["W_rec"].T
    M = torch.eye(H, dtype=torch.float64).expand(B, H, H).clone()
    out = np.empty((B, t + 1))
    out[:, 0] = 1.0
    for lag in range(1, t + 1):
        i = t - lag + 1                                     # multiply by J_i on the right
        M = M @ (sp[i][:, :, None] * W_T[None])
        out[:, lag] = torch.linalg.matrix_norm(M, ord=2).numpy()
    lam1 = float(torch.linalg.matrix_norm(p["W_rec"], ord=2))
    return JacobianNorms(t=t, lag=np.arange(t + 1), norms=out, lambda1=lam1,
                         gamma=GAMMA[model.unit])
