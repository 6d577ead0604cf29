"""Hand-derived backpropagation through time of an LSTM ensemble (see :mod:`bptt.models.lstm`).

The same idea as :mod:`bptt.engine.exact`: only the recurrent product and a few
element-wise operations run inside the two time loops. The rows r_t = [h_{t−1} | u_t | 1]
are stored side by side, so that each forward step is one product r_t [W_rec; W_in; b]
(input, bias and recurrence together: no separate pass over all steps for the input
projection) and all three weight gradients are one sum of products,

    [∂L/∂W_rec; ∂L/∂W_in; ∂L/∂b] = Σ_t r_tᵀ δ_t,

with δ_t = ∂L/∂a_t the error at the four gates' pre-activations a_t = [a_i|a_f|a_g|a_o].
That sum is taken every ``_BLOCK`` steps of the backward loop over the block just
finished (one product of ``_BLOCK``·B rows), while its δ are still in cache; δ is never
stored for all steps. Going back one step (⊙ element-wise, τ_t = tanh c_t):

    ∂c_t  = ∂c_t(from t+1) + ∂h_t ⊙ o_t ⊙ (1 − τ_t²)
    δ_i   = ∂c_t ⊙ g_t ⊙ i_t(1 − i_t)        δ_f = ∂c_t ⊙ c_{t−1} ⊙ f_t(1 − f_t)
    δ_g   = ∂c_t ⊙ i_t ⊙ (1 − g_t²)          δ_o = ∂h_t ⊙ τ_t ⊙ o_t(1 − o_t)
    ∂c_{t−1}(from t) = ∂c_t ⊙ f_t,           ∂h_{t−1} = δ_t W_recᵀ (+ its readout term).

Every tanh runs as a sigmoid, tanh(z) = 2σ(2z) − 1 (the CPU's sigmoid is several times
cheaper than its tanh): the candidate's weight columns are doubled so that one sigmoid
covers the four gates (s_g = σ(2a_g), g = 2s_g − 1), and the cell is carried doubled,
C_t = 2c_t, so that τ_t = 2σ(C_t) − 1 needs no scaling. With σ' = s(1 − s) of each
gate, the backward loop carries ε = [δ_i | 2δ_f | δ_g/4 | δ_o]; the factors
k = [1 | ½ | 4 | 1] return in W_recᵀ's rows and in the columns of the weight
gradients (powers of two: exact).

The factors that multiply ∂c_t and ∂h_t (g σ'_i, C_{t−1} σ'_f, i σ'_g, τ σ'_o, f and
o(1 − τ²)) are formed in the forward loop, while the step's gates are still in cache,
so that each backward step is four element-wise products and one batched product.
Exact up to rounding; the tests hold it to ``torch.autograd`` at 1e-10 in float64.

The per-step arrays (``[T, E, B, ·]``: the gates' factors, [f | o(1 − τ²)] and the rows)
live in a module-wide :class:`Workspace` reused
from one pass to the next: touching fresh pages costs more than the arithmetic.
Nothing returned aliases them.
"""

from __future__ import annotations

import torch

from bptt.engine.exact import Workspace
from bptt.engine.outputs import PER_STEP
from bptt.models.readout import readout_backward


_WORKSPACE = Workspace()
_BLOCK = 4   # steps per product of the weight gradients (measured: 1–4 equally fast, 8+ slower)


