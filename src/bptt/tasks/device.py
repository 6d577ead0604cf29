"""Samplers that draw the synthetic problems on the device, with ``torch.Generator``.

The task classes of :mod:`bptt.tasks.synthetic` draw with NumPy on the host; a GPU
run that samples there copies every batch across. The samplers here draw the same
problems with torch operations on the given device (no host round trip), identical
in distribution to the host generators, not in bits. Each takes

    (batch, length, generator, device) → (x, y)

where ``length`` is one length (``x [L, B, I]``, ``y [B]``, as the host sampler) or
one length per ensemble member (``x [L_max, E, B, I]`` with member e's sequences in
``x[:L_e, e]`` and zeros after, ``y [E, B]``): the layout of
:func:`bptt.engine.persistent.persistent_forward_backward` with ``lengths``.

Drawn here: ``temporal_order``, ``temporal_order_3bit`` and ``permutation`` (see the
classes of :mod:`bptt.tasks.synthetic` for their rules). The addition and
multiplication problems draw one random length per batch, which would have to reach
the host to shape the batch, and have no device sampler.
"""

from __future__ import annotations

import operator
from typing import Callable, Sequence

import torch

from .synthetic import Permutation, TemporalOrder, TemporalOrder3Bit

Sampler = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def _lengths(length: int | Sequence[int], minimum: int) -> tuple[list[int], bool]:
    """The lengths as a list, and whether they were given per member."""
    try:
        values, per_member = [operator.index(length)], False
    except TypeError:
        values, per_member = [int(n) for n in (length.tolist() if torch.is_tensor(length) else length)], True
    if not values or any(n < minimum for n in values):
        raise ValueError(f"lengths must be at least {minimum}, got {length!r}")
    return values, per_member


def _uniform_below(n: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator,
                   device) -> torch.Tensor:
    """Integers uniform in 0..n−1, elementwise for ``n`` broadcast to ``shape`` (int64)."""
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return torch.minimum((u * n).floor().long(), n - 1)


def temporal_order_sample(batch: int, length: int | Sequence[int], generator: torch.Generator,
                          device: torch.device | str, starts: tuple[int, ...] = TemporalOrder._starts):
    """The temporal order problem (:class:`bptt.tasks.TemporalOrder` for ``starts=(1, 5)``,
    :class:`bptt.tasks.TemporalOrder3Bit` for ``(1, 3, 6)``), drawn on ``device``.

    Args:
        batch: B sequences (per member).
        length: L, or one length per member.
        generator: a ``torch.Generator`` on ``device``.
        device: where to draw.

    Returns:
        ``x`` float32 ``[L, B, 6]`` or ``[L_max, E, B, 6]`` (zeros past a member's
        length), ``y`` int64 ``[B]`` or ``[E, B]`` (class Σ_k v_k 2^k).
    """
    lengths, per_member = _lengths(length, TemporalOrder.min_length)
    E, T = len(lengths), max(lengths)
    L = torch.tensor(lengths, device=device)[:, None]                   # [E, 1]
    width = L // 10
    symbols = torch.randint(2, 6, (T, E, batch), generator=generator, device=device)
    label = torch.zeros(E, batch, dtype=torch.long, device=device)
    cols = torch.arange(batch, device=device)[None, :].expand(E, batch)
    members = torch.arange(E, device=device)[:, None].expand(E, batch)
    positions = [s * L // 10 + _uniform_below(width, (E, batch), generator, device) for s in starts]
    values = torch.randint(0, 2, (len(starts), E, batch), generator=generator, device=device)
    for k, pos in enumerate(positions):
        symbols[pos, members, cols] = values[k]
        label += values[k] << k
    x = torch.nn.functional.one_hot(symbols, 6).to(torch.float32)
    if min(lengths) < T:
        real = torch.arange(T, device=device)[:, None] < L[:, 0][None, :]    # [T, E]
        x *= real[:, :, None, None]
    if not per_member:
        return x[:, 0], label[0]
    return x, label


def temporal_order_3bit_sample(batch: int, length: int | Sequence[int], generator: torch.Generator,
                               device: torch.device | str):
    """The three-symbol temporal order problem on ``device`` (see :func:`temporal_order_sample`)."""
    return temporal_order_sample(batch, length, generator, device, starts=TemporalOrder3Bit._starts)


def permutation_sample(batch: int, length: int | Sequence[int], generator: torch.Generator,
                       device: torch.device | str):
    """The random permutation problem (:class:`bptt.tasks.Permutation`) on ``device``.

    Returns ``x`` float32 ``[L, B, 100]`` (or per member, zero-padded) and ``y`` the
    first symbol's class, int64 ``[B]`` (or ``[E, B]``).
    """
    lengths, per_member = _lengths(length, Permutation.min_length)
    E, T = len(lengths), max(lengths)
    symbols = torch.randint(2, 100, (T, E, batch), generator=generator, device=device)
    first = torch.randint(0, 2, (E, batch), generator=generator, device=device)
    symbols[0] = first
    x = torch.nn.functional.one_hot(symbols, 100).to(torch.float32)
    if min(lengths) < T:
        L = torch.tensor(lengths, device=device)
        x *= (torch.arange(T, device=device)[:, None] < L[None, :])[:, :, None, None]
    if not per_member:
        return x[:, 0], first[0]
    return x, first


#: Task name → device sampler ``(batch, length, generator, device) → (x, y)``.
DEVICE_SAMPLERS: dict[str, Sampler] = {
    "temporal_order": temporal_order_sample,
    "temporal_order_3bit": temporal_order_3bit_sample,
    "permutation": permutation_sample,
}


def sample_on_device(name: str, batch: int, length: int | Sequence[int], generator: torch.Generator,
                     device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a batch of task ``name`` on ``device`` (see the module docstring).

    Raises:
        ValueError: a task without a device sampler, or a length below the task's minimum.
    """
    if name not in DEVICE_SAMPLERS:
        raise ValueError(f"no device sampler for task {name!r}; there are: {', '.join(DEVICE_SAMPLERS)}")
    if int(batch) != batch or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    return DEVICE_SAMPLERS[name](int(batch), length, generator, device)
