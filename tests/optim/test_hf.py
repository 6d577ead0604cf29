"""HessianFree: the damping rule, a convex problem, learning, ensembles, state, bad input."""

import math

import pytest
import torch

import bptt.tasks as tasks
from bptt.models import ElmanRNN
from bptt.optim import HessianFree
from bptt.optim.hf import BOOST, DROP, adjust_damping


class LinearReadout(torch.nn.Module):
    """z = x_T W + c per member: a model of the call convention that is linear in θ."""

    output = "last_linear"

    def __init__(self, n_in, n_out, ensemble, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(torch.randn(ensemble, n_in, n_out, dtype=torch.float64, generator=gen))
        self.c = torch.nn.Parameter(torch.randn(ensemble, n_out, dtype=torch.float64, generator=gen))

    def forward(self, x):
        return torch.einsum("bi,eio->ebo", x[-1], self.W) + self.c[:, None, :]


def regression(B=40, I=5, O=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, B, I, dtype=torch.float64, generator=gen)
    y = torch.randn(B, O, dtype=torch.float64, generator=gen)
    return x, y


def test_damping_follows_rho():
    lam = torch.full((6,), 2.0)
    rho = torch.tensor([-math.inf, 0.1, 0.25, 0.5, 0.75, 0.9])
    out = adjust_damping(lam, rho)
    assert out.tolist() == pytest.approx([2 * BOOST, 2 * BOOST, 2.0, 2.0, 2.0, 2 * DROP])
    assert BOOST == 1.5 and DROP == pytest.approx(2 / 3)
    assert adjust_damping(torch.tensor([1.0]), torch.tensor([math.nan])).item() == BOOST


@pytest.mark.parametrize("preconditioner", [False, True])
def test_one_undamped_step_reaches_the_minimum_of_a_convex_quadratic(preconditioner):
    model = LinearReadout(5, 2, ensemble=2)
    x, y = regression()
    opt = HessianFree(model, damping=0.0, preconditioner=preconditioner, cg_tolerance=1e-10)
    rec = opt.step((x, y))
    # least squares per member: [x_T, 1] [W; c] = y
    X = torch.cat([x[-1], torch.ones(x.shape[1], 1, dtype=torch.float64)], 1)
    sol = torch.linalg.lstsq(X, y).solution
    for e in range(2):
        torch.testing.assert_close(model.W[e].detach(), sol[:-1], rtol=1e-7, atol=1e-7)
        torch.testing.assert_close(model.c[e].detach(), sol[-1], rtol=1e-7, atol=1e-7)
    assert rec.accepted.all() and (rec.step_size == 1).all()
    assert rec.rho.tolist() == pytest.approx([1.0, 1.0], abs=1e-6)     # the model is exact
    assert (rec.damping == 0).all() and (rec.next_damping == 0).all()


def test_temporal_order_learns():
    """A short temporal order problem: the error falls far below chance (3/4) in a few steps."""
    task = tasks.get("temporal_order", seed=0)
    model = ElmanRNN(6, 16, 4, unit="tanh", init="smart_tanh", seed=0)
    opt = HessianFree(model, damping=0.1, cg_max_iters=40, curvature_batch=50)
    x_test, y_test = tasks.get("temporal_order", seed=99).sample(400, 10)
    before = model.evaluate(x_test, y_test).wrong.float().mean().item()
    errors = []
    for _ in range(10):
        rec = opt.step(task.sample(200, 10))
        assert torch.isfinite(rec.loss_after).all()
        errors.append(model.evaluate(x_test, y_test).wrong.float().mean().item())
        if errors[-1] < 0.1:
            break
    assert before > 0.5 and errors[-1] < 0.1
    assert opt.nonfinite_count.sum() == 0


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_per_step_outputs_lower_the_loss(output):
    gen = torch.Generator().manual_seed(0)
    T, B = 6, 30
    x = torch.randn(T, B, 3, generator=gen)
    y = x.argmax(-1) if output == "softmax" else (x > 0).float()      # learnable: read off x_t
    model = ElmanRNN(3, 8, 3, unit="sigmoid", init="sigmoid", output=output, seed=1)
    opt = HessianFree(model, damping=0.01, cg_max_iters=30)
    first = opt.step((x, y))
    for _ in range(5):
        last = opt.step((x, y))
    assert (last.loss_after < 0.25 * first.loss_before).all()


def test_ensemble_members_match_solo_runs():
    """Member e of an ensemble follows exactly the trajectory it follows alone."""
    task = tasks.get("temporal_order", seed=3)
    batches = [task.sample(60, 10) for _ in range(3)]
    batches = [(x.double(), y) for x, y in batches]
    kw = dict(unit="tanh", init="smart_tanh", dtype=torch.float64)
    pair = ElmanRNN(6, 6, 4, seeds=[0, 1], **kw)
    damping = torch.tensor([1.0, 0.3])
    opt = HessianFree(pair, damping=damping, cg_max_iters=30, curvature_batch=30)
    recs = [opt.step(b) for b in batches]
    for e in range(2):
        solo = ElmanRNN(6, 6, 4, seeds=[e], **kw)
        opt_e = HessianFree(solo, damping=float(damping[e]), cg_max_iters=30, curvature_batch=30)
        for b, rec in zip(batches, recs):
            r = opt_e.step(b)
            assert r.cg_iterations[0] == rec.cg_iterations[e]
            assert r.cg_chosen[0] == rec.cg_chosen[e]
            torch.testing.assert_close(r.rho[0], rec.rho[e], rtol=1e-6, atol=1e-9)
        for name, p in solo.params.items():
            torch.testing.assert_close(p.detach()[0], pair.params[name].detach()[e], rtol=1e-6, atol=1e-9)


def test_state_dict_round_trip_continues_exactly():
    task = tasks.get("temporal_order", seed=5)
    batches = [task.sample(50, 10) for _ in range(4)]
    model = ElmanRNN(6, 8, 4, ensemble=2, seed=0)
    opt = HessianFree(model, damping=0.5, cg_max_iters=20, curvature_batch=25)
    for b in batches[:2]:
        opt.step(b)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = opt.state_dict()
    tail = [opt.step(b) for b in batches[2:]]
    model2 = ElmanRNN(6, 8, 4, ensemble=2, seed=7)
    model2.load_state_dict(saved_model)
    opt2 = HessianFree(model2, damping=9.0, cg_max_iters=20, curvature_batch=25)
    opt2.load_state_dict(saved_opt)
    tail2 = [opt2.step(b) for b in batches[2:]]
    for a, b in zip(tail, tail2):
        assert torch.equal(a.loss_after, b.loss_after) and torch.equal(a.damping, b.damping)
        assert torch.equal(a.cg_iterations, b.cg_iterations)
    for k, v in model.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k])
    assert opt2.steps == opt.steps == 4
    with pytest.raises(ValueError, match="another model"):
        HessianFree(ElmanRNN(6, 9, 4, ensemble=2)).load_state_dict(saved_opt)
    with pytest.raises(ValueError, match="state dict"):
        opt2.load_state_dict({"damping": 1})


