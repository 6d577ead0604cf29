"""Ω (§3.3, eqs. 9–10) for the ensemble models differentiated by autograd.

:class:`bptt.models.base.AutogradEnsemble` models (LSTM, GRU, leaky integrators, the
skip network) carry a state s_k of width S between steps (``[h | c]`` for an LSTM, the
last d hidden states for a delay-d skip network, h otherwise), produced by their own
time loop ``model._run``. One call of that loop on one step *is* the step map
s_k = f(u_k, s_{k−1}; θ), so Ω is defined here for every such model from it alone:

* s_k, k = 0..T, is the carried state after step k (s_0 = ``h0``, zeros by default);
  the readout reads h_k, the first H entries of s_k;
* δ_k = ∂E/∂s_k is the total derivative of the loss with respect to s_k (through the
  readout of step k and every later step), E the sum of the members' losses, so that
  δ of member e is its own loss's;
* v_k = δ_{k+1} ∂f(u_{k+1}, s_k)/∂s_k, Ω_k = (‖v_k‖²/‖δ_{k+1}‖² − 1)² (``"squared"``)
  or (‖v_k‖/‖δ_{k+1}‖ − 1)² (``"plain"``), averaged per member over the (step,
  sequence) pairs with ‖δ_{k+1}‖² ≥ 1e-20 — :func:`bptt.omega.terms.omega_terms`.

The gradient follows eq. 10 with δ and the states held constant and every parameter
of the step map differentiated (the ``"full"`` semantics of :class:`bptt.omega.Omega`):
∂Ω/∂θ = Σ_k c_k v_kᵀ ∂v_k/∂θ with ∂Ω/∂v_k = c_k v_k. For an Elman-type map this is
the engine's Ω plus the terms through σ'(a_k), which the engine (the paper's code)
holds constant. v_k for all T·B pairs of all members comes from one evaluation of
the step map on the stacked states and one vector–Jacobian product with a graph.
"""

from __future__ import annotations

import torch

from bptt.omega.terms import OMEGA_BOUND, omega_terms


def _stack_pairs(t: torch.Tensor) -> torch.Tensor:
    """``[T, E, B, ...]`` → ``[E, T·B, ...]`` (pair index k·B + b)."""
    T, E, B = t.shape[:3]
    return t.transpose(0, 1).reshape(E, T * B, *t.shape[3:])


def forward_backward(model, x: torch.Tensor, loss_of, alpha, omega: str, *,
                     h0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                     bound: float = OMEGA_BOUND):
    """Loss, gradients of loss + α·Ω and Ω of each member of an autograd ensemble.

    The inputs are checked by the caller (:meth:`AutogradEnsemble.forward_backward`).

    Args:
        model: an :class:`bptt.models.base.AutogradEnsemble` (its ``_run``,
            ``params``, buffers, ``per_step`` and sizes).
        x: ``[T, B, I]`` or ``[T, E, B, I]`` inputs in the model's dtype (after dropout).
        loss_of: ``loss_of(tensors, h) -> [E]`` each member's loss from the parameters
            and buffers by name and the hidden outputs the readout reads (``[T, E, B, H]``
            for per-step outputs, else ``[E, B, H]``).
        alpha: Ω's weight α, a float or ``[E]``.
        omega: Ω's form, ``"squared"`` or ``"plain"``.
        h0: ``[E, B, S]`` initial state s_0 (zeros by default).
        mask: ``[T, B]`` 1 on real steps (per-step outputs over padded batches); the
            fraction of pairs is then taken over the real steps.
        bound: pairs with ‖δ_{k+1}‖² below this are left out.

    Returns:
        ``(loss, grads, omega, fraction, state)``: ``loss`` ``[E]``; ``grads`` by
        parameter name, ∂(loss_e + α_e Ω_e)/∂θ_e; ``omega`` and ``fraction`` ``[E]``
        (Ω and the fraction of pairs that entered); ``state`` ``[E, B, S]`` s_T. All
        without a graph.
    """
    leaves = {k: p.detach().requires_grad_(True) for k, p in model.params.items()}
    tensors = leaves | {k: b for k, b in model.named_buffers()}
    T = x.shape[0]
    E, H, S = model.ensemble, model.n_hidden, model.state_size
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    if h0 is None:
        h0 = torch.zeros(E, B, S, dtype=model.dtype, device=model.device)
    first = h0.detach()
    with torch.enable_grad():
        # the unrolled loop, one step map call a step; each s_k a node of its own, read
        # by the readout (through h_k = s_k[..., :H]) and by the next step
        states, s = [], first
        for t in range(T):
            _, s = model._run(tensors, x[t:t + 1], s, False)
            s = s.view_as(s)
            states.append(s)
        if model.per_step:
            h = torch.stack([st[..., :H] for st in states])                 # [T,E,B,H]
        else:
            h = states[-1][..., :H]                                          # [E,B,H]
        loss = loss_of(tensors, h)                                           # [E]
        total = loss.sum()
        delta = torch.stack(torch.autograd.grad(total, states, retain_graph=True))   # [T,E,B,S] δ_1..δ_T

        # v_k for every (step, sequence) pair at once: f(u_{k+1}, s_k) on the stacked pairs
        prev = torch.stack([first] + [st.detach() for st in states[:-1]])    # [T,E,B,S] s_0..s_{T−1}
        prev_leaf = _stack_pairs(prev).requires_grad_(True)                 # [E,T·B,S]
        u = x.reshape(1, T * B, -1) if x.dim() == 3 else _stack_pairs(x).unsqueeze(0)
        _, nxt = model._run(tensors, u, prev_leaf, False)
        v = torch.autograd.grad(nxt, prev_leaf, grad_outputs=_stack_pairs(delta), create_graph=True)[0]
        v_norm2 = v.square().sum(-1).view(E, T, B).transpose(0, 1)          # [T,E,B]
        g_norm2 = delta.square().sum(-1)                                     # [T,E,B]
        n_pairs = None if mask is None else mask.to(model.dtype).sum().clamp_min(1.0)
        terms = omega_terms(v_norm2.detach(), g_norm2, omega, n_pairs=n_pairs, bound=bound)
        a = torch.as_tensor(alpha, dtype=model.dtype, device=model.device).reshape(-1).expand(E)
        # ∂/∂θ of ½ Σ α_e c_k ‖v_k‖² (c_k constant) is Σ α_e c_k v_kᵀ ∂v_k/∂θ = α_e ∂Ω_e/∂θ
        surrogate = 0.5 * (terms.coef * a[None, :, None] * v_norm2).sum()
        names = list(leaves)
        got = torch.autograd.grad(total + surrogate, [leaves[n] for n in names], allow_unused=True)
    grads = {n: torch.zeros_like(leaves[n]) if g is None else g for n, g in zip(names, got)}
    return loss.detach(), grads, terms.omega, terms.fraction, states[-1].detach()
