"""Recurrent units σ and their derivatives, written in terms of the unit's output.

Every unit here has a derivative that can be read off its output h = σ(a), so the
backward pass needs only the stored states, not the pre-activations:

=========  ================  ==========================
unit       σ(a)              σ'(a) as a function of h
=========  ================  ==========================
tanh       tanh(a)           1 − h²
sigmoid    1 / (1 + e^−a)    h (1 − h)
relu       max(a, 0)         1 if h > 0 else 0
linear     a                 1
=========  ================  ==========================

γ, the bound on |σ'| used by the paper's vanishing condition (§2.1), is 1 for tanh,
relu and linear units and 1/4 for sigmoid units.
"""

from __future__ import annotations

import torch

UNITS = ("tanh", "sigmoid", "relu", "linear")

#: Upper bound γ of |σ'(a)| for each unit (paper §2.1: λ₁ < 1/γ guarantees vanishing).
GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "linear": 1.0}


def check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
    return unit


def activate_(a: torch.Tensor, unit: str) -> torch.Tensor:
    """Apply σ in place to the pre-activation ``a`` and return it."""
    if unit == "tanh":
        return a.tanh_()
    if unit == "sigmoid":
        return a.sigmoid_()
    if unit == "relu":
        return a.clamp_(min=0)
    return a


def activate(a: torch.Tensor, unit: str) -> torch.Tensor:
    """σ(a) without touching ``a`` (differentiable; used by the autograd path)."""
    if unit == "tanh":
        return torch.tanh(a)
    if unit == "sigmoid":
        return torch.sigmoid(a)
    if unit == "relu":
        return torch.relu(a)
    return a


def derivative_from_output(h: torch.Tensor, unit: str) -> torch.Tensor | None:
    """σ'(a) evaluated where h = σ(a); ``None`` for the linear unit (σ' = 1)."""
    if unit == "tanh":
        return 1.0 - h * h
    if unit == "sigmoid":
        return h * (1.0 - h)
    if unit == "relu":
        return (h > 0).to(h.dtype)
    return None
