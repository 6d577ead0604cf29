"""Output layers and their losses, as the paper's reference code defines them.

=================  ==========================  ===============================================
output             read at                     loss
=================  ==========================  ===============================================
``last_softmax``   the last step               cross-entropy, averaged over the minibatch
``softmax``        every step                  cross-entropy, averaged over steps × minibatch
``last_linear``    the last step               squared error summed over outputs, averaged
                                               over the minibatch
``sigmoid``        every step                  binary cross-entropy summed over outputs,
                                               averaged over steps × minibatch (the negative
                                               log-likelihood per time step of piano rolls)
=================  ==========================  ===============================================

Targets: class indices ``[B]`` (or ``[E, B]``) for ``last_softmax``, ``[T, B]`` (or
``[T, E, B]``) for ``softmax``; floats ``[B, O]`` / ``[E, B, O]`` for ``last_linear`` and
``[T, B, O]`` / ``[T, E, B, O]`` for ``sigmoid``. A per-step ``mask`` ``[T, B]`` (1 on real
steps) restricts the per-step losses to real steps and averages over their number.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OUTPUTS = ("last_softmax", "softmax", "last_linear", "sigmoid")
PER_STEP = ("softmax", "sigmoid")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
    return output


def loss_and_grad(z: torch.Tensor, y: torch.Tensor, output: str, weight: torch.Tensor | None,
                  count: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss per member and ∂loss/∂z for output pre-activations ``z``.

    Args:
        z: ``[E, N, O]`` output pre-activations (N = B, or T·B for per-step outputs).
        y: targets broadcastable to ``[E, N]`` (classes) or ``[E, N, O]`` (floats).
        output: the output kind.
        weight: ``[E or 1, N]`` 1 on counted rows, 0 on padding; ``None`` counts all.
        count: the number of counted rows the loss is averaged over.

    Returns:
        ``(loss [E], dz [E, N, O])``.
    """
    if output in ("last_softmax", "softmax"):
        logp = torch.log_softmax(z, dim=-1)
        idx = y.expand(z.shape[:-1]).unsqueeze(-1)
        nll = -logp.gather(-1, idx).squeeze(-1)                  # [E,N]
        dz = logp.exp_()
        dz.scatter_add_(-1, idx, torch.full_like(idx, -1, dtype=z.dtype))
    elif output == "last_linear":
        diff = z - y
        nll = (diff * diff).sum(-1)
        dz = 2.0 * diff
    else:  # sigmoid: binary cross-entropy with logits, summed over outputs
        nll = F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").sum(-1)
        dz = torch.sigmoid(z) - y
    if weight is not None:
        nll = nll * weight
        dz = dz * weight.unsqueeze(-1)
    loss = nll.sum(-1) / count
    dz = dz / count
    return loss, dz


def wrong_sequences(z: torch.Tensor, y: torch.Tensor, output: str,
                    tolerance: float | None) -> torch.Tensor:
    """Which sequences the outputs get wrong, for the last-step outputs.

    Args:
        z: ``[E, B, O]`` output pre-activations at the last step.
        y: targets broadcastable to ``[E, B]`` / ``[E, B, O]``.

    Returns:
        ``[E, B]`` bool.
    """
    if output == "last_softmax":
        return z.argmax(-1) != y
    if output == "last_linear":
        if tolerance is None:
            raise ValueError("a last_linear output needs a tolerance to count errors")
        diff = z - y
        return (diff * diff).sum(-1) > tolerance
    raise ValueError(f"no per-sequence error for output {output!r}")
