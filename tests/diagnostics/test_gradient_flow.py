"""Temporal components of the gradient (eqs. 4–5), error signals and Jacobian norms."""

import numpy as np
import pytest
import torch

from bptt import ElmanRNN
from bptt.diagnostics import error_signal_norms, gradient_flow, jacobian_norms, member_params
from bptt.engine import reference
from bptt.engine.units import activate

OUTPUTS = ["last_softmax", "softmax", "last_linear", "sigmoid"]


def make_model(output, unit="tanh", H=6, I=3, O=4, E=2, scale=5.0):
    m = ElmanRNN(I, H, O, unit=unit, init="basic_tanh", output=output, seeds=list(range(E)),
                 dtype=torch.float64)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        m.W_rec.mul_(scale)
        m.W_out.mul_(10.0)
        m.b.copy_(torch.randn(m.b.shape, generator=g, dtype=torch.float64) * 0.2)
        if unit == "relu":
            m.b.abs_().add_(0.3)
    return m


def make_batch(output, T=7, B=3, I=3, O=4, seed=0):
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


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def autograd_grads(model, x, y, member, mask=None):
    p = {k: v.clone().requires_grad_(True) for k, v in member_params(model, member).items()}
    hs = reference.run_states({k: v[None] for k, v in p.items()}, x, model.unit)
    loss = reference.loss_of(reference.readout({k: v[None] for k, v in p.items()}, hs, model.output),
                             y, model.output, mask)
    return dict(zip(p, torch.autograd.grad(loss.sum(), list(p.values()))))


def autograd_components(model, x, y, member):
    """Component (t, k) as ∂E_t/∂(the copy of W_rec used at step k), by autograd."""
    p = member_params(model, member)
    T, B = x.shape[:2]
    Ws = [p["W_rec"].clone().requires_grad_(True) for _ in range(T)]
    h = torch.zeros(B, model.n_hidden, dtype=torch.float64)
    hs = [h[None]]
    for k in range(T):
        h = activate(h @ Ws[k] + x[k] @ p["W_in"] + p["b"], model.unit)
        hs.append(h[None])
    z = reference.readout({"W_out": p["W_out"][None], "b_out": p["b_out"][None]}, hs, model.output)
    loss = reference.loss_of(z, y, model.output).sum()
    (dz,) = torch.autograd.grad(loss, z, retain_graph=True)
    out = np.zeros((T, T, model.n_hidden, model.n_hidden))
    sources = range(1, T + 1) if z.dim() == 4 else [T]
    for t in sources:
        part = (z[t - 1] * dz[t - 1]).sum() if z.dim() == 4 else (z * dz).sum()
        gs = torch.autograd.grad(part, Ws[:t], retain_graph=True, allow_unused=True)
        for k, gk in enumerate(gs, start=1):
            if gk is not None:
                out[t - 1, k - 1] = gk.numpy()
    return out


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("unit", ["tanh", "sigmoid", "relu", "linear"])
def test_components_sum_to_the_gradient(output, unit):
    model = make_model(output, unit, scale=1.0 if unit == "linear" else 5.0)
    x, y = make_batch(output)
    flow = gradient_flow(model, x, y, params=("W_rec", "W_in", "b"), member=1, keep_components=True)
    engine = model.forward_backward(x, y, omega=None)
    auto = autograd_grads(model, x, y, member=1)
    for name in ("W_rec", "W_in", "b"):
        total = flow.components[name].sum(axis=(0, 1))
        assert rel(total, engine.grads[name][1].numpy()) < 1e-10, name
        assert rel(total, auto[name].numpy()) < 1e-10, name
        assert rel(flow.gradient[name], auto[name].numpy()) < 1e-10, name
        assert rel(flow.lag_sums[name].sum(0), auto[name].numpy()) < 1e-10, name
    assert flow.loss == pytest.approx(float(engine.loss[1]), rel=1e-12)


@pytest.mark.parametrize("output", ["softmax", "last_linear"])
def test_each_component_matches_autograd_with_untied_copies(output):
    model = make_model(output)
    x, y = make_batch(output, T=6)
    flow = gradient_flow(model, x, y, member=0, keep_components=True)
    ref = autograd_components(model, x, y, member=0)
    comps = flow.components["W_rec"]
    assert rel(comps, ref) < 1e-10
    norms = np.linalg.norm(ref.reshape(6, 6, -1), axis=2)
    T = 6
    for t in range(1, T + 1):
        for k in range(1, T + 1):
            c = flow.component_norms["W_rec"][t - 1, k - 1]
            if k > t or t not in flow.sources:
                assert np.isnan(c)
            else:
                assert c == pytest.approx(norms[t - 1, k - 1], rel=1e-10, abs=1e-300)
    # the lag profile: norm of the per-lag sum and mean of the norms
    for lag in range(T):
        pairs = [(t, t - lag) for t in flow.sources if t - lag >= 1]
        s = sum(ref[t - 1, k - 1] for t, k in pairs)
        assert flow.lag_count[lag] == len(pairs)
        if pairs:
            assert flow.lag_norm["W_rec"][lag] == pytest.approx(np.linalg.norm(s), rel=1e-10, abs=1e-300)
            assert flow.lag_mean["W_rec"][lag] == pytest.approx(
                np.mean([norms[t - 1, k - 1] for t, k in pairs]), rel=1e-10, abs=1e-300)


