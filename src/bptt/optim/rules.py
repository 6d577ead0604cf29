"""Any update rule for an ensemble: non-finite guard → clipper → optimizer.

:class:`ClippedRule` offers the four methods of :class:`bptt.optim.PaperSGD`
(``step``, ``select``, ``state_dict``, ``load_state_dict``), so the training loop
trains with it unchanged. One step, per member:

1. **guard** (as :class:`PaperSGD`'s, for the members it protects: by default those
   that clip, as the reference code): a gradient whose norm is NaN, infinite or above
   :data:`bptt.optim.NORM_LIMIT` is refused: the member's parameters and the
   optimizer's state (its step count included) stay as they are, and the learned
   recurrent weights (the model's ``recurrent_names``) shrink instead,
   W ← W − lr · :data:`bptt.optim.SHRINK` · W;
2. **clip**, for the members that clip (the method's choice): ``"norm"`` (Algorithm 1,
   threshold per member), ``"elementwise"`` (per member), or a clipper object with state
   (:class:`bptt.clip.AverageNorm`, :class:`~bptt.clip.AutoClip`, :class:`~bptt.clip.AGC`,
   :class:`~bptt.clip.ZClip`; their statistics are per member and see every member's
   finite norm, the refused ones included unless they are not finite);
3. **step** of the optimizer (:mod:`bptt.optim.ensemble`) on the members not refused.

:func:`make_rule` builds the rule from names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bptt.clip import AGC, AutoClip, AverageNorm, ZClip, clip_by_global_norm, clip_elementwise
from bptt.optim.ensemble import OPTIMIZERS, EnsembleOptimizer, check_member_values, per_member
from bptt.optim.sgd import SHRINK, PaperSGD, nonfinite

#: Every clipping rule by name.
CLIPS = ("norm", "elementwise", "average-norm", "autoclip", "agc", "zclip", "none")
#: The clippers with state, by name.
CLIPPERS = {"average-norm": AverageNorm, "autoclip": AutoClip, "agc": AGC, "zclip": ZClip}


class _Weights:
    """The parameters with the gradients to clip attached as ``.grad`` (for clippers that
    read the weights, such as AGC); ``params`` maps names to views of the parameters."""

    def __init__(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.params = {}
        for k, p in params.items():
            view = p.detach()
            view.grad = grads[k]
            self.params[k] = view


class ClippedRule:
    """Non-finite guard → clipping → an ensemble optimizer (see the module docstring).

    Args:
        optimizer: an :class:`bptt.optim.ensemble.EnsembleOptimizer` (its ``lr`` also
            scales the guard's shrink step).
        clip: which members clip (a bool is shared).
        kind: one of :data:`CLIPS`.
        threshold: per-member thresholds of ``"norm"`` and ``"elementwise"``.
        clipper: the clipper object for the other kinds (``None`` for ``"none"``).
        recurrent: the names the guard shrinks (the model's ``recurrent_names``).
        guard: which members the guard protects (one bool per member, or shared);
            ``None``: the members that clip (see :func:`bptt.optim.guarded`).
        frozen: names the optimizer never steps (e.g. an echo-state network's reservoir).
    """

    name = "clipped-rule"

    def __init__(self, optimizer: EnsembleOptimizer, *, clip=False, kind: str = "none", threshold=1.0,
                 clipper=None, recurrent: Sequence[str] = ("W_rec",), frozen: Sequence[str] = (),
                 guard=None) -> None:
        if kind not in CLIPS:
            raise ValueError(f"unknown clipping {kind!r}; choose one of {', '.join(CLIPS)}")
        if kind in CLIPPERS and clipper is None:
            raise ValueError(f"clipping {kind!r} needs its clipper object")
        E = optimizer.ensemble
        self.optimizer = optimizer
        self.kind = kind
        self.clip = [bool(c) for c in per_member(clip, E, "clip")]
        if kind == "none" and any(self.clip):
            raise ValueError("clipping 'none' cannot clip: choose a clipping rule for the members that clip")
        thr = per_member(threshold, E, "threshold")
        if kind in ("norm", "elementwise"):
            check_member_values("clipping threshold", [t for t, c in zip(thr, self.clip) if c], low=0, low_open=True)
        dev, dtype = optimizer.lr.device, optimizer.lr.dtype
        self.threshold = torch.tensor([float(t) if c else 1.0 for t, c in zip(thr, self.clip)], dtype=dtype, device=dev)
        self._clip_mask = torch.tensor(self.clip, dtype=torch.bool, device=dev)
        self.clipper = clipper
        self.recurrent = tuple(recurrent)
        self.frozen = tuple(frozen)
        self.guard = list(self.clip) if guard is None else [bool(g) for g in per_member(guard, E, "guard")]
        self._guard_mask = torch.tensor(self.guard, dtype=torch.bool, device=dev)

    @property
    def ensemble(self) -> int:
        return len(self.clip)

    @property
    def lr(self) -> torch.Tensor:
        """The learning rates ``[E]`` (mutable: ``rule.lr[j] = v``)."""
        return self.optimizer.lr

    def _clipped(self, params, grads, norm) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if self.kind == "norm":
            return clip_by_global_norm(grads, self.threshold, norm)
        if self.kind == "elementwise":
            return clip_elementwise(grads, self.threshold)
        copies = {k: g.clone() for k, g in grads.items()}
        before = self.clipper.clipped
        before = torch.zeros_like(norm, dtype=torch.long) if before is None else before.clone()
        if self.clipper.needs_weights:
            self.clipper(_Weights(params, copies), ensemble=True)
        else:
            self.clipper(copies, ensemble=True)
        return copies, (self.clipper.clipped - before.to(self.clipper.clipped.device)).to(norm.device) > 0

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
             norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Update ``params`` in place; returns ``(bad, clipped)``, each ``[E]`` bool, as
        :meth:`bptt.optim.PaperSGD.step` (an unguarded member is updated all the same)."""
        bad = nonfinite(norm)
        if not all(self.guard):
            bad = bad & self._guard_mask
        clipped = torch.zeros_like(bad)
        if any(self.clip):
            cg, clipped = self._clipped(params, grads, norm)
            mask = self._clip_mask
            grads = {k: torch.where(mask.reshape(-1, *([1] * (g.dim() - 1))), cg[k], g) for k, g in grads.items()}
            clipped = clipped & mask
        self.optimizer.update(params, grads, active=~bad, skip=self.frozen)
        for k in self.recurrent:
            p = params[k]
            shrink = (self.optimizer.lr * SHRINK).reshape(-1, *([1] * (p.dim() - 1))) * p
            p.sub_(torch.where(bad.reshape(-1, *([1] * (p.dim() - 1))), shrink, torch.zeros_like(p)))
        return bad, clipped & ~bad

    def select(self, keep: list[int], params: dict[str, torch.Tensor] | None = None) -> None:
        """Keep only the members at positions ``keep`` (optimizer and clipper state too)."""
        idx = torch.as_tensor(keep, dtype=torch.long, device=self.threshold.device)
        self.optimizer.select(keep)
        self.threshold = self.threshold[idx].clone()
        self.clip = [self.clip[j] for j in keep]
        self._clip_mask = self._clip_mask[idx].clone()
        self.guard = [self.guard[j] for j in keep]
        self._guard_mask = self._guard_mask[idx].clone()
        if self.clipper is not None and self.clipper._state is not None:
            self.clipper._state = {k: _members(v, keep) for k, v in self.clipper._state.items()}

    def state_dict(self) -> dict:
        """Tensors, numbers, lists and strings only (see :mod:`bptt.training.checkpoint`)."""
        return {"name": self.name, "kind": self.kind, "clip": list(self.clip), "guard": list(self.guard),
                "threshold": self.threshold.detach().cpu().clone(), "optimizer": self.optimizer.state_dict(),
                "clipper": None if self.clipper is None else _cpu_state(self.clipper.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name or state.get("kind") != self.kind:
            raise ValueError(f"a checkpoint of update rule {state.get('name')!r} ({state.get('kind')!r}) cannot "
                             f"load into {self.name!r} ({self.kind!r})")
        dev = self.threshold.device
        self.clip = [bool(c) for c in state["clip"]]
        self.threshold = state["threshold"].to(device=dev, dtype=self.threshold.dtype).clone()
        self._clip_mask = torch.tensor(self.clip, dtype=torch.bool, device=dev)
        self.guard = [bool(g) for g in state.get("guard", [True] * len(self.clip))]
        self._guard_mask = torch.tensor(self.guard, dtype=torch.bool, device=dev)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.clipper is not None and state["clipper"] is not None:
            self.clipper.load_state_dict(state["clipper"])
            if self.clipper._state is not None:
                self.clipper._state = {k: v.to(dev) for k, v in self.clipper._state.items()}


def _members(t: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """A clipper's state tensor for the members ``keep``: ``[E]`` counters and
    statistics, ``[N, E]`` histories."""
    idx = torch.as_tensor(keep, dtype=torch.long, device=t.device)
    return t.index_select(t.dim() - 1, idx).clone()


def _cpu_state(state: dict) -> dict:
    out = dict(state)
    if out["state"] is not None:
        out["state"] = {k: v.detach().cpu().clone() for k, v in out["state"].items()}
    out["hyperparameters"] = {k: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v
                              for k, v in out["hyperparameters"].items()}
    return out


def make_rule(optimizer: str = "sgd", clip: str = "norm", *, lr=0.01, threshold=1.0, clip_members=False,
              momentum=None, betas=None, eps=None, weight_decay=None, smoothing=None,
              clip_options: dict | None = None, recurrent: Sequence[str] = ("W_rec",),
              frozen: Sequence[str] = (), ensemble: int | None = None, dtype: torch.dtype = torch.float32,
              device: torch.device | str = "cpu", guard=None, l1=0.0, l2=0.0):
    """The update rule for an optimizer and a clipping rule, by name.

    ``optimizer="sgd"`` with ``clip`` one of ``"norm"``, ``"elementwise"``, ``"none"``
    gives the paper's :class:`bptt.optim.PaperSGD` (its numbers exactly); any other
    combination a :class:`ClippedRule`.

    Args:
        optimizer: ``"sgd"``, ``"nesterov"``, ``"rmsprop"`` or ``"adam"``.
        clip: one of :data:`CLIPS`.
        lr, threshold, clip_members, momentum: one per member, or shared.
        momentum: ``"nesterov"`` (default 0.9) and ``"rmsprop"`` (default 0) only.
        betas: ``"adam"`` only, (β₁, β₂) (default (0.9, 0.999)).
        eps: ``"rmsprop"`` and ``"adam"`` only (default 1e-8).
        weight_decay: λ (L2), not for ``"sgd"`` (default 0).
        smoothing: RMSprop's ρ (default 0.99).
        clip_options: the clipper's constructor arguments (the stateful kinds only).
        recurrent, frozen: see :class:`ClippedRule`.
        guard: which members the non-finite guard protects (one bool per member, or
            shared); ``None``: the members that clip, as the reference code.

    Raises:
        ValueError: an unknown name, a setting the optimizer does not take, or a value
            that is not finite or out of range (naming the setting).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if clip not in CLIPS:
        raise ValueError(f"unknown clipping {clip!r}; choose one of {', '.join(CLIPS)}")
    takes = {"sgd": (), "nesterov": ("momentum", "weight_decay"),
             "rmsprop": ("momentum", "eps", "weight_decay", "smoothing"),
             "adam": ("betas", "eps", "weight_decay")}[optimizer]
    given = {"momentum": momentum, "betas": betas, "eps": eps, "weight_decay": weight_decay, "smoothing": smoothing}
    for key, value in given.items():
        if value is not None and key not in takes:
            raise ValueError(f"optimizer {optimizer!r} takes no {key}"
                             + (f"; it takes {', '.join(takes)}" if takes else ""))
    options = dict(clip_options or {})
    if options and clip not in CLIPPERS:
        raise ValueError(f"clipping {clip!r} takes no clip options (got {sorted(options)}); "
                         f"its threshold is the threshold setting")
    E = ensemble if ensemble is not None else next(
        (len(v) for v in (lr, threshold, clip_members, momentum) if isinstance(v, (list, tuple))), 1)
    if clip == "none" and any(per_member(clip_members, E, "clip")):
        raise ValueError("clipping 'none' with a method that clips: choose a clipping rule, or a method "
                         "without clipping (msgd)")
    if optimizer == "sgd" and clip in ("norm", "elementwise", "none"):
        return PaperSGD(lr, threshold=threshold, clip=clip_members, kind="norm" if clip == "none" else clip,
                        ensemble=E, dtype=dtype, device=device, recurrent=recurrent, frozen=frozen, guard=guard,
                        l1=l1, l2=l2)
    if any(v != 0 for v in per_member(l1, E, "l1") + per_member(l2, E, "l2")):
        raise ValueError(f"the L1/L2 penalties on W_rec (l1, l2) run with the paper's SGD only "
                         f"(optimizer 'sgd', clipping norm/elementwise/none), not {optimizer!r}/{clip!r}")
    kw = {k: v for k, v in given.items() if v is not None}
    opt = OPTIMIZERS[optimizer](lr, ensemble=E, dtype=dtype, device=device, **kw)
    clipper = None
    if clip in CLIPPERS:
        try:
            clipper = CLIPPERS[clip](**options, nonfinite="ignore")
        except TypeError as exc:
            raise ValueError(f"clip options {sorted(options)} do not fit clipping {clip!r}: {exc}") from None
    return ClippedRule(opt, clip=clip_members, kind=clip, threshold=threshold, clipper=clipper,
                       recurrent=recurrent, frozen=frozen, guard=guard)
