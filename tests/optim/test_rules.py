"""Any update rule behind any clipper: the guard, per-member clipping, agreement with
``ClippedOptimizer`` around ``torch.optim``, and clear errors for settings that do not fit."""

import math

import pytest
import torch

from bptt.clip import ClippedOptimizer, ZClip
from bptt.models import SkipRNN
from bptt.optim import SHRINK, ClippedRule, PaperSGD, make_rule, sgd_update
from bptt.optim.rules import CLIPS


def _params(E=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"W_rec": torch.randn(E, 3, 3, generator=g, dtype=torch.float64),
            "W_out": torch.randn(E, 3, 2, generator=g, dtype=torch.float64)}


def _grads(t, E=2, spike=False):
    g = torch.Generator().manual_seed(10 + t)
    out = {"W_rec": torch.randn(E, 3, 3, generator=g, dtype=torch.float64),
           "W_out": torch.randn(E, 3, 2, generator=g, dtype=torch.float64)}
    if spike:
        out = {k: v * 50 for k, v in out.items()}
    return out


def _norm(grads):
    return torch.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in grads.values()))


def test_sgd_with_the_papers_clipping_is_the_papers_rule():
    assert isinstance(make_rule("sgd", "norm", lr=0.1, clip_members=True), PaperSGD)
    assert isinstance(make_rule("sgd", "elementwise", lr=0.1, clip_members=True), PaperSGD)
    assert isinstance(make_rule("sgd", "zclip", lr=0.1, clip_members=True), ClippedRule)


def test_adam_behind_zclip_is_clipped_optimizer_around_torch_adam():
    """One member: the rule equals ClippedOptimizer(torch.optim.Adam, ZClip) step for step,
    through ZClip's warm-up and a spike it clips."""
    rule = make_rule("adam", "zclip", lr=0.01, clip_members=True, clip_options={"warmup": 3},
                     ensemble=1, dtype=torch.float64)
    ours = _params(E=1)
    ps = [ours[k][0].clone().requires_grad_(True) for k in ours]
    ref = ClippedOptimizer(torch.optim.Adam(ps, lr=0.01, foreach=False), ZClip(warmup=3))
    clipped = []
    for t in range(12):
        g = _grads(t, E=1, spike=t == 8)
        _, c = rule.step(ours, g, _norm(g))
        clipped.append(bool(c[0]))
        for p, k in zip(ps, ours):
            p.grad = g[k][0].clone()
        ref.step()
    assert clipped[8] and not any(clipped[:3])
    for p, k in zip(ps, ours):
        torch.testing.assert_close(ours[k][0], p.detach(), rtol=1e-12, atol=1e-12)


def test_the_guard_refuses_a_non_finite_gradient_and_shrinks_the_recurrent_weights():
    rule = make_rule("adam", "average-norm", lr=[0.1, 0.2], clip_members=True,
                     clip_options={"window": 2}, dtype=torch.float64)
    params = _params()
    rule.step(params, _grads(0), _norm(_grads(0)))
    before = {k: v.clone() for k, v in params.items()}
    g = _grads(1)
    g["W_out"][1, 0, 0] = math.nan
    bad, clipped = rule.step(params, g, _norm(g))
    assert bad.tolist() == [False, True] and not clipped[1]
    torch.testing.assert_close(params["W_rec"][1], before["W_rec"][1] * (1 - 0.2 * SHRINK), rtol=1e-14, atol=0)
    assert torch.equal(params["W_out"][1], before["W_out"][1])
    assert not torch.equal(params["W_out"][0], before["W_out"][0])
    assert rule.optimizer.steps.tolist() == [2, 1]


def test_only_the_members_that_clip_are_clipped():
    rule = make_rule("nesterov", "norm", lr=0.1, threshold=0.5, clip_members=[True, False], dtype=torch.float64)
    params = _params()
    g = _grads(0, spike=True)
    ref = {k: v.clone() for k, v in params.items()}
    bad, clipped = rule.step(params, g, _norm(g))
    assert clipped.tolist() == [True, False]
    scale = 0.5 / _norm(g)[0]
    for k in params:          # first Nesterov step: θ − lr·(1 + μ)·g
        torch.testing.assert_close(params[k][0], ref[k][0] - 0.1 * 1.9 * scale * g[k][0])
        torch.testing.assert_close(params[k][1], ref[k][1] - 0.1 * 1.9 * g[k][1])


