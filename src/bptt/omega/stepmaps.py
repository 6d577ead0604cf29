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

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bptt.engine.units import derivative_from_output

#: Below this many multiply-adds per step, the backward recursions run on one thread:
#: waking a second thread for each small product costs more than it saves (as in the
#: exact engine).
SMALL_STEP = 200_000


@contextlib.contextmanager
def _loop(work_per_step: int):
    """The context of a time loop: inference mode (nothing in the loop is differentiated,
    and skipping autograd's dispatch saves microseconds on each of its small calls; the
    loop writes into buffers allocated outside it), on one thread for small steps."""
    saved = torch.get_num_threads()
    one = work_per_step < SMALL_STEP and saved > 1
    if one:
        torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            yield
    finally:
        if one:
            torch.set_num_threads(saved)


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

    Besides the differentiable ``step``, the built-in maps linearize it: ``linearize``
    returns the factors of the vector–Jacobian product δ ↦ δ ∂f/∂s at every (step,
    sequence) pair, computed from constant inputs and states but with their graph to
    the weights; ``apply`` turns δ into v with them (differentiable), and ``backward``
    runs the error recursion with their values.

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

    def linearize(self, u, prev, nxt=None, graph: bool = True):
        """The factors of δ ↦ δ ∂f(u, s)/∂s at s = ``prev`` (``None``: not available).

        Args:
            u: ``[..., I]`` inputs; prev, nxt: tuples of ``[..., H]`` s_{k−1} and s_k.
            graph: keep the factors' graph to the weights (else they may be read off
                the stored states where that is cheaper).
        """
        return None

    def apply(self, lin, delta):
        """v = δ ∂f/∂s from the factors of :meth:`linearize`."""
        raise NotImplementedError

    def vjp(self, u: torch.Tensor, prev: tuple[torch.Tensor, ...], delta: tuple[torch.Tensor, ...]):
        """v = δ ∂f(u, s)/∂s at s = ``prev``, as a differentiable function of the weights.

        ``u``, ``prev`` and ``delta`` are constants with any common leading shape. The
        built-in maps write v in closed form; the default differentiates the step map
        (a vector–Jacobian product with ``create_graph=True``).
        """
        lin = self.linearize(u, prev)
        if lin is not None:
            return self.apply(lin, delta)
        leaves = tuple(p.detach().requires_grad_(True) for p in prev)
        out = self.step(u, leaves)
        pairs = [(o, d) for o, d in zip(out, delta) if o.requires_grad]
        if not pairs:
            return tuple(torch.zeros_like(p) for p in prev)
        vs = torch.autograd.grad([o for o, _ in pairs], leaves, grad_outputs=[d for _, d in pairs],
                                 create_graph=True, allow_unused=True)
        return tuple(torch.zeros_like(p) if v is None else v for v, p in zip(vs, prev))

    def states(self, u: torch.Tensor, hs: torch.Tensor, first: tuple[torch.Tensor, ...]):
        """The states s_0..s_T, a tuple of ``[T+1, B, H]``, from the layer's outputs
        ``hs [T, B, H]`` and its inputs ``u [T, B, I]``."""
        return (torch.cat([first[0][None], hs]),)

    def backward(self, lin, direct: torch.Tensor, final):
        """Total error signals of every step, without autograd.

        Args:
            lin: the detached factors of :meth:`linearize` for steps 1..T.
            direct: ``[T, B, H]`` ∂E/∂h_k through the layer's outputs, k = 1..T
                (contiguous).
            final: per part, ``[B, H]`` or ``None``: ∂E/∂s_T through the final state
                the module returns.

        Returns:
            ``(deltas, pre)``: ``deltas`` a tuple of ``[T, B, H]`` δ_1..δ_T per part;
            ``pre`` ``[T, B, G·H]`` ∂E/∂(u_k W_ihᵀ + b_ih), the error at the input
            projection, which the layer below receives through W_ih.
        """
        raise NotImplementedError


def _start(out: torch.Tensor, direct: torch.Tensor, final: torch.Tensor | None) -> None:
    if final is None:
        out.copy_(direct)
    else:
        torch.add(direct, final, out=out)


