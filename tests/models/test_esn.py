"""The echo-state network: its reservoir's construction, the ridge readout against a
least-squares solve, readout-only gradients, and its arguments."""

import pytest
import torch

from bptt.models import ESN
from bptt.models.base import AutogradEnsemble
from conftest import OUTPUTS, make_batch


def test_reservoir_construction():
    m = ESN(4, 60, 3, ensemble=3, radius=0.8, nonzero=7, input_scaling=0.5, bias_scaling=0.2,
            dtype=torch.float64)
    assert torch.allclose(m.spectral_radius(), torch.full((3,), 0.8, dtype=torch.float64), atol=1e-10)
    assert (torch.count_nonzero(m.W_rec.detach(), dim=2) == 7).all()
    assert float(m.W_in.abs().max()) <= 0.5 and float(m.W_in.abs().max()) > 0.4
    assert float(m.b.abs().max()) <= 0.2
    assert torch.count_nonzero(m.W_out) == 0 and torch.count_nonzero(m.b_out) == 0
    assert not any(getattr(m, k).requires_grad for k in ("W_rec", "W_in", "b"))


def test_forward_is_the_leaky_reservoir():
    m = ESN(3, 8, 4, ensemble=2, output="softmax", leak=0.3, dtype=torch.float64)
    with torch.no_grad():
        m.W_out.normal_()
    x, _, _ = make_batch("softmax", T=6)
    z = m.forward(x)
    for e in range(2):
        h = torch.zeros(3, 8, dtype=torch.float64)
        for t in range(6):
            h = 0.7 * h + 0.3 * torch.tanh(h @ m.W_rec[e] + x[t] @ m.W_in[e] + m.b[e])
            assert torch.allclose(h @ m.W_out[e] + m.b_out[e], z[t, e], atol=1e-12, rtol=0)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("ridge", (0.0, 0.1))
def test_ridge_readout_is_the_least_squares_solution(output, ridge):
    m = ESN(3, 6, 4, ensemble=2, output=output, dtype=torch.float64)
    x, y, mask = make_batch(output, T=8, B=20, E=2)
    m.fit_readout(x, y, ridge=ridge, mask=mask)
    h = m.states(x)[0]
    for e in range(2):
        if m.per_step:
            keep = mask.bool().reshape(-1)
            X = h[:, e].reshape(-1, 6)[keep]
            Y = y[:, e].reshape(-1, *y.shape[3:])[keep]
        else:
            X, Y = h[e], y[e]
        if output in ("last_softmax", "softmax"):
            Y = torch.nn.functional.one_hot(Y, 4).double()
        A = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], 1)
        # ridge on the weights, not on the bias: stack √λ·[I 0] under A
        P = torch.cat([A, ridge ** 0.5 * torch.eye(7, dtype=torch.float64)[:6]], 0)
        Q = torch.cat([Y, torch.zeros(6, 4, dtype=torch.float64)], 0)
        beta = torch.linalg.lstsq(P, Q).solution
        assert torch.allclose(m.W_out[e], beta[:6], atol=1e-8, rtol=0)
        assert torch.allclose(m.b_out[e], beta[6], atol=1e-8, rtol=0)


def test_ridge_readout_learns_a_linear_map_of_the_states():
    m = ESN(2, 30, 1, output="last_linear", seed=3, dtype=torch.float64)
    x, _, _ = make_batch("last_linear", T=10, B=200, n_in=2, n_out=1)
    target = m.states(x)[0][0] @ torch.linspace(-1, 1, 30, dtype=torch.float64).unsqueeze(1) + 0.5
    m.fit_readout(x, target, ridge=0.0)
    assert float(m.evaluate(x, target, tolerance=1e-6).loss) < 1e-12


@pytest.mark.parametrize("output", OUTPUTS)
def test_gradients_are_the_readouts_only(output):
    m = ESN(3, 6, 4, ensemble=2, output=output, dtype=torch.float64)
    with torch.no_grad():
        m.W_out.normal_()
    x, y, mask = make_batch(output, T=7)
    out = m.forward_backward(x, y, alpha=0.0, mask=mask)
    for k in ("W_rec", "W_in", "b"):
        assert torch.count_nonzero(out.grads[k]) == 0
    for p in m.params.values():
        p.requires_grad_(True)
    ref = AutogradEnsemble.forward_backward(m, x, y, alpha=0.0, mask=mask)
    for k in ("W_out", "b_out"):
        assert torch.allclose(out.grads[k], ref.grads[k], atol=1e-12, rtol=0)
        assert float(out.grads[k].abs().sum()) > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": 0.0}, "radius"), ({"radius": -1.0}, "radius"), ({"leak": 0.0}, "leak"), ({"leak": 1.5}, "leak"),
    ({"nonzero": 0}, "nonzero"), ({"input_scaling": 0.0}, "input_scaling"), ({"bias_scaling": -1.0}, "bias_scaling"),
    ({"init": "orthogonal"}, "unknown init")])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ESN(3, 5, 4, **kwargs)
    m = ESN(3, 5, 4)
    x, y, _ = make_batch("last_softmax", dtype=torch.float32)
    with pytest.raises(ValueError, match="ridge"):
        m.fit_readout(x, y, ridge=-1.0)


@pytest.mark.parametrize("kwargs", [{"radius": "1"}, {"leak": float("nan")}, {"nonzero": 2.5}, {"radius": True}])
def test_non_numbers_are_refused_by_name(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        ESN(3, 5, 4, **kwargs)
