"""The success screen on the device: error rates of fresh sequences without host round trips.

The paper's criterion (§4.1) is under 1% error on 10,000 fresh sequences. On a GPU,
:func:`error_rate` draws the sequences with a device sampler
(:mod:`bptt.tasks.device`), runs the forward pass, and counts the wrong ones, all on
the device, chunk by chunk; the caller reads the final ``[E]`` rates once.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from bptt.engine.exact import evaluate


@torch.no_grad()
def error_rate(
    params: dict[str, torch.Tensor],
    sample: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    n_sequences: int,
    *,
    unit: str,
    output: str,
    tolerance: float | None = None,
    lengths: Sequence[int] | None = None,
    kernel: str = "exact",
    chunk: int = 2000,
) -> torch.Tensor:
    """Fraction of ``n_sequences`` fresh sequences each member gets wrong, on the device.

    Args:
        params: the parameters (see :func:`bptt.engine.forward_backward`).
        sample: ``n → (x, y)``, a batch of n sequences on the parameters' device, e.g.
            ``lambda n: sample_on_device("temporal_order", n, lengths, generator, device)``.
        n_sequences: how many sequences each member is tested on.
        unit, output, tolerance: as :func:`bptt.engine.evaluate`.
        lengths: per-member lengths (``kernel="persistent"`` only).
        kernel: ``"exact"`` (:func:`bptt.engine.evaluate`) or ``"persistent"``
            (:func:`bptt.engine.persistent.persistent_evaluate`).
        chunk: sequences per forward pass (memory is proportional to it).

    Returns:
        ``[E]`` error rates, on the device (read them with ``.tolist()``, the one sync).
    """
    if n_sequences < 1 or chunk < 1:
        raise ValueError(f"n_sequences and chunk must be positive, got {n_sequences} and {chunk}")
    if kernel == "persistent":
        from bptt.engine.persistent import persistent_evaluate

        def run(x, y):
            return persistent_evaluate(params, x, y, unit=unit, output=output, tolerance=tolerance,
                                       lengths=lengths)
    elif kernel == "exact":
        if lengths is not None and len(set(lengths)) > 1:
            raise ValueError("members of different lengths need kernel='persistent'")

        def run(x, y):
            return evaluate(params, x, y, unit=unit, output=output, tolerance=tolerance)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; choose exact or persistent")
    E = params["W_rec"].shape[0]
    wrong = torch.zeros(E, dtype=torch.long, device=params["W_rec"].device)
    done = 0
    while done < n_sequences:
        n = min(chunk, n_sequences - done)
        x, y = sample(n)
        ev = run(x, y)
        if ev.wrong is None:
            raise ValueError(f"output {output!r} has no per-sequence error")
        wrong += ev.wrong.sum(1)
        done += n
    return wrong.to(params["W_rec"].dtype) / n_sequences
