"""The paper's update rule: plain SGD with the reference code's non-finite guard.

The guard: a gradient whose norm is NaN, infinite or above :data:`NORM_LIMIT` is not
trusted; the update is dropped and the recurrent weights shrink instead
(W_rec ← W_rec − lr · :data:`SHRINK` · W_rec), as in the authors' code.
"""

from __future__ import annotations

import torch

#: A gradient norm above this is not trusted (the reference code's float32 guard).
NORM_LIMIT = 1e10
#: On an untrusted norm W_rec is shrunk by lr · SHRINK · W_rec.
SHRINK = 0.02


def _per_member(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1).expand(like.shape[0])


def nonfinite(norm: torch.Tensor, limit: float = NORM_LIMIT) -> torch.Tensor:
    """Members whose gradient norm is NaN, infinite, negative or above ``limit``, ``[E]``."""
    return ~torch.isfinite(norm) | (norm < 0) | (norm > limit)


@torch.no_grad()
def sgd_update(params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
               lr: torch.Tensor | float, bad: torch.Tensor | None = None) -> None:
    """θ ← θ − lr · g in place, per member; members in ``bad`` take the guard step.

    The guard step (the reference code's answer to an untrusted gradient) drops the
    update and shrinks the recurrent weights instead: W_rec ← W_rec − lr · 0.02 · W_rec.
    """
    first = params["W_rec"]
    lr_e = _per_member(lr, first)
    for k, p in params.items():
        step = grads[k] * lr_e.reshape(-1, *([1] * (p.dim() - 1)))
        if bad is not None:                       # no host sync: the guard is a select
            keep = (~bad).reshape(-1, *([1] * (p.dim() - 1)))
            step = torch.where(keep, step, torch.zeros_like(step))
            if k == "W_rec":
                step = torch.where(keep, step, (lr_e * SHRINK).reshape(-1, 1, 1) * p)
        p.sub_(step)