class RNNMap(StepMap):
    """h_k = σ(u_k W_ihᵀ + b_ih + h_{k−1} W_hhᵀ + b_hh), σ = tanh or relu (``nn.RNN``);
    v = (δ ⊙ σ'(a_k)) W_hh, the factor being σ'(a_k)."""

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

    def linearize(self, u, prev, nxt=None, graph=True):
        h = nxt[0] if (nxt is not None and not graph) else self.step(u, prev)[0]
        return (derivative_from_output(h, self.unit),)

    def apply(self, lin, delta):
        return ((delta[0] * lin[0]) @ self.w.weight_hh,)

    @torch.no_grad()
    def backward(self, lin, direct, final):
        sp = lin[0]
        T, B, H = direct.shape
        delta = torch.empty_like(direct)
        pre = torch.empty_like(direct)
        _start(delta[T - 1], direct[T - 1], final[0])
        W = self.w.weight_hh.detach()
        d_s, p_s, sp_s, dir_s = delta.unbind(0), pre.unbind(0), sp.unbind(0), direct.unbind(0)
        with _loop(B * H * H):
            for t in range(T - 1, -1, -1):
                torch.mul(d_s[t], sp_s[t], out=p_s[t])
                if t > 0:
                    torch.addmm(dir_s[t - 1], p_s[t], W, out=d_s[t - 1])
        return (delta,), pre


class LSTMMap(StepMap):
    """The ``nn.LSTM`` step: gates i, f, g, o from a = u W_ihᵀ + b_ih + h W_hhᵀ + b_hh,
    c_k = σ(f) c_{k−1} + σ(i) tanh(g), h_k = σ(o) tanh(c_k); the state is (h, c).

    With δ = (δ_h, δ_c) at step k and ĉ = tanh(c_k): the error at c_k is
    e = δ_c + δ_h ⊙ σ(o)(1 − ĉ²) =: δ_c + δ_h ⊙ A, the gate pre-activations receive
    p = [e ⊙ tanh(g) σ'(i), e ⊙ c_{k−1} σ'(f), e ⊙ σ(i)(1 − tanh²g), δ_h ⊙ ĉ σ'(o)]
    =: [e ⊙ K_i, e ⊙ K_f, e ⊙ K_g, δ_h ⊙ K_o], and v = (p W_hh, e ⊙ σ(f)). The factors are
    (A, K_i, K_f, K_g, K_o, σ(f)).
    """

    kind = "lstm"
    n_parts = 2

    def __init__(self, weights: Weights) -> None:
        self.w = weights
        self._gates = None                   # (inputs, gates) left by states()

    def step(self, u, state):
        h, c = state
        a_in, a_rec = _affine(u, h, self.w)
        i, f, g, o = (a_in + a_rec).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _gate_values(self, u, h_prev):
        # one product per gate, from slices of the (small) weights: slicing the large
        # [T, B, 4H] pre-activations instead costs a zero-filled [T, B, 4H] gradient per
        # slice in the backward pass
        w = self.w
        parts = [w.weight_ih.chunk(4), w.weight_hh.chunk(4),
                 w.bias_ih.chunk(4) if w.bias_ih is not None else [None] * 4,
                 w.bias_hh.chunk(4) if w.bias_hh is not None else [None] * 4]
        a = [F.linear(u, wi, bi) + F.linear(h_prev, wh, bh) for wi, wh, bi, bh in zip(*parts)]
        return torch.sigmoid(a[0]), torch.sigmoid(a[1]), torch.tanh(a[2]), torch.sigmoid(a[3])

    def states(self, u, hs, first):
        """(h, c) as ``[T+1, B, H]`` each: the fused module returns h only, so the cells
        are recomputed from the gates, evaluated for all steps in one batch from h_{k−1},
        and the elementwise recurrence c_k = f_k c_{k−1} + i_k g_k. The gates (with
        their graph, where gradients are on) are kept for :meth:`linearize`."""
        h = torch.cat([first[0][None], hs])
        gates = self._gate_values(u, h[:-1])
        self._gates = (u, gates)
        with torch.no_grad():
            i, f, g, _ = (x.detach() for x in gates)
            ig = i * g
            c = torch.empty_like(h)
            c[0] = first[1]
            B, H = hs.shape[1:]
            c_s, ig_s, f_s = c.unbind(0), ig.unbind(0), f.unbind(0)
            with _loop(B * H * H):
                for t in range(hs.shape[0]):
                    torch.addcmul(ig_s[t], f_s[t], c_s[t], out=c_s[t + 1])
        return h, c

    def linearize(self, u, prev, nxt=None, graph=True):
        h, c = prev
        kept = self._gates
        usable = kept is not None and kept[0] is u and (kept[1][0].requires_grad or not torch.is_grad_enabled())
        gates = kept[1] if usable else self._gate_values(u, h)
        self._gates = None                   # used once: its graph may be freed by a backward
        i, f, g, o = gates
        tc = torch.tanh(f * c + i * g)
        A = o - o * tc * tc
        return A, g * (i - i * i), c * (f - f * f), i - i * g * g, tc * (o - o * o), f

    def apply(self, lin, delta):
        A, Ki, Kf, Kg, Ko, f = lin
        dh, dc = delta
        e = dc + dh * A
        p = torch.cat([e * Ki, e * Kf, e * Kg, dh * Ko], -1)
        return p @ self.w.weight_hh, e * f

    @torch.no_grad()
    def backward(self, lin, direct, final):
        A, Ki, Kf, Kg, Ko, f = lin
        K3 = torch.stack([Ki, Kf, Kg], 2)                   # [T, B, 3, H]
        T, B, H = direct.shape
        pre = torch.empty(T, B, 4, H, dtype=direct.dtype, device=direct.device)
        dh = torch.empty_like(direct)
        dc = torch.empty_like(direct)
        e = torch.empty_like(direct[0])
        _start(dh[T - 1], direct[T - 1], final[0])
        if final[1] is None:
            dc[T - 1].zero_()
        else:
            dc[T - 1].copy_(final[1])
        W = self.w.weight_hh.detach()
        dh_s, dc_s, dir_s = dh.unbind(0), dc.unbind(0), direct.unbind(0)
        A_s, K3_s, Ko_s, f_s = A.unbind(0), K3.unbind(0), Ko.unbind(0), f.unbind(0)
        p3 = [p[:, :3] for p in pre.unbind(0)]
        po = [p[:, 3] for p in pre.unbind(0)]
        p_flat = pre.view(T, B, 4 * H).unbind(0)
        e3 = e[:, None]
        with _loop(B * H * H):
            for t in range(T - 1, -1, -1):
                torch.addcmul(dc_s[t], dh_s[t], A_s[t], out=e)
                torch.mul(e3, K3_s[t], out=p3[t])
                torch.mul(dh_s[t], Ko_s[t], out=po[t])
                if t > 0:
                    torch.addmm(dir_s[t - 1], p_flat[t], W, out=dh_s[t - 1])
                    torch.mul(e, f_s[t], out=dc_s[t - 1])
        return (dh, dc), pre.view(T, B, 4 * H)


