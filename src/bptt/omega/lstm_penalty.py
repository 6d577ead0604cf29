"""Ω of one ``nn.LSTM`` layer with a hand-derived gradient (the wrapper's fast path).

The step map is PyTorch's (see :class:`bptt.omega.stepmaps.LSTMMap`): gates
a = u W_ihᵀ + b_ih + h W_hhᵀ + b_hh = [a_i | a_f | a_g | a_o], i, f, o = σ(·), g = tanh,
c_k = f c_{k−1} + i g, h_k = o tanh(c_k), the state (h, c). With ĉ = tanh(c_k),
A = o(1 − ĉ²), K_i = g i(1 − i), K_f = c_{k−1} f(1 − f), K_g = i(1 − g²),
K_o = ĉ o(1 − o), the error signals satisfy (δ_k = (δh_k, δc_k), each state tensor an
output of the step map in its own right)

    e_k = δc_k + δh_k ⊙ A_k                                   (∂E/∂c_k in total)
    p_k = [e_k K_i, e_k K_f, e_k K_g, δh_k K_o]                (∂E/∂a_k)
    v_{k−1} = (p_k W_hh, e_k ⊙ f_k),  δh_{k−1} = ∂E/∂h_{k−1}|direct + p_k W_hh,  δc_{k−1} = e_k ⊙ f_k.

:func:`lstm_layer_omega` reads the gates and cells off the layer's
:class:`bptt.omega.lstm_tape.Tape`, δ and v_k off the recursion above
(:func:`bptt.omega.lstm_tape.signals`, one [B, 4H] × [4H, H] product a step), and
evaluates Ω by :func:`bptt.omega.terms.omega_terms`. Its gradient (§3.3, eq. 10: δ and the states
constant, every weight of the step map differentiated — the ``"full"`` semantics) is
written out in :class:`_OmegaGradient`: ∂Ω/∂v_k = c_k v_k pulled back through
v = (p W_hh, e ⊙ f), the factors, the gates and the gate products, four products over
all T·B pairs instead of autograd's graph of the same expressions.
"""

from __future__ import annotations

import torch

from bptt.omega.lstm_tape import Signals, Tape, signals
from bptt.omega.stepmaps import Weights
from bptt.omega.terms import omega_terms


class _OmegaGradient(torch.autograd.Function):
    """Ω's value (computed beforehand) with the hand-derived gradient of :func:`_backward`."""

    @staticmethod
    def forward(ctx, saved, omega, *weights):
        ctx.saved = saved
        return omega.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        return (None, None) + _backward(ctx.saved, grad)


def lstm_layer_omega(w: Weights, tape: Tape, direct: torch.Tensor, final: tuple, form: str, bound: float,
                     sig: Signals | None = None):
    """Ω of one LSTM layer, its error signals, and the error at its input projection.

    Args:
        w: the layer's weights (with their graph: Ω's gradient reaches them).
        tape: the layer's gates and states (:mod:`bptt.omega.lstm_tape`).
        direct: ``[T, B, H]`` ∂E/∂h_k through the layer's outputs, k = 1..T.
        final: ``(∂E/∂h_T, ∂E/∂c_T)`` through the returned final state, each ``[B, H]``
            or ``None``.
        form: ``"squared"`` or ``"plain"``.
        bound: pairs with ‖δ_{k+1}‖² below this are left out.
        sig: the layer's :class:`bptt.omega.lstm_tape.Signals` for these ``direct``
            and ``final``, when already computed.

    Returns:
        ``(omega, fraction, deltas, pre)``: Ω (0-dim, its gradient the hand-derived
        one), the fraction of pairs that entered, ``(δh, δc)`` each ``[T, B, H]``
        (δ_1..δ_T), and ``pre`` ``[T, B, 4H]`` ∂E/∂a_k (what the layer below receives
        through W_ih).
    """
    T, B, H = direct.shape
    with torch.no_grad():
        if sig is None:
            sig = signals(tape, direct, final)
        f = tape.act[:, :, 1]
        vc = sig.e * f                                                  # v^c_{k−1} = e_k f_k
        vh = sig.vh
        v_norm2 = torch.linalg.vecdot(vh, vh) + torch.linalg.vecdot(vc, vc)     # [T,B], pair k−1 at k−1
        g_norm2 = torch.linalg.vecdot(sig.dh, sig.dh) + torch.linalg.vecdot(sig.dc, sig.dc)   # ‖δ_k‖²
        terms = omega_terms(v_norm2[:, None], g_norm2[:, None], form, bound=bound)
    saved = dict(coef=terms.coef[:, 0], tape=tape, sig=sig, vc=vc, bias=w.bias_ih is not None)
    weights = (w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh)
    omega = _OmegaGradient.apply(saved, terms.omega[0], *weights)
    return omega, terms.fraction[0], (sig.dh, sig.dc), sig.pre.view(T, B, 4 * H)


