"""The ensemble LSTM against torch.nn.LSTM, and its hand-derived pass against autograd."""

import pytest
import torch

from bptt.models import LSTM
from bptt.models.base import AutogradEnsemble, mean_loss
from conftest import OUTPUTS, make_batch


def torch_lstm(model: LSTM, e: int):
    """``torch.nn.LSTM`` + ``nn.Linear`` holding member ``e`` of ``model`` (float64)."""
    I, H, O = model.n_in, model.n_hidden, model.n_out
    rnn, lin = torch.nn.LSTM(I, H).double(), torch.nn.Linear(H, O).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(model.W_in[e].T)
        rnn.weight_hh_l0.copy_(model.W_rec[e].T)
        rnn.bias_ih_l0.copy_(model.b[e])
        rnn.bias_hh_l0.zero_()
        lin.weight.copy_(model.W_out[e].T)
        lin.bias.copy_(model.b_out[e])
    return rnn, lin


def perturbed(**kw):
    m = LSTM(3, 5, 4, ensemble=2, dtype=torch.float64, **kw)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in m.params.values():
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return m


@pytest.mark.parametrize("with_state", (False, True))
def test_forward_equals_torch_lstm(with_state):
    m = perturbed(output="softmax")
    x, _, _ = make_batch("softmax", T=11)
    h0 = torch.randn(2, 3, 10, dtype=torch.float64) if with_state else None
    z = m.forward(x, h0=h0)
    last = m.evaluate(x, torch.zeros(11, 3, dtype=torch.long), h0=h0).h_last
    for e in range(2):
        rnn, lin = torch_lstm(m, e)
        state = None if h0 is None else (h0[e, :, :5].unsqueeze(0).contiguous(), h0[e, :, 5:].unsqueeze(0).contiguous())
        out, (h, c) = rnn(x, state)
        assert torch.allclose(lin(out), z[:, e], atol=1e-12, rtol=0)
        assert torch.allclose(torch.cat([h[0], c[0]], -1), last[e], atol=1e-12, rtol=0)


@pytest.mark.parametrize("output", OUTPUTS)
def test_gradients_equal_torch_lstm(output):
    m = perturbed(output=output)
    x, y, mask = make_batch(output, T=9, E=2)
    out = m.forward_backward(x, y, alpha=0.0, mask=mask)
    for e in range(2):
        rnn, lin = torch_lstm(m, e)
        seq, _ = rnn(x[:, e])
        z = lin(seq) if m.per_step else lin(seq[-1])
        ye = y[:, e] if m.per_step else y[e]
        loss = mean_loss(z.unsqueeze(-3), ye, output, mask)[0]
        assert torch.allclose(loss, out.loss[e], atol=1e-12, rtol=0)
        loss.backward()
        expected = {"W_in": rnn.weight_ih_l0.grad.T, "W_rec": rnn.weight_hh_l0.grad.T,
                    "b": rnn.bias_ih_l0.grad, "W_out": lin.weight.grad.T, "b_out": lin.bias.grad}
        assert torch.allclose(rnn.bias_hh_l0.grad, rnn.bias_ih_l0.grad)     # the two biases act as one
        for k, g in expected.items():
            assert torch.allclose(out.grads[k][e], g, atol=1e-10, rtol=0), k


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("shared", (True, False))
def test_hand_derived_pass_equals_autograd(output, shared):
    m = perturbed(output=output, init="orthogonal")
    x, y, mask = make_batch(output, T=13, E=None if shared else 2)
    h0 = torch.randn(2, 3, 10, dtype=torch.float64)
    for kw in ({}, {"h0": h0, "mask": mask}):
        fast = m.forward_backward(x, y, alpha=0.0, **kw)
        ref = AutogradEnsemble.forward_backward(m, x, y, alpha=0.0, **kw)
        assert torch.allclose(fast.loss, ref.loss, atol=1e-12, rtol=0)
        assert torch.allclose(fast.h_last, ref.h_last, atol=1e-12, rtol=0)
        assert torch.allclose(fast.grad_norm, ref.grad_norm, atol=1e-10, rtol=0)
        for k in ref.grads:
            assert torch.allclose(fast.grads[k], ref.grads[k], atol=1e-10, rtol=0), k


def test_hand_derived_pass_in_float32_is_close():
    m = LSTM(6, 20, 4, ensemble=3, seed=4)
    x, y, _ = make_batch("last_softmax", T=50, n_in=6, dtype=torch.float32)
    fast = m.forward_backward(x, y, alpha=0.0)
    ref = AutogradEnsemble.forward_backward(m, x, y, alpha=0.0)
    for k in ref.grads:
        assert torch.allclose(fast.grads[k], ref.grads[k], atol=1e-5, rtol=1e-4), k


