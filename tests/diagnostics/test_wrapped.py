"""The diagnostics on modules wrapped in bptt.omega.Omega.

On a one-layer nn.RNN carrying an ElmanRNN's weights (weight_hh = W_recᵀ,
weight_ih = W_inᵀ, bias_ih = b, bias_hh = 0) every diagnostic equals the engine path's;
on an LSTM the Jacobian norms and the gradient's components are checked against
autograd through an explicit unroll.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bptt import ElmanRNN
from bptt.diagnostics import (
    error_signal_norms,
    gradient_flow,
    jacobian_norms,
    lyapunov_exponents,
    model_lyapunov,
    model_spectrum,
    recurrent_conditions,
)
from bptt.omega import Omega

T, B, I, H, O = 7, 3, 3, 5, 4
D = torch.float64


def make(output, unit="tanh", seed=0):
    m = ElmanRNN(I, H, O, unit=unit, init="basic_tanh", output=output, seed=seed, dtype=D)
    g = torch.Generator().manual_seed(seed + 10)
    with torch.no_grad():
        m.W_rec.copy_(torch.randn(1, H, H, generator=g, dtype=D) * 0.7)
        m.W_in.copy_(torch.randn(1, I, H, generator=g, dtype=D) * 0.5)
        m.b.copy_(torch.randn(1, H, generator=g, dtype=D) * 0.2)
        m.W_out.copy_(torch.randn(1, H, O, generator=g, dtype=D))
        m.b_out.copy_(torch.randn(1, O, generator=g, dtype=D) * 0.1)
    rnn = nn.RNN(I, H, nonlinearity=unit).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(m.W_rec[0].T)
        rnn.weight_ih_l0.copy_(m.W_in[0].T)
        rnn.bias_ih_l0.copy_(m.b[0])
        rnn.bias_hh_l0.zero_()
    return m, Omega(rnn)


def batch(output, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, I, generator=g, dtype=D)
    if output == "last_softmax":
        y = torch.randint(O, (B,), generator=g)
    elif output == "softmax":
        y = torch.randint(O, (T, B), generator=g)
    else:
        y = (torch.rand(T, B, O, generator=g) < 0.3).to(D)
    return x, y


def loss_fn(m, output, y, per_step=False):
    """The engine's loss on the wrapper's result; per_step gives the E_t whose sum is E."""
    def f(result):
        hs = result[0]
        z = hs @ m.W_out[0] + m.b_out[0]
        if output == "last_softmax":
            return F.cross_entropy(z[-1], y)
        if output == "softmax":
            per = F.cross_entropy(z.reshape(T * B, O), y.reshape(T * B), reduction="none").view(T, B)
        else:
            per = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(-1)
        per = per.sum(1) / (T * B)
        return per if per_step else per.sum()
    return f


@pytest.mark.parametrize("output", ["last_softmax", "softmax", "sigmoid"])
def test_error_signals_equal_the_engine_path(output):
    m, w = make(output)
    x, y = batch(output)
    h0 = torch.randn(B, H, generator=torch.Generator().manual_seed(4), dtype=D) * 0.3
    want = error_signal_norms(m, x, y, h0=h0)
    got = error_signal_norms(w, x, loss_fn(m, output, y), h0=h0[None])
    assert got.loss == pytest.approx(want.loss, rel=1e-12)
    np.testing.assert_allclose(got.signals, want.signals, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.norms, want.norms, rtol=1e-10)
    np.testing.assert_allclose(got.per_sequence, want.per_sequence, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("t", [None, 3])
def test_jacobian_norms_equal_the_engine_path(t):
    m, w = make("softmax", seed=2)
    x, _ = batch("softmax")
    want = jacobian_norms(m, x, t=t)
    got = jacobian_norms(w, x, t=t)
    assert got.t == want.t
    np.testing.assert_allclose(got.norms, want.norms, rtol=1e-10)
    assert got.lambda1 == pytest.approx(want.lambda1, rel=1e-12)
    assert got.gamma == want.gamma


@pytest.mark.parametrize("output", ["last_softmax", "softmax"])
def test_gradient_flow_equals_the_engine_path(output):
    m, w = make(output, seed=3)
    x, y = batch(output, seed=2)
    want = gradient_flow(m, x, y, params=("W_rec", "W_in", "b"), keep_components=True)
    names = ("weight_hh_l0", "weight_ih_l0", "bias_ih_l0")
    got = gradient_flow(w, x, loss_fn(m, output, y, per_step=True), params=names, keep_components=True)
    np.testing.assert_array_equal(got.sources, want.sources)
    np.testing.assert_array_equal(got.lag_count, want.lag_count)
    assert got.loss == pytest.approx(want.loss, rel=1e-12)
    for mine, theirs, transpose in zip(names, ("W_rec", "W_in", "b"), (True, True, False)):
        np.testing.assert_allclose(got.component_norms[mine], want.component_norms[theirs], rtol=1e-10,
                                   atol=1e-15)
        np.testing.assert_allclose(got.lag_norm[mine], want.lag_norm[theirs], rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(got.lag_mean[mine], want.lag_mean[theirs], rtol=1e-10, atol=1e-15)
        g, c = got.gradient[mine], got.components[mine]
        if transpose:
            g, c = g.T, np.swapaxes(c, -1, -2)
        np.testing.assert_allclose(g, want.gradient[theirs], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(c, want.components[theirs], rtol=1e-10, atol=1e-14)


def test_lyapunov_equals_the_engine_path():
    m, w = make("softmax", seed=4)
    with torch.no_grad():
        m.W_rec.mul_(2.0)
        w.module.weight_hh_l0.mul_(2.0)
    u = torch.randn(60, I, generator=torch.Generator().manual_seed(0), dtype=D)
    for inputs, kw in ((None, {"steps": 80, "transient": 20}), (u, {"transient": 10})):
        want = model_lyapunov(m, inputs, **kw)
        got = lyapunov_exponents(w, inputs=inputs, **kw)
        np.testing.assert_allclose(got.exponents, want.exponents, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.history, want.history, rtol=1e-9, atol=1e-12)
        assert (got.mode, got.steps, got.unit) == (want.mode, want.steps, want.unit)
    batch_u = u[:, None].expand(60, 2, I)
    got = model_lyapunov(w, batch_u, sequence=1, k=2, transient=10)
    assert got.exponents.shape == (2,)


def test_conditions_and_spectrum_equal_the_engine_path():
    m, w = make("softmax", seed=5)
    want = recurrent_conditions(m.W_rec[0], m.unit)
    got = recurrent_conditions(w)
    assert got == want
    np.testing.assert_allclose(model_spectrum(w).singular_values, model_spectrum(m).singular_values,
                               rtol=1e-12)
    with pytest.raises(ValueError, match="Elman-type"):
        recurrent_conditions(Omega(nn.LSTM(3, 4)))
    with pytest.raises(ValueError, match="Elman-type"):
        recurrent_conditions(Omega(nn.RNN(3, 4, num_layers=2)))


def lstm_unroll(m, x, s0, k, t):
    """The stacked state s_t as a function of s_k [B, S] (S = layers × (h, c)), by nn.LSTM calls."""
    L, Hh = m.num_layers, m.hidden_size

    def run(s_k):
        hc = s_k.view(B, L, 2, Hh)
        state = (hc[:, :, 0].transpose(0, 1).contiguous(), hc[:, :, 1].transpose(0, 1).contiguous())
        _, (h, c) = m(x[k:t], state) if t > k else (None, state)
        return torch.stack([h, c], 2).transpose(0, 1).reshape(B, -1)
    return run


def test_lstm_jacobian_norms_and_components_against_autograd():
    torch.manual_seed(0)
    m = nn.LSTM(I, 4, num_layers=2).double()
    w = Omega(m)
    x = torch.randn(T, B, I, dtype=D)
    got = jacobian_norms(w, x, t=5)
    assert np.isnan(got.lambda1) and np.isnan(got.gamma)
    with torch.no_grad():
        _, _ = w(x)
    states = torch.cat([p.reshape(T + 1, B, -1) for lr in w.record.layers for p in lr.get_states()], -1)
    for lag in range(0, 6):
        k = 5 - lag
        J = torch.autograd.functional.jacobian(lstm_unroll(m, x, None, k, 5), states[k])   # [B,S,B,S]
        Jb = torch.stack([J[b, :, b] for b in range(B)])
        np.testing.assert_allclose(got.norms[:, lag], torch.linalg.matrix_norm(Jb, ord=2).numpy(),
                                   rtol=1e-10)

    W = torch.randn(4, 2, dtype=D)

    def per_step(result):
        return torch.log_softmax(result[0] @ W, -1)[..., 0].sum(1) / (T * B)

    flow = gradient_flow(w, x, per_step, params=("weight_hh_l0", "weight_ih_l1", "bias_hh_l1"))
    out, _ = m(x)
    grads = torch.autograd.grad(per_step((out,)).sum(), [m.weight_hh_l0, m.weight_ih_l1, m.bias_hh_l1])
    for name, g in zip(("weight_hh_l0", "weight_ih_l1", "bias_hh_l1"), grads):
        np.testing.assert_allclose(flow.gradient[name], g.numpy(), rtol=1e-10, atol=1e-14)
    assert np.isnan(flow.component_norms["weight_hh_l0"][0, 1])        # k > t: no component


def test_wrapped_bad_arguments():
    m, w = make("softmax")
    x, y = batch("softmax")
    with pytest.raises(ValueError, match="callable"):
        error_signal_norms(w, x, y)
    with pytest.raises(ValueError, match="mask"):
        error_signal_norms(w, x, loss_fn(m, "softmax", y), mask=torch.ones(T, B))
    with pytest.raises(ValueError, match="params must name"):
        gradient_flow(w, x, loss_fn(m, "softmax", y), params=("W_rec_typo",))
    with pytest.raises(ValueError, match="scalar or the"):
        gradient_flow(w, x, lambda r: r[0].sum(-1))
    with pytest.raises(ValueError, match="t must be"):
        jacobian_norms(w, x, t=T + 1)
    with pytest.raises(ValueError, match="user cell"):
        lyapunov_exponents(Omega(lambda u, h: torch.tanh(h)), steps=10, transient=1, n_in=2)


def test_lstm_error_signal_at_the_initial_state_is_the_gradient_of_h0_c0():
    torch.manual_seed(1)
    m = nn.LSTM(I, 4, num_layers=2).double()
    x = torch.randn(T, B, I, dtype=D)
    h0 = torch.randn(2, B, 4, dtype=D, requires_grad=True)
    c0 = torch.randn(2, B, 4, dtype=D, requires_grad=True)
    W = torch.randn(4, 2, dtype=D)

    def loss(result):
        out, (h, c) = result
        return (out @ W).tanh().sum() + (c ** 2).sum()

    got = error_signal_norms(Omega(m), x, loss, h0=(h0.detach(), c0.detach()))
    gh, gc = torch.autograd.grad(loss(m(x, (h0, c0))), [h0, c0])
    want = torch.cat([gh[0], gc[0], gh[1], gc[1]], -1)             # layer 0 (h, c), layer 1 (h, c)
    np.testing.assert_allclose(got.signals[0], want.numpy(), rtol=1e-10, atol=1e-14)
    assert got.signals.shape == (T + 1, B, 16)
