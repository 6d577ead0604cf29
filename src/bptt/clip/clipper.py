"""Clipper objects: a rule with its hyperparameters and its state, called on parameters.

Every clipper is built with its hyperparameters (checked there) and called as
``clipper(parameters)``: it clips the gradients in place and returns their norm before
clipping (the 2-norm of all gradients as one vector; ``[E]``, one per member, for an
ensemble). Its state — the statistics an adaptive rule keeps, and three counters — is
per member, ``[E]``, created on the first call, and saved and restored with
``state_dict()`` / ``load_state_dict()``: a clipper restored mid-stream continues
exactly as the original would have.

Counters (tensors shaped like the norm, updated without a host synchronisation):
``clipped`` (updates whose gradient was rescaled), ``nonfinite`` (updates whose norm
was not finite: zeroed under ``nonfinite="skip"``, left under ``"ignore"``), and
``steps`` (a Python int: calls that found at least one gradient).

:class:`ClipNorm` is Algorithm 1 at a fixed threshold; the adaptive rules are in
:mod:`bptt.clip.adaptive` and :mod:`bptt.clip.agc`.
"""

from __future__ import annotations

import math

import torch

from bptt.clip.functional import (check_norm_type, check_policy, check_positive, norm_clip_,
                                  raise_if_nonfinite)
from bptt.clip.gradients import Gradients, collect


