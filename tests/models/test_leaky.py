"""Leaky-integrator units: the equation written out, the Elman network at rate 1, the
rates' spread and learned rates."""

import pytest
import torch

from bptt.models import ElmanRNN, LeakyRNN
from bptt.models.leaky import rate_spread
from conftest import OUTPUTS, make_batch


@pytest.mark.parametrize("learn", (False, True))
def test_forward_is_the_leaky_equation(learn):
    m = LeakyRNN(3, 6, 4, ensemble=2, output="softmax", rates=(0.1, 0.9), learn_rates=learn,
                 init="basic_tanh", dtype=torch.float64)
    x, _, _ = make_batch("softmax", T=8)
    z = m.forward(x)
    a = rate_spread(6, 0.1, 0.9)
    assert torch.allclose(m.leak_rates(), a.expand(2, 6), atol=1e-14)
    for e in range(2):
        h = torch.zeros(3, 6, dtype=torch.float64)
        for t in range(8):
            h = (1 - a) * h + a * torch.tanh(h @ m.W_rec[e] + x[t] @ m.W_in[e] + m.b[e])
            assert torch.allclose(h @ m.W_out[e] + m.b_out[e], z[t, e], atol=1e-12, rtol=0)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("unit", ("tanh", "sigmoid", "relu"))
def test_rate_one_is_the_elman_network(output, unit):
    """Same loss and gradients as the exact engine: the losses' definitions and
    averaging agree with bptt.engine.outputs."""
    leaky = LeakyRNN(3, 5, 4, ensemble=2, output=output, unit=unit, rates=1.0, init="basic_tanh",
                     dtype=torch.float64)
    elman = ElmanRNN(3, 5, 4, ensemble=2, output=output, unit=unit, init="basic_tanh", dtype=torch.float64)
    x, y, mask = make_batch(output, T=9, E=2)
    a = leaky.forward_backward(x, y, alpha=0.0, mask=mask)
    b = elman.forward_backward(x, y, alpha=0.0, omega=None, mask=mask)
    assert torch.allclose(a.loss, b.loss, atol=1e-12, rtol=0)
    for k in b.grads:
        assert torch.allclose(a.grads[k], b.grads[k], atol=1e-10, rtol=0), k
    ea = leaky.evaluate(x, y, mask=mask, tolerance=0.5)
    eb = elman.evaluate(x, y, mask=mask, tolerance=0.5)
    assert torch.allclose(ea.loss, eb.loss, atol=1e-12, rtol=0)
    assert (ea.wrong is None and eb.wrong is None) or torch.equal(ea.wrong, eb.wrong)


def test_learned_rates_get_gradients_and_fixed_rates_do_not():
    fixed = LeakyRNN(3, 5, 4, ensemble=2, dtype=torch.float64)
    learned = LeakyRNN(3, 5, 4, ensemble=2, learn_rates=True, dtype=torch.float64)
    assert "rate_logit" in learned.params and "rate_logit" not in fixed.params
    assert "rates" in dict(fixed.named_buffers())
    x, y, _ = make_batch("last_softmax", T=6)
    out = learned.forward_backward(x, y)
    assert out.grads["rate_logit"].shape == (2, 5) and float(out.grads["rate_logit"].abs().sum()) > 0
    assert torch.allclose(learned.leak_rates(), fixed.leak_rates(), atol=1e-14)
    assert learned.select([1]).learn_rates and LeakyRNN.from_config(learned.config()).learn_rates


def test_spread_and_arguments():
    a = rate_spread(5, 0.01, 1.0)
    assert torch.allclose(a, torch.tensor([0.01, 0.01 ** 0.75, 0.1, 0.01 ** 0.25, 1.0], dtype=torch.float64))
    assert torch.equal(rate_spread(1, 0.2, 0.5), torch.tensor([0.5], dtype=torch.float64))
    for bad in ((0.0, 0.5), (0.5, 0.1), (0.1, 1.5), -0.2, (0.1, 0.2, 0.3), "0.5", (0.1, float("nan"))):
        with pytest.raises(ValueError, match="rates"):
            LeakyRNN(3, 5, 4, rates=bad)
    with pytest.raises(ValueError, match="bounds must be < 1"):
        LeakyRNN(3, 5, 4, rates=(0.1, 1.0), learn_rates=True)
    o = LeakyRNN(3, 20, 4, init="orthogonal", dtype=torch.float64).W_rec.detach()[0]
    assert torch.allclose(o @ o.T, torch.eye(20, dtype=torch.float64), atol=1e-12)
