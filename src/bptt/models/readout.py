"""What the hand-derived passes of the gated models share: the readout's loss and
gradients (the losses of :mod:`bptt.engine.outputs`) and the input-weight gradient
as one product over all steps."""

from __future__ import annotations

import torch

from bptt.engine.outputs import PER_STEP, loss_and_grad


def flat_targets(y: torch.Tensor, output: str) -> torch.Tensor:
    """Per-step targets ``[T, B(, O)]`` or ``[T, E, B(, O)]`` → ``[E or 1, T·B(, O)]``."""
    if y.dim() == (3 if output == "softmax" else 4):
        y = y.transpose(0, 1)
        return y.reshape(y.shape[0], -1, *y.shape[3:])
    return y.reshape(1, -1, *y.shape[2:])


def readout_backward(params: dict[str, torch.Tensor], hs: torch.Tensor, y: torch.Tensor, output: str,
                     mask: torch.Tensor | None):
    """Loss, output-weight gradients and ∂L/∂h_t from the readout.

    Args:
        hs: ``[E, T+1, B, H]`` the states h_0..h_T (ensemble-major).

    Returns:
        ``(loss [E], grad_W_out, grad_b_out, direct)`` with ``direct`` ∂L/∂h_t of the
        readout: ``[E, T, B, H]`` for per-step outputs, ``[E, B, H]`` (at h_T) otherwise.
    """
    W_out, b_out = params["W_out"], params["b_out"]
    E, T, B, H = hs.shape[0], hs.shape[1] - 1, hs.shape[2], hs.shape[3]
    if output in PER_STEP:
        weight, count = None, float(T * B)
        if mask is not None:
            weight = mask.to(hs.dtype).reshape(1, T * B)
            count = weight.sum().clamp_min(1.0)
        top = hs[:, 1:].reshape(E, T * B, H)
        z = torch.baddbmm(b_out.unsqueeze(1), top, W_out)
        loss, dz = loss_and_grad(z, flat_targets(y, output), output, weight, count)
        direct = torch.bmm(dz, W_out.transpose(1, 2)).view(E, T, B, H)
    else:
        top = hs[:, T]
        z = torch.baddbmm(b_out.unsqueeze(1), top, W_out)
        loss, dz = loss_and_grad(z, y, output, None, float(B))
        direct = torch.bmm(dz, W_out.transpose(1, 2))
    return loss, torch.bmm(top.transpose(1, 2), dz), dz.sum(1), direct


def input_gradient(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Σ_t u_tᵀ δ_t for ``x`` ``[T, B, I]`` or ``[T, E, B, I]`` and ``delta`` ``[E, T·B, G]``."""
    T = x.shape[0]
    if x.dim() == 3:
        return torch.matmul(x.reshape(T * x.shape[1], -1).t(), delta)
    E = x.shape[1]
    return torch.bmm(x.permute(1, 3, 0, 2).reshape(E, x.shape[-1], -1), delta)
