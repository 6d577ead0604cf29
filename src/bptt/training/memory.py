"""How much memory a training on the tasks needs, checked before it starts.

Exact BPTT (the paper's §2, equations 3–5) keeps the whole forward pass of a minibatch
for the backward pass: for every step ``t`` of ``T`` the pre-activations ``x_t`` and the
activations ``σ(x_t)`` of every member and sequence, ``[T, E, B, H]`` each, beside the
inputs ``[T, E, B, I]`` and targets; the backward pass adds gradients of the same
shape. The parameters and their gradients are ``E (H² + I H + H O + H + O)`` numbers, and
the update rule keeps about as many again. The estimate below counts these; the engine's
own work buffers are of the same order, so the estimate is a floor, not a bound.
"""

from __future__ import annotations

import os

#: Copies of ``[T, E, B, H]`` the exact pass holds at once (x, σ(x), their gradients).
STATE_COPIES = 4
#: Copies of the parameters held at once (weights, gradients, the update rule's).
PARAM_COPIES = 3
#: Sequences of one evaluation chunk (see :meth:`bptt.training.synthetic.Trainer.error_rate`).
EVAL_CHUNK = 1000


def training_bytes(*, length: int, members: int, batch: int, hidden: int, n_in: int, n_out: int,
                   itemsize: int) -> int:
    """Bytes a training of ``members`` Elman networks needs at least.

    Args:
        length: the longest sequence ``T``.
        members: the ensemble's size ``E``.
        batch: sequences per minibatch ``B``.
        hidden: hidden units ``H``.
        n_in, n_out: input and output sizes ``I`` and ``O``.
        itemsize: bytes per number (4 for float32, 8 for float64).

    Returns:
        The estimate in bytes (see the module docstring).
    """
    T, E, B, H = length, members, batch, hidden
    states = STATE_COPIES * T * E * B * H + 2 * T * E * B * (n_in + n_out)
    evaluation = 2 * E * EVAL_CHUNK * H + T * EVAL_CHUNK * (n_in + n_out)
    params = PARAM_COPIES * E * (H * H + n_in * H + H * n_out + H + n_out)
    return itemsize * (states + evaluation + params)


def available_bytes(device: str) -> int | None:
    """The memory of ``device``: physical memory for the CPU, the card's for CUDA; ``None``
    when unknown."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return None
        return int(torch.cuda.get_device_properties(dev.index or 0).total_memory)
    if dev.type == "cpu":
        try:
            return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
        except (AttributeError, OSError, ValueError):
            return None
    return None


def check_fits(config) -> None:
    """Refuse a :class:`~bptt.training.config.TrainConfig` whose training cannot fit in
    its device's memory.

    Raises:
        ValueError: the estimate (:func:`training_bytes`) exceeds the device's memory;
            the message gives both.
    """
    from bptt import tasks as task_registry

    task = task_registry.get(config.task, seed=0, **config.task_options)
    need = training_bytes(length=config.max_length, members=len(config.seeds), batch=config.batch_size,
                          hidden=config.hidden, n_in=task.n_in, n_out=task.n_out,
                          itemsize=8 if config.dtype == "float64" else 4)
    have = available_bytes(config.device)
    if have is not None and need > have:
        raise ValueError(f"this training needs at least {_gib(need)} of memory (hidden {config.hidden}, "
                         f"batch {config.batch_size}, length {config.max_length}, {len(config.seeds)} members, "
                         f"{config.dtype}) but {config.device} has {_gib(have)}; use fewer hidden units, "
                         f"members or sequences per batch, or shorter sequences")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"
