"""The paper's update rule as an object: guard → clip → SGD per member, select, state."""

import io
import math

import pytest
import torch

from bptt.clip import clip_by_global_norm, clip_elementwise, global_norm
from bptt.optim import NORM_LIMIT, SHRINK, PaperSGD, sgd_update


def ensemble(E=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    params = {"W_rec": torch.randn(E, 3, 3, generator=g, dtype=dtype), "b": torch.randn(E, 3, generator=g, dtype=dtype)}
    grads = {k: torch.randn(v.shape, generator=g, dtype=dtype) * 3 for k, v in params.items()}
    return params, grads


def test_each_member_follows_its_own_method():
    params, grads = ensemble()
    norm = global_norm(grads)
    lr = [0.1, 0.2, 0.3, 0.4]
    threshold = [0.5, 1e6, 0.5, 2.0]
    clip = [False, True, True, True]
    before = {k: v.clone() for k, v in params.items()}
    rule = PaperSGD(lr, threshold=threshold, clip=clip, dtype=torch.float64)
    bad, clipped = rule.step(params, grads, norm)
    assert bad.tolist() == [False] * 4
    for j in range(4):
        scale = min(1.0, threshold[j] / float(norm[j])) if clip[j] else 1.0
        assert bool(clipped[j]) == (clip[j] and float(norm[j]) >= threshold[j])
        for k in params:
            want = before[k][j] - lr[j] * scale * grads[k][j]
            torch.testing.assert_close(params[k][j], want, rtol=1e-12, atol=1e-12)


def test_the_uniform_rule_gives_the_numbers_of_the_functions_it_composes():
    params, grads = ensemble(E=3, dtype=torch.float32)
    ref = {k: v.clone() for k, v in params.items()}
    norm = global_norm(grads)
    PaperSGD(0.05, threshold=1.0, clip=True, ensemble=3).step(params, grads, norm)
    cg, _ = clip_by_global_norm(grads, 1.0, norm)
    sgd_update(ref, cg, 0.05)
    for k in params:
        assert torch.equal(params[k], ref[k]), k


def test_elementwise_clipping():
    params, grads = ensemble(E=2)
    ref = {k: v.clone() for k, v in params.items()}
    rule = PaperSGD([0.1, 0.1], threshold=[0.2, 0.2], clip=[True, True], kind="elementwise", dtype=torch.float64)
    _, clipped = rule.step(params, grads, global_norm(grads))
    cg, _ = clip_elementwise(grads, 0.2)
    sgd_update(ref, cg, 0.1)
    assert clipped.all()
    for k in params:
        assert torch.equal(params[k], ref[k])


def test_a_refused_gradient_shrinks_w_rec_and_is_not_counted_as_clipped():
    params, grads = ensemble(E=3)
    before = {k: v.clone() for k, v in params.items()}
    grads["W_rec"][1, 0, 0] = math.inf
    grads["b"][2] *= 1e12
    norm = global_norm(grads)
    bad, clipped = PaperSGD([0.1] * 3, threshold=1.0, clip=True, dtype=torch.float64).step(params, grads, norm)
    assert bad.tolist() == [False, True, True] and float(norm[2]) > NORM_LIMIT
    assert clipped.tolist() == [True, False, False]
    for j in (1, 2):
        torch.testing.assert_close(params["W_rec"][j], before["W_rec"][j] * (1 - 0.1 * SHRINK))
        assert torch.equal(params["b"][j], before["b"][j])


def test_select_keeps_the_settings_of_the_members_left():
    rule = PaperSGD([0.1, 0.2, 0.3], threshold=[1.0, 2.0, 3.0], clip=[True, False, True], dtype=torch.float64)
    rule.select([0, 2])
    assert rule.lr.tolist() == [0.1, 0.3] and rule.threshold.tolist() == [1.0, 3.0] and rule.clip == [True, True]
    rule.lr[1] /= 2                                        # Table 1 halves a member's rate
    assert rule.lr.tolist() == [0.1, 0.15]


def test_state_round_trips_through_a_weights_only_load():
    rule = PaperSGD([0.1, 0.2], threshold=[1.0, 2.0], clip=[True, False], kind="elementwise", dtype=torch.float32)
    rule.lr[0] = 0.05
    buf = io.BytesIO()
    torch.save(rule.state_dict(), buf)
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    other = PaperSGD([1.0, 1.0], dtype=torch.float32)
    other.load_state_dict(state)
    assert torch.equal(other.lr, rule.lr) and torch.equal(other.threshold, rule.threshold)
    assert other.clip == [True, False] and other.kind == "elementwise"


@pytest.mark.parametrize("kw, match", [
    ({"lr": [0.1, math.nan]}, "learning rate"), ({"lr": math.inf}, "learning rate"), ({"lr": 0.0}, "learning rate"),
    ({"lr": 0.1, "threshold": math.nan, "clip": True}, "threshold"),
    ({"lr": 0.1, "threshold": -1.0, "clip": True}, "threshold"),
    ({"lr": 0.1, "kind": "value"}, "clipping"), ({"lr": [0.1, 0.2], "clip": [True]}, "entries")])
def test_bad_settings_are_refused(kw, match):
    lr = kw.pop("lr")
    with pytest.raises(ValueError, match=match):
        PaperSGD(lr, **kw)


def test_a_threshold_is_not_needed_where_no_member_clips():
    rule = PaperSGD([0.1, 0.1], threshold=[math.nan, 1.0], clip=[False, True])
    assert rule.clip == [False, True]


def test_the_guard_protects_only_the_members_it_is_given():
    # members 0 and 1 clip, member 2 does not; by default (the reference code) member 2 is not guarded
    params = {"W_rec": torch.ones(3, 2, 2, dtype=torch.float64)}
    grads = {"W_rec": torch.full((3, 2, 2), math.inf, dtype=torch.float64)}
    norm = torch.full((3,), math.inf, dtype=torch.float64)
    rule = PaperSGD([0.1] * 3, threshold=1.0, clip=[True, True, False], dtype=torch.float64)
    assert rule.guard == [True, True, False]
    bad, _ = rule.step(params, grads, norm)
    assert bad.tolist() == [True, True, False]
    assert torch.isfinite(params["W_rec"][:2]).all() and not torch.isfinite(params["W_rec"][2]).any()
    # an explicit guard per member overrides the default, and survives select and a checkpoint
    rule = PaperSGD([0.1] * 3, threshold=1.0, clip=[True, True, False], guard=[False, True, True],
                    dtype=torch.float64)
    rule.select([1, 2])
    assert rule.guard == [True, True]
    other = PaperSGD([0.1] * 2, dtype=torch.float64)
    other.load_state_dict(rule.state_dict())
    assert other.guard == [True, True]


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0, -0.1, torch.tensor([0.1, float("nan")])])
def test_sgd_update_refuses_learning_rates_that_are_not_finite_and_positive(lr):
    params = {"W_rec": torch.zeros(2, 2, 2)}
    with pytest.raises(ValueError, match="finite and > 0"):
        sgd_update(params, {"W_rec": torch.ones(2, 2, 2)}, lr)
    assert torch.count_nonzero(params["W_rec"]) == 0          # nothing was written
