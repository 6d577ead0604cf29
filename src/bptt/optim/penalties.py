"""L1 and L2 penalties on chosen parameters, as gradient contributions per member.

The paper (Pascanu, Mikolov & Bengio 2013, §3.3) argues that the usual weight penalties
on the recurrent weights, L1 (``Σ|W_rec|``) and L2 (``‖W_rec‖²``), push the spectral
radius ρ(W_rec) below 1 and so keep the network in the regime of a single point
attractor at the origin, where gradients vanish and the network forgets. This module
implements the two penalties as small pieces with one job each: every function returns
the gradient contribution of its penalty for each named parameter, with one weight per
ensemble member (``[E]``), to be added to the data gradient before it is clipped.

Conventions (per member ``e`` and named parameter ``W``):

* L1: ``P = λ₁ Σ |W|``, ``∂P/∂W = λ₁ sign(W)`` (sign(0) = 0);
* L2: ``P = (λ₂ / 2) ‖W‖²``, ``∂P/∂W = λ₂ W`` (weight decay: one SGD step on the
  penalty alone scales ``W`` by ``1 − lr·λ₂``, and with it ρ(W)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["l1", "l2", "l1_value", "l2_value", "add_penalties"]


def _weights(weight, like: torch.Tensor) -> torch.Tensor:
    """``weight`` (a float or ``[E]``) as ``[E, 1, ..., 1]`` broadcasting against ``like``."""
    w = torch.as_tensor(weight, dtype=like.dtype, device=like.device).reshape(-1).expand(like.shape[0])
    return w.reshape(-1, *([1] * (like.dim() - 1)))


def l1(params: dict[str, torch.Tensor], names: Sequence[str], weight) -> dict[str, torch.Tensor]:
    """The gradient of ``λ₁ Σ|W|`` for each parameter in ``names``: ``λ₁ sign(W)``.

    Args:
        params: name → ``[E, ...]`` tensors (the ensemble axis first).
        names: the parameters penalised (e.g. ``("W_rec",)``).
        weight: λ₁, a float or one per member ``[E]``.

    Returns:
        name → gradient contribution, shaped as the parameter (only ``names``).
    """
    return {k: _weights(weight, params[k]) * torch.sign(params[k]) for k in names}


def l2(params: dict[str, torch.Tensor], names: Sequence[str], weight) -> dict[str, torch.Tensor]:
    """The gradient of ``(λ₂/2) ‖W‖²`` for each parameter in ``names``: ``λ₂ W``.

    Args and Returns as :func:`l1`.
    """
    return {k: _weights(weight, params[k]) * params[k] for k in names}


def l1_value(params: dict[str, torch.Tensor], names: Sequence[str], weight) -> torch.Tensor:
    """The penalty ``λ₁ Σ|W|`` summed over ``names``, per member ``[E]``."""
    return sum((_weights(weight, params[k]) * params[k].abs()).flatten(1).sum(1) for k in names)


def l2_value(params: dict[str, torch.Tensor], names: Sequence[str], weight) -> torch.Tensor:
    """The penalty ``(λ₂/2) ‖W‖²`` summed over ``names``, per member ``[E]``."""
    return sum((0.5 * _weights(weight, params[k]) * params[k].square()).flatten(1).sum(1) for k in names)


def add_penalties(grads: dict[str, torch.Tensor], *contributions: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``grads`` with every contribution added (a new dict; the inputs are not changed)."""
    out = dict(grads)
    for c in contributions:
        for k, g in c.items():
            out[k] = out[k] + g
    return out