def test_the_guard_shrinks_every_recurrent_weight_of_the_model():
    model = SkipRNN(2, 3, 2, seeds=[0, 1], dtype=torch.float64)
    params = {k: v.detach().clone() for k, v in model.params.items()}
    before = {k: v.clone() for k, v in params.items()}
    grads = {k: torch.ones_like(v) for k, v in params.items()}
    sgd_update(params, grads, 0.5, bad=torch.tensor([True, False]), recurrent=model.recurrent_names)
    for k in ("W_rec", "W_skip"):
        torch.testing.assert_close(params[k][0], before[k][0] * (1 - 0.5 * SHRINK))
    torch.testing.assert_close(params["W_in"][0], before["W_in"][0])
    torch.testing.assert_close(params["W_in"][1], before["W_in"][1] - 0.5)


def test_the_paper_rule_keeps_its_numbers_with_the_recurrent_names():
    a, b = _params(), _params()
    g = _grads(0)
    bad = torch.tensor([True, False])
    sgd_update(a, g, torch.tensor([0.1, 0.2], dtype=torch.float64), bad)
    sgd_update(b, g, torch.tensor([0.1, 0.2], dtype=torch.float64), bad, recurrent=("W_rec",))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("clip", [c for c in CLIPS if c != "none"])
def test_every_clipper_state_survives_select_and_state_dict(clip):
    def rule():
        return make_rule("rmsprop", clip, lr=[0.01, 0.02, 0.03], clip_members=True, threshold=1.0,
                         dtype=torch.float64)
    a = rule()
    pa = _params(E=3)
    for t in range(4):
        g = _grads(t, E=3)
        a.step(pa, g, _norm(g))
    b = rule()
    b.load_state_dict(a.state_dict())
    pb = {k: v.clone() for k, v in pa.items()}
    a.select([0, 2])
    b.select([0, 2])
    pa = {k: v[[0, 2]].clone() for k, v in pa.items()}
    pb = {k: v[[0, 2]].clone() for k, v in pb.items()}
    for t in range(4, 7):
        g = {k: v[[0, 2]] for k, v in _grads(t, E=3, spike=t == 5).items()}
        ca = a.step(pa, g, _norm(g))[1]
        cb = b.step(pb, g, _norm(g))[1]
        assert torch.equal(ca, cb)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize("kw,match", [
    ({"optimizer": "sgd", "momentum": 0.9}, "takes no momentum"),
    ({"optimizer": "adam", "momentum": 0.9}, "takes no momentum"),
    ({"optimizer": "nesterov", "betas": (0.9, 0.99)}, "takes no betas"),
    ({"optimizer": "adam", "clip": "none", "clip_members": True}, "clipping 'none'"),
    ({"optimizer": "adam", "clip": "norm", "clip_options": {"window": 3}}, "takes no clip options"),
    ({"optimizer": "adam", "clip": "zclip", "clip_options": {"nope": 3}}, "do not fit"),
    ({"optimizer": "adam", "clip": "zclip", "clip_options": {"z_threshold": math.nan}}, "finite"),
    ({"optimizer": "adam", "clip": "average-norm", "clip_options": {"factor": math.inf}}, "finite"),
    ({"optimizer": "nesterov", "clip": "norm", "threshold": [1.0, math.nan], "clip_members": True},
     "threshold must be a finite"),
    ({"optimizer": "adam", "lr": [0.1, math.inf]}, "learning rate must be a finite"),
    ({"optimizer": "sgd", "lr": math.nan}, "learning rate must be finite"),
    ({"optimizer": "adamw"}, "unknown optimizer"),
    ({"optimizer": "adam", "clip": "spiky"}, "unknown clipping"),
])
def test_settings_that_do_not_fit_are_clear_errors(kw, match):
    kw = {"clip_members": True, **kw}
    optimizer, clip = kw.pop("optimizer"), kw.pop("clip", "norm")
    with pytest.raises(ValueError, match=match):
        make_rule(optimizer, clip, **kw)
