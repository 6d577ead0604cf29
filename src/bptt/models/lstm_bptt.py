"""Hand-derived backpropagation through time of an LSTM ensemble (see :mod:`bptt.models.lstm`).

The same idea as :mod:`bptt.engine.exact`: only the recurrent product and a few
element-wise operations run inside the two time loops; every weight gradient is one
large product over all steps afterwards,

    ∂L/∂W_rec = Σ_t h_{t−1}ᵀ δ_t,   ∂L/∂W_in = Σ_t u_tᵀ δ_t,   ∂L/∂b = Σ_t δ_t,

with δ_t = ∂L/∂a_t the error at the four gates' pre-activations a_t = [a_i|a_f|a_g|a_o].
Going back one step (⊙ elementwise, τ_t = tanh c_t):

    ∂c_t  = ∂c_t(from t+1) + ∂h_t ⊙ o_t ⊙ (1 − τ_t²)
    δ_i   = ∂c_t ⊙ g_t ⊙ i_t(1 − i_t)        δ_f = ∂c_t ⊙ c_{t−1} ⊙ f_t(1 − f_t)
    δ_g   = ∂c_t ⊙ i_t ⊙ (1 − g_t²)          δ_o = ∂h_t ⊙ τ_t ⊙ o_t(1 − o_t)
    ∂c_{t−1}(from t) = ∂c_t ⊙ f_t,           ∂h_{t−1} = δ_t W_recᵀ (+ its readout term).

The candidate g runs as tanh(a) = 2σ(2a) − 1 with the factor 2 folded into its weight
columns, so one sigmoid covers all four gates and s(1 − s) gives every gate's
derivative; the loop then carries δ_g/4 and the factor returns in W_recᵀ's g rows and
in the g columns of the weight gradients. The factors that multiply ∂c_t and ∂h_t
(g σ'_i, c_{t−1} σ'_f, i σ'_g, τ σ'_o and o(1 − τ²)) are formed for all steps at once
after the forward loop, so that each backward step is four element-wise products and
one batched product. Exact up to rounding; the tests hold it to ``torch.autograd`` at
1e-10 in float64.

The per-step arrays ([T, E, B, 4H]) live in a module-wide :class:`Workspace` reused
from one pass to the next: touching fresh pages costs more than the arithmetic.
Nothing returned aliases them.
"""

from __future__ import annotations

import torch

from bptt.engine.exact import Workspace
from bptt.engine.outputs import PER_STEP
from bptt.models.readout import input_gradient, readout_backward


_WORKSPACE = Workspace()


def _gate_scale(H: int, g: float, like: torch.Tensor) -> torch.Tensor:
    s = torch.ones(4 * H, dtype=like.dtype, device=like.device)
    s[2 * H:3 * H] = g
    return s


