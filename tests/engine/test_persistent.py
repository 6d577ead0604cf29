"""The persistent Triton kernel against the exact engine and autograd, under Triton's interpreter.

The kernel runs here on CPU tensors through ``TRITON_INTERPRET=1``, set before Triton
is first imported; shapes are tiny because the interpreter executes every block
operation as a NumPy call.
"""

import os
import sys

_TRITON_FIRST = "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1"   # too late to ask
os.environ.setdefault("TRITON_INTERPRET", "1")        # (tests/engine/conftest.py sets it earlier still)

import dataclasses  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed (pip install 'bptt[gpu]')")

from bptt import ElmanRNN  # noqa: E402
from bptt.engine import evaluate, forward_backward, get_pass, reference_forward_backward  # noqa: E402
from bptt.engine import persistent  # noqa: E402
from bptt.engine.reference import readout, run_states  # noqa: E402
from bptt.engine.persistent import persistent_evaluate, persistent_forward_backward  # noqa: E402

if _TRITON_FIRST or not persistent.interpreted():
    pytest.skip("Triton was imported before TRITON_INTERPRET=1 could be set; run this module on its own",
                allow_module_level=True)

UNITS = ["tanh", "sigmoid", "relu", "linear"]
OUTPUTS = ["last_softmax", "softmax", "last_linear", "sigmoid"]
E, T, B, I, H, O = 2, 6, 3, 3, 5, 4


