"""Step maps s_k = f(u_k, s_{k−1}) of recurrent layers, and their error signals.

Ω (§3.3, eq. 9) is defined on the map that takes one state to the next. For a module
it is evaluated per layer: the state s_k of layer l is the tuple of state tensors the
layer's step produces (``(h,)`` for ``nn.RNN`` and ``nn.GRU``, ``(h, c)`` for
``nn.LSTM``), and its input u_k is the input sequence (layer 0) or the hidden state of
the layer below. Every map here:

* evaluates one step differentiably on any leading batch shape (``step``), so that all
  T steps of a sequence can be evaluated as one batch of T·B rows;
* propagates error signals backwards through its Jacobians without autograd
  (``backward``): given the part of ∂E/∂s_k that enters through the layer's outputs,
  it returns the total δ_k = ∂E/∂s_k of every step (each state tensor taken as an
  output of the step map in its own right) and the error at the pre-activations of the
  input projection, which the layer below needs.

The hand-derived recursions are the fast path of :class:`bptt.omega.Omega`; they are
checked against autograd in float64 by the tests. Conventions are PyTorch's: weights
``weight_ih [G·H, I]``, ``weight_hh [G·H, H]`` with gates stacked in PyTorch's order
(LSTM i, f, g, o; GRU r, z, n), and a = u W_ihᵀ + b_ih + h W_hhᵀ + b_hh.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bptt.engine.units import derivative_from_output

#: The nonlinearity of ``nn.RNN`` spelled as an engine unit.
RNN_UNITS = {"tanh": "tanh", "relu": "relu"}


@dataclass
class Weights:
    """One layer's weights (views of the module's parameters, with their graph)."""

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor | None
    bias_hh: torch.Tensor | None


def _affine(u: torch.Tensor, h: torch.Tensor, w: Weights) -> tuple[torch.Tensor, torch.Tensor]:
    return F.linear(u, w.weight_ih, w.bias_ih), F.linear(h, w.weight_hh, w.bias_hh)


def _detached(w: Weights) -> Weights:
    return Weights(w.weight_ih.detach(), w.weight_hh.detach(),
                   None if w.bias_ih is None else w.bias_ih.detach(),
                   None if w.bias_hh is None else w.bias_hh.detach())


class StepMap:
    """Base class: the step map of one recurrent layer.

    Attributes:
        kind: ``"rnn"``, ``"lstm"``, ``"gru"`` or ``"cell"`` (a user's cell).
        n_parts: how many tensors the state has.
        output_index: which part of the state the layer outputs.
    """

    kind = ""
    n_parts = 1
    output_index = 0

    def step(self, u: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """s_k from u_k ``[..., I]`` and s_{k−1} (a tuple of ``[..., H]``), differentiable."""
        raise NotImplementedError

    def elman(self) -> tuple[torch.Tensor, str] | None:
        """``(weight_hh, unit)`` when the map is h_k = σ(h_{k−1} Wᵀ + …), else ``None``."""
        return None


class RNNMap(StepMap):
    """h_k = σ(u_k W_ihᵀ + b_ih + h_{k−1} W_hhᵀ + b_hh), σ = tanh or relu (``nn.RNN``)."""

    kind = "rnn"

    def __init__(self, weights: Weights, nonlinearity: str) -> None:
        self.w = weights
        self.unit = RNN_UNITS[nonlinearity]

    def step(self, u, state):
        a_in, a_rec = _affine(u, state[0], self.w)
        a = a_in + a_rec
        return (torch.tanh(a) if self.unit == "tanh" else torch.relu(a),)

    def elman(self):
        return self.w.weight_hh, self.unit

    @torch.no_grad()
    def states(self, u: torch.Tensor, hs: torch.Tensor, first: tuple[torch.Tensor, ...]):
        """The states as a tuple of ``[T+1, B, H]`` from the layer's outputs ``hs [T, B, H]``."""
        return (torch.cat([first[0][None], hs]),)

    @torch.no_grad()
    def backward(self, u, states, direct, final):
        """Total error signals of every step.

        Args:
            u: ``[T, B, I]`` the layer's inputs.
            states: tuple of ``[T+1, B, H]`` s_0..s_T.
            direct: ``[T, B, H]`` ∂E/∂h_k through the layer's outputs, k = 1..T.
            final: per part, ``[B, H]`` or ``None``: ∂E/∂s_T through the final state
                the module returns.

        Returns:
            ``(deltas, pre)``: ``deltas`` a tuple of ``[T, B, H]`` δ_1..δ_T per part;
            ``pre`` ``[T, B, G·H]`` ∂E/∂(u_k W_ihᵀ + b_ih) (the pre-activation errors of
            the input projection).
        """
        h = states[0]
        T = h.shape[0] - 1
        sp = derivative_from_output(h[1:], self.unit)
        delta = torch.empty_like(direct)
        pre = torch.empty_like(direct)
        g = direct[T - 1] if final[0] is None else direct[T - 1] + final[0]
        W = self.w.weight_hh.detach()
        for t in range(T, 0, -1):
            delta[t - 1] = g
            d = torch.mul(g, sp[t - 1], out=pre[t - 1])
            if t > 1:
                g = torch.addmm(direct[t - 2], d, W)
        return (delta,), pre


class LSTMMap(StepMap):
    """The ``nn.LSTM`` step: gates i, f, g, o from a = u W_ihᵀ + b_ih + h W_hhᵀ + b_hh,
    c_k = σ(f) c_{k−1} + σ(i) tanh(g), h_k = σ(o) tanh(c_k); the state is (h, c)."""

    kind = "lstm"
    n_parts = 2

    def __init__(self, weights: Weights) -> None:
        self.w = weights

    def step(self, u, state):
        h, c = state
        a_in, a_rec = _affine(u, h, self.w)
        i, f, g, o = (a_in + a_rec).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    @torch.no_grad()
    def _gates(self, u, h_prev):
        a_in, a_rec = _affine(u, h_prev, _detached(self.w))
        a = a_in + a_rec
        i, f, g, o = a.chunk(4, -1)
        return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)

    @torch.no_grad()
    def states(self, u, hs, first):
        """(h, c) as ``[T+1, B, H]`` each: the fused module returns h only, so the cells
        are recomputed from the gates, evaluated for all steps in one batch from h_{k−1},
        and the elementwise recurrence c_k = f_k c_{k−1} + i_k g_k."""
        h = torch.cat([first[0][None], hs])
        i, f, g, _ = self._gates(u, h[:-1])
        ig = i * g
        c = torch.empty_like(h)
        c[0] = first[1]
        for t in range(hs.shape[0]):
            torch.addcmul(ig[t], f[t], c[t], out=c[t + 1])
        return h, c

    @torch.no_grad()
    def backward(self, u, states, direct, final):
        h, c = states
        T, B, H = direct.shape
        i, f, g, o = self._gates(u, h[:-1])
        tc = torch.tanh(c[1:])
        A = o * (1 - tc * tc)                               # ∂h_k/∂c_k
        K3 = torch.stack([g * i * (1 - i), c[:-1] * f * (1 - f), i * (1 - g * g)], 2)   # [T,B,3,H]
        Ko = tc * o * (1 - o)
        pre = torch.empty(T, B, 4, H, dtype=direct.dtype, device=direct.device)
        dh = torch.empty_like(direct)
        dc_all = torch.empty_like(direct)
        gh = direct[T - 1] if final[0] is None else direct[T - 1] + final[0]
        gc = torch.zeros_like(gh) if final[1] is None else final[1].clone()
        W = self.w.weight_hh.detach()
        for t in range(T, 0, -1):
            dh[t - 1] = gh
            dc_all[t - 1] = gc
            dc = torch.addcmul(gc, gh, A[t - 1])
            torch.mul(dc[:, None], K3[t - 1], out=pre[t - 1, :, :3])
            torch.mul(gh, Ko[t - 1], out=pre[t - 1, :, 3])
            if t > 1:
                gh = torch.addmm(direct[t - 2], pre[t - 1].view(B, 4 * H), W)
                gc = dc * f[t - 1]
        return (dh, dc_all), pre.view(T, B, 4 * H)


