"""clip_grad_norm_ and clip_grad_value_: PyTorch's numbers, Algorithm 1's rule, ensembles."""

import math

import pytest
import torch

from bptt.clip import (clip_by_global_norm, clip_elementwise, clip_grad_norm_, clip_grad_value_,
                       global_norm)
from bptt.models.elman import ElmanRNN

NORM_TYPES = [0.5, 1.0, 2.0, 3.0, math.inf]


def random_params(seed, dtype, scale=1.0):
    """A random parameter set: 1 to 6 tensors of random shapes, each with a gradient."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 7, (1,), generator=g))
    params = []
    for _ in range(n):
        shape = tuple(int(s) for s in torch.randint(1, 6, (int(torch.randint(0, 4, (1,), generator=g)),),
                                                    generator=g))
        p = torch.randn(shape, generator=g, dtype=dtype).requires_grad_()
        p.grad = torch.randn(shape, generator=g, dtype=dtype) * scale
        params.append(p)
    return params


def copy_params(params):
    out = []
    for p in params:
        q = p.detach().clone().requires_grad_()
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


def grads(params):
    return [p.grad for p in params]


def same(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_pytorch_numbers_with_its_eps(dtype, norm_type):
    """With eps=1e-6 the factor is PyTorch's: norms and gradients identical, bit for bit."""
    for seed in range(12):
        ours, theirs = random_params(seed, dtype, scale=3.0), random_params(seed, dtype, scale=3.0)
        total = float(torch.nn.utils.get_total_norm(grads(ours), norm_type))
        max_norm = total * (0.3 if seed % 2 else 3.0)                      # half clipped, half not
        expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
        got = clip_grad_norm_(ours, max_norm, norm_type, eps=1e-6)
        same(got, expected)
        for a, b in zip(grads(ours), grads(theirs)):
            same(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_algorithm_1_against_pytorch(dtype, norm_type):
    """Default eps=0: same norm; unclipped gradients identical; clipped ones scaled to max_norm."""
    for seed in range(12):
        original = random_params(seed, dtype, scale=3.0)
        n = float(torch.nn.utils.get_total_norm(grads(original), norm_type))
        max_norm = n * (0.3 if seed % 2 else 3.0)
        ours, theirs = copy_params(original), copy_params(original)
        expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
        got = clip_grad_norm_(ours, max_norm, norm_type)
        same(got, expected)
        if n < max_norm:
            for a, b in zip(grads(ours), grads(theirs)):
                same(a, b)
        else:
            factor = torch.as_tensor(n, dtype=dtype).reciprocal() * max_norm
            for a, o in zip(grads(ours), grads(original)):
                same(a, o * factor)
            after = torch.nn.utils.get_total_norm(grads(ours), norm_type)
            torch.testing.assert_close(after, torch.as_tensor(max_norm, dtype=dtype))
            # PyTorch's factor max_norm / (n + 1e-6) differs by about 1e-6 / n, relatively
            for a, b in zip(grads(ours), grads(theirs)):
                torch.testing.assert_close(a, b, rtol=4e-6 if dtype == torch.float32 else 2e-6 / n + 1e-12,
                                           atol=0)


def test_at_and_just_below_the_threshold():
    """Algorithm 1 clips when ‖g‖ ≥ threshold; PyTorch also below it, within 1e-6."""
    def one(values):
        p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(values, dtype=torch.float64)
        return p

    # ‖(3, 4)‖ = 5 exactly.  At the threshold both rules rescale (with PyTorch's factor):
    ours, theirs = one([3.0, 4.0]), one([3.0, 4.0])
    clip_grad_norm_([ours], 5.0, eps=1e-6)
    torch.nn.utils.clip_grad_norm_([theirs], 5.0)
    same(ours.grad, theirs.grad)
    assert (ours.grad != torch.tensor([3.0, 4.0], dtype=torch.float64)).all()
    # Just above the norm (5 < max_norm < 5 + 1e-6): PyTorch rescales, Algorithm 1 does not.
    max_norm = 5.0 + 4e-7
    ours, theirs = one([3.0, 4.0]), one([3.0, 4.0])
    clip_grad_norm_([ours], max_norm, eps=1e-6)
    torch.nn.utils.clip_grad_norm_([theirs], max_norm)
    same(ours.grad, torch.tensor([3.0, 4.0], dtype=torch.float64))
    assert (theirs.grad < torch.tensor([3.0, 4.0], dtype=torch.float64)).all()
    # Just below the norm, Algorithm 1 rescales to exactly the threshold.
    ours = one([3.0, 4.0])
    clip_grad_norm_([ours], 5.0 - 1e-9)
    assert float(torch.linalg.vector_norm(ours.grad)) == pytest.approx(5.0 - 1e-9, rel=1e-15)


@pytest.mark.parametrize("policy", ["error", "skip", "ignore"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_policies(policy, bad):
    params = random_params(3, torch.float64)
    params[0].grad.view(-1)[0] = bad
    before = [g.clone() for g in grads(params)]
    if policy == "error":
        with pytest.raises(RuntimeError, match="nonfinite='skip'.*nonfinite='ignore'"):
            clip_grad_norm_(params, 0.1, nonfinite=policy)
        for a, b in zip(grads(params), before):
            same(a, b)                                     # nothing touched before raising
        return
    norm = clip_grad_norm_(params, 0.1, nonfinite=policy)
    assert not torch.isfinite(norm)
    for a, b in zip(grads(params), before):
        same(a, torch.zeros_like(b) if policy == "skip" else b)


def test_skip_zeroes_only_the_bad_member():
    g = torch.Generator().manual_seed(1)
    grads_ = {"W": torch.randn(3, 4, 5, generator=g, dtype=torch.float64) * 10,
              "b": torch.randn(3, 5, generator=g, dtype=torch.float64)}
    grads_["b"][1, 2] = math.inf
    before = {k: v.clone() for k, v in grads_.items()}
    norm = clip_grad_norm_(grads_, 1.0, nonfinite="skip")
    assert torch.isfinite(norm).tolist() == [True, False, True]
    for k in grads_:
        assert (grads_[k][1] == 0).all()
    assert torch.linalg.vector_norm(torch.cat([grads_["W"][0].flatten(), grads_["b"][0]])) == \
        pytest.approx(1.0, rel=1e-12)
    with pytest.raises(RuntimeError, match=r"members \[1\]"):
        clip_grad_norm_({k: v.clone() for k, v in before.items()}, 1.0)


def test_parameters_without_grad_and_the_accepted_forms():
    params = random_params(5, torch.float64, scale=4.0)
    extra = torch.zeros(3, dtype=torch.float64, requires_grad=True)      # no .grad
    ref = copy_params(params)
    expected = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    got = clip_grad_norm_((p for p in [extra, *params]), 1.0, eps=1e-6)   # a generator
    same(got, expected)
    assert extra.grad is None
    for a, b in zip(grads(params), grads(ref)):
        same(a, b)
    # no gradient at all: norm 0, as PyTorch
    none = [torch.zeros(2, requires_grad=True), torch.ones(3, requires_grad=True)]
    same(clip_grad_norm_(none, 1.0), torch.nn.utils.clip_grad_norm_(none, 1.0))
    same(clip_grad_norm_([], 1.0), torch.tensor(0.0))
    # a single tensor, and a module
    t = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor([3.0, 0.0, 4.0, 0.0], dtype=torch.float64)
    assert float(clip_grad_norm_(t, 1.0)) == 5.0
    torch.testing.assert_close(t.grad, torch.tensor([0.6, 0.0, 0.8, 0.0], dtype=torch.float64),
                               rtol=1e-15, atol=0)
    lin = torch.nn.Linear(3, 2)
    lin(torch.randn(4, 3)).pow(2).sum().backward()
    lin_ref = torch.nn.Linear(3, 2)
    lin_ref.load_state_dict(lin.state_dict())
    for p, q in zip(lin_ref.parameters(), lin.parameters()):
        p.grad = q.grad.clone()
    same(clip_grad_norm_(lin, 0.5, eps=1e-6), torch.nn.utils.clip_grad_norm_(lin_ref.parameters(), 0.5))
    for p, q in zip(lin_ref.parameters(), lin.parameters()):
        same(p.grad, q.grad)


def test_mixed_dtypes():
    a = torch.zeros(3, dtype=torch.float32, requires_grad=True)
    b = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    a.grad = torch.tensor([1.0, -2.0, 3.0])
    b.grad = torch.tensor([[4.0, 5.0], [-6.0, 7.0]], dtype=torch.float64)
    ra, rb = copy_params([a, b])
    norm = clip_grad_norm_([a, b], 2.0, eps=1e-6)
    expected = torch.nn.utils.clip_grad_norm_([ra, rb], 2.0)
    assert norm.dtype == torch.float64                 # the promoted dtype
    same(norm, expected)
    assert a.grad.dtype == torch.float32 and b.grad.dtype == torch.float64
    same(a.grad, ra.grad)
    same(b.grad, rb.grad)


def ensemble_grads(E, seed=0, scales=None):
    g = torch.Generator().manual_seed(seed)
    out = {"W_rec": torch.randn(E, 4, 4, generator=g, dtype=torch.float64),
           "W_in": torch.randn(E, 2, 4, generator=g, dtype=torch.float64),
           "b": torch.randn(E, 4, generator=g, dtype=torch.float64)}
    if scales is not None:
        s = torch.tensor(scales, dtype=torch.float64)
        out = {k: v * s.reshape(-1, *([1] * (v.dim() - 1))) for k, v in out.items()}
    return out


@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_ensemble_members_are_clipped_separately(norm_type):
    grads_ = ensemble_grads(4, scales=[0.01, 1.0, 10.0, 100.0])
    params = []
    for v in grads_.values():
        p = torch.zeros_like(v, requires_grad=True)
        p.grad = v.clone()
        params.append(p)
    norm = clip_grad_norm_(params, 1.0, norm_type, ensemble=True)
    assert norm.shape == (4,)
    for e in range(4):
        member = copy_params([torch.zeros_like(v[e]).requires_grad_() for v in grads_.values()])
        for p, v in zip(member, grads_.values()):
            p.grad = v[e].clone()
        expected = clip_grad_norm_(member, 1.0, norm_type)
        torch.testing.assert_close(norm[e], expected, rtol=1e-13, atol=0)
        for p, q in zip(params, member):
            torch.testing.assert_close(p.grad[e], q.grad, rtol=1e-13, atol=1e-300)
    # per-member thresholds
    for p, v in zip(params, grads_.values()):
        p.grad = v.clone()
    clip_grad_norm_(params, torch.tensor([1.0, 2.0, 3.0, 4.0]), ensemble=True)
    before = torch.linalg.vector_norm(torch.cat([v.reshape(4, -1) for v in grads_.values()], 1), dim=1)
    after = torch.linalg.vector_norm(torch.cat([p.grad.reshape(4, -1) for p in params], 1), dim=1)
    expected = torch.minimum(before, torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    assert before[0] < 1 and (before[2:] > 4).all()
    torch.testing.assert_close(after, expected, rtol=1e-14, atol=0)


def test_engine_mapping_gives_the_training_core_numbers():
    grads_ = ensemble_grads(3, seed=2, scales=[0.1, 3.0, 30.0])
    expected, _ = clip_by_global_norm({k: v.clone() for k, v in grads_.items()}, 1.0)
    norm = clip_grad_norm_(grads_, 1.0)                 # in place on the mapping's tensors
    same(norm, global_norm({k: v for k, v in ensemble_grads(3, seed=2, scales=[0.1, 3.0, 30.0]).items()}))
    for k in grads_:
        same(grads_[k], expected[k])


def test_bptt_model():
    model = ElmanRNN(2, 4, 3, ensemble=3, dtype=torch.float64, seed=1)
    x = torch.randn(6, 5, 2, dtype=torch.float64)
    y = torch.randint(0, 3, (5,))
    logits = model(x)
    torch.nn.functional.cross_entropy(logits.reshape(-1, 3), y.repeat(3), reduction="sum").mul(50).backward()
    grads_ = {k: p.grad.clone() for k, p in model.params.items()}
    expected, _ = clip_by_global_norm(grads_, 0.5)
    norm = clip_grad_norm_(model, 0.5)
    assert norm.shape == (3,)
    same(norm, global_norm(grads_))
    for k, p in model.params.items():
        same(p.grad, expected[k])


def test_bad_inputs():
    params = random_params(0, torch.float64)
    for bad in (math.nan, math.inf, -math.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match="max_norm"):
            clip_grad_norm_(params, bad)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(params, torch.tensor([1.0, math.nan]), ensemble=False)
    for bad in (0, -1.0, math.nan, "two"):
        with pytest.raises(ValueError, match="norm_type"):
            clip_grad_norm_(params, 1.0, bad)
    with pytest.raises(ValueError, match="nonfinite"):
        clip_grad_norm_(params, 1.0, nonfinite="warn")
    with pytest.raises(ValueError, match="eps"):
        clip_grad_norm_(params, 1.0, eps=-1e-6)
    with pytest.raises(ValueError, match="tensors"):
        clip_grad_norm_([torch.zeros(2), 3.0], 1.0)
    # ensemble shapes that disagree: the message names the parameter
    grads_ = ensemble_grads(3)
    grads_["W_in"] = grads_["W_in"][:2]
    with pytest.raises(ValueError, match="'W_in'"):
        clip_grad_norm_(grads_, 1.0)
    p, q = torch.zeros(3, 2, requires_grad=True), torch.zeros(4, 2, requires_grad=True)
    p.grad, q.grad = torch.ones(3, 2), torch.ones(4, 2)
    with pytest.raises(ValueError, match="parameter 1"):
        clip_grad_norm_([p, q], 1.0, ensemble=True)
    s = torch.zeros((), requires_grad=True)
    s.grad = torch.ones(())
    with pytest.raises(ValueError, match="scalar"):
        clip_grad_norm_([s], 1.0, ensemble=True)
    with pytest.raises(ValueError, match=r"\[E\] = \[3\]"):
        clip_grad_norm_(ensemble_grads(3), torch.tensor([1.0, 2.0]))


def test_value_clipping_matches_pytorch():
    for seed in range(6):
        for dtype in (torch.float32, torch.float64):
            ours = random_params(seed, dtype)
            theirs = copy_params(ours)
            any_big = max(float(g.abs().max()) for g in grads(ours)) > 0.5
            torch.nn.utils.clip_grad_value_(theirs, 0.5)
            clipped = clip_grad_value_(ours, 0.5)
            assert clipped.dim() == 0 and bool(clipped) == any_big
            for a, b in zip(grads(ours), grads(theirs)):
                same(a, b)
    small = random_params(0, torch.float64, scale=1e-3)
    assert not bool(clip_grad_value_(small, 0.5))
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(small, math.nan)


def test_value_clipping_per_member():
    grads_ = ensemble_grads(3, scales=[0.01, 1.0, 10.0])
    expected, flags = clip_elementwise({k: v.clone() for k, v in grads_.items()}, 0.5)
    got = clip_grad_value_(grads_, 0.5)
    same(got, flags)
    assert got.tolist() == [False, True, True]
    for k in grads_:
        same(grads_[k], expected[k])
    params = []
    for v in ensemble_grads(3, scales=[0.01, 1.0, 10.0]).values():
        p = torch.zeros_like(v, requires_grad=True)
        p.grad = v
        params.append(p)
    got = clip_grad_value_(params, torch.tensor([0.5, 5.0, 50.0]), ensemble=True)
    assert got.tolist() == [False, False, False]
    got = clip_grad_value_(params, torch.tensor([0.001, 0.5, 0.5]), ensemble=True)
    assert got.tolist() == [True, True, True]
    for p, v in zip(params, expected.values()):
        same(p.grad[1:], v[1:])


@pytest.mark.parametrize("policy", ["skip", "ignore"])
def test_no_host_sync(monkeypatch, policy):
    """Under "skip" and "ignore" nothing reads a tensor back to the host."""
    params = random_params(4, torch.float32, scale=5.0)
    ens = ensemble_grads(3, scales=[0.1, 1.0, 10.0])
    ens["b"][0, 0] = math.nan

    def sync(*args, **kwargs):
        raise AssertionError("host synchronisation")

    for name in ("__bool__", "item", "tolist", "__float__", "__int__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    clip_grad_norm_(params, 1.0, nonfinite=policy)
    clip_grad_norm_(params, 1.0, 3.0, nonfinite=policy)
    clip_grad_norm_(ens, 1.0, nonfinite=policy)
    clip_grad_norm_(ens, 1.0, math.inf, nonfinite=policy)
    clip_grad_value_(params, 0.1)
    with pytest.raises(AssertionError, match="host synchronisation"):
        clip_grad_norm_(params, 1.0, nonfinite="error")     # "error" has to look


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_no_host_sync_on_cuda():
    params = [p.detach().cuda().requires_grad_() for p in random_params(4, torch.float32)]
    for p, q in zip(params, random_params(4, torch.float32, scale=5.0)):
        p.grad = q.grad.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        clip_grad_norm_(params, 1.0, nonfinite="ignore")
        clip_grad_norm_(params, 1.0, nonfinite="skip")
    finally:
        torch.cuda.set_sync_debug_mode("default")
