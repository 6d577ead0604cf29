"""Hand-derived backpropagation through time of a GRU ensemble (``reset_after=True``,
see :mod:`bptt.models.gru`).

Forward, with m_t = h_{t−1} W_rec^n + b_rec (the candidate's recurrent term):

    r, z = σ(u_t W_in^{rz} + b^{rz} + h_{t−1} W_rec^{rz}),   n = tanh(u_t W_in^n + b^n + r ⊙ m_t)
    h_t = n + z ⊙ (h_{t−1} − n)

Backward one step, from ∂h_t (⊙ elementwise):

    δ_n = ∂h_t ⊙ (1 − z)(1 − n²)            (at the candidate's pre-activation)
    δ_z = ∂h_t ⊙ (h_{t−1} − n) z(1 − z)
    δ_m = δ_n ⊙ r,   δ_r = δ_n ⊙ m_t r(1 − r)
    ∂h_{t−1} = ∂h_t ⊙ z + [δ_r | δ_z | δ_m] W_recᵀ  (+ its readout term)

and the weight gradients afterwards, in one product each over all steps:
∂W_rec = Σ h_{t−1}ᵀ [δ_r|δ_z|δ_m], ∂b_rec = Σ δ_m, ∂W_in = Σ u_tᵀ [δ_r|δ_z|δ_n],
∂b = Σ [δ_r|δ_z|δ_n]. The factors of ∂h_t are formed for all steps at once after the
forward loop, so each backward step is three element-wise products, one batched
product and one fused multiply-add. The tests hold it to ``torch.autograd`` at 1e-10
in float64.
"""

from __future__ import annotations

import torch

from bptt.engine.exact import Workspace
from bptt.engine.outputs import PER_STEP
from bptt.models.readout import input_gradient, readout_backward

_WORKSPACE = Workspace()


