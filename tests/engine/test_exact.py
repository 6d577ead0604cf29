"""The hand-derived backward pass against torch.autograd, in float64."""

import dataclasses

import pytest
import torch

from bptt import ElmanRNN
from bptt.engine import evaluate, forward_backward, reference_forward_backward

UNITS = ["tanh", "sigmoid", "relu", "linear"]
OUTPUTS = ["last_softmax", "softmax", "last_linear", "sigmoid"]


def make_batch(output, T, B, I, O, E=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    lead = (T,) if E is None else (T, E)
    x = torch.randn(*lead, B, I, generator=g, dtype=torch.float64)
    ylead = () if E is None else (E,)
    if output == "last_softmax":
        y = torch.randint(O, (*ylead, B), generator=g)
    elif output == "softmax":
        y = torch.randint(O, (*lead, B), generator=g)
    elif output == "last_linear":
        y = torch.rand(*ylead, B, O, generator=g, dtype=torch.float64)
    else:
        y = (torch.rand(*lead, B, O, generator=g) < 0.3).to(torch.float64)
    return x, y


def make_params(unit, E=3, I=4, H=7, O=5, seed=1, scale=0.6):
    # larger weights than the paper's inits, so that all terms matter
    g = torch.Generator().manual_seed(seed)
    p = {"W_rec": torch.randn(E, H, H, generator=g, dtype=torch.float64) * scale,
         "W_in": torch.randn(E, I, H, generator=g, dtype=torch.float64) * 0.5,
         "b": torch.randn(E, H, generator=g, dtype=torch.float64) * 0.1,
         "W_out": torch.randn(E, H, O, generator=g, dtype=torch.float64) * 0.5,
         "b_out": torch.randn(E, O, generator=g, dtype=torch.float64) * 0.1}
    if unit == "relu":  # keep units alive
        p["b"] = p["b"].abs() + 0.3
    return p


def assert_same(fast, ref, rtol=1e-10):
    for name in ("loss", "omega", "omega_fraction", "grad_norm"):
        a, b = getattr(fast, name), getattr(ref, name)
        assert torch.allclose(a, b, rtol=rtol, atol=1e-13), (name, a, b)
    for k in ref.grads:
        a, b = fast.grads[k], ref.grads[k]
        err = (a - b).abs().max() / b.abs().max().clamp_min(1e-30)
        assert err < rtol, (k, float(err))


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("omega", [None, "squared", "plain"])
def test_gradients_match_autograd(unit, output, omega):
    params = make_params(unit)
    x, y = make_batch(output, T=9, B=6, I=4, O=5)
    alpha = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    kw = dict(unit=unit, output=output, alpha=alpha, omega=omega)
    fast = forward_backward(params, x, y, **kw)
    ref = reference_forward_backward(params, x, y, **kw)
    assert_same(fast, ref)
    if omega:
        assert (fast.omega > 0).all()
        assert (fast.omega_fraction > 0).all()


@pytest.mark.parametrize("output", OUTPUTS)
def test_per_member_inputs_targets_h0_and_mask(output):
    params = make_params("tanh")
    x, y = make_batch(output, T=6, B=4, I=4, O=5, E=3)
    h0 = torch.randn(3, 4, 7, dtype=torch.float64) * 0.3
    mask = None
    if output in ("softmax", "sigmoid"):
        mask = torch.ones(6, 4, dtype=torch.float64)
        mask[4:, 1] = 0
        mask[2:, 3] = 0
    kw = dict(unit="tanh", output=output, alpha=1.5, omega="squared", h0=h0, mask=mask)
    assert_same(forward_backward(params, x, y, **kw), reference_forward_backward(params, x, y, **kw))


@pytest.mark.parametrize("T", [1, 2, 40])
@pytest.mark.parametrize("output", ["last_softmax", "softmax"])
def test_lengths(T, output):
    params = make_params("tanh", scale=0.4)
    x, y = make_batch(output, T=T, B=3, I=4, O=5)
    kw = dict(unit="tanh", output=output, alpha=2.0, omega="squared")
    assert_same(forward_backward(params, x, y, **kw), reference_forward_backward(params, x, y, **kw))


def test_omega_fraction_counts_vanished_pairs():
    # With last-step outputs and a linear unit with W_rec = 0, ∂E/∂h_k = 0 for k < T:
    # only the pair into the last step enters Ω.
    params = make_params("linear")
    params["W_rec"].zero_()
    x, y = make_batch("last_softmax", T=8, B=5, I=4, O=5)
    out = forward_backward(params, x, y, unit="linear", output="last_softmax", omega="squared")
    assert torch.allclose(out.omega_fraction, torch.full((3,), 1 / 8, dtype=torch.float64))
    # v_k = 0 for the entered pair, so each Ω_k = (0 - 1)^2 = 1
    assert torch.allclose(out.omega, torch.ones(3, dtype=torch.float64))


def test_omega_is_zero_for_norm_preserving_linear_map():
    # Linear unit, orthogonal W_rec: ‖g W_rec^T‖ = ‖g‖, so Ω = 0 and its gradient is 0.
    params = make_params("linear")
    q, _ = torch.linalg.qr(torch.randn(3, 7, 7, dtype=torch.float64))
    params["W_rec"] = q
    x, y = make_batch("last_softmax", T=10, B=5, I=4, O=5)
    kw = dict(unit="linear", output="last_softmax", omega="squared")
    with_a = forward_backward(params, x, y, alpha=3.0, **kw)
    without = forward_backward(params, x, y, alpha=0.0, **kw)
    assert with_a.omega.abs().max() < 1e-20
    assert torch.allclose(with_a.grads["W_rec"], without.grads["W_rec"], atol=1e-14)


def test_model_api_matches_engine_and_float32_close():
    model = ElmanRNN(6, 20, 4, ensemble=2, init="basic_tanh", seed=3, dtype=torch.float64)
    x = torch.nn.functional.one_hot(torch.randint(6, (30, 5)), 6).to(torch.float32)
    y = torch.randint(4, (5,))
    out = model.forward_backward(x, y, alpha=2.0, omega="squared")
    assert out.loss.shape == out.omega.shape == out.grad_norm.shape == (2,)
    assert out.grads["W_rec"].shape == (2, 20, 20)
    # the autograd forward gives the same loss
    z = model(x)
    ce = torch.nn.functional.cross_entropy(z.reshape(-1, 4), y.repeat(2), reduction="none").view(2, 5).mean(1)
    assert torch.allclose(ce.double(), out.loss, rtol=1e-12)
    m32 = ElmanRNN(6, 20, 4, ensemble=2, init="basic_tanh", seed=3)
    out32 = m32.forward_backward(x, y, alpha=2.0)
    assert torch.allclose(out32.grads["W_rec"].double(), out.grads["W_rec"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("output", OUTPUTS)
def test_evaluate_matches_training_loss_and_is_chunk_invariant(output):
    params = make_params("tanh", scale=0.4)
    x, y = make_batch(output, T=23, B=6, I=4, O=5)
    fb = forward_backward(params, x, y, unit="tanh", output=output)
    for chunk in (1, 5, 64):
        ev = evaluate(params, x, y, unit="tanh", output=output, tolerance=0.04, chunk=chunk)
        assert torch.allclose(ev.loss, fb.loss, rtol=1e-12)
        assert torch.allclose(ev.h_last, fb.h_last)


def test_evaluate_errors_match_autograd_outputs():
    params = make_params("tanh", scale=0.4)
    x, y = make_batch("softmax", T=12, B=50, I=4, O=3)
    ev = evaluate(params, x, y, unit="tanh", output="softmax", chunk=5)
    from bptt.engine.reference import readout, run_states
    z = readout(params, run_states(params, x, "tanh"), "softmax")          # [T,E,B,O]
    expected = (z.argmax(-1) != y[:, None, :]).any(0)
    assert torch.equal(ev.wrong, expected)
    x, y = make_batch("last_linear", T=12, B=50, I=4, O=2)
    ev = evaluate(params | {"W_out": params["W_out"][..., :2], "b_out": params["b_out"][:, :2]},
                  x, y, unit="tanh", output="last_linear", tolerance=0.04)
    p2 = params | {"W_out": params["W_out"][..., :2], "b_out": params["b_out"][:, :2]}
    z = readout(p2, run_states(p2, x, "tanh"), "last_linear")
    assert torch.equal(ev.wrong, ((z - y) ** 2).sum(-1) > 0.04)


def test_long_forward_only_evaluation():
    model = ElmanRNN(6, 16, 4, ensemble=2, init="smart_tanh", seed=0, dtype=torch.float64)
    x = torch.nn.functional.one_hot(torch.randint(6, (5000, 3)), 6).double()
    y = torch.randint(4, (3,))
    ev = model.evaluate(x, y, chunk=256)
    with torch.no_grad():
        ref = model(x)
    ref_loss = torch.nn.functional.cross_entropy(ref.reshape(-1, 4), y.repeat(2), reduction="none").view(2, 3).mean(1)
    assert torch.allclose(ev.loss, ref_loss, rtol=1e-10)


def test_nonfinite_is_reported():
    params = {k: v.float() for k, v in make_params("linear", scale=3.0).items()}
    params["W_rec"][0] *= 0.01                       # member 0 stays finite
    x, y = make_batch("last_softmax", T=120, B=3, I=4, O=5)
    out = forward_backward(params, x.float(), y, unit="linear", output="last_softmax")
    assert out.finite.tolist() == [True, False, False]


@pytest.mark.parametrize("omega", [None, "squared"])
def test_large_blocks_take_the_sigmoid_form_of_tanh_exactly(omega):
    from bptt.engine.exact import TANH_BY_SIGMOID_FROM
    E, B, H = 2, 41, 50
    assert E * B * H >= TANH_BY_SIGMOID_FROM
    g = torch.Generator().manual_seed(3)
    params = {"W_rec": torch.randn(E, H, H, generator=g, dtype=torch.float64) * 0.15,
              "W_in": torch.randn(E, 4, H, generator=g, dtype=torch.float64),
              "b": torch.randn(E, H, generator=g, dtype=torch.float64) * 0.1,
              "W_out": torch.randn(E, H, 3, generator=g, dtype=torch.float64) * 0.3,
              "b_out": torch.zeros(E, 3, dtype=torch.float64)}
    x, y = make_batch("last_softmax", T=6, B=B, I=4, O=3)
    kw = dict(unit="tanh", output="last_softmax", alpha=1.0, omega=omega)
    assert_same(forward_backward(params, x, y, **kw), reference_forward_backward(params, x, y, **kw))
    ev = evaluate(params, x, y, unit="tanh", output="last_softmax")
    assert torch.allclose(ev.loss, reference_forward_backward(params, x, y, **kw).loss, rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("unit", ["tanh", "sigmoid"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_cuda_engine_matches_cpu_autograd(unit, output):
    params = make_params(unit)
    x, y = make_batch(output, T=12, B=5, I=4, O=5)
    kw = dict(unit=unit, output=output, alpha=torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64),
              omega="squared")
    ref = reference_forward_backward(params, x, y, **kw)
    cuda = {k: v.cuda() for k, v in params.items()}
    kw["alpha"] = kw["alpha"].cuda()
    fast = forward_backward(cuda, x.cuda(), y.cuda(), **kw)
    assert fast.grads["W_rec"].is_cuda
    cpu = lambda t: t.cpu() if torch.is_tensor(t) else t  # noqa: E731
    back = dataclasses.replace(fast, **{f.name: cpu(getattr(fast, f.name))
                                        for f in dataclasses.fields(fast) if f.name != "grads"},
                               grads={k: v.cpu() for k, v in fast.grads.items()})
    assert_same(back, ref)
