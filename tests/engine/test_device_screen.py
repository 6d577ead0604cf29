"""The device-side success screen counts the same wrong sequences as the plain evaluation."""

import pytest
import torch

from bptt import ElmanRNN
from bptt.engine import evaluate
from bptt.engine.screen import error_rate
from bptt.tasks.device import sample_on_device


def test_error_rate_counts_the_wrong_sequences_of_every_chunk():
    model = ElmanRNN(6, 8, 4, ensemble=3, init="smart_tanh", seed=0)
    params = {k: p.detach() for k, p in model.params.items()}
    g = torch.Generator().manual_seed(0)
    batches = [sample_on_device("temporal_order", n, [20, 20, 20], g, "cpu") for n in (40, 40, 20)]
    it = iter(batches)
    rate = error_rate(params, lambda n: next(it), 100, unit="tanh", output="last_softmax", chunk=40)
    wrong = sum(evaluate(params, x, y, unit="tanh", output="last_softmax").wrong.sum(1) for x, y in batches)
    assert torch.allclose(rate, wrong.float() / 100)
    assert rate.shape == (3,) and ((rate > 0) & (rate < 1)).all()     # an untrained network: some wrong


def test_error_rate_refuses_what_it_cannot_do():
    model = ElmanRNN(6, 8, 4, ensemble=2, seed=0)
    params = {k: p.detach() for k, p in model.params.items()}
    g = torch.Generator().manual_seed(0)
    sample = lambda n: sample_on_device("temporal_order", n, [20, 30], g, "cpu")    # noqa: E731
    with pytest.raises(ValueError, match="persistent"):
        error_rate(params, sample, 10, unit="tanh", output="last_softmax", lengths=[20, 30])
    with pytest.raises(ValueError, match="positive"):
        error_rate(params, sample, 0, unit="tanh", output="last_softmax")