@torch.no_grad()
def forward_backward(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, *, output: str,
                     h0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                     workspace: Workspace | None = None):
    """Loss, exact gradients and the last state of a GRU ensemble (reset after the product).

    Args:
        params: ``W_in [E,I,3H]``, ``W_rec [E,H,3H]``, ``b [E,3H]``, ``b_rec [E,H]``,
            ``W_out [E,H,O]``, ``b_out [E,O]``.
        x: ``[T, B, I]`` or ``[T, E, B, I]`` in the parameters' dtype.
        y: targets of ``output`` (shared or per member).
        output: the output kind.
        h0: ``[E, B, H]`` (zeros by default).
        mask: ``[T, B]`` for per-step outputs.
        workspace: buffers to reuse (default: a module-wide one; one per thread).

    Returns:
        ``(loss [E], grads, h_T [E, B, H])`` with ``grads`` keyed as ``params``.
    """
    W_in, W_rec, b, b_rec = params["W_in"], params["W_rec"], params["b"], params["b_rec"]
    E, H = W_rec.shape[0], W_rec.shape[1]
    T = x.shape[0]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    dtype, dev = W_rec.dtype, W_rec.device
    ws = workspace or _WORKSPACE

    # ---- forward: xw[t] = u W_in + b (time-major), rec[t] = [r | z | m] of step t+1 ------
    xw = ws.get("xw", (T, E, B, 3 * H), dtype, dev)
    torch.matmul(x if x.dim() == 4 else x.unsqueeze(1), W_in, out=xw)
    xw.add_(b.unsqueeze(1))
    rec = ws.get("rec", (T, E, B, 3 * H), dtype, dev)
    ns = ws.get("ns", (T, E, B, H), dtype, dev)
    hs = ws.get("hs", (E, T + 1, B, H), dtype, dev)                 # ensemble-major
    if h0 is None:
        hs[:, 0].zero_()
    else:
        hs[:, 0].copy_(h0)
    bias = torch.cat([torch.zeros(E, 2 * H, dtype=dtype, device=dev), b_rec], -1).unsqueeze(1)
    diff = torch.empty(E, B, H, dtype=dtype, device=dev)
    with torch.inference_mode():
        for t in range(T):
            h = hs[:, t]
            a = torch.baddbmm(bias, h, W_rec, out=rec[t])
            rz = a[..., :2 * H].add_(xw[t, ..., :2 * H]).sigmoid_()
            n = torch.addcmul(xw[t, ..., 2 * H:], rz[..., :H], a[..., 2 * H:], out=ns[t]).tanh_()
            torch.sub(h, n, out=diff)
            torch.addcmul(n, rz[..., H:], diff, out=hs[:, t + 1])

    # ---- the factors of ∂h_t for all steps at once -------------------------------------
    # fac[t] = [m r(1−r) | (h_{t−1} − n) z(1−z) | r | (1 − z)(1 − n²)]
    r_all, z_all, m_all = rec.split(H, -1)
    fac = ws.get("fac", (T, E, B, 4 * H), dtype, dev)
    f_r, f_z, f_m, f_n = fac.split(H, -1)
    one = torch.ones((), dtype=dtype, device=dev)
    torch.addcmul(r_all, r_all, r_all, value=-1.0, out=f_r).mul_(m_all)
    torch.sub(hs[:, :T].transpose(0, 1), ns, out=f_z).mul_(z_all)
    f_z.sub_(f_z * z_all)                                           # ⊙ z(1 − z)
    f_m.copy_(r_all)
    torch.addcmul(one, ns, ns, value=-1.0, out=f_n)
    f_n.sub_(f_n * z_all)                                           # ⊙ (1 − z)

    loss, grad_W_out, grad_b_out, direct = readout_backward(params, hs, y, output, mask)
    per_step = output in PER_STEP

    # ---- backward: drec[:, t] = [δ_r | δ_z | δ_m], dn[:, t] = δ_n -----------------------
    drec = ws.get("drec", (E, T, B, 3 * H), dtype, dev)
    dn = ws.get("dn", (E, T, B, H), dtype, dev)
    W_back = W_rec.transpose(1, 2)                                  # [E,3H,H]
    dh_bufs = torch.empty(2, E, B, H, dtype=dtype, device=dev).unbind(0)
    dh = direct[:, T - 1] if per_step else direct
    with torch.inference_mode():
        for t in range(T - 1, -1, -1):
            D = drec[:, t]
            d_n = torch.mul(dh, f_n[t], out=dn[:, t])
            torch.mul(dh, f_z[t], out=D[..., H:2 * H])
            # δ_r = δ_n ⊙ m r(1−r) and δ_m = δ_n ⊙ r in one product (slots 0 and 2 of both)
            torch.mul(d_n.unsqueeze(2), fac[t].unflatten(-1, (4, H))[..., 0:3:2, :],
                      out=D.unflatten(-1, (3, H))[..., 0:3:2, :])
            if t == 0:
                break
            nxt = torch.bmm(D, W_back, out=dh_bufs[t % 2])
            nxt.addcmul_(dh, z_all[t])
            if per_step:
                nxt.add_(direct[:, t - 1])
            dh = nxt

    # ---- weight gradients in one product over all steps ------------------------------
    flat = drec.view(E, T * B, 3 * H)
    flat_n = dn.view(E, T * B, H)
    left = hs[:, :T].reshape(E, T * B, H)                           # a view: h_0..h_{T−1}
    grad_W_in = input_gradient(x, flat)
    grad_W_in[..., 2 * H:] = input_gradient(x, flat_n)
    grad_b = flat.sum(1)
    grad_b_rec = grad_b[:, 2 * H:].clone()
    grad_b[:, 2 * H:] = flat_n.sum(1)
    grads = {"W_in": grad_W_in, "W_rec": torch.bmm(left.transpose(1, 2), flat), "b": grad_b,
             "b_rec": grad_b_rec, "W_out": grad_W_out, "b_out": grad_b_out}
    return loss, grads, hs[:, T].clone()