def make_batch(output, T, B, I, O, E=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    lead = (T,) if E is None else (T, E)
    x = torch.randn(*lead, B, I, generator=g, dtype=dtype)
    ylead = () if E is None else (E,)
    if output == "last_softmax":
        y = torch.randint(O, (*ylead, B), generator=g)
    elif output == "softmax":
        y = torch.randint(O, (*lead, B), generator=g)
    elif output == "last_linear":
        y = torch.rand(*ylead, B, O, generator=g, dtype=dtype)
    else:
        y = (torch.rand(*lead, B, O, generator=g) < 0.3).to(dtype)
    return x, y


def make_params(unit, E=E, I=I, H=H, O=O, seed=1, scale=0.6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    p = {"W_rec": torch.randn(E, H, H, generator=g, dtype=torch.float64) * scale,
         "W_in": torch.randn(E, I, H, generator=g, dtype=torch.float64) * 0.5,
         "b": torch.randn(E, H, generator=g, dtype=torch.float64) * 0.1,
         "W_out": torch.randn(E, H, O, generator=g, dtype=torch.float64) * 0.5,
         "b_out": torch.randn(E, O, generator=g, dtype=torch.float64) * 0.1}
    if unit == "relu":                                      # keep units alive (a dead step gives v = 0,
        p["b"] = p["b"].abs() + 1.0                         # where autograd's √ in plain Ω is NaN)
    return {k: v.to(dtype) for k, v in p.items()}


def assert_close(fast, ref, rtol):
    """Every scalar and gradient of ``fast`` within ``rtol`` of ``ref`` (relative to its largest entry)."""
    for name in ("loss", "omega", "omega_fraction", "grad_norm"):
        a, b = getattr(fast, name), getattr(ref, name)
        assert torch.allclose(a, b, rtol=rtol, atol=rtol * 1e-3), (name, a, b)
    for k in ref.grads:
        a, b = fast.grads[k], ref.grads[k]
        assert a.shape == b.shape, k
        err = (a - b).abs().max() / b.abs().max().clamp_min(1e-30)
        assert err < rtol, (k, float(err))
    err = (fast.h_last - ref.h_last).abs().max()
    assert err < rtol, ("h_last", float(err))
    assert torch.equal(fast.finite, ref.finite)


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("omega", [None, "squared", "plain"])
def test_float64_matches_autograd(unit, output, omega):
    params = make_params(unit)
    x, y = make_batch(output, T, B, I, O)
    alpha = torch.tensor([0.5, 2.0], dtype=torch.float64)
    fast = persistent_forward_backward(params, x, y, unit=unit, output=output, alpha=alpha, omega=omega)
    ref = reference_forward_backward(params, x, y, unit=unit, output=output, alpha=alpha, omega=omega)
    assert_close(fast, ref, rtol=1e-10)
    if omega:
        assert (fast.omega > 0).all() and (fast.omega_fraction > 0.5).all()


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_float32_matches_the_exact_engine(unit, output):
    params = make_params(unit, dtype=torch.float32)
    x, y = make_batch(output, T, B, I, O, seed=3, dtype=torch.float32)
    fast = persistent_forward_backward(params, x, y, unit=unit, output=output, alpha=2.0, omega="squared")
    exact = forward_backward(params, x, y, unit=unit, output=output, alpha=2.0, omega="squared")
    assert fast.grads["W_rec"].dtype == torch.float32
    assert_close(fast, exact, rtol=2e-4)


@pytest.mark.parametrize("output", OUTPUTS)
def test_members_of_different_lengths_match_each_member_alone(output):
    lengths = [4, 9, 7]
    Tm = max(lengths)
    params = make_params("tanh", E=3)
    x, y = make_batch(output, Tm, B, I, O, E=3, seed=5)
    alpha = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    both = persistent_forward_backward(params, x, y, unit="tanh", output=output, alpha=alpha,
                                       omega="squared", lengths=lengths)
    for e, L in enumerate(lengths):
        p = {k: v[e:e + 1] for k, v in params.items()}
        ye = y[:L, e:e + 1] if output in ("softmax", "sigmoid") else y[e:e + 1]
        alone = forward_backward(p, x[:L, e:e + 1], ye, unit="tanh", output=output,
                                 alpha=alpha[e:e + 1], omega="squared")
        member = dataclasses.replace(
            both, grads={k: v[e:e + 1] for k, v in both.grads.items()},
            **{f: getattr(both, f)[e:e + 1] for f in ("loss", "omega", "omega_fraction", "grad_norm",
                                                     "finite", "h_last")})
        assert_close(member, alone, rtol=1e-10)


def test_lengths_with_shared_inputs_and_plain_omega():
    lengths = torch.tensor([3, 6])
    params = make_params("sigmoid")
    x, y = make_batch("last_softmax", 6, B, I, O, seed=8)
    both = persistent_forward_backward(params, x, y, unit="sigmoid", output="last_softmax", alpha=1.0,
                                       omega="plain", lengths=lengths)
    for e, L in enumerate(lengths.tolist()):
        p = {k: v[e:e + 1] for k, v in params.items()}
        alone = reference_forward_backward(p, x[:L], y, unit="sigmoid", output="last_softmax", alpha=1.0,
                                           omega="plain")
        assert torch.allclose(both.loss[e], alone.loss[0], rtol=1e-12)
        assert torch.allclose(both.omega[e], alone.omega[0], rtol=1e-10)
        assert torch.allclose(both.grads["W_rec"][e], alone.grads["W_rec"][0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_initial_state_and_mask_match_autograd(output):
    params = make_params("tanh")
    x, y = make_batch(output, T, 4, I, O, seed=2)
    h0 = torch.randn(E, 4, H, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 0.5
    mask = torch.ones(T, 4)
    mask[4:, 1] = 0
    mask[2:, 3] = 0
    fast = persistent_forward_backward(params, x, y, unit="tanh", output=output, alpha=1.5,
                                       omega="squared", h0=h0, mask=mask)
    ref = reference_forward_backward(params, x, y, unit="tanh", output=output, alpha=1.5,
                                     omega="squared", h0=h0, mask=mask)
    assert_close(fast, ref, rtol=1e-10)


def test_per_member_inputs_and_targets_and_several_batch_blocks():
    # 40 sequences need three programs per member (blocks of 16)
    params = make_params("relu")
    x, y = make_batch("last_linear", 5, 40, I, O, E=E, seed=6)
    fast = persistent_forward_backward(params, x, y, unit="relu", output="last_linear", alpha=1.0,
                                       omega="squared")
    ref = reference_forward_backward(params, x, y, unit="relu", output="last_linear", alpha=1.0,
                                     omega="squared")
    assert_close(fast, ref, rtol=1e-10)


@pytest.mark.parametrize("output", OUTPUTS)
def test_evaluation_matches_the_exact_engine(output):
    params = make_params("tanh", scale=1.2)
    x, y = make_batch(output, T, 8, I, O, seed=9)
    tol = None
    if output == "last_linear":                             # half the sequences wrong
        z = readout(params, run_states(params, x, "tanh"), output)
        err = ((z - y) ** 2).sum(-1).flatten().sort().values
        n = err.numel() // 2
        tol = float(err[n - 1] + err[n]) / 2
    fast = persistent_evaluate(params, x, y, unit="tanh", output=output, tolerance=tol)
    ref = evaluate(params, x, y, unit="tanh", output=output, tolerance=tol)
    assert torch.allclose(fast.loss, ref.loss, rtol=1e-12)
    assert torch.allclose(fast.h_last, ref.h_last, rtol=1e-12, atol=1e-14)
    if ref.wrong is None:
        assert fast.wrong is None
    else:
        assert torch.equal(fast.wrong, ref.wrong)
        if output != "softmax":                             # (a per-step sequence is almost always wrong)
            assert 0 < int(ref.wrong.sum()) < ref.wrong.numel()     # the comparison has teeth


def test_evaluation_at_per_member_lengths():
    params = make_params("tanh", scale=1.2)
    x, y = make_batch("last_softmax", 7, 8, I, O, E=E, seed=10)
    fast = persistent_evaluate(params, x, y, unit="tanh", output="last_softmax", lengths=[7, 3])
    for e, L in enumerate([7, 3]):
        p = {k: v[e:e + 1] for k, v in params.items()}
        alone = evaluate(p, x[:L, e:e + 1], y[e:e + 1], unit="tanh", output="last_softmax")
        assert torch.allclose(fast.loss[e], alone.loss[0], rtol=1e-12)
        assert torch.equal(fast.wrong[e], alone.wrong[0])


def test_argmax_ties_count_as_the_first_class():
    # all-zero output weights: every logit equal, argmax is class 0, so only class-0 targets are right
    params = make_params("tanh")
    params["W_out"].zero_()
    params["b_out"].zero_()
    x, _ = make_batch("last_softmax", T, 4, I, O)
    y = torch.tensor([0, 1, 2, 0])
    fast = persistent_evaluate(params, x, y, unit="tanh", output="last_softmax")
    assert fast.wrong.tolist() == [[False, True, True, False]] * E


def test_model_selects_the_kernel_and_keeps_the_default():
    model = ElmanRNN(3, 6, 4, ensemble=2, init="smart_tanh", output="last_softmax", seed=0)
    x, y = make_batch("last_softmax", 8, 4, 3, 4, dtype=torch.float32)
    default = model.forward_backward(x, y, alpha=2.0)
    exact = forward_backward({k: p.detach() for k, p in model.params.items()}, x, y, unit=model.unit,
                             output="last_softmax", alpha=2.0, omega="squared")
    for k in exact.grads:                                   # the default path is the exact engine, bit for bit
        assert torch.equal(default.grads[k], exact.grads[k])
    fast = model.forward_backward(x, y, alpha=2.0, kernel="persistent", lengths=[8, 5])
    alone = model.select([1]).forward_backward(x[:5], y, alpha=2.0)
    assert torch.allclose(fast.grads["W_rec"][1], alone.grads["W_rec"][0], rtol=1e-4, atol=1e-7)
    assert torch.allclose(fast.grads["W_rec"][0], default.grads["W_rec"][0], rtol=1e-4, atol=1e-7)
    ev = model.evaluate(x, y, kernel="persistent", lengths=[8, 5])
    assert torch.allclose(ev.loss[1], model.select([1]).evaluate(x[:5], y).loss[0], rtol=1e-5)
    assert get_pass("persistent") is persistent_forward_backward
    with pytest.raises(ValueError, match="kernel='persistent'"):
        model.forward_backward(x, y, lengths=[8, 5])
    with pytest.raises(ValueError, match="unknown kernel"):
        model.forward_backward(x, y, kernel="fused")


def test_unsupported_options_are_refused_with_a_reason():
    params = make_params("tanh")
    x, y = make_batch("last_softmax", T, B, I, O)
    kw = {"unit": "tanh", "output": "last_softmax"}
    with pytest.raises(ValueError, match="lengths must lie in 1..6"):
        persistent_forward_backward(params, x, y, lengths=[3, 7], **kw)
    with pytest.raises(ValueError, match="lengths must hold 2 integers"):
        persistent_forward_backward(params, x, y, lengths=[3], **kw)
    with pytest.raises(ValueError, match="lengths must hold 2 integers"):
        persistent_forward_backward(params, x, y, lengths=[3.0, 4.0], **kw)
    with pytest.raises(ValueError, match="precision"):
        persistent_forward_backward(params, x, y, precision="bf16", **kw)
    with pytest.raises(ValueError, match="unknown unit"):
        persistent_forward_backward(params, x, y, unit="gelu", output="last_softmax")
    with pytest.raises(ValueError, match="at most 128"):
        big = make_params("tanh", H=130)
        persistent_forward_backward(big, x, y, **kw)
    with pytest.raises(ValueError, match="float32 or float64"):
        persistent_forward_backward({k: v.half() for k, v in params.items()}, x, y, **kw)
    with pytest.raises(ValueError, match="h0 must be"):
        persistent_forward_backward(params, x, y, h0=torch.zeros(E, B, H + 1, dtype=torch.float64), **kw)
    with pytest.raises(ValueError, match="tolerance"):
        persistent_evaluate(params, x, torch.rand(B, O, dtype=torch.float64), unit="tanh",
                            output="last_linear")


def test_device_screen_at_per_member_lengths():
    from bptt.engine.screen import error_rate
    from bptt.tasks.device import sample_on_device

    model = ElmanRNN(6, 8, 4, ensemble=2, init="smart_tanh", seed=0)
    params = {k: p.detach() for k, p in model.params.items()}
    g = torch.Generator().manual_seed(0)
    x, y = sample_on_device("temporal_order", 40, [10, 20], g, "cpu")
    rate = error_rate(params, lambda n: (x, y), 40, unit="tanh", output="last_softmax", lengths=[10, 20],
                      kernel="persistent", chunk=40)
    for e, L in enumerate([10, 20]):
        p = {k: v[e:e + 1] for k, v in params.items()}
        wrong = evaluate(p, x[:L, e:e + 1], y[e:e + 1], unit="tanh", output="last_softmax").wrong
        assert float(rate[e]) == pytest.approx(float(wrong.float().mean()))


def test_targets_of_the_wrong_shape_or_kind_are_refused():
    params = make_params("tanh")
    x, y = make_batch("softmax", T, B, I, O)
    with pytest.raises(ValueError, match=r"shape \[6, 3\] or \[6, 2, 3\]"):
        persistent_forward_backward(params, x, y[:4], unit="tanh", output="softmax")
    with pytest.raises(ValueError, match="class indices"):
        persistent_forward_backward(params, x, y.double(), unit="tanh", output="softmax")
    with pytest.raises(ValueError, match="floats"):
        persistent_evaluate(params, x, torch.zeros(B, O, dtype=torch.long), unit="tanh",
                            output="last_linear", tolerance=0.1)


@pytest.mark.parametrize("output", ["last_softmax", "softmax"])
def test_members_of_different_units_and_lengths_in_one_launch(output):
    units, lengths = ["tanh", "sigmoid", "relu", "linear"], [6, 4, 5, 3]
    params = make_params("relu", E=4, scale=0.4)
    x, y = make_batch(output, 6, B, I, O, E=4, seed=11)
    both = persistent_forward_backward(params, x, y, unit=units, output=output, alpha=2.0, omega="squared",
                                       lengths=lengths)
    ev = persistent_evaluate(params, x, y, unit=units, output=output, lengths=lengths)
    for e, (u, L) in enumerate(zip(units, lengths)):
        p = {k: v[e:e + 1] for k, v in params.items()}
        ye = y[:L, e:e + 1] if output == "softmax" else y[e:e + 1]
        alone = reference_forward_backward(p, x[:L, e:e + 1], ye, unit=u, output=output, alpha=2.0,
                                           omega="squared")
        member = dataclasses.replace(
            both, grads={k: v[e:e + 1] for k, v in both.grads.items()},
            **{f: getattr(both, f)[e:e + 1] for f in ("loss", "omega", "omega_fraction", "grad_norm",
                                                     "finite", "h_last")})
        assert_close(member, alone, rtol=1e-10)
        assert torch.allclose(ev.loss[e], alone.loss[0], rtol=1e-12)
    with pytest.raises(ValueError, match="one per member"):
        persistent_forward_backward(params, x, y, unit=units[:3], output=output)
    with pytest.raises(ValueError, match="unknown unit"):
        persistent_forward_backward(params, x, y, unit=["tanh", "gelu", "relu", "tanh"], output=output)
