"""Dropout on the non-recurrent connections (Zaremba, Sutskever & Vinyals 2014).

"Recurrent neural network regularization" applies dropout only where information does
not travel through time: on the input→hidden connections (the inputs ``u_t`` before
their projection ``u_t W_in``) and on the hidden→output connections (the states ``h_t``
fed to the readout ``h_t W_out``), never on the recurrent path ``h_{t−1} W_rec``, so the
memory carried by the recurrence is not erased at every step. A fresh mask is drawn for
every member, sequence and step; kept units are scaled by 1/(1 − p) during training
(inverted dropout), so evaluation uses the network unchanged.

:func:`dropout_masks` draws the two masks in a fixed order from a ``torch.Generator``,
so that the exact engine (:func:`bptt.engine.forward_backward`) and its autograd oracle
(:func:`bptt.engine.reference_forward_backward`) given equal generators use the same
masks.
"""

from __future__ import annotations

import math

import torch

__all__ = ["check_dropout", "dropout_masks", "bernoulli_mask"]


def check_dropout(p) -> float:
    """``p`` as a float in [0, 1); ``ValueError`` otherwise."""
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"dropout must be a number in [0, 1), got {p!r}") from None
    if not (math.isfinite(v) and 0.0 <= v < 1.0):
        raise ValueError(f"dropout must be in [0, 1) (the probability of dropping a unit), got {p!r}")
    return v


def bernoulli_mask(shape: tuple[int, ...], p: float, *, generator: torch.Generator | None,
                   dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """0 with probability ``p``, else ``1/(1 − p)``; drawn on ``generator``'s device and
    moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    keep = torch.rand(shape, generator=generator, dtype=torch.float64, device=gen_device) >= p
    return keep.to(device=device, dtype=dtype) / (1.0 - p)


def dropout_masks(p: float, T: int, E: int, B: int, I: int, H: int, *, per_step: bool,
                  generator: torch.Generator | None, dtype: torch.dtype,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The input mask ``[T, E, B, I]`` and the readout mask, ``[T, E, B, H]`` for per-step
    outputs or ``[E, B, H]`` for an output at the last step only (in this order)."""
    inputs = bernoulli_mask((T, E, B, I), p, generator=generator, dtype=dtype, device=device)
    readout_shape = (T, E, B, H) if per_step else (E, B, H)
    readout = bernoulli_mask(readout_shape, p, generator=generator, dtype=dtype, device=device)
    return inputs, readout