def test_nonfinite_loss_is_rejected_and_counted():
    """Member 1's targets are infinite: its loss is not finite; it takes no step, λ rises."""
    model = LinearReadout(5, 2, ensemble=2)
    x, y = regression()
    y2 = torch.stack([y, torch.full_like(y, math.inf)])
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = HessianFree(model, damping=1.0)
    rec = opt.step((x, y2))
    assert rec.nonfinite.tolist() == [False, True] and rec.accepted.tolist() == [True, False]
    assert rec.next_damping[1].item() == pytest.approx(BOOST) and rec.step_size[1] == 0
    assert opt.nonfinite_count.tolist() == [0, 1]
    for k, p in model.named_parameters():
        assert torch.equal(p.detach()[1], before[k][1])
        assert torch.isfinite(p).all() and not torch.equal(p.detach()[0], before[k][0])
    assert torch.equal(opt.previous[1], torch.zeros_like(opt.previous[1]))


class Fragile(LinearReadout):
    """Finite at the start, NaN as soon as any weight moves far: f(θ + p) is not finite."""

    def forward(self, x):
        z = super().forward(x)
        far = (self.W.abs() > 10).any()
        return torch.where(far, torch.full_like(z, math.nan), z)


def test_nonfinite_trial_points_are_never_written():
    model = Fragile(5, 2, ensemble=1)
    x, y = regression()
    y = 1e3 * y                                             # the minimum lies far away
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = HessianFree(model, damping=1e-4, line_search_max=3)
    rec = opt.step((x, y))
    assert not rec.accepted.any() and rec.step_size[0] == 0
    assert rec.next_damping[0].item() == pytest.approx(1e-4 * BOOST)
    assert rec.loss_after[0] == rec.loss_before[0]
    for k, p in model.named_parameters():
        assert torch.equal(p.detach(), before[k])


@pytest.mark.parametrize("kwargs, name", [
    ({"damping": -1.0}, "damping"), ({"damping": math.nan}, "damping"),
    ({"structural_damping": -0.1}, "structural_damping"), ({"structural_damping": math.nan}, "structural_damping"),
    ({"gradient_batch": 0}, "gradient_batch"), ({"gradient_batch": -5}, "gradient_batch"),
    ({"curvature_batch": 0}, "curvature_batch"), ({"curvature_batch": 2.5}, "curvature_batch"),
    ({"cg_max_iters": 0}, "cg_max_iters"), ({"cg_max_iters": math.nan}, "cg_max_iters"),
    ({"cg_decay": 1.5}, "cg_decay"), ({"cg_save_factor": 1.0}, "cg_save_factor"),
    ({"line_search_factor": 1.0}, "line_search_factor"), ({"armijo": 0.0}, "armijo"),
    ({"damping": torch.tensor([1.0, 2.0, 3.0])}, "damping"),
])
def test_bad_settings_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        HessianFree(ElmanRNN(2, 3, 2, ensemble=2), **kwargs)