@torch.no_grad()
def forward_backward(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, *, output: str,
                     h0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                     workspace: Workspace | None = None):
    """Loss, exact gradients and the last state of an LSTM ensemble.

    Args:
        params: ``W_in [E,I,4H]``, ``W_rec [E,H,4H]``, ``b [E,4H]``, ``W_out [E,H,O]``,
            ``b_out [E,O]``.
        x: ``[T, B, I]`` or ``[T, E, B, I]`` in the parameters' dtype.
        y: targets of ``output`` (shared or per member).
        output: the output kind.
        h0: ``[E, B, 2H]`` the state [h_0 | c_0] (zeros by default).
        mask: ``[T, B]`` for per-step outputs.
        workspace: buffers to reuse (default: a module-wide one; one per thread).

    Returns:
        ``(loss [E], grads, state [E, B, 2H])`` with ``grads`` keyed as ``params``.
    """
    W_in, W_rec, b = params["W_in"], params["W_rec"], params["b"]
    E, H = W_rec.shape[0], W_rec.shape[1]
    T = x.shape[0]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    dtype, dev = W_rec.dtype, W_rec.device
    two = _gate_scale(H, 2.0, W_rec)

    # ---- forward: act[t] = [i|f|s_g|o] of step t+1 (s_g = σ(2a_g), g = 2s_g − 1) -------
    ws = workspace or _WORKSPACE
    act = ws.get("act", (T, E, B, 4 * H), dtype, dev)
    hs = ws.get("hs", (E, T + 1, B, H), dtype, dev)                 # ensemble-major: the
    cs = ws.get("cs", (T + 1, E, B, H), dtype, dev)                 # products read it as is
    taus = ws.get("taus", (T, E, B, H), dtype, dev)
    if h0 is None:
        hs[:, 0].zero_()
        cs[0].zero_()
    else:
        hs[:, 0].copy_(h0[..., :H])
        cs[0].copy_(h0[..., H:])
    W2 = W_rec * two
    # u_t W_in + b for every step, written time-major straight into act
    torch.matmul(x if x.dim() == 4 else x.unsqueeze(1), W_in * two, out=act)
    act.add_((b * two).unsqueeze(1))
    with torch.inference_mode():
        for t, a in enumerate(act.unbind(0)):
            a.baddbmm_(hs[:, t], W2).sigmoid_()
            i, f, s_g, o = a.split(H, -1)
            c = torch.mul(f, cs[t], out=cs[t + 1]).addcmul_(i, s_g, value=2.0).sub_(i)   # f c + i (2s_g − 1)
            torch.mul(o, torch.tanh(c, out=taus[t]), out=hs[:, t + 1])

    # ---- what the backward loop multiplies by, for all steps at once -------------------
    # coef[t] = [g σ'_i | c_{t−1} σ'_f | i σ'_g | τ σ'_o] (σ' = s(1 − s); σ'_g of s_g, so the
    # loop carries δ_g/4), q[t] = o (1 − τ²)
    coef = ws.get("coef", (T, E, B, 4 * H), dtype, dev)
    torch.addcmul(act, act, act, value=-1.0, out=coef)
    i_all, f_all, g_all, o_all = act.split(H, -1)
    g_all.mul_(2.0).sub_(1.0)
    ci, cf, cg, co = coef.split(H, -1)
    ci.mul_(g_all)
    cf.mul_(cs[:-1])
    cg.mul_(i_all)
    co.mul_(taus)
    one = torch.ones((), dtype=dtype, device=dev)
    q = ws.get("q", (T, E, B, H), dtype, dev)
    torch.addcmul(one, taus, taus, value=-1.0, out=q).mul_(o_all)

    loss, grad_W_out, grad_b_out, direct = readout_backward(params, hs, y, output, mask)
    per_step = output in PER_STEP

    # ---- backward: delta[:, t] = δ_{t+1} (δ_g/4), ensemble-major for the products ------
    delta = ws.get("delta", (E, T, B, 4 * H), dtype, dev)
    W_back = (W_rec * _gate_scale(H, 4.0, W_rec)).transpose(1, 2)  # [E,4H,H]
    carry = torch.zeros(E, B, H, dtype=dtype, device=dev)          # ∂c_t from step t+1
    dc = torch.empty_like(carry)
    dh_buf = torch.empty_like(carry)
    dh = direct[:, T - 1] if per_step else direct
    with torch.inference_mode():
        for t in range(T - 1, -1, -1):
            D = delta[:, t]
            torch.addcmul(carry, dh, q[t], out=dc)                   # ∂c_t
            torch.mul(dc.unsqueeze(2), coef[t, ..., :3 * H].unflatten(-1, (3, H)),
                      out=D[..., :3 * H].unflatten(-1, (3, H)))      # δ_i, δ_f, δ_g/4
            torch.mul(dh, coef[t, ..., 3 * H:], out=D[..., 3 * H:])  # δ_o
            if t == 0:
                break
            torch.mul(dc, f_all[t], out=carry)
            dh = torch.bmm(D, W_back, out=dh_buf)
            if per_step:
                dh.add_(direct[:, t - 1])

    # ---- weight gradients in one product over all steps ------------------------------
    four = _gate_scale(H, 4.0, W_rec)
    flat = delta.view(E, T * B, 4 * H)
    left = hs[:, :T].reshape(E, T * B, H)                           # a view: h_0..h_{T−1}
    grads = {"W_in": input_gradient(x, flat).mul_(four), "W_rec": torch.bmm(left.transpose(1, 2), flat).mul_(four),
             "b": flat.sum(1).mul_(four), "W_out": grad_W_out, "b_out": grad_b_out}
    return loss, grads, torch.cat([hs[:, T], cs[T]], -1)
