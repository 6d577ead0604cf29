"""Checks of what a user hands to a model's passes: inputs, targets, α, h0 and mask.

Each check raises ``ValueError`` naming the argument, the shape or type it got and the
one it expected. Shapes and types are checked everywhere; values (class indices in
range, α finite and ≥ 0, a 0/1 mask) only for tensors in host memory, where reading
them costs nothing; on a GPU that would wait for the device on every update.
"""

from __future__ import annotations

import math

import torch

from bptt.engine.outputs import PER_STEP


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(n) for n in t.shape) + "]"


def _on_host(t: torch.Tensor) -> bool:
    return t.device.type == "cpu"


def check_tensor(name: str, t, device: torch.device) -> None:
    """``t`` is a tensor with data on ``device`` (not a meta tensor)."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor (it has no data); pass a tensor with values")
    if t.device != device and not (t.device.type == device.type == "cpu"):
        raise ValueError(f"{name} is on {t.device}, the model on {device}; move it with .to({str(device)!r})")


def check_inputs(x, n_in: int, ensemble: int, device: torch.device) -> None:
    """``x`` is ``[T, B, I]`` or ``[T, E, B, I]`` floating point with T ≥ 1."""
    check_tensor("x", x, device)
    if x.dim() not in (3, 4):
        raise ValueError(f"x must be [T, B, I] or [T, E, B, I], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point (one-hot or real inputs), got {x.dtype}")
    if x.shape[0] < 1:
        raise ValueError("x must have at least one time step")
    if x.shape[-1] != n_in:
        raise ValueError(f"x has {x.shape[-1]} input features, the model expects {n_in}")
    if x.dim() == 4 and x.shape[1] != ensemble:
        raise ValueError(f"x has ensemble axis {x.shape[1]}, the model has {ensemble} members")


def check_targets(y, x: torch.Tensor, output: str, n_out: int, ensemble: int, device: torch.device) -> None:
    """``y`` matches the output kind (see :mod:`bptt.engine.outputs`) and the batch of ``x``."""
    check_tensor("y", y, device)
    T = x.shape[0]
    B = x.shape[1] if x.dim() == 3 else x.shape[2]
    lead = (T,) if output in PER_STEP else ()
    classes = output in ("last_softmax", "softmax")
    tail = () if classes else (n_out,)
    shared, member = lead + (B,) + tail, lead + (ensemble, B) + tail
    if tuple(y.shape) not in (shared, member):
        want = " or ".join("[" + ", ".join(map(str, s)) + "]" for s in (shared, member))
        what = "class indices" if classes else "float targets"
        raise ValueError(f"y for a {output!r} output must be {what} of shape {want}, got {_shape(y)}")
    if classes:
        if y.dtype != torch.int64:
            raise ValueError(f"y for a {output!r} output must hold class indices as torch.int64 (torch.long), "
                             f"got {y.dtype}")
        if _on_host(y) and y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_out):
            raise ValueError(f"y holds class indices from {int(y.min())} to {int(y.max())}; "
                             f"the model has {n_out} classes (0 to {n_out - 1})")
    elif not y.is_floating_point():
        raise ValueError(f"y for a {output!r} output must be floating point, got {y.dtype}")


def check_alpha(alpha, ensemble: int) -> None:
    """Ω's weight: a finite float ≥ 0, or such a tensor of shape ``[]``, ``[1]`` or ``[E]``."""
    if isinstance(alpha, torch.Tensor):
        if alpha.device.type == "meta":
            raise ValueError("alpha is a meta tensor (it has no data); pass a float or a tensor with values")
        if alpha.numel() not in (1, ensemble) or alpha.dim() > 1:
            raise ValueError(f"alpha must be a float or a tensor of shape [] or [{ensemble}], got {_shape(alpha)}")
        if _on_host(alpha) and not bool((torch.isfinite(alpha) & (alpha >= 0)).all()):
            raise ValueError(f"alpha must be finite and >= 0, got {alpha.tolist()}")
        return
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a float or a tensor, got {alpha!r}") from None
    if not (a >= 0 and math.isfinite(a)):
        raise ValueError(f"alpha must be finite and >= 0, got {alpha}")


def check_state(h0, ensemble: int, batch: int, hidden: int, device: torch.device) -> None:
    """``h0`` is ``[E, B, H]`` floating point."""
    check_tensor("h0", h0, device)
    if tuple(h0.shape) != (ensemble, batch, hidden):
        raise ValueError(f"h0 must be [E, B, H] = [{ensemble}, {batch}, {hidden}], got {_shape(h0)}")
    if not h0.is_floating_point():
        raise ValueError(f"h0 must be floating point, got {h0.dtype}")


def check_mask(mask, steps: int, batch: int, output: str, device: torch.device) -> None:
    """``mask`` is ``[T, B]`` of 0/1, for per-step outputs only."""
    check_tensor("mask", mask, device)
    if output not in PER_STEP:
        raise ValueError(f"a mask applies to per-step outputs ({', '.join(PER_STEP)}), not to {output!r}")
    if tuple(mask.shape) != (steps, batch):
        raise ValueError(f"mask must be [T, B] = [{steps}, {batch}], got {_shape(mask)}")
    if _on_host(mask) and mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must hold 0 (padding) or 1 (a real step) only")
