"""HFRule (Hessian-free behind the loop's update-rule interface) and what HessianFree
counts for it: frozen parameters, the cost of a step, states that follow retirements."""

import math

import pytest
import torch

import bptt.tasks as tasks
from bptt.models import ESN, ElmanRNN
from bptt.optim import HessianFree, HFRule
from bptt.training.loop import Batch


def batches(n, B=40, T=10, seed=0):
    task = tasks.get("temporal_order", seed=seed)
    return [tuple(t.double() if t.is_floating_point() else t for t in task.sample(B, T)) for _ in range(n)]


def test_an_echo_state_network_trains_its_readout_only():
    model = ESN(6, 12, 4, ensemble=2, seed=0, dtype=torch.float64)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = HessianFree(model, damping=0.1, cg_max_iters=20)
    assert opt.frozen == ESN.FIXED and opt.structural_damping == 0.0
    assert opt.layout.names == ["W_out", "b_out"]
    for b in batches(2):
        rec = opt.step(b)
    assert rec.accepted.all() and (rec.loss_after < rec.loss_before).all()
    for k, p in model.named_parameters():
        assert torch.equal(p.detach(), before[k]) == (k in ESN.FIXED), k


def test_frozen_names_must_be_parameters_and_leave_something_to_learn():
    model = ElmanRNN(3, 4, 2)
    with pytest.raises(ValueError, match="not parameters"):
        HessianFree(model, frozen=["W_hh"])
    with pytest.raises(ValueError, match="no parameters that learn"):
        HessianFree(model, frozen=["W_rec", "W_in", "b", "W_out", "b_out"])


def test_frozen_elman_weights_stay_and_the_rest_learn():
    model = ElmanRNN(6, 5, 4, ensemble=1, seed=1, dtype=torch.float64)
    W_rec = model.W_rec.detach().clone()
    opt = HessianFree(model, damping=0.1, cg_max_iters=20, frozen=["W_rec"])
    assert not opt._elman                                  # the general path
    rec = opt.step(batches(1)[0])
    assert rec.accepted.all() and torch.equal(model.W_rec.detach(), W_rec)


@pytest.mark.parametrize("preconditioner", [True, False])
def test_the_cost_of_a_step_is_counted(preconditioner):
    """One product per CG iteration, one for the warm start's residual, one for ρ's q(p)."""
    model = ElmanRNN(6, 6, 4, ensemble=2, seed=0, dtype=torch.float64)
    opt = HessianFree(model, damping=0.5, cg_max_iters=15, preconditioner=preconditioner)
    first, second = (opt.step(b) for b in batches(2))
    assert torch.equal(first.curvature_products, first.cg_iterations + 1)          # CG from zero
    assert torch.equal(second.curvature_products, second.cg_iterations + 2)        # warm start
    assert (second.cg_iterations > 0).all()
    assert second.gradient_evaluations.tolist() == [1 + preconditioner] * 2
    assert torch.isfinite(first.grad_norm).all() and (first.grad_norm > 0).all()


def test_a_member_stopped_before_cg_costs_no_product():
    model = ElmanRNN(6, 6, 4, ensemble=2, seed=0, dtype=torch.float64)
    x, y = batches(1)[0]
    x = x[:, None].repeat(1, 2, 1, 1)
    x[:, 1] = math.nan
    rec = HessianFree(model, damping=0.5, cg_max_iters=15).step((x, y.expand(2, -1)))
    assert rec.nonfinite.tolist() == [False, True]
    assert rec.curvature_products[1] == 0 and rec.cg_iterations[1] == 0 and math.isnan(rec.grad_norm[1])


def _rule(model):
    return HFRule(model, damping=0.2, cg_max_iters=15, curvature_batch=20)


def test_a_state_with_fewer_members_applies_to_the_model_of_the_next_step():
    """A checkpoint taken after a retirement loads into a rule built for the whole ensemble."""
    data = batches(4, seed=3)
    kw = dict(ensemble=3, seed=0, dtype=torch.float64)
    model = ElmanRNN(6, 5, 4, **kw)
    rule = _rule(model)
    rule.step(model, Batch(*data[0]))
    model = model.select([0, 2])
    rule.select([0, 2], model)
    rule.step(model, Batch(*data[1]))
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved_rule = rule.state_dict()
    tail = [rule.step(model, Batch(*b)).values for b in data[2:]]

    fresh = ElmanRNN(6, 5, 4, **kw)                        # as a trainer rebuilds itself
    other = _rule(fresh)
    other.load_state_dict(saved_rule)
    assert other.ensemble == 2 and torch.equal(other.damping, saved_rule["hf"]["damping"])
    restored = ElmanRNN(6, 5, 4, seeds=[0, 2], dtype=torch.float64)
    restored.load_state_dict(saved_model)
    again = [other.step(restored, Batch(*b)).values for b in data[2:]]
    for a, b in zip(tail, again):
        for k in HFRule.RECORDS:
            if k != "hf_wall_time":
                assert torch.equal(a[k], b[k]), k
    for k, v in model.state_dict().items():
        assert torch.equal(v, restored.state_dict()[k])


def test_a_retirement_before_the_first_step_after_a_restore_keeps_the_right_members():
    data = batches(2, seed=4)
    model = ElmanRNN(6, 5, 4, ensemble=3, seed=0, dtype=torch.float64)
    rule = HFRule(model, damping=0.3, cg_max_iters=10)
    rule.step(model, Batch(*data[0]))
    state = rule.state_dict()
    lam = state["hf"]["damping"]
    other = HFRule(ElmanRNN(6, 5, 4, ensemble=4, seed=0, dtype=torch.float64), damping=7.0)
    other.load_state_dict(state)
    smaller = model.select([1, 2])
    other.select([1, 2], smaller)
    assert torch.equal(other.damping, lam[[1, 2]]) and other.hf.model is smaller


def test_batches_the_rule_cannot_take_are_refused():
    model = ElmanRNN(6, 4, 4, dtype=torch.float64)
    rule = HFRule(model)
    x, y = batches(1)[0]
    with pytest.raises(ValueError, match="initial state"):
        rule.step(model, Batch(x, y, h0=torch.zeros(1, x.shape[1], 4, dtype=torch.float64)))
    with pytest.raises(ValueError, match="mask"):
        rule.step(model, Batch(x, y, mask=torch.ones(x.shape[0], x.shape[1])))
    with pytest.raises(ValueError, match="scale"):
        rule.step(model, Batch(x, y, scale=3.0))
    with pytest.raises(ValueError, match="cannot load"):
        rule.load_state_dict({"name": "clipped-rule"})
    with pytest.raises(ValueError, match="more than"):
        rule.load_state_dict({"name": "hessian-free", "hf": {"damping": torch.ones(5)}})
    with pytest.raises(ValueError, match="curvature_batch"):
        HFRule(model, curvature_batch=0)
