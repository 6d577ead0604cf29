"""The ensemble GRU against torch.nn.GRU (reset after the product) and Cho et al.'s
equations written out (reset before)."""

import pytest
import torch

from bptt.models import GRU
from bptt.models.base import AutogradEnsemble, mean_loss
from conftest import OUTPUTS, make_batch


def torch_gru(model: GRU, e: int):
    I, H, O = model.n_in, model.n_hidden, model.n_out
    rnn, lin = torch.nn.GRU(I, H).double(), torch.nn.Linear(H, O).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(model.W_in[e].T)
        rnn.weight_hh_l0.copy_(model.W_rec[e].T)
        rnn.bias_ih_l0.copy_(model.b[e])
        rnn.bias_hh_l0.copy_(torch.cat([torch.zeros(2 * H, dtype=torch.float64), model.b_rec[e]]))
        lin.weight.copy_(model.W_out[e].T)
        lin.bias.copy_(model.b_out[e])
    return rnn, lin


def perturbed(**kw):
    m = GRU(3, 5, 4, ensemble=2, dtype=torch.float64, **kw)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in m.params.values():
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return m


def test_forward_equals_torch_gru():
    m = perturbed(output="softmax")
    x, _, _ = make_batch("softmax", T=11)
    h0 = torch.randn(2, 3, 5, dtype=torch.float64)
    z = m.forward(x, h0=h0)
    for e in range(2):
        rnn, lin = torch_gru(m, e)
        out, h = rnn(x, h0[e].unsqueeze(0).contiguous())
        assert torch.allclose(lin(out), z[:, e], atol=1e-12, rtol=0)


@pytest.mark.parametrize("output", OUTPUTS)
def test_gradients_equal_torch_gru(output):
    m = perturbed(output=output)
    x, y, mask = make_batch(output, T=9, E=2)
    out = m.forward_backward(x, y, alpha=0.0, mask=mask)
    H = 5
    for e in range(2):
        rnn, lin = torch_gru(m, e)
        seq, _ = rnn(x[:, e])
        z = lin(seq) if m.per_step else lin(seq[-1])
        ye = y[:, e] if m.per_step else y[e]
        loss = mean_loss(z.unsqueeze(-3), ye, output, mask)[0]
        assert torch.allclose(loss, out.loss[e], atol=1e-12, rtol=0)
        loss.backward()
        expected = {"W_in": rnn.weight_ih_l0.grad.T, "W_rec": rnn.weight_hh_l0.grad.T,
                    "b": rnn.bias_ih_l0.grad, "b_rec": rnn.bias_hh_l0.grad[2 * H:],
                    "W_out": lin.weight.grad.T, "b_out": lin.bias.grad}
        for k, g in expected.items():
            assert torch.allclose(out.grads[k][e], g, atol=1e-10, rtol=0), k


def test_reset_before_is_cho_et_al():
    m = perturbed(output="softmax", reset_after=False)
    x, _, _ = make_batch("softmax", T=6)
    z = m.forward(x)
    H = 5
    for e in range(2):
        W_in, W_rec, b, b_rec = m.W_in[e], m.W_rec[e], m.b[e], m.b_rec[e]
        h = torch.zeros(3, H, dtype=torch.float64)
        for t in range(6):
            u = x[t]
            r = torch.sigmoid(u @ W_in[:, :H] + h @ W_rec[:, :H] + b[:H])
            zz = torch.sigmoid(u @ W_in[:, H:2 * H] + h @ W_rec[:, H:2 * H] + b[H:2 * H])
            n = torch.tanh(u @ W_in[:, 2 * H:] + b[2 * H:] + (r * h) @ W_rec[:, 2 * H:] + b_rec)
            h = zz * h + (1 - zz) * n
            assert torch.allclose(h @ m.W_out[e] + m.b_out[e], z[t, e], atol=1e-12, rtol=0)
    assert not torch.allclose(perturbed(output="softmax").forward(x), z)


def test_initialization_and_arguments():
    m = GRU(6, 30, 4, init="orthogonal", dtype=torch.float64)
    W = m.W_rec.detach()[0]
    for j in range(3):
        block = W[:, j * 30:(j + 1) * 30]
        assert torch.allclose(block.T @ block, torch.eye(30, dtype=torch.float64), atol=1e-12)
    assert torch.count_nonzero(m.b) == 0 and torch.count_nonzero(m.b_rec) == 0
    assert m.config()["reset_after"] is True and GRU.from_config(m.config()).reset_after is True
    with pytest.raises(ValueError, match="reset_after"):
        GRU(3, 5, 4, reset_after="yes")
    with pytest.raises(ValueError, match="gain"):
        GRU(3, 5, 4, gain=-1.0)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("shared", (True, False))
def test_hand_derived_pass_equals_autograd(output, shared):
    m = perturbed(output=output, init="orthogonal")
    x, y, mask = make_batch(output, T=13, E=None if shared else 2)
    h0 = torch.randn(2, 3, 5, dtype=torch.float64)
    for kw in ({}, {"h0": h0, "mask": mask}):
        fast = m.forward_backward(x, y, alpha=0.0, **kw)
        ref = AutogradEnsemble.forward_backward(m, x, y, alpha=0.0, **kw)
        assert torch.allclose(fast.loss, ref.loss, atol=1e-12, rtol=0)
        assert torch.allclose(fast.h_last, ref.h_last, atol=1e-12, rtol=0)
        for k in ref.grads:
            assert torch.allclose(fast.grads[k], ref.grads[k], atol=1e-10, rtol=0), k


def test_hand_derived_pass_in_float32_is_close():
    m = GRU(6, 20, 4, ensemble=3, seed=4)
    x, y, _ = make_batch("last_softmax", T=50, n_in=6, dtype=torch.float32)
    fast = m.forward_backward(x, y, alpha=0.0)
    ref = AutogradEnsemble.forward_backward(m, x, y, alpha=0.0)
    for k in ref.grads:
        assert torch.allclose(fast.grads[k], ref.grads[k], atol=1e-5, rtol=1e-4), k
