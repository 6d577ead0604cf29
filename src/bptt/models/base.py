"""The interface every ensemble model shares, and a base class for the autograd models.

:class:`EnsembleModel` writes down, once, what the training code may rely on: the
same constructor shape, passes, structure and persistence as :class:`bptt.ElmanRNN`.
:class:`AutogradEnsemble` implements the common parts of the models whose gradients
come from ``torch.autograd`` (LSTM, GRU, leaky, skip, echo-state): argument checks,
parameter drawing per member seed, the readout, the losses of
:mod:`bptt.engine.outputs`, evaluation, ``select``, ``config``/``from_config``.
A subclass supplies three things: :meth:`AutogradEnsemble._draw` (one member's
parameters from its seed), :meth:`AutogradEnsemble._run` (the time loop) and
:meth:`AutogradEnsemble._options` (its own constructor arguments).

Shapes are time-major: T steps, E members, B sequences, I inputs, H hidden units,
O outputs, S = :attr:`EnsembleModel.state_size` the width of the carried state.
"""

from __future__ import annotations

import math
import numbers
from typing import Protocol, Sequence, runtime_checkable

import torch
import torch.nn.functional as F

from bptt.clip.norm import global_norm
from bptt.engine.dropout import check_dropout, dropout_masks
from bptt.engine.exact import Evaluation, StepResult
from bptt.engine.outputs import PER_STEP, check_output, wrong_sequences
from bptt.models import checks
from bptt.omega.ensemble import forward_backward as omega_forward_backward
from bptt.omega.terms import check_omega


@runtime_checkable
class EnsembleModel(Protocol):
    """E independent recurrent networks of one shape, trained as one.

    Every parameter carries a leading ensemble axis E; member e is drawn from seed
    ``seeds[e]`` alone, so it is the same network whatever ensemble it is part of.
    Constructors share the shape
    ``Model(n_in, n_hidden, n_out, *, ensemble=1, seed=0, seeds=None, init=...,
    output=..., dtype=torch.float32, device="cpu", **model_options)``.

    Attributes:
        n_in: input size I.
        n_hidden: hidden units H.
        n_out: output size O.
        output: the output kind (see :mod:`bptt.engine.outputs`).
        seeds: the members' seeds, ``len(seeds) == ensemble``.
    """

    n_in: int
    n_hidden: int
    n_out: int
    output: str
    seeds: list[int]

    @property
    def params(self) -> dict[str, torch.nn.Parameter]:
        """Every parameter by name, each ``[E, ...]``; always holds ``"W_rec"``.

        The update rules step every entry with the gradient of the same name in
        :attr:`StepResult.grads`.
        """

    @property
    def recurrent_names(self) -> tuple[str, ...]:
        """Names in :attr:`params` of the learned recurrent weights: the ones the
        non-finite guard shrinks (``("W_rec",)`` for an Elman network, ``()`` for a
        model whose recurrent weights do not learn)."""

    @property
    def ensemble(self) -> int:
        """E, the number of members."""

    @property
    def dtype(self) -> torch.dtype:
        """``torch.float32`` or ``torch.float64``."""

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""

    @property
    def per_step(self) -> bool:
        """Whether the output is read at every step (``softmax``, ``sigmoid``)."""

    @property
    def state_size(self) -> int:
        """S, the width of the state carried between windows (``h0``, ``h_last``):
        H for an Elman network, 2H for an LSTM ([h | c]), d·H for a skip network."""

    def config(self) -> dict:
        """Constructor arguments (JSON-serialisable) that rebuild this model; with its
        ``state_dict`` they restore it exactly."""

    @classmethod
    def from_config(cls, config: dict, device: torch.device | str = "cpu") -> "EnsembleModel":
        """The model :meth:`config` describes, freshly drawn, on ``device``."""

    def select(self, members: Sequence[int]) -> "EnsembleModel":
        """A new model holding copies of the given members only (in that order)."""

    def spectral_radius(self) -> torch.Tensor:
        """``[E]`` float64: ρ of each member's main recurrent matrix (each model's
        docstring says which matrix)."""

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable output pre-activations: ``[E, B, O]`` for last-step outputs,
        ``[T, E, B, O]`` for per-step ones, from ``x`` ``[T, B, I]`` or ``[T, E, B, I]``."""

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, *, alpha: torch.Tensor | float = 0.0,
                         omega: str | None = "squared", h0: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None, cuda_graph: bool = False) -> StepResult:
        """Loss, gradients of every parameter and the gradient norm of each member.

        Args:
            x: ``[T, B, I]`` shared by all members, or ``[T, E, B, I]``.
            y: targets of the output kind, shared or with an ensemble axis.
            alpha: Ω's weight α (paper eq. 9), a float or ``[E]``.
            omega: Ω's form, or ``None``.
            h0: ``[E, B, S]`` initial state (zeros by default).
            mask: ``[T, B]`` 1 on real steps, for per-step outputs over padded batches.
            cuda_graph: a hint that the pass may be replayed as a CUDA graph; models
                without such a path ignore it.

        Returns:
            :class:`bptt.engine.StepResult`: ``loss``, ``grad_norm``, ``finite``,
            ``omega``, ``omega_fraction`` (each ``[E]``), ``grads`` (keyed as
            :attr:`params`, before clipping) and ``h_last`` ``[E, B, S]``.
        """

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, tolerance: float | None = None,
                 h0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                 chunk: int = 64) -> Evaluation:
        """Loss ``[E]``, wrong sequences ``[E, B]`` (``None`` for sigmoid outputs) and the
        last state ``[E, B, S]``, forward only, without an autograd graph."""

    def state_dict(self, *args, **kwargs) -> dict: ...

    def load_state_dict(self, state_dict, strict: bool = True): ...


def derived_seed(seed: int, salt: int) -> int:
    """A seed for a second, independent stream of draws of the member ``seed``.

    Mixed by a large odd multiplier so that it does not collide with the small seeds
    of other members (``seed + e``)."""
    return (int(seed) * 0x9E3779B97F4A7C15 + int(salt) * 0xBF58476D1CE4E5B9 + 1) % (2 ** 63 - 1)


def check_positive_int(name: str, value) -> int:
    """``value`` as an int ≥ 1 (integral floats such as ``4.0`` accepted); ``ValueError`` otherwise."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or int(value) != value or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_real(name: str, value, *, above: float | None = None, at_least: float | None = None,
               at_most: float | None = None) -> float:
    """``value`` as a finite float within the given bounds; ``ValueError`` naming ``name``
    and the rule otherwise (booleans and strings are refused)."""
    rule = [f"> {above}"] if above is not None else []
    rule += [f">= {at_least}"] if at_least is not None else []
    rule += [f"<= {at_most}"] if at_most is not None else []
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (above is None or value > above) and (at_least is None or value >= at_least)
    ok = ok and (at_most is None or value <= at_most)
    if not ok:
        raise ValueError(f"{name} must be a finite number{' ' + ' and '.join(rule) if rule else ''}, got {value!r}")
    return float(value)


