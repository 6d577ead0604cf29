"""ClipNorm: Algorithm 1 as an object; the counters and the state protocol of every clipper."""

import math

import pytest
import torch

from bptt.clip import AGC, AutoClip, AverageNorm, ClipNorm, ZClip, clip_grad_norm_


def params_with(values, dtype=torch.float64):
    p = torch.zeros(len(values), dtype=dtype, requires_grad=True)
    p.grad = torch.tensor(values, dtype=dtype)
    return [p]


def test_same_numbers_as_the_function():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        shapes = [(3, 4), (4,), (2, 2, 2)]
        a = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
        b = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
        for p, q in zip(a, b):
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64) * (trial + 0.2)
            q.grad = p.grad.clone()
        clipper = ClipNorm(2.0, norm_type=3.0)
        assert torch.equal(clipper(a), clip_grad_norm_(b, 2.0, 3.0))
        for p, q in zip(a, b):
            assert torch.equal(p.grad, q.grad)


def test_counts_at_the_threshold():
    """‖g‖ ≥ threshold counts as clipped (Algorithm 1), ‖g‖ < threshold does not."""
    clipper = ClipNorm(5.0)
    clipper(params_with([3.0, 4.0]))                      # exactly 5
    assert clipper.clipped.tolist() == 1
    clipper(params_with([3.0, 3.9]))                      # below
    assert clipper.clipped.tolist() == 1
    p = params_with([30.0, 40.0])
    clipper(p)
    assert clipper.clipped.tolist() == 2
    assert float(torch.linalg.vector_norm(p[0].grad)) == pytest.approx(5.0, rel=1e-15)
    assert clipper.steps == 3


def test_per_member_thresholds_and_counters():
    E = 3
    grads = {"W": torch.ones(E, 2, 2), "b": torch.ones(E, 2)}         # norm √6 ≈ 2.449 each
    clipper = ClipNorm(torch.tensor([1.0, 2.449, 10.0]), nonfinite="skip")
    grads["b"][2, 0] = math.inf
    norm = clipper(grads)
    assert clipper.clipped.tolist() == [1, 1, 0]
    assert clipper.nonfinite_count.tolist() == [0, 0, 1]
    assert (grads["W"][2] == 0).all()
    assert torch.isinf(norm[2])
    with pytest.raises(ValueError, match="3 thresholds"):
        clipper({"W": torch.ones(2, 2, 2)})
    with pytest.raises(ValueError, match="max_norm"):
        ClipNorm(torch.tensor([1.0, -1.0]))


def test_state_round_trip():
    a = ClipNorm(1.0)
    for scale in (0.5, 2.0, 3.0):
        a(params_with([scale, 0.0]))
    b = ClipNorm(1.0)
    b.load_state_dict(a.state_dict())
    assert b.steps == 3 and torch.equal(b.clipped, a.clipped)
    b.clipped.add_(5)                                    # a copy, not shared
    assert int(a.clipped) == 2
    with pytest.raises(ValueError, match="max_norm"):
        ClipNorm(2.0).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="missing"):
        ClipNorm(1.0).load_state_dict({"state": None})
    assert ClipNorm(1.0).clipped is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -2.0, "1"])
def test_bad_threshold(bad):
    with pytest.raises(ValueError, match="max_norm"):
        ClipNorm(bad)


def test_repr_and_empty():
    c = ClipNorm(1.0, nonfinite="ignore")
    assert "max_norm=1.0" in repr(c) and "ignore" in repr(c)
    assert float(c([torch.zeros(3, requires_grad=True)])) == 0.0
    assert c.steps == 0


@pytest.mark.parametrize("make", [lambda: ClipNorm(1.0, nonfinite="ignore"),
                                  lambda: AverageNorm(window=3, warmup=2, nonfinite="skip"),
                                  lambda: AutoClip(50, nonfinite="ignore"),
                                  lambda: ZClip(warmup=2, nonfinite="skip"),
                                  lambda: AGC(nonfinite="ignore")])
def test_clippers_do_not_read_back_to_the_host(monkeypatch, make):
    clipper = make()
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, 2, generator=g, requires_grad=True), torch.randn(3, 2, generator=g,
                                                                               requires_grad=True)]

    def sync(*args, **kwargs):
        raise AssertionError("host synchronisation")

    for name in ("__bool__", "item", "tolist", "__float__", "__int__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    for step in range(140):                        # AutoClip's history grows past its first block
        for p in params:
            p.grad = torch.randn(p.shape, generator=g) * (1 + step % 7)
        params[1].grad[0, 0] = math.nan if step == 3 else params[1].grad[0, 0]
        clipper(params, ensemble=True)
    with pytest.raises(AssertionError, match="host synchronisation"):
        ClipNorm(1.0)(params, ensemble=True)                 # "error" has to look
