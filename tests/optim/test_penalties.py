"""L1 and L2 penalties on the recurrent weights (§3.3's rival remedies) and their place
in the update rule: guard → penalties → clipping → SGD."""

import pytest
import torch

from bptt.clip import global_norm
from bptt.models.init import spectral_radius
from bptt.optim import PaperSGD
from bptt.optim.penalties import add_penalties, l1, l1_value, l2, l2_value
from bptt.training.trainer import TrainConfig


def ensemble(E=3, H=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"W_rec": torch.randn(E, H, H, generator=g, dtype=torch.float64),
            "W_in": torch.randn(E, 2, H, generator=g, dtype=torch.float64),
            "b": torch.randn(E, H, generator=g, dtype=torch.float64)}


@pytest.mark.parametrize("grad_fn, value_fn", [(l1, l1_value), (l2, l2_value)])
def test_gradient_contributions_match_autograd_of_the_penalty(grad_fn, value_fn):
    params = ensemble()
    weight = torch.tensor([0.0, 1e-3, 0.5], dtype=torch.float64)
    names = ("W_rec", "b")
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    value = value_fn(leaves, names, weight)                       # [E]
    assert value.shape == (3,)
    auto = torch.autograd.grad(value.sum(), [leaves[k] for k in names])
    mine = grad_fn(params, names, weight)
    assert set(mine) == set(names)                                # W_in is not penalised
    for k, a in zip(names, auto):
        torch.testing.assert_close(mine[k], a, rtol=1e-12, atol=1e-15)
    assert torch.all(mine["W_rec"][0] == 0)                       # member 0 has weight 0


def test_l2_alone_shrinks_rho_geometrically_at_the_predicted_rate():
    params = ensemble()
    zero = {k: torch.zeros_like(v) for k, v in params.items()}
    lr = torch.tensor([0.1, 0.05, 0.2], dtype=torch.float64)
    lam = torch.tensor([1e-2, 1e-1, 0.0], dtype=torch.float64)
    rule = PaperSGD(lr.tolist(), l2=lam.tolist(), dtype=torch.float64)
    rho0 = spectral_radius(params["W_rec"])
    n = 50
    for _ in range(n):
        rule.step(params, zero, global_norm(zero))
    predicted = rho0 * (1 - lr * lam) ** n
    torch.testing.assert_close(spectral_radius(params["W_rec"]), predicted, rtol=1e-10, atol=0)
    assert spectral_radius(params["W_rec"])[1] < 0.8 * rho0[1]          # (1 - 0.005)^50 = 0.78
    assert torch.equal(params["b"], ensemble()["b"])              # only W_rec is penalised


def test_l1_moves_each_weight_towards_zero_by_lr_times_lambda():
    params = ensemble()
    before = params["W_rec"].clone()
    zero = {k: torch.zeros_like(v) for k, v in params.items()}
    rule = PaperSGD([0.1, 0.1, 0.1], l1=[0.0, 1e-2, 1e-1], dtype=torch.float64)
    rule.step(params, zero, global_norm(zero))
    step = (before.abs() - params["W_rec"].abs())
    for e, lam in enumerate([0.0, 1e-2, 1e-1]):
        torch.testing.assert_close(step[e], torch.full_like(step[e], 0.1 * lam), rtol=1e-12, atol=1e-15)


def test_penalty_is_added_before_clipping():
    params = ensemble(E=2)
    grads = {k: torch.zeros_like(v) for k, v in params.items()}
    before = {k: v.clone() for k, v in params.items()}
    rule = PaperSGD([1.0, 1.0], threshold=1e-3, clip=True, l2=[10.0, 0.0], dtype=torch.float64)
    rule.step(params, grads, global_norm(grads))
    moved = torch.sqrt(sum(((params[k] - before[k])[0] ** 2).sum() for k in params))
    torch.testing.assert_close(moved, torch.tensor(1e-3, dtype=torch.float64))   # clipped to the threshold
    assert torch.equal(params["W_rec"][1], before["W_rec"][1])


def test_guard_sees_the_data_gradient_and_no_penalty_changes_nothing():
    params = ensemble(E=2)
    grads = {k: torch.full_like(v, float("nan")) for k, v in params.items()}
    rule = PaperSGD([0.1, 0.1], l2=1.0, guard=True, dtype=torch.float64)
    bad, _ = rule.step(params, grads, global_norm(grads))
    assert bad.tolist() == [True, True]
    a, b = ensemble(), ensemble()
    g = {k: torch.randn_like(v) for k, v in a.items()}
    PaperSGD([0.1] * 3, dtype=torch.float64).step(a, g, global_norm(g))
    PaperSGD([0.1] * 3, l1=0.0, l2=0.0, dtype=torch.float64).step(b, g, global_norm(g))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_per_member_weights_select_and_state():
    rule = PaperSGD([0.1, 0.2, 0.3], l1=[0.0, 1e-3, 0.0], l2=[1e-4, 0.0, 1e-2], dtype=torch.float64)
    rule.select([2, 0])
    assert rule.l2.tolist() == [1e-2, 1e-4] and rule.l1.tolist() == [0.0, 0.0]
    other = PaperSGD([1.0, 1.0], dtype=torch.float64)
    other.load_state_dict(rule.state_dict())
    assert other.l2.tolist() == [1e-2, 1e-4] and other._penalties == (False, True)
    old = rule.state_dict()
    del old["l1"], old["l2"], old["penalised"]                   # a checkpoint from before penalties
    other.load_state_dict(old)
    assert other.l2.tolist() == [0.0, 0.0] and other._penalties == (False, False)
    with pytest.raises(ValueError, match="l1, l2"):
        PaperSGD(0.1, l2=-1.0)
    with pytest.raises(ValueError, match="entries"):
        PaperSGD([0.1, 0.1], l2=[0.1, 0.1, 0.1])


def test_config_takes_penalties_per_member_and_keeps_unpenalised_keys():
    c = TrainConfig(seeds=[0, 0], l2=[0.0, 1e-3])
    c.validate()                                                  # a seed repeats with other settings
    assert "l2" not in c.member_at(0) and "l1" not in c.member_at(0)
    assert c.member_at(1)["l2"] == 1e-3
    assert TrainConfig(**{k: v for k, v in c.member_at(1).items() if k != "seed"}, seeds=[0]).l2 == 1e-3
    with pytest.raises(ValueError, match="L2"):
        TrainConfig(l2=-1.0).validate()
    with pytest.raises(ValueError, match="entries"):
        TrainConfig(seeds=[0, 1], l1=[0.1, 0.1, 0.1]).validate()


def test_make_rule_passes_penalties_to_the_papers_sgd_and_refuses_them_elsewhere():
    from bptt.optim.rules import make_rule

    rule = make_rule("sgd", "norm", lr=[0.1, 0.1], l2=[0.0, 1e-3], ensemble=2, dtype=torch.float64)
    assert rule.l2.tolist() == [0.0, 1e-3] and rule.penalised == ("W_rec",)
    with pytest.raises(ValueError, match="paper's SGD only"):
        make_rule("adam", "norm", lr=[0.1, 0.1], l2=1e-3, ensemble=2)