def is_int(value) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def nll(z: torch.Tensor, y: torch.Tensor, output: str) -> torch.Tensor:
    """The per-sequence (or per-step) loss of :mod:`bptt.engine.outputs`, unaveraged.

    Args:
        z: output pre-activations ``[E, B, O]`` or ``[T, E, B, O]``.
        y: targets, shared (``[B]``, ``[B, O]``, ``[T, B]``, ``[T, B, O]``) or with the
            ensemble axis in place.

    Returns:
        ``[E, B]`` or ``[T, E, B]``: cross-entropy (softmax outputs), squared error
        summed over outputs (``last_linear``), binary cross-entropy summed over
        outputs (``sigmoid``).
    """
    if output in ("last_softmax", "softmax"):
        if output == "softmax" and y.dim() == 2:
            y = y.unsqueeze(1)                                        # [T,1,B]
        idx = y.expand(z.shape[:-1]).unsqueeze(-1)
        return -torch.log_softmax(z, -1).gather(-1, idx).squeeze(-1)
    if output == "last_linear":
        return ((z - y) ** 2).sum(-1)
    if y.dim() == 3:
        y = y.unsqueeze(1)                                            # [T,1,B,O]
    return F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").sum(-1)


def _step_weight(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if mask is None else mask.to(dtype).unsqueeze(1)       # [T,1,B]


def mean_loss(z: torch.Tensor, y: torch.Tensor, output: str, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Loss per member ``[E]``, averaged as :func:`bptt.engine.outputs.loss_and_grad`
    does: over the minibatch, or over steps × minibatch (real steps only under a mask)."""
    per = nll(z, y, output)
    if output not in PER_STEP:
        return per.mean(-1)
    if mask is None:
        return per.mean(dim=(0, 2))
    w = _step_weight(mask, per.dtype)
    return (per * w).sum(dim=(0, 2)) / w.sum().clamp_min(1.0)


class AutogradEnsemble(torch.nn.Module):
    """Common machinery of the ensemble models differentiated by ``torch.autograd``.

    Subclasses set :attr:`PARAM_NAMES` (the first one's leading axis is E),
    :attr:`INITS` and :attr:`DEFAULT_INIT`, and implement :meth:`_draw`, :meth:`_run`
    and :meth:`_options`. The readout is shared: ŷ_t = h_t W_out + b_out with
    ``W_out [E, H, O]`` and ``b_out [E, O]``, then the output kind's nonlinearity and
    loss (:mod:`bptt.engine.outputs`).

    Ω (paper §3.3, eq. 9) is computed on the step map of :meth:`_run` by
    :mod:`bptt.omega.ensemble` when α > 0 for some member and ``omega`` is set (the
    state s_k is the carried state, δ_k = ∂E/∂s_k, every parameter of the step map
    differentiated); subclasses with a fixed reservoir refuse it.
    """

    KIND: str = ""
    PARAM_NAMES: tuple[str, ...] = ()
    INITS: tuple[str, ...] = ()
    DEFAULT_INIT: str = ""
    RECURRENT_NAMES: tuple[str, ...] = ("W_rec",)

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, ensemble: int = 1, seed: int = 0,
                 seeds: Sequence[int] | None = None, init: str | None = None,
                 output: str = "last_softmax", dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.n_in = check_positive_int("n_in", n_in)
        self.n_hidden = check_positive_int("n_hidden", n_hidden)
        self.n_out = check_positive_int("n_out", n_out)
        self.init = check_choice("init", self.DEFAULT_INIT if init is None else init, self.INITS)
        self.output = check_output(output)
        if seeds is None:
            if not is_int(seed):
                raise ValueError(f"seed must be an integer, got {seed!r}")
            seeds = [int(seed) + e for e in range(check_positive_int("ensemble", ensemble))]
        seeds = list(seeds)
        if len(seeds) == 0:
            raise ValueError("seeds must not be empty")
        if not all(is_int(s) for s in seeds):
            raise ValueError(f"seeds must be integers, got {seeds!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.seeds = [int(s) for s in seeds]
        self._dtype, self._device = dtype, torch.device(device)

    def _build(self) -> None:
        """Draw every member (float64, from its own seed), stack, cast and register.

        Called by subclasses at the end of their constructor, once their options
        are set."""
        members = [self._draw(s) for s in self.seeds]
        for name in members[0]:
            t = torch.stack([m[name] for m in members]).to(dtype=self._dtype, device=self._device)
            if name in self.PARAM_NAMES:
                self.register_parameter(name, torch.nn.Parameter(t))
            else:
                self.register_buffer(name, t)

    # -- what a subclass supplies ---------------------------------------------------------
    def _draw(self, seed: int) -> dict[str, torch.Tensor]:
        """One member's tensors (float64, no ensemble axis): the parameters in
        :attr:`PARAM_NAMES` and any fixed buffers."""
        raise NotImplementedError

    def _run(self, params: dict[str, torch.Tensor], x: torch.Tensor, state: torch.Tensor | None,
             keep: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The time loop.

        Args:
            params: the parameters (and buffers) by name, ``[E, ...]``.
            x: ``[T, B, I]`` or ``[T, E, B, I]`` in the model's dtype.
            state: ``[E, B, S]`` or ``None`` (zeros).
            keep: return every step's hidden output, not only the last.

        Returns:
            ``(h, state_T)``: ``h`` the hidden outputs read by the readout, ``[T, E, B, H]``
            when ``keep`` else ``[E, B, H]`` (the last); ``state_T`` ``[E, B, S]``.
        """
        raise NotImplementedError

    def _options(self) -> dict:
        """The subclass's own constructor arguments, for :meth:`config`."""
        return {}

    # -- structure ------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, torch.nn.Parameter]:
        """The parameters by name, in :attr:`PARAM_NAMES` order."""
        return {name: getattr(self, name) for name in self.PARAM_NAMES}

    @property
    def recurrent_names(self) -> tuple[str, ...]:
        """The learned recurrent weights (shrunk by the non-finite guard)."""
        return self.RECURRENT_NAMES

    @property
    def ensemble(self) -> int:
        return self.W_rec.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.W_rec.dtype

    @property
    def device(self) -> torch.device:
        return self.W_rec.device

    @property
    def per_step(self) -> bool:
        return self.output in PER_STEP

    @property
    def state_size(self) -> int:
        return self.n_hidden

    def _tensors(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers, detached."""
        out = {k: p.detach() for k, p in self.params.items()}
        out.update({k: b for k, b in self.named_buffers()})
        return out

    def config(self) -> dict:
        """The constructor arguments that rebuild this model (with its state dict)."""
        cfg = {"n_in": self.n_in, "n_hidden": self.n_hidden, "n_out": self.n_out, "init": self.init,
               "output": self.output, "seeds": list(self.seeds),
               "dtype": str(self.dtype).replace("torch.", "")}
        cfg.update(self._options())
        return cfg

    @classmethod
    def from_config(cls, config: dict, device: torch.device | str = "cpu"):
        cfg = dict(config)
        cfg["dtype"] = getattr(torch, cfg.get("dtype", "float32"))
        return cls(device=device, **cfg)

    def save(self, path) -> None:
        """Write this model (configuration and weights, every member) to the file ``path``,
        in the library's checkpoint format (:mod:`bptt.models.persist`); read it back
        with :func:`bptt.load`. ``FileNotFoundError`` when the directory is missing."""
        from bptt.models.persist import save_model

        save_model(self, path)

    def select(self, members: Sequence[int]):
        """A new model holding copies of the given members only."""
        members = [int(m) for m in members]
        idx = torch.as_tensor(members, dtype=torch.long, device=self.device)
        cfg = self.config()
        cfg["seeds"] = [self.seeds[i] for i in members]
        new = type(self).from_config(cfg, device=self.device)
        mine = dict(self.named_parameters()) | dict(self.named_buffers())
        with torch.no_grad():
            for name, t in list(new.named_parameters()) + list(new.named_buffers()):
                t.copy_(mine[name].index_select(0, idx))
        return new

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return (f"n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
                f"ensemble={self.ensemble}, init={self.init!r}, output={self.output!r}"
                + (f", {opts}" if opts else ""))

    # -- checks ---------------------------------------------------------------------------
    def _check_batch(self, x, y, h0, mask) -> None:
        checks.check_inputs(x, self.n_in, self.ensemble, self.device)
        checks.check_targets(y, x, self.output, self.n_out, self.ensemble, self.device)
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        if h0 is not None:
            checks.check_state(h0, self.ensemble, B, self.state_size, self.device)
        if mask is not None:
            checks.check_mask(mask, x.shape[0], B, self.output, self.device)

    def _refuse_omega(self, alpha, omega) -> None:
        """Check α and Ω's form; a pass that reaches here must not weigh Ω (the ones that
        do go through :meth:`AutogradEnsemble.forward_backward`)."""
        if self._omega_wanted(alpha, omega):
            raise NotImplementedError(f"this pass of {type(self).__name__} does not compute Ω; "
                                      f"use AutogradEnsemble.forward_backward")

    def _omega_wanted(self, alpha, omega) -> bool:
        """Whether a pass must compute Ω: ``omega`` set and α > 0 for some member
        (α and ``omega`` checked: ``ValueError`` when malformed)."""
        checks.check_alpha(alpha, self.ensemble)
        check_omega(omega)
        return omega is not None and any_positive(alpha)

    # -- computation ----------------------------------------------------------------------
    def _readout(self, params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        W_out, b_out = params["W_out"], params["b_out"]
        if h.dim() == 4:                                              # [T,E,B,H]
            return torch.matmul(h, W_out) + b_out[:, None, :]
        return torch.baddbmm(b_out.unsqueeze(1), h, W_out)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """Output pre-activations (differentiable): ``[E, B, O]`` or ``[T, E, B, O]``."""
        checks.check_inputs(x, self.n_in, self.ensemble, self.device)
        if h0 is not None:
            B = x.shape[1] if x.dim() == 3 else x.shape[2]
            checks.check_state(h0, self.ensemble, B, self.state_size, self.device)
        params = dict(self.params) | dict(self.named_buffers())
        h, _ = self._run(params, x.to(self.dtype), h0, self.per_step)
        return self._readout(params, h)

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, *, alpha: torch.Tensor | float = 0.0,
                         omega: str | None = "squared", h0: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None, cuda_graph: bool = False,
                         dropout: float = 0.0, generator: torch.Generator | None = None) -> StepResult:
        """Loss, gradients (by ``torch.autograd``) and the gradient norm of each member.

        See :meth:`EnsembleModel.forward_backward`. ``cuda_graph`` is ignored. With
        ``omega`` set and α > 0 for some member, the gradients are those of
        loss + α·Ω and ``omega``/``omega_fraction`` hold each member's Ω (§3.3) and the
        fraction of pairs that entered (:mod:`bptt.omega.ensemble`: Ω on the step map
        from one carried state to the next, every parameter of the step map
        differentiated); otherwise they are zeros and Ω is not computed. ``dropout``
        (with its random stream ``generator``) drops inputs and the hidden outputs fed
        to the readout, never the recurrent path (Zaremba et al. 2014;
        :mod:`bptt.engine.dropout`).

        Raises:
            ValueError: for inputs, targets, α, h0 or mask of the wrong shape, type or
                device (see :mod:`bptt.models.checks`), or an unknown ``omega``.
        """
        self._check_batch(x, y, h0, mask)
        with_omega = self._omega_wanted(alpha, omega)
        x, readout_mask = self._dropout(x.to(self.dtype), dropout, generator)

        def loss_of(tensors, h):
            if readout_mask is not None:
                h = h * readout_mask
            return mean_loss(self._readout(tensors, h), y, self.output, mask)

        if with_omega:
            loss, grads, om, frac, state = omega_forward_backward(self, x, loss_of, alpha, omega, h0=h0, mask=mask)
            return self._result(loss, grads, state, om, frac)
        leaves = {k: p.detach().requires_grad_(True) for k, p in self.params.items()}
        tensors = leaves | {k: b for k, b in self.named_buffers()}
        with torch.enable_grad():
            h, state = self._run(tensors, x, h0, self.per_step)
            loss = loss_of(tensors, h)
            names = list(leaves)
            got = torch.autograd.grad(loss.sum(), [leaves[n] for n in names], allow_unused=True)
        grads = {n: torch.zeros_like(leaves[n]) if g is None else g for n, g in zip(names, got)}
        return self._result(loss.detach(), grads, state.detach())

    def _dropout(self, x: torch.Tensor, p, generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` with its dropout mask applied (``[T, E, B, I]``) and the readout mask, or
        ``x`` unchanged and ``None`` when ``p`` is 0."""
        if not check_dropout(p):
            return x, None
        T, B = x.shape[0], x.shape[-2]
        x_mask, readout_mask = dropout_masks(float(p), T, self.ensemble, B, self.n_in, self.n_hidden,
                                             per_step=self.per_step, generator=generator, dtype=self.dtype,
                                             device=self.device)
        return (x.unsqueeze(1) if x.dim() == 3 else x) * x_mask, readout_mask

    def _result(self, loss: torch.Tensor, grads: dict[str, torch.Tensor], state: torch.Tensor,
                omega: torch.Tensor | None = None, fraction: torch.Tensor | None = None) -> StepResult:
        norm = global_norm(grads)
        zeros = torch.zeros(self.ensemble, dtype=self.dtype, device=self.device)
        return StepResult(loss=loss, grads=grads, omega=zeros if omega is None else omega,
                          omega_fraction=zeros.clone() if fraction is None else fraction,
                          grad_norm=norm, finite=torch.isfinite(norm), h_last=state)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, tolerance: float | None = None,
                 h0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                 chunk: int = 64) -> Evaluation:
        """Loss ``[E]`` and wrong sequences ``[E, B]``, forward only, ``chunk`` steps at a
        time (memory flat in the length). A sequence is wrong for a per-step softmax when
        any of its (unmasked) steps is wrong; sigmoid outputs give ``wrong = None``."""
        self._check_batch(x, y, h0, mask)
        if int(chunk) < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        tensors = self._tensors()
        x = x.to(self.dtype)
        if not self.per_step:
            h, state = self._run(tensors, x, h0, False)
            z = self._readout(tensors, h)
            return Evaluation(loss=mean_loss(z, y, self.output), wrong=wrong_sequences(z, y, self.output, tolerance),
                              h_last=state)
        T = x.shape[0]
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        total = torch.zeros(self.ensemble, dtype=self.dtype, device=self.device)
        wrong = torch.zeros(self.ensemble, B, dtype=torch.bool, device=self.device)
        state = h0
        for s in range(0, T, int(chunk)):
            e = min(T, s + int(chunk))
            h, state = self._run(tensors, x[s:e], state, True)
            z = self._readout(tensors, h)                             # [n,E,B,O]
            per = nll(z, y[s:e], self.output)                        # [n,E,B]
            w = _step_weight(None if mask is None else mask[s:e], per.dtype)
            total += (per if w is None else per * w).sum(dim=(0, 2))
            if self.output == "softmax":
                yy = y[s:e] if y.dim() == 3 else y[s:e].unsqueeze(1)
                miss = z.argmax(-1) != yy
                if w is not None:
                    miss &= w.bool()
                wrong |= miss.any(0)
        count = float(T * B) if mask is None else mask.to(self.dtype).sum().clamp_min(1.0)
        return Evaluation(loss=total / count, wrong=wrong if self.output == "softmax" else None, h_last=state)


def any_positive(alpha) -> bool:
    """Whether α (a float or a tensor) is > 0 for any member."""
    if isinstance(alpha, torch.Tensor):
        return bool((alpha > 0).any())
    return float(alpha) > 0 and math.isfinite(float(alpha))