class GRUMap(StepMap):
    """The ``nn.GRU`` step: r, z = σ(·), n = tanh(u W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)),
    h_k = (1 − z) n + z h_{k−1}."""

    kind = "gru"

    def __init__(self, weights: Weights) -> None:
        self.w = weights

    def step(self, u, state):
        h = state[0]
        a_in, a_rec = _affine(u, h, self.w)
        ir, iz, in_ = a_in.chunk(3, -1)
        hr, hz, hn = a_rec.chunk(3, -1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return ((1 - z) * n + z * h,)

    @torch.no_grad()
    def states(self, u, hs, first):
        return (torch.cat([first[0][None], hs]),)

    @torch.no_grad()
    def backward(self, u, states, direct, final):
        h = states[0]
        T, B, H = direct.shape
        w = _detached(self.w)
        a_in, a_rec = _affine(u, h[:-1], w)
        ir, iz, in_ = a_in.chunk(3, -1)
        hr, hz, hn = a_rec.chunk(3, -1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        Kn = (1 - z) * (1 - n * n)                          # ∂h_k/∂(n's pre-activation)
        K_in = torch.stack([Kn * hn * r * (1 - r), (h[:-1] - n) * z * (1 - z), Kn], 2)   # [T,B,3,H]
        K_rec = K_in.clone()
        K_rec[:, :, 2] *= r                                 # the hidden part of n is gated by r
        pre = torch.empty(T, B, 3, H, dtype=direct.dtype, device=direct.device)
        rec = torch.empty(B, 3, H, dtype=direct.dtype, device=direct.device)
        delta = torch.empty_like(direct)
        g = direct[T - 1] if final[0] is None else direct[T - 1] + final[0]
        W = w.weight_hh
        for t in range(T, 0, -1):
            delta[t - 1] = g
            torch.mul(g[:, None], K_in[t - 1], out=pre[t - 1])
            if t > 1:
                torch.mul(g[:, None], K_rec[t - 1], out=rec)
                g = torch.addmm(torch.addcmul(direct[t - 2], g, z[t - 1]), rec.view(B, 3 * H), W)
        return (delta,), pre.view(T, B, 3 * H)


class CellMap(StepMap):
    """A user's cell ``f(u, state) -> state`` (a tensor, or a tuple of tensors).

    Args:
        cell: the callable.
        tuple_state: whether the cell takes and returns a tuple.
        output_index: which part of the state the loss reads.
        recurrent: ``(weight, unit)`` when the cell is Elman-type,
            h_k = σ(… + h_{k−1} weightᵀ), σ given as an engine unit; else ``None``.
    """

    kind = "cell"

    def __init__(self, cell, tuple_state: bool, n_parts: int, output_index: int,
                 recurrent: tuple[torch.Tensor, str] | None) -> None:
        self.cell = cell
        self.tuple_state = tuple_state
        self.n_parts = n_parts
        self.output_index = output_index
        self.recurrent = recurrent

    def step(self, u, state):
        out = self.cell(u, tuple(state) if self.tuple_state else state[0])
        return tuple(out) if self.tuple_state else (out,)

    def elman(self):
        return self.recurrent


def cell_weights(cell: torch.nn.Module) -> Weights:
    """The weights of an ``nn.RNNCell``, ``nn.GRUCell`` or ``nn.LSTMCell``."""
    return Weights(cell.weight_ih, cell.weight_hh, cell.bias_ih if cell.bias else None,
                   cell.bias_hh if cell.bias else None)


def layer_weights(module: torch.nn.RNNBase, layer: int) -> Weights:
    """The weights of layer ``layer`` of an ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM``."""
    get = lambda name: getattr(module, f"{name}_l{layer}")   # noqa: E731
    return Weights(get("weight_ih"), get("weight_hh"), get("bias_ih") if module.bias else None,
                   get("bias_hh") if module.bias else None)
