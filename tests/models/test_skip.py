"""The skip network: the equation written out, the Elman network without the skip
path, the delay's validation and the carried state of d steps."""

import pytest
import torch

from bptt.models import ElmanRNN, SkipRNN
from conftest import OUTPUTS, make_batch


@pytest.mark.parametrize("delay", (1, 3))
def test_forward_is_the_skip_equation(delay):
    m = SkipRNN(3, 6, 4, ensemble=2, output="softmax", delay=delay, init="basic_tanh", dtype=torch.float64)
    x, _, _ = make_batch("softmax", T=9)
    z = m.forward(x)
    for e in range(2):
        hs = [torch.zeros(3, 6, dtype=torch.float64)] * delay        # h_{1−d} .. h_0
        for t in range(9):
            h = torch.tanh(hs[-1] @ m.W_rec[e] + hs[-delay] @ m.W_skip[e] + x[t] @ m.W_in[e] + m.b[e])
            hs.append(h)
            assert torch.allclose(h @ m.W_out[e] + m.b_out[e], z[t, e], atol=1e-12, rtol=0)
    state = m.evaluate(x, torch.zeros(9, 3, dtype=torch.long)).h_last
    assert state.shape == (2, 3, delay * 6)


@pytest.mark.parametrize("output", OUTPUTS)
def test_without_the_skip_path_it_is_the_elman_network(output):
    skip = SkipRNN(3, 5, 4, ensemble=2, output=output, skip_scale=0.0, delay=3, dtype=torch.float64)
    elman = ElmanRNN(3, 5, 4, ensemble=2, output=output, dtype=torch.float64)
    assert torch.count_nonzero(skip.W_skip) == 0
    x, y, mask = make_batch(output, T=9, E=2)
    a = skip.forward_backward(x, y, alpha=0.0, mask=mask)
    b = elman.forward_backward(x, y, alpha=0.0, omega=None, mask=mask)
    assert torch.allclose(a.loss, b.loss, atol=1e-12, rtol=0)
    for k in b.grads:
        assert torch.allclose(a.grads[k], b.grads[k], atol=1e-10, rtol=0), k
    assert float(a.grads["W_skip"].abs().sum()) > 0                 # the path still learns


def test_skip_weights_are_an_independent_draw():
    m = SkipRNN(3, 20, 4, ensemble=2, init="orthogonal", seed=0, dtype=torch.float64)
    W, S = m.W_rec.detach(), m.W_skip.detach()
    assert torch.allclose(S[0] @ S[0].T, torch.eye(20, dtype=torch.float64), atol=1e-12)
    assert not torch.allclose(W[0], S[0]) and not torch.allclose(W[1], S[0])
    assert torch.allclose(SkipRNN(3, 20, 4, seed=1, init="orthogonal", dtype=torch.float64).W_skip[0], S[1])


@pytest.mark.parametrize("delay", (0, -2, 1.5, True))
def test_invalid_delay(delay):
    with pytest.raises(ValueError, match="delay"):
        SkipRNN(3, 5, 4, delay=delay)
