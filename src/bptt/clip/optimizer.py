"""A clipper in front of a ``torch.optim`` optimizer: clip, then step.

    opt = ClippedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01), 1.0)
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()                 # Algorithm 1 at threshold 1, then the SGD step

The clipper sees the parameters of all the optimizer's param groups together (one
norm over all of them, as ``clip_grad_norm_(model.parameters(), ...)``).
"""

from __future__ import annotations

from typing import Callable

import torch

from bptt.clip.clipper import ClipNorm, Clipper


class ClippedOptimizer:
    """Wraps an optimizer so that ``step()`` clips the gradients first.

    Args:
        optimizer: a ``torch.optim.Optimizer`` (SGD, Adam, RMSprop, ...). LBFGS is
            refused: it re-evaluates its closure inside ``step()``, after the clipping.
        clipper: a number or a ``[E]`` tensor (Algorithm 1 at that threshold:
            :class:`bptt.clip.ClipNorm`), a :class:`bptt.clip.Clipper`, or any callable
            that clips a list of parameters in place (e.g.
            ``functools.partial(bptt.clip.clip_grad_value_, clip_value=0.1)``).
        ensemble: the parameters are ``[E, ...]`` and each member is clipped on its own
            (passed to a :class:`Clipper`; a plain callable decides for itself).

    Attributes:
        optimizer: the wrapped optimizer: give learning-rate schedulers this one.
        clipper: the clipper.
        last_norm: what the clipper returned at the latest step (the norm before
            clipping), ``None`` before the first.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, clipper: float | torch.Tensor | Clipper | Callable,
                 *, ensemble: bool = False) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, torch.optim.LBFGS):
            raise ValueError("LBFGS re-evaluates its closure inside step(), after the clipping; "
                             "clip inside the closure instead")
        if isinstance(clipper, (int, float, torch.Tensor)) and not isinstance(clipper, bool):
            clipper = ClipNorm(clipper)
        elif not callable(clipper):
            raise ValueError("clipper must be a number (a threshold), a Clipper or a callable; "
                             f"got {type(clipper).__name__}")
        self.optimizer = optimizer
        self.clipper = clipper
        self.ensemble = bool(ensemble)
        self.last_norm: torch.Tensor | None = None

    # -- the step ------------------------------------------------------------------------
    def parameters(self) -> list[torch.Tensor]:
        """The parameters of all param groups, in order."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Evaluate ``closure`` (if given), clip the gradients, then step the optimizer.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if isinstance(self.clipper, Clipper):
            self.last_norm = self.clipper(self.parameters(), ensemble=self.ensemble)
        else:
            self.last_norm = self.clipper(self.parameters())
        self.optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    # -- the optimizer's interface ---------------------------------------------------------
    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    @property
    def defaults(self) -> dict:
        return self.optimizer.defaults

    def add_param_group(self, param_group: dict) -> None:
        self.optimizer.add_param_group(param_group)

    def state_dict(self) -> dict:
        """``{"optimizer": ..., "clipper": ...}``: the optimizer's and the clipper's state."""
        clipper_state = self.clipper.state_dict() if hasattr(self.clipper, "state_dict") else None
        return {"optimizer": self.optimizer.state_dict(), "clipper": clipper_state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"optimizer", "clipper"}:
            raise ValueError("not a ClippedOptimizer state dict: expected the keys 'optimizer' and 'clipper'")
        self.optimizer.load_state_dict(state_dict["optimizer"])
        if state_dict["clipper"] is not None:
            if not hasattr(self.clipper, "load_state_dict"):
                raise ValueError("the state holds a clipper's state but this clipper keeps none")
            self.clipper.load_state_dict(state_dict["clipper"])

    def __repr__(self) -> str:
        return f"ClippedOptimizer({self.optimizer!r}, {self.clipper!r})"
