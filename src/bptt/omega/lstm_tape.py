"""The gates, cells and error signals of one ``nn.LSTM`` layer, for Ω.

PyTorch's fused LSTM returns the hidden states only; Ω (§3.3) needs every step's gates
and cell state, and the error signals δ_k = ∂E/∂s_k of the state s_k = (h_k, c_k).
:func:`tape_from_states` evaluates the gates of all T steps in one product from the
layer's inputs and outputs (PyTorch's equations: a = u W_ihᵀ + b_ih + h W_hhᵀ + b_hh in
the order i, f, g, o; c_k = f c_{k−1} + i g; h_k = o tanh(c_k)) and the cells by their
elementwise recurrence. :func:`signals` then runs the error recursion: with
ĉ = tanh(c_k), A = o(1 − ĉ²) and K = [g i(1 − i), c_{k−1} f(1 − f), i(1 − g²), ĉ o(1 − o)],

    e_k = δc_k + δh_k ⊙ A_k,   p_k = [e_k K_i, e_k K_f, e_k K_g, δh_k K_o] = ∂E/∂a_k,
    δh_{k−1} = ∂E/∂h_{k−1}|direct + p_k W_hh,   δc_{k−1} = e_k ⊙ f_k,

one [B, 4H] × [4H, H] product a step; v_{k−1} = (p_k W_hh, e_k ⊙ f_k) comes with it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bptt.omega.stepmaps import _loop


@dataclass
class Signals:
    """The error signals of one layer, each ``[T, B, H]``
    (``pre`` ``[T, B, 4, H]``): δh_k, δc_k, e_k = ∂E/∂c_k in total, v^h_{k−1} = p_k W_hh,
    and p_k = ∂E/∂a_k, k = 1..T."""

    dh: torch.Tensor
    dc: torch.Tensor
    e: torch.Tensor
    vh: torch.Tensor
    pre: torch.Tensor


@dataclass
class Tape:
    """One layer's gates and states (no graph).

    Attributes:
        uh: ``[T·B, I + H]`` the gates' inputs [u_k | h_{k−1}] of every pair.
        h: ``[T+1, B, H]`` h_0..h_T.
        c: ``[T+1, B, H]`` c_0..c_T.
        act: ``[T, B, 4, H]`` gate values i, f, g, o of steps 1..T.
        tc: ``[T, B, H]`` tanh(c_k).
        W_hh: ``[4H, H]`` the recurrent weight used.
    """

    uh: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    act: torch.Tensor
    tc: torch.Tensor
    W_hh: torch.Tensor
    _factors: tuple | None = None

    def factors(self):
        """``(slope, K, A, one_tc2)``: slope ``[T, B, 4, H]`` the gates' derivatives
        (s(1 − s) for i, f, o; 1 − g² for g), K ``[T, B, 4, H]`` and A, 1 − ĉ² ``[T, B, H]``."""
        if self._factors is None:
            with torch.no_grad():
                act, tc = self.act, self.tc
                i, f, g, o = act.unbind(2)
                one = torch.ones((), dtype=act.dtype, device=act.device)
                one_tc2 = torch.addcmul(one, tc, tc, value=-1)
                A = o * one_tc2
                slope = torch.addcmul(act, act, act, value=-1)
                torch.addcmul(one, g, g, value=-1, out=slope[:, :, 2])
                si, sf, one_g2, so = slope.unbind(2)
                K = torch.empty_like(act)
                torch.mul(g, si, out=K[:, :, 0])
                torch.mul(self.c[:-1], sf, out=K[:, :, 1])
                torch.mul(i, one_g2, out=K[:, :, 2])
                torch.mul(tc, so, out=K[:, :, 3])
                self._factors = (slope, K, A, one_tc2)
        return self._factors


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) as 2σ(2x) − 1 (to rounding; PyTorch's CPU tanh is several times slower
    than its sigmoid)."""
    return torch.sigmoid(2 * x).mul_(2).sub_(1)


def _bias(b_ih, b_hh):
    if b_ih is None:
        return None
    return b_ih.detach() + b_hh.detach()


