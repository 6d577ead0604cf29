"""Gradient clipping of ensembles (paper §3.2): the global norm, Algorithm 1, element-wise.

Each function takes the gradients of an ensemble (a mapping of ``[E, ...]`` tensors)
and treats each member separately; thresholds are floats or ``[E]`` tensors. A float
threshold is checked here; a tensor of thresholds is checked where it is built (a
check here would wait for the device on every update).
"""

from __future__ import annotations

import torch

def check_threshold(threshold: torch.Tensor | float) -> None:
    """Raise ``ValueError`` unless every threshold is finite and > 0."""
    t = torch.as_tensor(threshold)
    if not torch.isfinite(t).all() or (t <= 0).any():
        raise ValueError(f"clipping threshold must be finite and > 0, got {threshold}")


def global_norm(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    """‖g‖ over all parameters of each member, ``[E]``."""
    first = next(iter(grads.values()))
    E = first.shape[0]
    return torch.sqrt(sum(g.reshape(E, -1).pow(2).sum(1) for g in grads.values()))


def _check_float(threshold: torch.Tensor | float) -> None:
    if not isinstance(threshold, torch.Tensor):
        check_threshold(threshold)


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
    _check_float(threshold)
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
    _check_float(threshold)
    first = next(iter(grads.values()))
    thr = _per_member(threshold, first)
    out, clipped = {}, torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
    for k, g in grads.items():
        t = thr.reshape(-1, *([1] * (g.dim() - 1)))
        c = torch.minimum(torch.maximum(g, -t), t)
        clipped |= (c != g).reshape(g.shape[0], -1).any(1)
        out[k] = c
    return out, clipped
