"""Dropout on the non-recurrent connections (Zaremba et al. 2014) in the exact engine,
against autograd with the same masks in float64."""

import pytest
import torch

from bptt import ElmanRNN
from bptt.engine import forward_backward, reference_forward_backward
from bptt.engine.dropout import check_dropout, dropout_masks

from tests.engine.test_exact import OUTPUTS, assert_same, make_batch, make_params


def gen(seed=5):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("unit", ["tanh", "sigmoid"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("omega", [None, "squared"])
@pytest.mark.parametrize("per_member", [False, True])
def test_engine_with_dropout_matches_autograd_with_the_same_masks(unit, output, omega, per_member):
    params = make_params(unit)
    x, y = make_batch(output, T=8, B=5, I=4, O=5, E=3 if per_member else None)
    kw = dict(unit=unit, output=output, alpha=torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64), omega=omega,
              dropout=0.3)
    fast = forward_backward(params, x, y, generator=gen(), **kw)
    ref = reference_forward_backward(params, x, y, generator=gen(), **kw)
    assert_same(fast, ref)
    plain = forward_backward(params, x, y, **{**kw, "dropout": 0.0})
    assert not torch.allclose(fast.loss, plain.loss)              # the masks did something
    other = forward_backward(params, x, y, generator=gen(6), **kw)
    assert not torch.allclose(fast.loss, other.loss)              # fresh masks from another stream


def test_masks_are_per_member_sequence_and_step_and_scaled():
    x_mask, h_mask = dropout_masks(0.25, 50, 3, 40, 4, 7, per_step=True, generator=gen(), dtype=torch.float64,
                                   device=torch.device("cpu"))
    assert x_mask.shape == (50, 3, 40, 4) and h_mask.shape == (50, 3, 40, 7)
    assert set(torch.unique(x_mask).tolist()) == {0.0, 1 / 0.75}
    assert abs(float((x_mask == 0).double().mean()) - 0.25) < 0.02
    assert abs(float(h_mask.mean()) - 1.0) < 0.03                 # inverted dropout keeps the mean
    assert not torch.equal(x_mask[0], x_mask[1]) and not torch.equal(x_mask[:, 0], x_mask[:, 1])
    _, last = dropout_masks(0.5, 5, 3, 4, 2, 7, per_step=False, generator=gen(), dtype=torch.float32,
                            device=torch.device("cpu"))
    assert last.shape == (3, 4, 7)


def test_the_recurrent_path_is_never_masked():
    # With zero inputs, W_in is unused; a state feeding only the recurrence carries on
    # unmasked: the last state is the one without dropout.
    params = make_params("tanh")
    x, y = make_batch("last_linear", T=6, B=4, I=4, O=5)
    h0 = torch.randn(3, 4, 7, dtype=torch.float64)
    kw = dict(unit="tanh", output="last_linear", h0=h0)
    a = forward_backward(params, torch.zeros_like(x), y, dropout=0.5, generator=gen(), **kw)
    b = forward_backward(params, torch.zeros_like(x), y, **kw)
    torch.testing.assert_close(a.h_last, b.h_last, rtol=0, atol=0)


def test_dropout_is_validated():
    for bad in (-0.1, 1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="dropout"):
            check_dropout(bad)
    model = ElmanRNN(2, 4, 3, seeds=[0, 1], output="last_softmax")
    x = torch.randn(5, 3, 2)
    y = torch.randint(3, (3,))
    with pytest.raises(ValueError, match="dropout"):
        model.forward_backward(x, y, dropout=1.5)
    out = model.forward_backward(x, y, dropout=0.5, generator=gen())
    again = model.forward_backward(x, y, dropout=0.5, generator=gen())
    torch.testing.assert_close(out.loss, again.loss, rtol=0, atol=0)
