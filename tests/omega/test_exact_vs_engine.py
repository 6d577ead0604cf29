"""Ω through the wrapper on a one-layer nn.RNN equals the exact engine's, in float64.

The nn.RNN carries an ElmanRNN's weights (E = 1): the engine's row-vector recurrence
h_t = σ(h_{t−1} W_rec + u_t W_in + b) is nn.RNN's with weight_hh = W_recᵀ,
weight_ih = W_inᵀ, bias_ih = b and bias_hh = 0; a linear readout z = h W_out + b_out
and the loss of each output kind (:mod:`bptt.engine.outputs`) are built on top of the
module's outputs. Under ``semantics="reference"`` the wrapper's Ω and every gradient of
loss + α·Ω must equal ``ElmanRNN.forward_backward``'s.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bptt import ElmanRNN
from bptt.omega import Omega

OUTPUTS = ["last_softmax", "softmax", "last_linear", "sigmoid"]
T, B, I, H, O = 9, 4, 3, 6, 5


def make_elman(output, unit="tanh", seed=0):
    m = ElmanRNN(I, H, O, unit=unit, init="basic_tanh", output=output, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        m.W_rec.copy_(torch.randn(1, H, H, generator=g, dtype=torch.float64) * 0.6)
        m.W_in.copy_(torch.randn(1, I, H, generator=g, dtype=torch.float64) * 0.5)
        m.b.copy_(torch.randn(1, H, generator=g, dtype=torch.float64) * 0.1)
        if unit == "relu":
            m.b.abs_().add_(0.3)
        m.W_out.copy_(torch.randn(1, H, O, generator=g, dtype=torch.float64) * 0.5)
        m.b_out.copy_(torch.randn(1, O, generator=g, dtype=torch.float64) * 0.1)
    return m


def make_batch(output, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    if output == "last_softmax":
        y = torch.randint(O, (B,), generator=g)
    elif output == "softmax":
        y = torch.randint(O, (T, B), generator=g)
    elif output == "last_linear":
        y = torch.rand(B, O, generator=g, dtype=torch.float64)
    else:
        y = (torch.rand(T, B, O, generator=g) < 0.3).to(torch.float64)
    return x, y


def torch_copy(elman, unit="tanh", cell=False):
    """nn.RNN (or nn.RNNCell) and nn.Linear carrying the ElmanRNN's weights."""
    rnn = (nn.RNNCell(I, H, nonlinearity=unit) if cell else nn.RNN(I, H, nonlinearity=unit)).double()
    out = nn.Linear(H, O).double()
    sfx = "" if cell else "_l0"
    with torch.no_grad():
        getattr(rnn, "weight_hh" + sfx).copy_(elman.W_rec[0].T)
        getattr(rnn, "weight_ih" + sfx).copy_(elman.W_in[0].T)
        getattr(rnn, "bias_ih" + sfx).copy_(elman.b[0])
        getattr(rnn, "bias_hh" + sfx).zero_()
        out.weight.copy_(elman.W_out[0].T)
        out.bias.copy_(elman.b_out[0])
    return rnn, out


def loss_of(output, readout, hs, y):
    """The engine's losses (bptt.engine.outputs) from the hidden states hs [T, B, H]."""
    if output == "last_softmax":
        return F.cross_entropy(readout(hs[-1]), y)
    if output == "last_linear":
        return ((readout(hs[-1]) - y) ** 2).sum(-1).mean()
    z = readout(hs)
    if output == "softmax":
        return F.cross_entropy(z.reshape(T * B, O), y.reshape(T * B))
    return F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(-1).mean()


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("form", ["squared", "plain"])
@pytest.mark.parametrize("unit", ["tanh", "relu"])
@pytest.mark.parametrize("with_h0", [False, True])
def test_reference_semantics_equals_engine(output, form, unit, with_h0):
    elman = make_elman(output, unit)
    x, y = make_batch(output)
    h0 = torch.randn(1, B, H, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 0.5 \
        if with_h0 else None
    alpha = 0.8
    res = elman.forward_backward(x, y, alpha=alpha, omega=form, h0=h0)
    rnn, readout = torch_copy(elman, unit)
    for fused in (True, False):
        w = Omega(rnn, fused=fused)
        hs, _ = w(x, h0)
        loss = loss_of(output, readout, hs, y)
        om = w.penalty(loss, form=form, semantics="reference")
        assert torch.allclose(loss.detach(), res.loss[0], rtol=1e-12, atol=0)
        assert abs(float(om.detach()) - float(res.omega[0])) <= 1e-10 * max(1.0, float(res.omega[0]))
        assert torch.allclose(w.last.fraction, res.omega_fraction, rtol=1e-12)
        params = [rnn.weight_hh_l0, rnn.weight_ih_l0, rnn.bias_ih_l0, rnn.bias_hh_l0,
                  readout.weight, readout.bias]
        got = torch.autograd.grad(loss + alpha * om, params)
        want = [res.grads["W_rec"][0].T, res.grads["W_in"][0].T, res.grads["b"][0], res.grads["b"][0],
                res.grads["W_out"][0].T, res.grads["b_out"][0]]
        for name, a, b in zip(["W_rec", "W_in", "b_ih", "b_hh", "W_out", "b_out"], got, want):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-13), (name, (a - b).abs().max())