class GRUMap(StepMap):
    """The ``nn.GRU`` step: r, z = σ(·), n = tanh(u W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)),
    h_k = (1 − z) n + z h_{k−1}.

    With K = (1 − z)(1 − n²): the input pre-activations receive
    δ ⊙ [K (h W_hnᵀ + b_hn) σ'(r), (h_{k−1} − n) σ'(z), K] =: δ ⊙ K_in, the hidden ones
    δ ⊙ K_rec (the same with the n-part multiplied by r), and v = δ ⊙ z + (δ ⊙ K_rec) W_hh.
    The factors are (z, K_rec, K_in).
    """

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

    def linearize(self, u, prev, nxt=None, graph=True):
        h = prev[0]
        a_in, a_rec = _affine(u, h, self.w)
        ir, iz, in_ = a_in.chunk(3, -1)
        hr, hz, hn = a_rec.chunk(3, -1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        Kn = (1 - z) * (1 - n * n)
        Kr, Kz = Kn * hn * r * (1 - r), (h - n) * z * (1 - z)
        return z, torch.stack([Kr, Kz, Kn * r], -2), torch.stack([Kr, Kz, Kn], -2)

    def apply(self, lin, delta):
        z, K_rec, _ = lin
        d = delta[0]
        return (d * z + (d.unsqueeze(-2) * K_rec).flatten(-2) @ self.w.weight_hh,)

    @torch.no_grad()
    def backward(self, lin, direct, final):
        z, K_rec, K_in = lin
        T, B, H = direct.shape
        rec = torch.empty(B, 3, H, dtype=direct.dtype, device=direct.device)
        rec_flat = rec.view(B, 3 * H)
        tmp = torch.empty_like(direct[0])
        delta = torch.empty_like(direct)
        _start(delta[T - 1], direct[T - 1], final[0])
        W = self.w.weight_hh.detach()
        d_s, dir_s, z_s, K_s = delta.unbind(0), direct.unbind(0), z.unbind(0), K_rec.unbind(0)
        with _loop(B * H * H):
            for t in range(T - 1, 0, -1):
                g = d_s[t]
                torch.mul(g[:, None], K_s[t], out=rec)
                torch.addcmul(dir_s[t - 1], g, z_s[t], out=tmp)
                torch.addmm(tmp, rec_flat, W, out=d_s[t - 1])
        pre = (delta[:, :, None] * K_in).view(T, B, 3 * H)
        return (delta,), pre


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
