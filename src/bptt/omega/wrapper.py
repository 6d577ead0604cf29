"""Ω (§3.3, eqs. 9–10) for any recurrent PyTorch model.

:class:`Omega` wraps ``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` (unidirectional, any number of
layers, ``batch_first`` either way), their cells, or a user's cell
``f(input_t, state) -> state``. Calling the wrapper returns what the module returns;
afterwards ``wrapper.penalty(loss)`` returns Ω as a scalar with a graph, so that
``(loss + alpha * omega).backward()`` adds α·∂Ω/∂θ to every gradient.

**Definition.** The state s_k of a layer is the tuple of state tensors its step map
produces (``h``; ``(h, c)`` for an LSTM), concatenated. With δ_{k+1} = ∂E/∂s_{k+1} (each
state tensor taken as an output of the step map, so the c-part of δ_T is zero when the
loss reads only h) and v_k = δ_{k+1} ∂s_{k+1}/∂s_k,

    Ω_k = (‖v_k‖²/‖δ_{k+1}‖² − 1)²   (``form="squared"``, the reference code's)
    Ω_k = (‖v_k‖/‖δ_{k+1}‖ − 1)²     (``form="plain"``, eq. 9 as printed),

averaged over the (k, sequence) pairs with ‖δ_{k+1}‖² ≥ 1e-20, k = 0..T−1 (the step out
of the initial state included) — the formula of :func:`bptt.omega.omega_terms`.

**Gradient semantics.** In both, δ and the states s_k are held constant (eq. 10):

* ``"full"``: v_k = δ_{k+1} ∂f(u_{k+1}, s_k; θ)/∂s_k as a function of every parameter θ
  of the step map (the vector–Jacobian product differentiated once more); any cell.
* ``"reference"``: the paper's code. For an Elman-type map h_{k+1} = σ(… + h_k Wᵀ),
  v_k = (δ_{k+1} ⊙ σ'(a_{k+1})) W with σ' also held constant, so Ω reaches the
  recurrent weight W alone. Defined for ``nn.RNN``, ``nn.RNNCell`` and user cells that
  declare their recurrent weight.

**Multi-layer modules.** Each layer l has its own state and step map (its input u_k is
the output of layer l − 1, held constant like the states); Ω is the sum over layers of
each layer's Ω, each averaged over its own pairs. Inputs are held constant too, so
Ω's gradient never flows into the layers below or into whatever produced the inputs.

**Cost.** For the fused modules the forward is the module's own (layer by layer for
several layers); δ for every step comes from one autograd call for the loss's
gradient with respect to the outputs and a hand-derived backward recursion
(:mod:`bptt.omega.stepmaps`), and Ω's graph is one batched evaluation of the step map
over all T·B (step, sequence) pairs; an LSTM's gates, cells and δ come from
:mod:`bptt.omega.lstm_tape` and Ω's gradient from the hand-derived pass of
:mod:`bptt.omega.lstm_penalty`. A user's cell is unrolled with autograd, and δ is
read off that graph with one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bptt.engine.units import UNITS, derivative_from_output
from bptt.omega.stepmaps import (
    CellMap,
    GRUMap,
    LSTMMap,
    RNNMap,
    StepMap,
    cell_weights,
    layer_weights,
)
from bptt.omega.lstm_penalty import lstm_layer_omega
from bptt.omega.lstm_tape import tape_from_states
from bptt.omega.terms import OMEGA_BOUND, OMEGA_VARIANTS, omega_terms

SEMANTICS = ("full", "reference")

_SEQUENCE = {nn.RNN: "rnn", nn.LSTM: "lstm", nn.GRU: "gru"}
_CELLS = {nn.RNNCell: "rnn", nn.LSTMCell: "lstm", nn.GRUCell: "gru"}


@dataclass
class LayerRecord:
    """What one layer's forward leaves for Ω (all detached).

    Attributes:
        map: the layer's step map.
        inputs: ``[T, B, ...]`` u_1..u_T.
        first: the initial state, a tuple of ``[B, ...]``.
        outputs: ``[T, B, H]`` the layer's outputs (fused path; states come from them).
        states: tuple of ``[T+1, B, ...]`` s_0..s_T, once known.
    """

    map: StepMap
    inputs: torch.Tensor
    first: tuple[torch.Tensor, ...]
    outputs: torch.Tensor | None = None
    states: tuple[torch.Tensor, ...] | None = None

    def get_states(self) -> tuple[torch.Tensor, ...]:
        if self.states is None:
            self.states = self.map.states(self.inputs, self.outputs, self.first)
        return self.states


@dataclass
class ForwardRecord:
    """The last forward: per-layer records and the tensors the loss may read.

    ``watched`` are the tensors returned to the caller. For the built-in modules δ is
    propagated by the step maps' recursions from ∂E/∂(watched); for a user's cell
    ``aliases[t][p]`` is part p of s_{t+1} as a node of the unrolled graph, and δ is
    ∂E/∂aliases directly.
    """

    layers: list[LayerRecord]
    watched: list[torch.Tensor]
    route: list[tuple[str, int]] = field(default_factory=list)
    batch_first: bool = False
    aliases: list[list[torch.Tensor]] | None = None


@dataclass(frozen=True)
class OmegaValue:
    """Ω of each layer, without a graph, from the last :meth:`Omega.penalty`.

    Attributes:
        per_layer: ``[L]`` Ω of each layer.
        fraction: ``[L]`` the fraction of (step, sequence) pairs that entered.
    """

    per_layer: torch.Tensor
    fraction: torch.Tensor


def _check(form: str, semantics: str) -> None:
    if form not in OMEGA_VARIANTS:
        raise ValueError(f"unknown form {form!r}; choose one of {', '.join(OMEGA_VARIANTS)}")
    if semantics not in SEMANTICS:
        raise ValueError(f"unknown semantics {semantics!r}; choose one of {', '.join(SEMANTICS)}")


class Omega(nn.Module):
    """A recurrent module that can return Ω (§3.3) after each forward.

    Args:
        module: ``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` (unidirectional, no projection),
            ``nn.RNNCell``, ``nn.GRUCell``, ``nn.LSTMCell``, or a callable
            ``cell(input_t, state) -> state`` whose state is a tensor or a tuple of
            tensors ``[B, ...]`` and which treats the B rows independently.
        output: for a user's cell with a tuple state, which part the wrapper returns
            as the output sequence (the part the loss reads).
        recurrent_weight: for a user's Elman-type cell h' = σ(… + h Wᵀ), its W
            ``[H, H]`` (PyTorch's convention, like ``weight_hh``); enables
            ``semantics="reference"``.
        unit: σ of that cell: ``"tanh"``, ``"sigmoid"``, ``"relu"`` or ``"linear"``.
        fused: for ``nn.RNN``/``nn.GRU``/``nn.LSTM``, run the forward through
            PyTorch's fused kernels (default); ``False`` runs the step map step by
            step with autograd (the same numbers, slower).

    Calling the wrapper:

    * modules: ``wrapper(x, hx=None)`` returns exactly ``module(x, hx)``;
    * cells: ``wrapper(x, state=None)`` with x ``[T, B, I]`` returns
      ``(outputs [T, B, H], state_T)``, ``state_T`` as the cell returns it (h, or
      (h, c)) — the result of ``for t: state = cell(x[t], state)``;
    * user cells: ``wrapper(x, state)`` with x ``[T, B, ...]`` and the initial state
      returns ``(outputs [T, B, ...], state_T)``, outputs the ``output`` part.

    Raises:
        ValueError: for a bidirectional or projected module, an object that is not
            callable, or a recurrent weight without a known unit.
    """

    def __init__(self, module, *, output: int = 0, recurrent_weight: torch.Tensor | None = None,
                 unit: str | None = None, fused: bool = True) -> None:
        super().__init__()
        if isinstance(module, tuple(_SEQUENCE)):
            if module.bidirectional:
                raise ValueError(
                    "Ω is defined on the map from one state to the next in time; a bidirectional "
                    "module runs two recurrences in opposite directions. Wrap a unidirectional "
                    "module (bidirectional=False), or one per direction.")
            if getattr(module, "proj_size", 0):
                raise ValueError("nn.LSTM with proj_size > 0 is not supported; use proj_size=0")
            self.kind = _SEQUENCE[type(module)]
            self.family = "module"
        elif isinstance(module, tuple(_CELLS)):
            self.kind = _CELLS[type(module)]
            self.family = "cell"
        elif callable(module):
            self.kind = "cell"
            self.family = "user"
        else:
            raise ValueError(f"Omega wraps nn.RNN/GRU/LSTM, their cells, or a callable "
                             f"cell(input, state) -> state; got {type(module).__name__}")
        if recurrent_weight is not None:
            if self.family != "user":
                raise ValueError("recurrent_weight is for user cells; nn.RNN and nn.RNNCell declare theirs")
            if unit not in UNITS:
                raise ValueError(f"a recurrent weight needs its unit, one of {', '.join(UNITS)}; got {unit!r}")
            if recurrent_weight.dim() != 2 or recurrent_weight.shape[0] != recurrent_weight.shape[1]:
                raise ValueError(f"recurrent_weight must be square [H, H], got {tuple(recurrent_weight.shape)}")
        if int(output) != output or output < 0:
            raise ValueError(f"output must be a non-negative part index, got {output!r}")
        self.module = module
        self.output = int(output)
        self.recurrent = None if recurrent_weight is None else (recurrent_weight, unit)
        self.fused = bool(fused)
        self.record: ForwardRecord | None = None
        self.last: OmegaValue | None = None
        self._templates: dict = {}

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state=None):
        if self.family == "module":
            return self._forward_module(x, state)
        if self.family == "cell":
            return self._forward_cell(x, state)
        return self._forward_user(x, state)

    def _maps(self) -> list[StepMap]:
        m = self.module
        if self.family == "cell":
            w = cell_weights(m)
            return [RNNMap(w, m.nonlinearity) if self.kind == "rnn" else
                    (LSTMMap(w) if self.kind == "lstm" else GRUMap(w))]
        out = []
        for layer in range(m.num_layers):
            w = layer_weights(m, layer)
            out.append(RNNMap(w, m.nonlinearity) if self.kind == "rnn" else
                       (LSTMMap(w) if self.kind == "lstm" else GRUMap(w)))
        return out

    def _initial(self, x_tm: torch.Tensor, hx, n_layers: int, H: int):
        """The initial (h, c) per layer as ``[L, B, H]`` tensors, validated."""
        B = x_tm.shape[1]
        shape = (n_layers, B, H) if self.family == "module" else (B, H)
        zeros = lambda: torch.zeros(shape, dtype=x_tm.dtype, device=x_tm.device)   # noqa: E731
        if self.kind == "lstm":
            if hx is None:
                hx = (zeros(), zeros())
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("an LSTM's initial state must be a tuple (h0, c0)")
            parts = tuple(hx)
        else:
            if hx is None:
                hx = zeros()
            if not isinstance(hx, torch.Tensor):
                raise ValueError(f"the initial state of an {self.kind.upper()} must be a tensor h0")
            parts = (hx,)
        for p in parts:
            if tuple(p.shape) != shape:
                raise ValueError(f"initial state must have shape {list(shape)}, got {list(p.shape)}")
        return parts

    def _template(self, layer: int, I: int, ref: torch.Tensor) -> nn.Module:
        m = self.module
        key = (layer, I, ref.dtype, ref.device)
        if key not in self._templates:
            cls = type(m)
            kw = {"nonlinearity": m.nonlinearity} if self.kind == "rnn" else {}
            self._templates[key] = cls(I, m.hidden_size, bias=m.bias, dtype=ref.dtype,
                                       device=ref.device, **kw)
        return self._templates[key]

    def _forward_module(self, x, hx):
        m = self.module
        if x.dim() != 3:
            raise ValueError(f"x must be 3-D ([T, B, I], or [B, T, I] with batch_first), got {list(x.shape)}")
        if m.num_layers > 1 and m.dropout > 0 and m.training:
            raise ValueError("dropout between layers makes the step map random; call .eval() "
                             "or build the module with dropout=0 to use Ω")
        x_tm = x.transpose(0, 1) if m.batch_first else x
        L, H = m.num_layers, m.hidden_size
        first = self._initial(x_tm, hx, L, H)
        maps = self._maps()
        layers: list[LayerRecord] = []
        if not self.fused:
            return self._forward_steps(x_tm, first, maps, returned_batch_first=m.batch_first)
        if L == 1:
            result = m(x, first if self.kind == "lstm" else first[0])
            out, final = result
            outs = [out.transpose(0, 1) if m.batch_first else out]
        else:
            inp = x_tm
            outs, finals = [], []
            for layer in range(L):
                names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if m.bias else ())
                params = {f"{n}_l0": getattr(m, f"{n}_l{layer}") for n in names}
                s0 = tuple(p[layer:layer + 1] for p in first)
                o, f = torch.func.functional_call(self._template(layer, inp.shape[-1], x_tm), params,
                                                  (inp, s0 if self.kind == "lstm" else s0[0]))
                outs.append(o)
                finals.append(f)
                inp = o
            out = outs[-1].transpose(0, 1) if m.batch_first else outs[-1]
            if self.kind == "lstm":
                final = (torch.cat([f[0] for f in finals]), torch.cat([f[1] for f in finals]))
            else:
                final = torch.cat(finals)
            result = (out, final)
        inp = x_tm
        for layer in range(L):
            layers.append(LayerRecord(map=maps[layer], inputs=inp.detach(),
                                      first=tuple(p[layer].detach() for p in first),
                                      outputs=outs[layer].detach()))
            inp = outs[layer]
        finals_t = list(final) if self.kind == "lstm" else [final]
        self.record = ForwardRecord(layers=layers, watched=[out] + finals_t,
                                    route=[("out", -1)] + [("final", p) for p in range(len(finals_t))],
                                    batch_first=m.batch_first)
        return result

    def _forward_steps(self, x_tm, first, maps, returned_batch_first: bool):
        """Modules and cells run step by step with the step maps (autograd graph)."""
        layers: list[LayerRecord] = []
        inp = x_tm
        finals = []
        per_layer = self.family == "module"
        for layer, smap in enumerate(maps):
            s = tuple(p[layer] if per_layer else p for p in first)
            states = [s]
            for t in range(inp.shape[0]):
                s = smap.step(inp[t], s)
                states.append(s)
            outputs = torch.stack([st[0] for st in states[1:]])
            layers.append(LayerRecord(map=smap, inputs=inp.detach(), first=tuple(p.detach() for p in states[0]),
                                      states=tuple(torch.stack([st[p] for st in states]).detach()
                                                   for p in range(smap.n_parts))))
            finals.append(s)
            inp = outputs
        out = inp.transpose(0, 1) if returned_batch_first else inp
        n_parts = maps[0].n_parts
        # the final state from each step's own tensors (not slices of the outputs), so
        # that ∂E/∂outputs and ∂E/∂final are the two separate routes the loss may take
        if per_layer:
            final = [torch.stack([f[p] for f in finals]) for p in range(n_parts)]
        else:
            final = [finals[0][p].view_as(finals[0][p]) for p in range(n_parts)]
        self.record = ForwardRecord(layers=layers, watched=[out] + final,
                                    route=[("out", -1)] + [("final", p) for p in range(n_parts)],
                                    batch_first=returned_batch_first)
        return out, (tuple(final) if self.kind == "lstm" else final[0])

    def _forward_cell(self, x, state):
        if x.dim() != 3:
            raise ValueError(f"x must be [T, B, I], got {list(x.shape)}")
        first = self._initial(x, state, 1, self.module.hidden_size)
        return self._forward_steps(x, first, self._maps(), returned_batch_first=False)

    def _forward_user(self, x, state):
        if state is None:
            raise ValueError("a user cell needs its initial state: call wrapper(x, state)")
        if x.dim() < 2:
            raise ValueError(f"x must be [T, B, ...], got {list(x.shape)}")
        tuple_state = isinstance(state, (tuple, list))
        s = tuple(state) if tuple_state else (state,)
        if not s or not all(isinstance(p, torch.Tensor) for p in s):
            raise ValueError("the state must be a tensor or a tuple of tensors")
        if self.output >= len(s):
            raise ValueError(f"output={self.output} but the state has {len(s)} part(s)")
        B = x.shape[1]
        for i, p in enumerate(s):
            if p.dim() < 1 or p.shape[0] != B:
                raise ValueError(f"state part {i} has shape {list(p.shape)}; its first axis must be "
                                 f"the batch of {B} sequences")
        if self.recurrent is not None:
            H = self.recurrent[0].shape[0]
            if len(s) != 1 or s[0].dim() != 2 or s[0].shape[1] != H:
                raise ValueError(f"a cell with a recurrent weight [H, H] must have one state [B, {H}]")
        smap = CellMap(self.module, tuple_state, len(s), self.output, self.recurrent)
        shapes = [p.shape for p in s]
        aliases: list[list[torch.Tensor]] = []
        cur = s
        for t in range(x.shape[0]):
            new = self.module(x[t], tuple(cur) if tuple_state else cur[0])
            new_t = tuple(new) if isinstance(new, (tuple, list)) else (new,)
            if isinstance(new, (tuple, list)) != tuple_state or len(new_t) != len(s) or \
                    any(not isinstance(p, torch.Tensor) or p.shape != sh for p, sh in zip(new_t, shapes)):
                got = [list(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__ for p in new_t]
                raise ValueError(f"the cell returned a state of shapes {got} at step {t + 1}, but takes "
                                 f"{[list(sh) for sh in shapes]}; a cell must return its state in the "
                                 f"form it takes it")
            cur = tuple(p.view_as(p) for p in new_t)      # nodes of their own: ∂E/∂s_t as outputs
            aliases.append(list(cur))
        outputs = torch.stack([a[self.output] for a in aliases])
        states = tuple(torch.stack([p.detach() for p in [s[i]] + [a[i] for a in aliases]])
                       for i in range(len(s)))
        record = LayerRecord(map=smap, inputs=x.detach(), first=tuple(p.detach() for p in s), states=states)
        self.record = ForwardRecord(layers=[record], watched=[outputs], aliases=aliases)
        return outputs, (tuple(cur) if tuple_state else cur[0])

    # -- Ω --------------------------------------------------------------------------------
    def _linearize(self, graph: bool) -> list:
        """Each layer's step-map factors at every (step, sequence) pair (built-in maps)."""
        lins = []
        for lr in self.record.layers:
            st = lr.get_states()
            lins.append(lr.map.linearize(lr.inputs, tuple(s[:-1] for s in st), tuple(s[1:] for s in st),
                                         graph=graph))
        return lins

    def error_signals(self, loss: torch.Tensor, lins: list | None = None) -> list[tuple[torch.Tensor, ...]]:
        """δ_k = ∂loss/∂s_k, k = 1..T, of every layer, after a forward (no graph).

        Args:
            loss: the scalar loss computed from what the last forward returned.
            lins: the layers' factors from a linearization (computed here if absent).

        Returns:
            one tuple per layer, one ``[T, B, ...]`` tensor per state part.

        Raises:
            ValueError: before any forward, or when the loss does not depend on what
                the last forward returned.
        """
        rec = self.record
        grads = self._loss_grads(loss)
        if rec.aliases is not None:
            P = len(rec.aliases[0])
            parts = []
            for p in range(P):
                steps = [grads[t * P + p] for t in range(len(rec.aliases))]
                zero = torch.zeros_like(rec.aliases[0][p])
                parts.append(torch.stack([zero if g is None else g for g in steps]))
            return [tuple(parts)]
        if lins is None:
            with torch.no_grad():
                lins = self._linearize(graph=False)
        return self._propagate(grads, lambda layer, lr, direct, final: lr.map.backward(
            tuple(x.detach() for x in lins[layer]), direct, final))

    def _loss_grads(self, loss: torch.Tensor):
        """∂loss/∂(what the last forward returned, or the user cell's states), checked."""
        rec = self.record
        if rec is None:
            raise ValueError("no forward pass recorded: call the wrapper on a batch before penalty()")
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss must be a scalar tensor computed from the wrapper's outputs")
        if not loss.requires_grad:
            raise ValueError("the loss does not depend on the wrapper's outputs (it has no graph); "
                             "compute it from what the last forward returned")
        targets = [a for step in rec.aliases for a in step] if rec.aliases is not None else rec.watched
        grads = torch.autograd.grad(loss, targets, retain_graph=True, allow_unused=True)
        if all(g is None for g in grads):
            raise ValueError("the loss does not depend on the wrapper's outputs; compute it from "
                             "what the last forward returned")
        return grads

    def _propagate(self, grads, layer_backward) -> list[tuple[torch.Tensor, ...]]:
        """δ of every layer, top layer first: ``layer_backward(layer, record, direct,
        final) -> (deltas, pre)`` runs one layer's recursion (see :meth:`StepMap.backward`)."""
        rec = self.record
        L = len(rec.layers)
        top = rec.layers[-1]
        T, B = top.inputs.shape[:2]
        finals: dict[int, torch.Tensor] = {}
        d_top = None
        for (what, p), g in zip(rec.route, grads):
            if g is None:
                continue
            if what == "out":
                d_top = g.transpose(0, 1) if rec.batch_first else g
            else:
                finals[p] = g
        first_h = top.first[0]
        if d_top is None:
            d_top = torch.zeros(T, *first_h.shape, dtype=first_h.dtype, device=first_h.device)
        out: list = [None] * L
        direct = d_top.contiguous()
        for layer in range(L - 1, -1, -1):
            lr = rec.layers[layer]
            final = []
            for p in range(lr.map.n_parts):
                g = finals.get(p)
                if g is not None and self.family == "module":
                    g = g[layer]
                final.append(g)
            deltas, pre = layer_backward(layer, lr, direct, tuple(final))
            out[layer] = deltas
            if layer > 0:
                W_ih = lr.map.w.weight_ih.detach()
                direct = (pre.reshape(T * B, -1) @ W_ih).view(T, B, -1)
        return out

    def penalty(self, loss: torch.Tensor, form: str = "squared", semantics: str = "full",
                bound: float = OMEGA_BOUND) -> torch.Tensor:
        """Ω of the last forward, a scalar with a graph (sum over layers).

        Args:
            loss: the scalar loss E computed from what the last forward returned.
            form: ``"squared"`` (the reference code's) or ``"plain"`` (eq. 9).
            semantics: ``"full"`` (Ω's gradient reaches every parameter of the step
                map) or ``"reference"`` (the paper's: only the recurrent weight, σ'
                held constant; Elman-type maps only).
            bound: pairs with ‖δ_{k+1}‖² below this are left out.

        Returns:
            Ω, a 0-dim tensor whose gradient is eq. 10's (δ and the states held
            constant). Its value per layer and the fraction of pairs that entered are
            kept in ``self.last`` (:class:`OmegaValue`).

        Raises:
            ValueError: for an unknown form or semantics, ``"reference"`` on a map that
                is not Elman-type, before any forward, or for a loss that does not
                depend on the outputs.
        """
        _check(form, semantics)
        if self.record is None:
            raise ValueError("no forward pass recorded: call the wrapper on a batch before penalty()")
        if semantics == "reference":
            for lr in self.record.layers:
                if lr.map.elman() is None:
                    raise ValueError(
                        f"semantics='reference' (the paper's code: σ' held constant, only the recurrent "
                        f"weight differentiated) is defined for Elman-type maps h' = σ(… + h Wᵀ): nn.RNN, "
                        f"nn.RNNCell, or a user cell given recurrent_weight= and unit=; this map is "
                        f"{lr.map.kind!r}. Use semantics='full'.")
        full = semantics == "full"
        if full and self.record.aliases is None and all(isinstance(lr.map, LSTMMap) for lr in self.record.layers):
            return self._lstm_penalty(loss, form, bound)
        lins = None
        if self.record.aliases is None:
            with torch.enable_grad() if full else torch.no_grad():
                lins = self._linearize(graph=full)
        deltas = self.error_signals(loss, lins)
        values, fractions, total = [], [], None
        for i, (lr, delta) in enumerate(zip(self.record.layers, deltas)):
            om, frac = layer_omega(lr.map, lr.get_states(), lr.inputs, delta, form, semantics, bound,
                                   lin=lins[i] if (lins is not None and full) else None)
            values.append(om.detach())
            fractions.append(frac)
            total = om if total is None else total + om
        self.last = OmegaValue(per_layer=torch.stack(values), fraction=torch.stack(fractions))
        return total

    def _lstm_penalty(self, loss, form, bound):
        """Ω of LSTM layers by :func:`bptt.omega.lstm_penalty.lstm_layer_omega` (gates
        in one product, cells by their recurrence, Ω's gradient written out)."""
        got: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def layer_backward(layer, lr, direct, final):
            w = lr.map.w
            h, c = lr.states if lr.states is not None else (
                torch.cat([lr.first[0][None], lr.outputs]), lr.first[1][None])
            tape = tape_from_states(lr.inputs, h, c, w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh)
            if lr.states is None:
                lr.states = (tape.h, tape.c)
            omega, fraction, deltas, pre = lstm_layer_omega(w, tape, direct, final, form, bound)
            got[layer] = (omega, fraction)
            return deltas, pre

        self._propagate(self._loss_grads(loss), layer_backward)
        total = sum(got[layer][0] for layer in sorted(got))
        self.last = OmegaValue(per_layer=torch.stack([got[layer][0].detach() for layer in sorted(got)]),
                               fraction=torch.stack([got[layer][1] for layer in sorted(got)]))
        return total


def layer_omega(smap: StepMap, states, inputs, delta, form: str, semantics: str,
                bound: float = OMEGA_BOUND, lin=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Ω of one layer and the fraction of pairs that entered.

    Args:
        smap: the layer's step map.
        states: tuple of ``[T+1, B, ...]`` s_0..s_T.
        inputs: ``[T, B, ...]`` u_1..u_T.
        delta: tuple of ``[T, B, ...]`` δ_1..δ_T.
        form, semantics, bound: as for :meth:`Omega.penalty`.
        lin: the map's factors with their graph (``"full"``; computed if absent).

    Returns:
        ``(omega, fraction)``: Ω with its graph (value from
        :func:`bptt.omega.omega_terms`; gradient Σ_k c_k v_kᵀ ∂v_k/∂θ with
        ∂Ω/∂v_k = c_k v_k), and the fraction without one.
    """
    T, B = inputs.shape[:2]
    g_norm2 = sum(d.reshape(T, B, -1).square().sum(-1) for d in delta)            # [T,B]
    with torch.enable_grad():
        if semantics == "reference":
            W, unit = smap.elman()
            sp = derivative_from_output(states[0][1:], unit)
            c = delta[0] if sp is None else delta[0] * sp
            vs = ((c.reshape(T * B, -1) @ W),)
        elif lin is not None:
            vs = smap.apply(lin, delta)
        else:
            lin = smap.linearize(inputs, tuple(s[:-1] for s in states), tuple(s[1:] for s in states))
            if lin is not None:
                vs = smap.apply(lin, delta)
            else:
                flat = lambda z: z.reshape(T * B, *z.shape[2:])      # noqa: E731
                vs = smap.vjp(flat(inputs), tuple(flat(s[:-1]) for s in states), tuple(flat(d) for d in delta))
        v_norm2 = sum(v.reshape(T, B, -1).square().sum(-1) for v in vs)
    terms = omega_terms(v_norm2.detach()[:, None], g_norm2[:, None], form, bound=bound)
    surrogate = 0.5 * (terms.coef[:, 0] * v_norm2).sum()
    return terms.omega[0] + (surrogate - surrogate.detach()), terms.fraction[0]


def penalty(model: Omega, loss: torch.Tensor, form: str = "squared", semantics: str = "full",
            bound: float = OMEGA_BOUND) -> torch.Tensor:
    """``model.penalty(loss, form, semantics, bound)`` as a function (see :meth:`Omega.penalty`)."""
    if not isinstance(model, Omega):
        raise ValueError(f"penalty needs the Omega wrapper the loss was computed through, got "
                         f"{type(model).__name__}; wrap the module with bptt.omega.Omega(module)")
    return model.penalty(loss, form=form, semantics=semantics, bound=bound)