@torch.no_grad()
def tape_from_states(u, h, c, W_ih, W_hh, b_ih=None, b_hh=None) -> Tape:
    """A :class:`Tape` from known states: the gates of all steps in one product from
    h_{k−1} and u_k; the cells from c_0 by c_k = f c_{k−1} + i g when ``c`` holds c_0 only.

    Args:
        u: ``[T, B, I]``; h: ``[T+1, B, H]``; c: ``[T+1, B, H]`` or ``[1, B, H]``.
    """
    T, B, _ = u.shape
    H = W_hh.shape[1]
    W_hh = W_hh.detach()
    uh = torch.cat([u.reshape(T * B, -1), h[:-1].reshape(T * B, H)], 1)
    # one product for all gates; the g block's rows doubled, so that one sigmoid gives
    # tanh(a_g) = 2σ(2a_g) − 1 too (PyTorch's CPU tanh is several times slower)
    W = torch.cat([W_ih.detach(), W_hh], 1)
    W[2 * H:3 * H] *= 2
    b = _bias(b_ih, b_hh)
    if b is None:
        act = torch.sigmoid(uh @ W.t())
    else:
        b[2 * H:3 * H] *= 2
        act = torch.sigmoid(torch.addmm(b, uh, W.t()))
    act = act.view(T, B, 4, H)
    act[:, :, 2].mul_(2).sub_(1)
    i, f, g, _ = act.unbind(2)
    if c.shape[0] != T + 1:
        ig = i * g
        c0 = c[0]
        c = torch.empty(T + 1, B, H, dtype=h.dtype, device=h.device)
        c[0] = c0
        c_s, ig_s, f_s = c.unbind(0), ig.unbind(0), f.unbind(0)
        with _loop(B * H * H):
            for t in range(T):
                torch.addcmul(ig_s[t], f_s[t], c_s[t], out=c_s[t + 1])
    return Tape(uh=uh, h=h.detach(), c=c.detach(), act=act, tc=tanh(c[1:]), W_hh=W_hh)


@torch.no_grad()
def signals(tape: Tape, direct: torch.Tensor, final: tuple) -> Signals:
    """δ and p of every step for ∂E/∂h_k = ``direct`` ``[T, B, H]`` through the outputs
    and ``final = (∂E/∂h_T, ∂E/∂c_T)`` (each ``[B, H]`` or ``None``) through the
    final state."""
    _, K, A, _ = tape.factors()
    f = tape.act[:, :, 1]
    T, B, H = direct.shape
    W_hh = tape.W_hh
    pre = torch.empty(T, B, 4, H, dtype=direct.dtype, device=direct.device)
    dc = torch.empty_like(direct)
    e = torch.empty_like(direct)
    # when the outputs receive no gradient before the last step (a loss on h_T, say),
    # δh_{k−1} = v^h_{k−1}: one buffer holds both, v^h_0 in front of δh_1..δh_T
    last_only = not bool(direct[:-1].any())
    if last_only:
        both = torch.empty(T + 1, B, H, dtype=direct.dtype, device=direct.device)
        dh, vh = both[1:], both[:-1]
    else:
        dh, vh = torch.empty_like(direct), torch.empty_like(direct)
    if final[0] is None:
        dh[T - 1].copy_(direct[T - 1])
    else:
        torch.add(direct[T - 1], final[0], out=dh[T - 1])
    if final[1] is None:
        dc[T - 1].zero_()
    else:
        dc[T - 1].copy_(final[1])
    dh_s, dc_s, e_s, vh_s, dir_s = dh.unbind(0), dc.unbind(0), e.unbind(0), vh.unbind(0), direct.unbind(0)
    A_s, f_s = A.unbind(0), f.unbind(0)
    p3, po, p_flat = pre[:, :, :3].unbind(0), pre[:, :, 3].unbind(0), pre.view(T, B, 4 * H).unbind(0)
    K3, Ko = K[:, :, :3].unbind(0), K[:, :, 3].unbind(0)
    e3 = e[:, :, None].unbind(0)
    with _loop(B * H * H):
        for t in range(T - 1, -1, -1):
            torch.addcmul(dc_s[t], dh_s[t], A_s[t], out=e_s[t])
            torch.mul(e3[t], K3[t], out=p3[t])
            torch.mul(dh_s[t], Ko[t], out=po[t])
            torch.mm(p_flat[t], W_hh, out=vh_s[t])
            if t > 0:
                if not last_only:
                    torch.add(dir_s[t - 1], vh_s[t], out=dh_s[t - 1])
                torch.mul(e_s[t], f_s[t], out=dc_s[t - 1])
    return Signals(dh=dh, dc=dc, e=e, vh=vh, pre=pre)
