"""Fixtures shared by the test packages."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run the test on one PyTorch thread (bit-exact comparisons, no spinning threads)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