def test_initialization():
    m = LSTM(6, 40, 4, ensemble=2, dtype=torch.float64)
    H = 40
    assert torch.equal(m.b[:, H:2 * H], torch.ones(2, H, dtype=torch.float64))   # forget bias 1
    assert torch.count_nonzero(m.b[:, :H]) == 0 and torch.count_nonzero(m.b[:, 2 * H:]) == 0
    k = 1 / H ** 0.5
    for w in (m.W_in.detach(), m.W_rec.detach(), m.W_out.detach()):
        assert float(w.abs().max()) <= k and float(w.abs().max()) > 0.9 * k
    assert torch.equal(LSTM(6, 40, 4, forget_bias=0.0).b, torch.zeros(1, 4 * H))
    o = LSTM(6, 40, 4, init="orthogonal", gain=0.5, dtype=torch.float64).W_rec.detach()[0]
    for j in range(4):
        block = o[:, j * H:(j + 1) * H]
        assert torch.allclose(block @ block.T, 0.25 * torch.eye(H, dtype=torch.float64), atol=1e-12)
    assert m.state_size == 2 * H


@pytest.mark.parametrize("kwargs, match", [({"forget_bias": float("nan")}, "forget_bias"),
                                           ({"gain": 0.0}, "gain"), ({"init": "smart_tanh"}, "unknown init")])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSTM(3, 5, 4, **kwargs)


@pytest.mark.parametrize("block", (1, 3, 4, 50))
@pytest.mark.parametrize("T", (1, 4, 7))
def test_blocked_weight_gradients_equal_autograd(monkeypatch, block, T):
    """The weight gradients are summed block by block in the backward loop: every split
    of T into blocks (a partial first block, T below, at and above the block) is exact."""
    from bptt.models import lstm_bptt
    monkeypatch.setattr(lstm_bptt, "_BLOCK", block)
    m = perturbed(output="softmax")
    x, y, mask = make_batch("softmax", T=T, E=2)
    h0 = torch.randn(2, 3, 10, dtype=torch.float64)
    fast = m.forward_backward(x, y, alpha=0.0, h0=h0, mask=mask)
    ref = AutogradEnsemble.forward_backward(m, x, y, alpha=0.0, h0=h0, mask=mask)
    assert torch.allclose(fast.h_last, ref.h_last, atol=1e-12, rtol=0)
    for k in ref.grads:
        assert torch.allclose(fast.grads[k], ref.grads[k], atol=1e-10, rtol=0), k


def test_saturated_gates_stay_exact():
    """Large weights drive every gate and the cell's tanh into saturation, where the
    tanh-through-sigmoid forms must still agree with autograd."""
    m = perturbed(output="last_linear")
    with torch.no_grad():
        for name in ("W_in", "W_rec", "b"):
            m.params[name].mul_(6.0)
    x, y, _ = make_batch("last_linear", T=15)
    h0 = torch.randn(2, 3, 10, dtype=torch.float64) * 3.0
    fast = m.forward_backward(x, y, alpha=0.0, h0=h0)
    ref = AutogradEnsemble.forward_backward(m, x, y, alpha=0.0, h0=h0)
    assert ref.h_last[..., 5:].abs().max() > 3.0            # cells well past tanh's linear range
    assert torch.allclose(fast.h_last, ref.h_last, atol=1e-12, rtol=0)
    for k in ref.grads:
        assert torch.allclose(fast.grads[k], ref.grads[k], atol=1e-10, rtol=1e-10), k


def test_buffers_reused_across_shapes_do_not_leak_into_results():
    """The module-wide buffers are reused from call to call, across shapes: a call after
    a larger one gives the numbers of a first call, and nothing returned changes when
    the buffers are written again."""
    from bptt.engine.exact import Workspace
    from bptt.models import lstm_bptt
    small, large = perturbed(output="sigmoid"), LSTM(4, 7, 3, ensemble=3, dtype=torch.float64, output="softmax")
    xs, ys, ms = make_batch("sigmoid", T=6, E=2)
    xl, yl, ml = make_batch("softmax", T=19, n_in=4, n_out=3, seed=1)
    params = {k: p.detach() for k, p in small.params.items()}
    fresh = lstm_bptt.forward_backward(params, xs, ys, output="sigmoid", mask=ms, workspace=Workspace())
    first = lstm_bptt.forward_backward(params, xs, ys, output="sigmoid", mask=ms)
    kept = {k: g.clone() for k, g in first[1].items()}
    large.forward_backward(xl, yl, alpha=0.0, mask=ml)
    again = lstm_bptt.forward_backward(params, xs, ys, output="sigmoid", mask=ms)
    for k in kept:
        assert torch.equal(first[1][k], kept[k]), k                 # not overwritten by later calls
        assert torch.equal(again[1][k], fresh[1][k]), k
    assert torch.equal(again[0], fresh[0]) and torch.equal(again[2], fresh[2])