def test_last_step_outputs_have_one_source_and_mask_limits_sources():
    model = make_model("last_softmax")
    x, y = make_batch("last_softmax")
    flow = gradient_flow(model, x, y)
    assert flow.sources.tolist() == [7]
    assert np.all(np.isnan(flow.component_norms["W_rec"][:-1]))
    model = make_model("softmax")
    x, y = make_batch("softmax")
    mask = torch.ones(7, 3)
    mask[5:, :] = 0
    mask[4, 1:] = 0
    flow = gradient_flow(model, x, y, mask=mask, params="b")
    assert flow.sources.tolist() == [1, 2, 3, 4, 5]
    auto = autograd_grads(model, x, y, member=0, mask=mask)
    assert rel(flow.gradient["b"], auto["b"].numpy()) < 1e-10
    engine = model.forward_backward(x, y, omega=None, mask=mask)
    assert rel(flow.gradient["b"], engine.grads["b"][0].numpy()) < 1e-10


def test_ensemble_inputs_and_targets_select_the_member():
    model = make_model("last_linear")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64)
    y = torch.rand(2, 3, 4, generator=g, dtype=torch.float64)
    flow = gradient_flow(model, x, y, member=1)
    engine = model.forward_backward(x, y, omega=None)
    assert rel(flow.gradient["W_rec"], engine.grads["W_rec"][1].numpy()) < 1e-10


def test_error_signal_norms_match_autograd():
    for output in ("softmax", "last_softmax"):
        model = make_model(output)
        x, y = make_batch(output)
        p = member_params(model, 1)
        h0 = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.3
        leaf = h0[None].clone().requires_grad_(True)
        hs = reference.run_states({k: v[None] for k, v in p.items()}, x, model.unit, leaf)
        loss = reference.loss_of(reference.readout({k: v[None] for k, v in p.items()}, hs, output),
                                 y, output)
        grads = torch.autograd.grad(loss.sum(), hs)
        want = np.array([float(gk.norm()) for gk in grads])
        got = error_signal_norms(model, x, y, member=1, h0=h0)
        assert got.norms.shape == (8,)
        assert rel(got.norms, want) < 1e-10
        assert rel(got.per_sequence, np.stack([gk[0].norm(dim=1).numpy() for gk in grads])) < 1e-10


def test_jacobian_norms_match_autograd_and_the_bound():
    model = make_model("last_softmax", H=5)
    x, _ = make_batch("last_softmax", T=8, B=2)
    p = member_params(model, 0)
    jac = jacobian_norms(model, x, t=6)
    hs = reference.run_states({k: v[None] for k, v in p.items()}, x, "tanh")
    for b in range(2):
        for k in range(0, 7):
            def step(hk, k=k, b=b):
                h = hk
                for i in range(k, 6):
                    h = torch.tanh(h @ p["W_rec"] + x[i, b] @ p["W_in"] + p["b"])
                return h
            J = torch.autograd.functional.jacobian(step, hs[k][0, b].detach())
            assert jac.norms[b, 6 - k] == pytest.approx(float(torch.linalg.matrix_norm(J, ord=2)), rel=1e-10)
    assert np.all(jac.norms <= jac.bound[None] * (1 + 1e-12))
    assert jac.k.tolist() == list(range(6, -1, -1))
    assert jac.eta == pytest.approx(float(torch.linalg.matrix_norm(p["W_rec"], ord=2)))


def test_bad_arguments_raise_value_errors():
    model = make_model("last_softmax")
    x, y = make_batch("last_softmax")
    with pytest.raises(ValueError, match="member"):
        gradient_flow(model, x, y, member=5)
    with pytest.raises(ValueError, match="params"):
        gradient_flow(model, x, y, params=("W_out",))
    with pytest.raises(ValueError, match="input features"):
        gradient_flow(model, x[..., :2], y)
    with pytest.raises(ValueError, match="mask"):
        gradient_flow(model, x, y, mask=torch.ones(7, 3))
    with pytest.raises(ValueError, match="t must be"):
        jacobian_norms(model, x, t=99)
