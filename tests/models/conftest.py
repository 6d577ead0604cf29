"""Batches of every output kind for the model tests."""

import pytest
import torch

OUTPUTS = ("last_softmax", "softmax", "last_linear", "sigmoid")


def make_batch(output: str, T: int = 7, B: int = 3, n_in: int = 3, n_out: int = 4, E: int | None = None,
               seed: int = 0, dtype=torch.float64):
    """``(x, y, mask)``: inputs ``[T, B, I]`` (``[T, E, B, I]`` with ``E``), targets of the
    output kind (with an ensemble axis when ``E`` is given) and, for per-step outputs,
    a mask with padding at the end of the first sequence (``None`` otherwise)."""
    g = torch.Generator().manual_seed(seed)
    lead = (T,) if E is None else (T, E)
    x = torch.randn(*lead, B, n_in, generator=g, dtype=dtype)
    ye = () if E is None else (E,)
    y = {"last_softmax": lambda: torch.randint(0, n_out, ye + (B,), generator=g),
         "softmax": lambda: torch.randint(0, n_out, lead + (B,), generator=g),
         "last_linear": lambda: torch.randn(*ye, B, n_out, generator=g, dtype=dtype),
         "sigmoid": lambda: torch.rand(*lead, B, n_out, generator=g, dtype=dtype).round()}[output]()
    mask = None
    if output in ("softmax", "sigmoid"):
        mask = torch.ones(T, B, dtype=dtype)
        mask[T - 2:, 0] = 0
    return x, y, mask


@pytest.fixture
def batch():
    return make_batch
