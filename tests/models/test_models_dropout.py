"""Dropout on the non-recurrent connections (Zaremba et al. 2014) for the autograd models:
the hand-derived passes step aside, and the masks are the engine's."""

import pytest
import torch

from bptt import ElmanRNN
from bptt.engine.dropout import dropout_masks
from bptt.models import ESN, GRU, LSTM, LeakyRNN, SkipRNN


def gen(seed=3):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("cls", [LSTM, GRU, LeakyRNN, SkipRNN, ESN])
@pytest.mark.parametrize("output", ["last_softmax", "softmax"])
def test_dropout_matches_a_manual_autograd_pass_with_the_same_masks(cls, output):
    E, T, B, I, H, O = 2, 6, 3, 4, 5, 3
    model = cls(I, H, O, seeds=[0, 1], output=output, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    y = torch.randint(O, (B,) if output == "last_softmax" else (T, B), generator=g)
    out = model.forward_backward(x, y, omega=None, dropout=0.4, generator=gen())
    x_mask, h_mask = dropout_masks(0.4, T, E, B, I, H, per_step=output == "softmax", generator=gen(),
                                   dtype=torch.float64, device=torch.device("cpu"))
    leaves = {k: p.detach().clone().requires_grad_(True) for k, p in model.params.items()}
    tensors = leaves | dict(model.named_buffers())
    h, _ = model._run(tensors, x.unsqueeze(1) * x_mask, None, output == "softmax")
    z = model._readout(tensors, h * h_mask)
    if output == "last_softmax":
        loss = -torch.log_softmax(z, -1).gather(-1, y.expand(E, B).unsqueeze(-1)).mean(dim=(1, 2))
    else:
        loss = -torch.log_softmax(z, -1).gather(-1, y[:, None, :, None].expand(T, E, B, 1)).mean(dim=(0, 2, 3))
    torch.testing.assert_close(out.loss, loss.detach(), rtol=1e-10, atol=1e-12)
    names = [n for n in leaves if n in ("W_out", "b_out") or cls is not ESN]
    auto = torch.autograd.grad(loss.sum(), [leaves[n] for n in names], allow_unused=True)
    for n, a in zip(names, auto):
        if a is not None:
            torch.testing.assert_close(out.grads[n], a, rtol=1e-10, atol=1e-12)
    plain = model.forward_backward(x, y, omega=None)
    assert not torch.allclose(plain.grads["W_out"], out.grads["W_out"])


def test_models_refuse_bad_dropout():
    for model in (LSTM(2, 3, 2, output="last_softmax"), ElmanRNN(2, 3, 2, output="last_softmax")):
        with pytest.raises(ValueError, match="dropout"):
            model.forward_backward(torch.zeros(4, 1, 2), torch.zeros(1, dtype=torch.long), omega=None, dropout=1.0)
