"""The diagnostics of §2 for any recurrent PyTorch module wrapped in :class:`bptt.omega.Omega`.

A wrapped module's state s_k is the concatenation of every layer's state tensors
(layer 0 first; for an LSTM layer h then c), flattened per sequence to ``[B, S]``.

* The error signal ∂E/∂s_k concatenates the layers' δ_k, each layer's state taken as
  an output of its own step map (so δ of a lower layer includes the paths through the
  layers above at the same step, as in Ω); δ_0 = δ_1 ∂s_1/∂s_0 layer by layer.
* The temporal component (t, k) of the gradient of a parameter θ of layer l is
  ∂E_t/∂s^l_k · ∂⁺s^l_k/∂θ, the immediate derivative of layer l's step k with its
  input and earlier state held fixed (paper eqs. 4–5); they sum to ∂E/∂θ.
* The Jacobians ∂s_k/∂s_{k−1} (for the Jacobian norms and the Lyapunov exponents) are
  those of the whole module as one dynamical system: its step runs the layers in order
  (layer l reads layer l − 1's new h), so they include the paths from a lower layer at
  k − 1 to a higher layer at k.

For a one-layer ``nn.RNN`` these are exactly the quantities of the engine path
(:mod:`bptt.diagnostics.gradient_flow`, :mod:`bptt.diagnostics.lyapunov`) for the same
weights, up to the storage convention (``weight_hh`` is W_recᵀ); the tests hold them
equal.

The loss is given as a callable ``loss_fn(result)`` of what the wrapper returns: a
scalar, or for :func:`wrapped_gradient_flow` optionally a ``[T]`` vector of per-step
losses E_t (E = Σ_t E_t); a scalar counts as E_T.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from bptt.omega.wrapper import Omega


def is_wrapped(model) -> bool:
    return isinstance(model, Omega)


class Recurrence:
    """The stacked step map and states of a wrapped module, after a forward.

    Args:
        model: the :class:`~bptt.omega.Omega` wrapper.
        x: the input sequence as the wrapper takes it.
        state: the initial state as the wrapper takes it (``None``: zeros, where allowed).
        grad: keep the forward's graph (needed for error signals).
    """

    def __init__(self, model: Omega, x: torch.Tensor, state=None, grad: bool = False) -> None:
        if not is_wrapped(model):
            raise ValueError(f"expected a bptt.omega.Omega wrapper, got {type(model).__name__}")
        self.model = model
        with torch.set_grad_enabled(grad):
            self.result = model(x, state)
        rec = model.record
        self.layers = rec.layers
        self.inputs = self.layers[0].inputs                                  # [T, B, ...]
        self.T, self.B = self.inputs.shape[:2]
        self.sizes = [[int(np.prod(p.shape[2:])) for p in lr.get_states()] for lr in self.layers]
        self.S = sum(sum(s) for s in self.sizes)

    def states(self) -> torch.Tensor:
        """s_0..s_T, ``[T+1, B, S]``."""
        return torch.cat([p.reshape(self.T + 1, self.B, -1) for lr in self.layers for p in lr.get_states()], -1)

    def split(self, s: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """``[..., S]`` → per layer, the tuple of its state tensors (``[..., *shape]``)."""
        out, at = [], 0
        for lr, sizes in zip(self.layers, self.sizes):
            parts = []
            for p, n in zip(lr.first, sizes):
                parts.append(s[..., at:at + n].reshape(*s.shape[:-1], *p.shape[1:]))
                at += n
            out.append(tuple(parts))
        return out

    def step(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The stacked step map, ``u [N, ...]``, ``s [N, S]`` → ``[N, S]`` (differentiable)."""
        new = []
        for lr, prev in zip(self.layers, self.split(s)):
            nxt = lr.map.step(u, prev)
            new.extend(p.reshape(p.shape[0], -1) for p in nxt)
            u = nxt[lr.map.output_index]
        return torch.cat(new, -1)

    def jacobian(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """∂s_k/∂s_{k−1} at ``u [N, ...]``, ``s [N, S]``: ``[N, S, S]`` (rows index s_k)."""
        with torch.enable_grad():
            leaf = s.detach().requires_grad_(True)
            out = self.step(u, leaf)
            eye = torch.eye(self.S, dtype=out.dtype, device=out.device)[:, None, :].expand(self.S, *out.shape)
            try:
                (J,) = torch.autograd.grad(out, leaf, grad_outputs=eye, is_grads_batched=True,
                                           retain_graph=True, allow_unused=True)
            except RuntimeError:                            # an operation vmap cannot batch
                J = torch.stack([torch.autograd.grad(out, leaf, grad_outputs=e, retain_graph=True,
                                                     allow_unused=True)[0] for e in eye])
        if J is None:
            return torch.zeros(s.shape[0], self.S, self.S, dtype=s.dtype, device=s.device)
        return J.transpose(0, 1).detach()

    def layer_steps(self, k: int, s_prev: torch.Tensor) -> torch.Tensor:
        """Every layer's step k (1-based) from its own recorded input and the state
        ``s_prev [B, S]``, each layer's input held constant: ``[B, S]``."""
        out = []
        for lr, prev in zip(self.layers, self.split(s_prev)):
            out.extend(p.reshape(p.shape[0], -1) for p in lr.map.step(lr.inputs[k - 1], prev))
        return torch.cat(out, -1)

    def component_grads(self, k: int, deltas: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """δ^{(a)}_k ∂⁺s_k/∂θ for a stack of error signals ``deltas [A, B, S]`` at step k
        (1-based), per parameter: ``[A, *θ.shape]``."""
        with torch.enable_grad():
            out = self.layer_steps(k, self.states()[k - 1].detach())
            rows = []
            for a in range(deltas.shape[0]):
                g = torch.autograd.grad(out, params, grad_outputs=deltas[a], retain_graph=True,
                                        allow_unused=True)
                rows.append([torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params)])
        return [torch.stack([r[j] for r in rows]).detach() for j in range(len(params))]

    def error_signals(self, loss: torch.Tensor) -> torch.Tensor:
        """∂loss/∂s_k for k = 0..T, ``[T+1, B, S]`` (each layer's δ, see the module doc)."""
        per_layer = self.model.error_signals(loss)
        d = torch.cat([p.reshape(self.T, self.B, -1) for layer in per_layer for p in layer], -1)
        s0 = self.states()[0]
        with torch.enable_grad():
            leaf = s0.detach().requires_grad_(True)
            out = self.layer_steps(1, leaf)
            (d0,) = torch.autograd.grad(out, leaf, grad_outputs=d[0], allow_unused=True)
        d0 = torch.zeros_like(s0) if d0 is None else d0
        return torch.cat([d0[None], d]).detach()


def _loss_value(loss_fn: Callable, result) -> torch.Tensor:
    if not callable(loss_fn):
        raise ValueError("for a wrapped module, pass the loss as a callable loss_fn(result) of what "
                         "the wrapper returns")
    loss = loss_fn(result)
    if not isinstance(loss, torch.Tensor):
        raise ValueError(f"loss_fn must return a tensor, got {type(loss).__name__}")
    return loss


def wrapped_error_signals(model: Omega, x, loss_fn: Callable, state=None):
    """``(loss, signals [T+1, B, S])``: ∂E/∂s_k at every step k = 0..T."""
    rec = Recurrence(model, x, state, grad=True)
    loss = _loss_value(loss_fn, rec.result)
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar here, got shape {list(loss.shape)}")
    return float(loss.detach()), rec.error_signals(loss)


def wrapped_jacobian_norms(model: Omega, x, t: int | None, state=None) -> tuple[int, np.ndarray]:
    """``(t, norms [B, t+1])``: ‖∂s_t/∂s_{t−lag}‖₂ per sequence for lag = 0..t."""
    rec = Recurrence(model, x, state)
    T = rec.T
    if t is None:
        t = T
    if int(t) != t or not (0 <= t <= T):
        raise ValueError(f"t must be an integer in [0, {T}], got {t!r}")
    t = int(t)
    s = rec.states()
    M = torch.eye(rec.S, dtype=s.dtype, device=s.device).expand(rec.B, rec.S, rec.S).clone()
    out = np.empty((rec.B, t + 1))
    out[:, 0] = 1.0
    for lag in range(1, t + 1):
        i = t - lag + 1                                     # multiply by J_i on the right
        M = M @ rec.jacobian(rec.inputs[i - 1], s[i - 1])
        out[:, lag] = torch.linalg.matrix_norm(M, ord=2).cpu().double().numpy()
    return t, out


def elman_weight(model: Omega) -> tuple[torch.Tensor, str] | None:
    """``(W_rec [H, H] in the engine's row convention, unit)`` of a one-layer Elman-type
    wrapped module, else ``None``."""
    if model.family == "module":
        if model.kind != "rnn" or model.module.num_layers != 1:
            return None
        return model.module.weight_hh_l0.detach().T, model.module.nonlinearity
    if model.family == "cell":
        return (model.module.weight_hh.detach().T, model.module.nonlinearity) if model.kind == "rnn" else None
    if model.recurrent is None:
        return None
    W, unit = model.recurrent
    return W.detach().T, unit


def wrapped_gradient_flow(model: Omega, x, loss_fn: Callable, params, state=None):
    """The temporal components of the gradient of a wrapped module (eqs. 4–5).

    Args:
        model: the wrapper.
        x: the inputs as the wrapper takes them.
        loss_fn: ``loss_fn(result)`` → a scalar (counted as E_T) or ``[T]`` per-step E_t.
        params: parameter names of the wrapped module (as in ``named_parameters()``);
            ``None``: its recurrent weights (names containing ``weight_hh``).
        state: the initial state.

    Returns:
        ``(T, sources, loss, names, comps)``: sources 1-based ``[A]``; ``comps`` name →
        ``[A, T, *shape]`` numpy array, component (source a, step k), zero for k > t.
    """
    named = dict(model.module.named_parameters()) if isinstance(model.module, torch.nn.Module) else {}
    if params is None:
        names = tuple(n for n in named if "weight_hh" in n)
        if not names:
            raise ValueError("this module has no parameter named weight_hh*: name the parameters to "
                             f"take apart (params=...), some of {sorted(named)}")
    else:
        names = (params,) if isinstance(params, str) else tuple(params)
        bad = [n for n in names if n not in named]
        if bad or not names:
            raise ValueError(f"params must name parameters of the wrapped module, some of "
                             f"{sorted(named)}; got {list(names)!r}")
    rec = Recurrence(model, x, state, grad=True)
    loss = _loss_value(loss_fn, rec.result)
    T = rec.T
    if loss.numel() == 1:
        per_step, sources = [loss.reshape(())], [T]
    elif tuple(loss.shape) == (T,):
        sources = [t + 1 for t in range(T) if loss[t].requires_grad]
        per_step = [loss[t - 1] for t in sources]
    else:
        raise ValueError(f"loss_fn must return a scalar or the [T] = [{T}] per-step losses, "
                         f"got shape {list(loss.shape)}")
    if not sources:
        raise ValueError("no per-step loss depends on the wrapper's outputs")
    deltas = []
    for E_t in per_step:
        layers = model.error_signals(E_t)
        deltas.append(torch.cat([p.reshape(T, rec.B, -1) for lay in layers for p in lay], -1))
    deltas = torch.stack(deltas)                            # [A, T, B, S]
    plist = [named[n] for n in names]
    comps = {n: np.zeros((len(sources), T, *named[n].shape)) for n in names}
    src = np.asarray(sources)
    for k in range(1, T + 1):
        active = np.flatnonzero(src >= k)
        if active.size == 0:
            continue
        grads = rec.component_grads(k, deltas[torch.as_tensor(active), k - 1], plist)
        for n, g in zip(names, grads):
            comps[n][active, k - 1] = g.cpu().double().numpy()
    return T, src, float(loss.detach().sum()), names, comps


def wrapped_lyapunov(model: Omega, inputs, *, k: int | None, steps: int, transient: int, h0, seed: int,
                     n_in: int | None = None, state=None):
    """``(exponents, history, n)`` of the wrapped module's state map by the QR method.

    ``inputs`` ``[T, ...]`` drives one sequence; ``None`` runs the autonomous map with
    zero input (``n_in`` features, default the module's input size) for ``steps`` steps.
    The initial state (``h0`` ``[S]``, default N(0, 0.5²) from ``seed``) and the initial
    tangent vectors are drawn as in :func:`bptt.diagnostics.lyapunov_exponents`. A
    user cell needs ``state``, a state of one sequence giving the layout.
    """
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    probe_in = _probe_input(model, inputs, n_in).to(dtype)
    if model.family == "user" and state is None:
        raise ValueError("the Lyapunov exponents of a user cell need state=, a state of one sequence "
                         "(batch 1) giving its layout")
    rec = Recurrence(model, probe_in[:1, None], state)
    S = rec.S
    k = S if k is None else k
    if int(k) != k or not (1 <= k <= S):
        raise ValueError(f"k must be an integer in [1, {S}], got {k!r}")
    k = int(k)
    n = probe_in.shape[0] if inputs is not None else int(steps)
    if int(transient) != transient or not (0 <= transient < n):
        raise ValueError(f"transient must be an integer in [0, {n - 1}] (fewer than the {n} steps), "
                         f"got {transient!r}")
    transient = int(transient)
    rng = np.random.default_rng(seed)
    h = rng.normal(0.0, 0.5, S) if h0 is None else np.asarray(h0, dtype=np.float64).reshape(-1)
    if h.shape != (S,):
        raise ValueError(f"h0 must have {S} entries (the whole state), got {h.size}")
    Q, _ = np.linalg.qr(rng.standard_normal((S, k)))
    s = torch.as_tensor(h, dtype=dtype)[None]
    total = np.zeros(k)
    history = np.empty((n - transient, k))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for t in range(n):
            u = probe_in[t if inputs is not None else 0][None]
            J = rec.jacobian(u, s)[0].cpu().double().numpy()
            with torch.no_grad():
                s = rec.step(u, s)
            if not torch.all(torch.isfinite(s)):
                raise ValueError(f"the state became non-finite at step {t + 1}; "
                                 "the exponents of this trajectory are undefined")
            Q, R = np.linalg.qr(J @ Q)
            if t >= transient:
                total += np.log(np.abs(np.diagonal(R)))
                history[t - transient] = total / (t - transient + 1)
    return total / (n - transient), history, n


def _probe_input(model: Omega, inputs, n_in):
    if inputs is not None:
        u = torch.as_tensor(inputs.detach() if hasattr(inputs, "detach") else inputs)
        if u.dim() < 2:
            raise ValueError(f"inputs must be one sequence [T, ...], got shape {list(u.shape)}")
        return u.to(torch.float64)
    if n_in is None:
        n_in = getattr(model.module, "input_size", None)
        if n_in is None:
            raise ValueError("the autonomous run of a user cell needs n_in (its input size) or inputs")
    return torch.zeros(1, int(n_in), dtype=torch.float64)