@torch.no_grad()
def _backward(s: dict, grad: torch.Tensor):
    """∂Ω/∂(W_ih, W_hh, b_ih, b_hh) times ``grad``, by the chain rule written out.

    With ḡ = ∂Ω/∂v_k = c_k v_k: W_hh receives pᵀ ḡ^h from v^h = p W_hh; p receives
    ḡ^h W_hhᵀ, hence the factors K and (through e = δc + δh A, δ constant) A; v^c = e f
    sends ḡ^c f to e and ḡ^c e to f; the factors send their errors to the gates i, f,
    g, o and to ĉ = tanh(c_k), c_k = f c_{k−1} + i g; the gates to their
    pre-activations G; and G to the weights through a = u W_ihᵀ + h_{k−1} W_hhᵀ + b.
    """
    tape, sig = s["tape"], s["sig"]
    T, B, H = sig.vh.shape
    TB = T * B
    slope, K, _, one_tc2 = tape.factors()
    scale = (grad * s["coef"])[..., None]                               # [T,B,1]
    gvh = sig.vh * scale                                                # ∂Ω/∂v^h
    gvc = s["vc"] * scale                                               # ∂Ω/∂v^c
    d_W_hh = sig.pre.view(TB, 4 * H).t() @ gvh.view(TB, H)              # from v^h = p W_hh
    dp = (gvh.view(TB, H) @ tape.W_hh.t()).view(T, B, 4, H)             # ∂/∂p
    e, dh, tc, cp = sig.e, sig.dh, tape.tc, tape.c[:-1]
    i, f, g, o = tape.act.unbind(2)
    si, sf, one_g2, so = slope.unbind(2)
    de = torch.linalg.vecdot(dp[:, :, :3], K[:, :, :3], dim=2).addcmul_(gvc, f)   # ∂/∂e (p via K, v^c = e f)
    dA = de.mul_(dh)                                                    # e = δc + δh A
    dp[:, :, :3] *= e[:, :, None]                                       # ∂/∂K
    dp[:, :, 3] *= dh
    dKi, dKf, dKg, dKo = dp.unbind(2)
    d_c = (dKo * so).addcmul_(dA * o, tc, value=-2).mul_(one_tc2)       # through ĉ = tanh(c_k)
    G = torch.empty_like(tape.act)                                      # ∂/∂(gate values), then pre-activations
    Gi, Gf, Gg, Go = G.unbind(2)
    torch.mul(dKg, one_g2, out=Gi).addcmul_(d_c, g).addcmul_(dKi, torch.addcmul(g, i, g, value=-2))
    torch.mul(gvc, e, out=Gf).addcmul_(d_c, cp).addcmul_(dKf, torch.addcmul(cp, f, cp, value=-2))
    torch.mul(dKi, si, out=Gg).addcmul_(d_c, i).addcmul_(dKg, i * g, value=-2)
    torch.mul(dA, one_tc2, out=Go).addcmul_(dKo, torch.addcmul(tc, o, tc, value=-2))
    G.mul_(slope)
    G = G.view(TB, 4 * H)
    d_W = G.t() @ tape.uh                                               # a = [u | h_{k−1}] [W_ih | W_hh]ᵀ + b
    I = d_W.shape[1] - H
    d_W_ih = d_W[:, :I]
    d_W_hh += d_W[:, I:]
    d_b = G.sum(0) if s["bias"] else None
    return d_W_ih, d_W_hh, d_b, (None if d_b is None else d_b.clone())
