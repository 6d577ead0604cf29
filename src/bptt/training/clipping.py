"""Gradient clipping (paper §3.2) and the non-finite guard of the reference code.

Each function takes the gradients of an ensemble (a mapping of ``[E, ...]`` tensors)
and treats each member separately; thresholds are floats or ``[E]`` tensors.
"""

from __future__ import annotations

import torch

#: A gradient norm above this is not trusted (the reference code's float32 guard).
NORM_LIMIT = 1e10
#: On an untrusted norm W_rec is shrunk by lr · SHRINK · W_rec.
SHRINK = 0.02


def check_threshold(threshold: torch.Tensor | float) -> None:
    t = torch.as_tensor(threshold)
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise ValueError(f"clipping threshold must be finite and > 0, got {threshold}")


def global_norm(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    """‖g‖ over all parameters of each member, ``[E]``."""
    first = next(iter(grads.values()))
    E = first.shape[0]
    return torch.sqrt(sum(g.reshape(E, -1).pow(2).sum(1) for g in grads.values()))


def _per_member(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1).expand(like.shape[0])


def clip_by_global_norm(grads: dict[str, torch.Tensor], threshold: torch.Tensor | float,
                        norm: torch.Tensor | None = None
                        ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Algorithm 1 of the paper: if ‖g‖ ≥ threshold then g ← threshold · g / ‖g‖.

    Args:
        grads: name → ``[E, ...]`` gradient.
        threshold: a float or ``[E]``, each > 0.
        norm: the members' global norms if already known (``[E]``).

    Returns:
        ``(clipped grads, clipped [E] bool)``. A member whose norm is not finite is
        returned unchanged and not marked clipped: deciding what to do with it is the
        non-finite guard's job (:func:`nonfinite`).
    """
    check_threshold(threshold)
    if norm is None:
        norm = global_norm(grads)
    thr = _per_member(threshold, norm)
    clipped = torch.isfinite(norm) & (norm >= thr)
    scale = torch.where(clipped, thr / norm.clamp_min(torch.finfo(norm.dtype).tiny), torch.ones_like(norm))
    out = {k: g * scale.reshape(-1, *([1] * (g.dim() - 1))) for k, g in grads.items()}
    return out, clipped


def clip_elementwise(grads: dict[str, torch.Tensor], threshold: torch.Tensor | float
                     ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Mikolov's clipping: every component of g clamped to [−threshold, threshold].

    Returns ``(clipped grads, clipped [E] bool)`` where a member counts as clipped
    when any of its components was changed.
    """
    check_threshold(threshold)
    first = next(iter(grads.values()))
    thr = _per_member(threshold, first)
    out, clipped = {}, torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
    for k, g in grads.items():
        t = thr.reshape(-1, *([1] * (g.dim() - 1)))
        c = torch.minimum(torch.maximum(g, -t), t)
        clipped |= (c != g).reshape(g.shape[0], -1).any(1)
        out[k] = c
    return out, clipped


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
        if bad is not None and bool(bad.any()):
            keep = (~bad).reshape(-1, *([1] * (p.dim() - 1)))
            step = torch.where(keep, step, torch.zeros_like(step))
            if k == "W_rec":
                step = torch.where(keep, step, (lr_e * SHRINK).reshape(-1, 1, 1) * p)
        p.sub_(step)