@pytest.mark.parametrize("output", ["last_softmax", "softmax"])
def test_cells_equal_engine(output):
    """nn.RNNCell and a user's Elman cell declaring its weight give the engine's Ω too."""
    elman = make_elman(output, seed=3)
    x, y = make_batch(output, seed=2)
    res = elman.forward_backward(x, y, alpha=1.5, omega="squared")
    cell, readout = torch_copy(elman, cell=True)

    def user_cell(u, h):
        return torch.tanh(u @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh)

    for w in (Omega(cell), Omega(user_cell, recurrent_weight=cell.weight_hh, unit="tanh")):
        hs, _ = w(x, torch.zeros(B, H, dtype=torch.float64))
        loss = loss_of(output, readout, hs, y)
        om = w.penalty(loss, semantics="reference")
        assert abs(float(om.detach()) - float(res.omega[0])) <= 1e-10 * max(1.0, float(res.omega[0]))
        g_hh, g_ih = torch.autograd.grad(loss + 1.5 * om, [cell.weight_hh, cell.weight_ih])
        assert torch.allclose(g_hh, res.grads["W_rec"][0].T, rtol=1e-10, atol=1e-13)
        assert torch.allclose(g_ih, res.grads["W_in"][0].T, rtol=1e-10, atol=1e-13)


def test_full_and_reference_differ_where_they_should():
    """Full semantics also reaches W_in and b through σ'(a); reference does not."""
    elman = make_elman("softmax")
    x, y = make_batch("softmax")
    rnn, readout = torch_copy(elman)
    grads = {}
    for sem in ("reference", "full"):
        w = Omega(rnn)
        hs, _ = w(x)
        loss = loss_of("softmax", readout, hs, y)
        om = w.penalty(loss, semantics=sem)
        grads[sem] = torch.autograd.grad(om, [rnn.weight_hh_l0, rnn.weight_ih_l0, rnn.bias_ih_l0],
                                         allow_unused=True)
        grads[sem + "_value"] = float(om.detach())
    assert grads["full_value"] == pytest.approx(grads["reference_value"], rel=1e-12)
    assert grads["reference"][1] is None or grads["reference"][1].abs().max() == 0
    assert grads["full"][1].abs().max() > 1e-6
    assert not torch.allclose(grads["full"][0], grads["reference"][0])


def test_reference_semantics_on_two_layers_reaches_each_recurrent_weight_only():
    """Per layer l, ∂Ω_ref/∂W_hh^l = Σ_k c_k (δ ⊙ σ')ᵀ v_k with c_k from omega_terms; no
    other parameter receives Ω's gradient; the value equals the full semantics'."""
    from bptt.omega import omega_terms

    torch.manual_seed(4)
    rnn = nn.RNN(I, H, num_layers=2).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    w = Omega(rnn)
    out, h_n = w(x)
    loss = (out.tanh() ** 2).sum() + h_n.sum()
    om = w.penalty(loss, semantics="reference")
    deltas = w.error_signals(loss)
    params = dict(rnn.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(om, list(params.values()), allow_unused=True)))
    for name, g in grads.items():
        if "weight_hh" not in name:
            assert g is None or g.abs().max() == 0, name
    for layer in range(2):
        h = w.record.layers[layer].get_states()[0][1:]
        c = deltas[layer][0] * (1 - h * h)
        W = params[f"weight_hh_l{layer}"].detach()
        v = c @ W
        terms = omega_terms((v * v).sum(-1)[:, None], (deltas[layer][0] ** 2).sum(-1)[:, None], "squared")
        want = torch.einsum("tb,tbi,tbj->ij", terms.coef[:, 0], c, v)
        assert torch.allclose(grads[f"weight_hh_l{layer}"], want, rtol=1e-10, atol=1e-14)
    full = Omega(rnn)
    out, h_n = full(x)
    om_full = full.penalty((out.tanh() ** 2).sum() + h_n.sum())
    assert float(om_full.detach()) == pytest.approx(float(om.detach()), rel=1e-12)
