"""Every ensemble model keeps the shared interface: independence of members, select,
config and state-dict round trips, every output kind, state carried across windows,
Ω refused where the recurrent weights are fixed, and arguments checked at the boundary."""

import json

import pytest
import torch

from bptt.clip.norm import global_norm
from bptt.models import ESN, GRU, LSTM, MODELS, ElmanRNN, EnsembleModel, LeakyRNN, SkipRNN
from bptt.models.base import mean_loss
from conftest import OUTPUTS, make_batch

NAMES = tuple(MODELS)
AUTOGRAD = ("lstm", "gru", "leaky", "skip")
OPTIONS = {"skip": {"delay": 2}, "elman": {"init": "basic_tanh"}, "leaky": {"init": "basic_tanh"}}


def build(name, output="last_softmax", **kw):
    kw = {"dtype": torch.float64, **OPTIONS.get(name, {}), **kw}
    return MODELS[name](3, 5, 4, output=output, **kw)


def perturb(model, seed=1, scale=0.3):
    """Random values in every parameter (the ESN's readout starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.params.values():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return model


def close(a, b, tol=1e-12):
    return torch.allclose(a, b, atol=tol, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_protocol_and_structure(name):
    m = build(name, ensemble=2)
    assert isinstance(m, EnsembleModel)
    assert "W_rec" in m.params and set(m.recurrent_names) <= set(m.params)
    assert all(p.shape[0] == 2 for p in m.params.values())
    assert m.ensemble == 2 and m.dtype == torch.float64 and m.device.type == "cpu"
    assert m.spectral_radius().shape == (2,)
    assert build(name, output="softmax").per_step and not m.per_step


def test_recurrent_names():
    assert ElmanRNN(2, 3, 2).recurrent_names == ("W_rec",)
    assert LSTM(2, 3, 2).recurrent_names == ("W_rec",) and GRU(2, 3, 2).recurrent_names == ("W_rec",)
    assert SkipRNN(2, 3, 2).recurrent_names == ("W_rec", "W_skip")
    assert LeakyRNN(2, 3, 2).recurrent_names == ("W_rec",)
    assert ESN(2, 3, 2).recurrent_names == ()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_each_member_is_the_single_network_of_its_seed(name, output):
    seeds = [5, 9, 2]
    ens = build(name, output, seeds=seeds)
    x, y, mask = make_batch(output, E=3)
    out = ens.forward_backward(x, y, alpha=0.0, mask=mask)
    for e, s in enumerate(seeds):
        one = build(name, output, seeds=[s])
        for k, p in one.params.items():
            assert torch.equal(p.detach()[0], ens.params[k].detach()[e]), k
        ref = one.forward_backward(x[:, e:e + 1], y[e:e + 1] if not ens.per_step else y[:, e:e + 1],
                                   alpha=0.0, mask=mask)
        assert close(ref.loss[0], out.loss[e])
        assert close(ref.h_last[0], out.h_last[e])
        for k in ref.grads:
            assert close(ref.grads[k][0], out.grads[k][e]), k
    assert not torch.equal(ens.W_in[0], ens.W_in[1])


@pytest.mark.parametrize("name", NAMES)
def test_select_config_and_state_dict_round_trip(name):
    m = perturb(build(name, "softmax", ensemble=3))
    x, y, _ = make_batch("softmax")
    sub = m.select([2, 0])
    assert sub.seeds == [m.seeds[2], m.seeds[0]] and type(sub) is type(m)
    for k, p in sub.params.items():
        assert torch.equal(p, m.params[k][[2, 0]]), k
    assert close(sub.forward(x), m.forward(x)[:, [2, 0]])
    cfg = json.loads(json.dumps(m.config()))                        # plain JSON
    again = type(m).from_config(cfg)
    again.load_state_dict(m.state_dict())
    assert again.config() == m.config()
    assert torch.equal(again.forward(x), m.forward(x))
    fresh = type(m).from_config(cfg)                                   # same seeds, same draw
    assert torch.equal(fresh.W_rec, build(name, "softmax", ensemble=3).W_rec)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_losses_evaluation_and_norms_agree(name, output):
    m = perturb(build(name, output, ensemble=2))
    x, y, mask = make_batch(output, T=9)
    out = m.forward_backward(x, y, alpha=0.0, mask=mask)
    z = m.forward(x)
    assert z.shape == ((9, 2, 3, 4) if m.per_step else (2, 3, 4))
    assert close(out.loss, mean_loss(z.detach(), y, output, mask))
    assert close(out.grad_norm, global_norm(out.grads)) and bool(out.finite.all())
    assert set(out.grads) == set(m.params)
    assert all(out.grads[k].shape == p.shape for k, p in m.params.items())
    ev = m.evaluate(x, y, tolerance=0.5, mask=mask)
    assert close(ev.loss, out.loss) and close(ev.h_last, out.h_last)
    chunked = m.evaluate(x, y, tolerance=0.5, mask=mask, chunk=2)
    assert close(chunked.loss, out.loss)
    if output == "sigmoid":
        assert ev.wrong is None
    else:
        assert ev.wrong.shape == (2, 3) and torch.equal(chunked.wrong, ev.wrong)
        if output == "last_softmax":
            assert torch.equal(ev.wrong, z.argmax(-1) != y)
        if output == "softmax":
            miss = (z.argmax(-1) != y.unsqueeze(1)) & mask.bool().unsqueeze(1)
            assert torch.equal(ev.wrong, miss.any(0))


@pytest.mark.parametrize("name", NAMES)
def test_state_carries_across_windows(name):
    m = perturb(build(name, "softmax", ensemble=2))
    x, y, _ = make_batch("softmax", T=8)
    whole = m.evaluate(x, y)
    first = m.forward_backward(x[:3], y[:3], alpha=0.0)
    assert first.h_last.shape == (2, 3, m.state_size)
    rest = m.evaluate(x[3:], y[3:], h0=first.h_last)
    assert close(rest.h_last, whole.h_last)
    assert close(m.forward(x[3:], h0=first.h_last), m.forward(x)[3:])
    with pytest.raises(ValueError, match="h0 must be"):
        m.forward_backward(x, y, h0=torch.zeros(2, 3, m.state_size + 1, dtype=torch.float64))


@pytest.mark.parametrize("name", AUTOGRAD)
@pytest.mark.parametrize("output", ("last_softmax", "sigmoid"))
def test_gradients_match_finite_differences(name, output):
    m = perturb(build(name, output, ensemble=2))
    x, y, mask = make_batch(output, T=5, B=2)
    names = list(m.params)
    buffers = dict(m.named_buffers())

    def loss(*tensors):
        params = dict(zip(names, tensors)) | buffers
        h, _ = m._run(params, x, None, m.per_step)
        return mean_loss(m._readout(params, h), y, output, mask).sum()

    leaves = [p.detach().clone().requires_grad_(True) for p in m.params.values()]
    assert torch.autograd.gradcheck(loss, leaves, eps=1e-6, atol=1e-6)
    out = m.forward_backward(x, y, alpha=0.0, mask=mask)
    expected = torch.autograd.grad(loss(*leaves), leaves)
    for k, g in zip(names, expected):
        assert close(out.grads[k], g, 1e-10), k


def test_omega_is_refused_by_the_echo_state_network_only():
    x, y, _ = make_batch("last_softmax")
    m = build("esn", ensemble=2)
    with pytest.raises(ValueError, match="meaningless on an echo-state"):
        m.forward_backward(x, y, alpha=0.5, omega="squared")
    with pytest.raises(ValueError, match="meaningless on an echo-state"):
        m.forward_backward(x, y, alpha=torch.tensor([0.0, 1.0], dtype=torch.float64))
    m.forward_backward(x, y, alpha=0.0, omega="squared")
    m.forward_backward(x, y, alpha=2.0, omega=None)
    for name in AUTOGRAD:                        # computed (tests/omega/test_ensemble_models.py)
        out = build(name, ensemble=2).forward_backward(x, y, alpha=torch.tensor([0.0, 1.0], dtype=torch.float64))
        assert (out.omega > 0).all()          # measured for every member, weighed by α


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kwargs, match", [
    ({"init": "xavier"}, "unknown init"), ({"output": "crf"}, "unknown output"),
    ({"ensemble": 0}, "ensemble"), ({"ensemble": 2.5}, "ensemble"), ({"dtype": torch.float16}, "dtype"),
    ({"seeds": []}, "seeds"), ({"seeds": [1, 2.5]}, "seeds must be integers"), ({"seed": "a"}, "seed must be")])
def test_invalid_common_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS[name](3, 5, 4, **kwargs)
    for bad in (0, float("nan"), "5", True):
        with pytest.raises(ValueError, match="n_hidden"):
            MODELS[name](3, bad, 4)


@pytest.mark.parametrize("name", ("leaky", "skip"))
def test_invalid_unit(name):
    with pytest.raises(ValueError, match="unknown unit"):
        MODELS[name](3, 5, 4, unit="gelu")


@pytest.mark.parametrize("name", NAMES)
def test_inputs_and_targets_are_checked(name):
    m = build(name, ensemble=2)
    x, y, _ = make_batch("last_softmax")
    with pytest.raises(ValueError, match="input features"):
        m.forward_backward(x[..., :2], y)
    with pytest.raises(ValueError, match="class indices"):
        m.evaluate(x, y.double())
    with pytest.raises(ValueError, match="a mask applies to per-step outputs"):
        m.forward_backward(x, y, mask=torch.ones(7, 3))


@pytest.mark.parametrize("name", ("leaky", "skip"))
def test_init_options_are_checked(name):
    with pytest.raises(ValueError, match="unknown option 'gain' of init smart_tanh"):
        MODELS[name](3, 5, 4, init_options={"gain": 2.0})
    with pytest.raises(ValueError, match="radius"):
        MODELS[name](3, 5, 4, init_options={"radius": -1.0})
    m = MODELS[name](3, 5, 4, init="orthogonal", init_options={"gain": 0.5}, dtype=torch.float64)
    assert torch.allclose(m.spectral_radius(), torch.tensor([0.5], dtype=torch.float64), atol=1e-12)