class Clipper:
    """The base of the clipper objects (see the module's docstring).

    A subclass implements :meth:`_clip_` and, if it keeps statistics,
    :meth:`_new_state`; it lists its hyperparameters in :meth:`hyperparameters`.

    Args:
        nonfinite: ``"error"``, ``"skip"`` or ``"ignore"``, as in
            :func:`bptt.clip.clip_grad_norm_`. Norms that are not finite never enter
            a clipper's statistics.
    """

    norm_type: float = 2.0
    needs_weights: bool = False          # the rule reads the parameters, not only the gradients

    def __init__(self, *, nonfinite: str = "error") -> None:
        self.nonfinite = check_policy(nonfinite)
        self.steps = 0
        self._state: dict[str, torch.Tensor] | None = None

    # -- to implement ----------------------------------------------------------------
    def hyperparameters(self) -> dict:
        """The constructor's arguments that define the rule (not ``nonfinite``)."""
        return {}

    def _new_state(self, norm: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rule's own state for gradients whose norm is ``norm`` (shaped ``[E]`` or ())."""
        return {}

    def _clip_(self, gs: Gradients, norm: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
        """Clip ``gs`` in place and update the state; return where it clipped."""
        raise NotImplementedError

    # -- calling -----------------------------------------------------------------------
    def __call__(self, parameters, *, ensemble: bool | None = None) -> torch.Tensor:
        """Clip the gradients of ``parameters`` in place; return their norm before clipping.

        Args:
            parameters: any form :func:`bptt.clip.clip_grad_norm_` takes.
            ensemble: as in :func:`bptt.clip.clip_grad_norm_`.

        Returns:
            The norm, 0-dim or ``[E]``. Where it is not finite under
            ``nonfinite="skip"``, the gradients were set to zero.
        """
        gs = collect(parameters, ensemble)
        if self.needs_weights and gs.params is None:
            raise ValueError(f"{type(self).__name__} needs the weights: pass the parameters or the "
                             "model, not a mapping of gradients")
        with torch.no_grad():
            if not gs.grads:
                return gs.zero_norm()
            norm = self._norm(gs)
            raise_if_nonfinite(norm, self.nonfinite)
            state = self._ready(norm)
            finite = torch.isfinite(norm)
            clipped = self._clip_(gs, norm, finite)
            if self.nonfinite == "skip":
                gs.zero_(~finite)
            state["clipped"] += clipped.to(state["clipped"].device)
            state["nonfinite"] += (~finite).to(state["nonfinite"].device)
            self.steps += 1
        return norm

    def _norm(self, gs: Gradients) -> torch.Tensor:
        return gs.norm(self.norm_type)

    def _ready(self, norm: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state, created for ``norm``'s shape, or checked against it and moved to it."""
        if self._state is None:
            count = torch.zeros(norm.shape, dtype=torch.long, device=norm.device)
            self._state = {"clipped": count, "nonfinite": count.clone(), **self._new_state(norm)}
            return self._state
        shape = self._state["clipped"].shape
        if shape != norm.shape:
            held = f"{shape[0]} members" if shape else "one network (no ensemble)"
            given = f"{norm.shape[0]} members" if norm.dim() else "one network (no ensemble)"
            raise ValueError(f"this clipper's state is for {held}, but the gradients are for {given}; "
                             "use one clipper per model")
        for name, t in self._state.items():
            if t.device != norm.device or (t.is_floating_point() and t.dtype != norm.dtype):
                self._state[name] = t.to(norm.device, norm.dtype if t.is_floating_point() else t.dtype)
        return self._state

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, torch.Tensor]:
        """The current state tensors (empty before the first call)."""
        return dict(self._state or {})

    @property
    def clipped(self) -> torch.Tensor | None:
        """Updates clipped so far, per member (``None`` before the first call)."""
        return None if self._state is None else self._state["clipped"]

    @property
    def nonfinite_count(self) -> torch.Tensor | None:
        """Updates with a non-finite norm so far, per member (``None`` before the first call)."""
        return None if self._state is None else self._state["nonfinite"]

    def state_dict(self) -> dict:
        """``{"kind", "hyperparameters", "steps", "state"}``: copies, to save and restore."""
        return {"kind": type(self).__name__, "hyperparameters": self.hyperparameters(),
                "steps": self.steps,
                "state": None if self._state is None else {k: v.clone() for k, v in self._state.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by :meth:`state_dict` of a clipper built the same way.

        Raises:
            ValueError: the state is of another kind of clipper, or of one built with
                other hyperparameters, or lacks a tensor this clipper keeps.
        """
        for key in ("kind", "hyperparameters", "steps", "state"):
            if key not in state_dict:
                raise ValueError(f"not a clipper state dict: missing {key!r}")
        if state_dict["kind"] != type(self).__name__:
            raise ValueError(f"the state is of a {state_dict['kind']}, this clipper is a {type(self).__name__}")
        saved, mine = state_dict["hyperparameters"], self.hyperparameters()
        if not _same(saved, mine):
            raise ValueError(f"the state was saved by a {type(self).__name__} with hyperparameters {saved}; "
                             f"this one has {mine}. Build the clipper with the saved hyperparameters.")
        state = state_dict["state"]
        if state is not None:
            missing = {"clipped", "nonfinite"} - set(state)
            if missing:
                raise ValueError(f"the saved state lacks {sorted(missing)}")
            state = {k: v.clone() for k, v in state.items()}
        self._state = state
        self.steps = int(state_dict["steps"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_show(v)}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args}, nonfinite={self.nonfinite!r})"


def _show(value):
    return value.tolist() if isinstance(value, torch.Tensor) else value


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = _show(a[k]), _show(b[k])
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


class ClipNorm(Clipper):
    """Algorithm 1 of the paper (§3.2) at a fixed threshold, with counters.

    ``if ‖g‖ ≥ max_norm then g ← max_norm/‖g‖ · g`` — exactly
    :func:`bptt.clip.clip_grad_norm_` (see it for the comparison with PyTorch's rule),
    as an object that counts the updates it clipped. The paper's experiments use
    ``max_norm = 1``.

    Args:
        max_norm: the threshold, finite and > 0; a ``[E]`` tensor gives each member of
            an ensemble its own.
        norm_type: p of the p-norm (> 0, or ``inf``).
        eps: added to ‖g‖ in the factor's denominator (1e-6 for PyTorch's factor).
        nonfinite: ``"error"``, ``"skip"`` or ``"ignore"``.
    """

    def __init__(self, max_norm: float | torch.Tensor, norm_type: float = 2.0, *, eps: float = 0.0,
                 nonfinite: str = "error") -> None:
        super().__init__(nonfinite=nonfinite)
        self.max_norm = check_positive("max_norm", max_norm)
        if isinstance(self.max_norm, torch.Tensor):
            self.max_norm = self.max_norm.detach().clone()
            if self.max_norm.numel() == 1:
                self.max_norm = self.max_norm.reshape(())
        self.norm_type = check_norm_type(norm_type)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
        self.eps = float(eps)

    def hyperparameters(self) -> dict:
        return {"max_norm": self.max_norm, "norm_type": self.norm_type, "eps": self.eps}

    def __call__(self, parameters, *, ensemble: bool | None = None) -> torch.Tensor:
        gs = collect(parameters, ensemble)
        if isinstance(self.max_norm, torch.Tensor) and self.max_norm.numel() > 1:
            if not gs.ensemble or (gs.members is not None and gs.members != self.max_norm.numel()):
                raise ValueError(f"max_norm holds {self.max_norm.numel()} thresholds; the gradients are "
                                 f"{'for ' + str(gs.members) + ' members' if gs.ensemble else 'not an ensemble'}")
        if isinstance(self.max_norm, torch.Tensor) and gs.grads and self.max_norm.device != gs.grads[0].device:
            self.max_norm = self.max_norm.to(gs.grads[0].device)     # once, not at every call
        with torch.no_grad():
            if not gs.grads:
                return gs.zero_norm()
            norm, clipped = norm_clip_(gs, self.max_norm, self.norm_type, self.eps, self.nonfinite)
            state = self._ready(norm)
            state["clipped"] += clipped.to(state["clipped"].device)
            state["nonfinite"] += (~torch.isfinite(norm)).to(state["nonfinite"].device)
            self.steps += 1
        return norm