def _gate_scale(H: int, f: float, g: float, like: torch.Tensor) -> torch.Tensor:
    """``[4H]``: 1 on the i and o blocks, ``f`` on the forget block, ``g`` on the candidate's."""
    s = torch.ones(4 * H, dtype=like.dtype, device=like.device)
    s[H:2 * H] = f
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
    torch.set_flush_denormal(True)
    W_in, W_rec, b = params["W_in"], params["W_rec"], params["b"]
    E, H = W_rec.shape[0], W_rec.shape[1]
    I, T = W_in.shape[1], x.shape[0]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    K = H + I + 1
    dtype, dev = W_rec.dtype, W_rec.device
    ws = workspace or _WORKSPACE
    two = _gate_scale(H, 1.0, 2.0, W_rec)

    # ---- rows[:, t] = [h_t | u_{t+1} | 1]: the left operand of every product ----------
    rows = ws.get("rows", (E, T + 1, B, K), dtype, dev)
    hs = rows[..., :H]                                                  # [E,T+1,B,H], h_0..h_T
    if x.dim() == 3:
        rows[:, :T, :, H:K - 1].copy_(x.unsqueeze(0).expand(E, T, B, I))
    else:
        rows[:, :T, :, H:K - 1].copy_(x.transpose(0, 1))
    rows[:, T, :, H:K - 1].zero_()
    rows[..., K - 1].fill_(1.0)

    # ---- forward ------------------------------------------------------------------------
    # act[t]: the step's gates; afterwards the step's
    # backward factors [g σ'_i | C_{t−1} σ'_f | i σ'_g | τ σ'_o]; fq[t] = [f | o(1 − τ²)].
    act = ws.get("act", (T, E, B, 4 * H), dtype, dev)
    fq = ws.get("fq", (T, E, B, 2 * H), dtype, dev)
    # m[t % 2] = [g_t | C_{t−1} | i_t | τ_t], the multipliers of σ' (two alternating buffers)
    m = ws.get("mult", (2, E, B, 4 * H), dtype, dev)
    sig = ws.get("sig", (E, B, H), dtype, dev)
    if h0 is None:
        hs[:, 0].zero_()
        m[0, ..., H:2 * H].zero_()
    else:
        hs[:, 0].copy_(h0[..., :H])
        torch.mul(h0[..., H:], 2.0, out=m[0, ..., H:2 * H])
    W_all = torch.cat([W_rec, W_in, b.unsqueeze(1)], 1).mul_(two)     # [E,K,4H]
    minus_one = torch.full((), -1.0, dtype=dtype, device=dev)
    # every view the loop needs, made a few calls at a time rather than one per step
    gates = act.unflatten(-1, (4, H)).movedim(-2, 0).unbind(0)         # i, f, s_g, o: [T,E,B,H]
    mults = m.unflatten(-1, (4, H)).movedim(-2, 0).unbind(0)           # g, C, i, τ: [2,E,B,H]
    f_all, q_all = fq.unflatten(-1, (2, H)).movedim(-2, 0).unbind(0)
    with torch.inference_mode():
        steps = zip(act.unbind(0), rows.unbind(1), hs.unbind(1)[1:], *(v.unbind(0) for v in gates),
                    f_all.unbind(0), q_all.unbind(0))
        m_g, m_C, m_i, m_tau = (v.unbind(0) for v in mults)
        m_all = m.unbind(0)
        for t, (a, r, h, i, f, s_g, o, f_t, q_t) in enumerate(steps):
            torch.bmm(r, W_all, out=a).sigmoid_()                       # [i | f | s_g | o]
            k0, k1 = t % 2, (t + 1) % 2
            g, tau = m_g[k0], m_tau[k0]
            torch.add(minus_one, s_g, alpha=2.0, out=g)                 # g = 2 s_g − 1
            m_i[k0].copy_(i)
            C = torch.mul(f, m_C[k0], out=m_C[k1]).addcmul_(i, g, value=2.0)   # C_t = f C_{t−1} + 2 i g
            torch.add(minus_one, torch.sigmoid(C, out=sig), alpha=2.0, out=tau)
            torch.mul(o, tau, out=h)
            f_t.copy_(f)
            torch.addcmul(o, h, tau, value=-1.0, out=q_t)               # o (1 − τ²)
            a.addcmul_(a, a, value=-1.0).mul_(m_all[k0])                # σ' ⊙ [g | C_{t−1} | i | τ]
    C_last = m[T % 2, ..., H:2 * H]

    loss, grad_W_out, grad_b_out, direct = readout_backward(params, hs, y, output, mask)
    per_step = output in PER_STEP

    # ---- backward: ε_t = δ_t / k; the weight gradients block by block ------------------
    k = _gate_scale(H, 0.5, 4.0, W_rec)
    block = min(T, _BLOCK)
    eps = ws.get("eps", (E, block, B, 4 * H), dtype, dev)             # ε of the block's steps
    W_back = (W_rec * k).transpose(1, 2).contiguous()                  # [E,4H,H]
    full = torch.zeros(E, K, 4 * H, dtype=dtype, device=dev)           # Σ_t rows_tᵀ ε_t
    carry = torch.zeros(E, B, H, dtype=dtype, device=dev)              # ∂c_t from step t+1
    dc = torch.empty_like(carry)
    dh_buf = torch.empty_like(carry)
    dh = direct[:, T - 1] if per_step else direct
    with torch.inference_mode():
        for t in range(T - 1, -1, -1):
            t0 = t - t % block                                          # the block's first step
            D = eps[:, t - t0]
            f_t, q_t = fq[t].split(H, -1)
            torch.addcmul(carry, dh, q_t, out=dc)                       # ∂c_t
            torch.mul(dc.unsqueeze(2), act[t, ..., :3 * H].unflatten(-1, (3, H)),
                      out=D[..., :3 * H].unflatten(-1, (3, H)))         # δ_i, 2δ_f, δ_g/4
            torch.mul(dh, act[t, ..., 3 * H:], out=D[..., 3 * H:])     # δ_o
            if t == t0:                                                 # the block is complete
                n = min(block, T - t0)
                full.baddbmm_(rows[:, t0:t0 + n].reshape(E, n * B, K).transpose(1, 2),
                              eps[:, :n].reshape(E, n * B, 4 * H))
            if t == 0:
                break
            torch.mul(dc, f_t, out=carry)
            dh = torch.bmm(D, W_back, out=dh_buf)
            if per_step:
                dh.add_(direct[:, t - 1])
    full.mul_(k)
    grads = {"W_in": full[:, H:K - 1].clone(), "W_rec": full[:, :H].clone(), "b": full[:, K - 1].clone(),
             "W_out": grad_W_out, "b_out": grad_b_out}
    return loss, grads, torch.cat([hs[:, T], C_last * 0.5], -1)