def test_structural_damping_needs_states():
    model = LinearReadout(5, 2, ensemble=1)
    assert HessianFree(model).structural_damping == 0.0
    assert HessianFree(ElmanRNN(2, 3, 2)).structural_damping == pytest.approx(1 / 30)
    with pytest.raises(ValueError, match="structural_damping"):
        HessianFree(model, structural_damping=0.1)


def test_batch_sizes_are_checked():
    model = ElmanRNN(6, 4, 4)
    x, y = tasks.get("temporal_order", seed=0).sample(10, 10)
    with pytest.raises(ValueError, match="fewer than the 20"):
        HessianFree(model, gradient_batch=20).step((x, y))
    with pytest.raises(ValueError, match="fewer than the 20"):
        HessianFree(model, curvature_batch=20).step((x, y))
    with pytest.raises(ValueError, match="pair"):
        HessianFree(model).step(x)


def test_general_path_with_states_fn_matches_the_elman_fast_path():
    """Through states_fn the optimizer takes the torch.func path; it agrees with the fast one."""
    from bptt.optim.curvature import elman_function

    task = tasks.get("temporal_order", seed=4)
    batches = [(x.double(), y) for x, y in (task.sample(40, 10) for _ in range(2))]
    kw = dict(ensemble=2, unit="sigmoid", init="sigmoid", dtype=torch.float64, seed=3)
    fast_model, general_model = ElmanRNN(6, 5, 4, **kw), ElmanRNN(6, 5, 4, **kw)
    fast = HessianFree(fast_model, damping=0.2, cg_max_iters=25)
    general = HessianFree(general_model, damping=0.2, cg_max_iters=25,
                          states_fn=elman_function("sigmoid", "last_softmax"), hidden_unit="sigmoid")
    assert fast._elman and not general._elman
    assert fast.structural_damping == general.structural_damping == pytest.approx(1 / 30)
    for b in batches:
        r1, r2 = fast.step(b), general.step(b)
        assert torch.equal(r1.cg_iterations, r2.cg_iterations)
        torch.testing.assert_close(r1.loss_after, r2.loss_after, rtol=1e-9, atol=1e-12)
    for name, p in fast_model.params.items():
        torch.testing.assert_close(p, general_model.params[name], rtol=1e-8, atol=1e-10)


def test_structural_damping_keeps_the_hidden_trajectory_closer():
    """With a large μ the step changes the hidden pre-activations less than with μ = 0."""
    from bptt.optim.curvature import elman_function

    x, y = tasks.get("temporal_order", seed=6).sample(100, 20)
    fn = elman_function("tanh", "last_softmax")
    moves = {}
    for mu in (0.0, 10.0):
        model = ElmanRNN(6, 10, 4, unit="tanh", init="smart_tanh", seed=2)
        a0 = fn({k: p.detach() for k, p in model.named_parameters()}, x)[1]
        opt = HessianFree(model, damping=0.05, structural_damping=mu, cg_max_iters=50, line_search=False)
        rec = opt.step((x, y))
        assert rec.accepted.all()
        a1 = fn({k: p.detach() for k, p in model.named_parameters()}, x)[1]
        moves[mu] = (a1 - a0).norm().item()
    assert moves[10.0] < 0.5 * moves[0.0]


@pytest.mark.parametrize("name", ["lstm", "gru", "leaky", "skip", "esn"])
def test_every_ensemble_model_takes_steps(name):
    """The general path: any model of the call convention; only ElmanRNN takes the fast path."""
    from bptt.models import MODELS

    x, y = tasks.get("temporal_order", seed=0).sample(40, 10)
    model = MODELS[name](6, 5, 4, ensemble=2, seed=0)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = HessianFree(model, damping=0.1, cg_max_iters=20)
    assert not opt._elman and opt.structural_damping == 0.0
    rec = opt.step((x, y))
    assert rec.accepted.all() and (rec.loss_after < rec.loss_before).all()
    assert any(not torch.equal(p.detach(), before[k]) for k, p in model.named_parameters())


@pytest.mark.parametrize("kind", ["elman", "gru"])
def test_select_keeps_the_members_state(kind):
    """After retiring a member, the rest continue exactly as in the full ensemble."""
    from bptt.models import MODELS

    task = tasks.get("temporal_order", seed=8)
    batches = [task.sample(30, 10) for _ in range(3)]
    kw = dict(ensemble=3, seed=0, dtype=torch.float64)
    full, part = MODELS[kind](6, 4, 4, **kw), MODELS[kind](6, 4, 4, **kw)
    damping = torch.tensor([0.1, 0.2, 0.3])
    opt_full = HessianFree(full, damping=damping, cg_max_iters=15)
    opt_part = HessianFree(part, damping=damping, cg_max_iters=15)
    xs = [(x.double(), y) for x, y in batches]
    opt_full.step(xs[0])
    opt_part.step(xs[0])
    part = part.select([0, 2])
    opt_part.select([0, 2], part)
    for b in xs[1:]:
        r_full, r_part = opt_full.step(b), opt_part.step(b)
        torch.testing.assert_close(r_part.loss_after, r_full.loss_after[[0, 2]], rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(r_part.damping, r_full.damping[[0, 2]])
    with pytest.raises(ValueError, match="members"):
        opt_part.select([0], part)
