"""Hessian-free optimization through the one training loop: every model, every Elman unit
and output kind, records per HF iteration and per run, non-finite steps handled, and an
interrupted training that resumes to the uninterrupted numbers."""

import dataclasses
import math
import signal

import numpy as np
import pytest
import torch

from bptt.models import MODELS
from bptt.optim import HFRule
from bptt.store import Store
from bptt.training.build import build_rule
from bptt.training.synthetic import Trainer, resume
from bptt.training.trainer import TrainConfig

from test_loop import signal_at


pytestmark = pytest.mark.usefixtures("one_thread")


def hf(**kw):
    """Temporal order at length 10: members succeed after a handful of HF iterations."""
    base = dict(task="temporal_order", min_length=10, max_length=10, hidden=12, method="msgd", optimizer="hf",
                damping=0.1, gradient_batch=120, curvature_batch=40, cg_max_iters=30, seeds=[0, 1, 2],
                max_updates=12, eval_every=1, check_sequences=200, eval_sequences=1000, record_every=2,
                checkpoint_every=1000)
    base.update(kw)
    return TrainConfig(**base)


def record(store, timed=False):
    """What the store holds about each run, without the wall times (which no two runs share)."""
    out = {}
    for r in store.list_runs():
        curves = store.get_curve(r["id"])
        out[r["config"]["seed"]] = {
            "status": r["status"], "metrics": {k: v for k, v in r["metrics"].items() if k != "hf_wall_time"},
            "curves": {k: (s.tolist(), v.tolist()) for k, (s, v) in curves.items() if timed or k != "hf_wall_time"},
            "events": [(e["step"], e["kind"], e["detail"]) for e in store.events(r["id"])],
            "checkpoint_step": store.load_checkpoint(r["id"])[0]}
    return out


@pytest.fixture(scope="module")
def straight():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    store = Store(":memory:")
    result = Trainer(hf(), store, group="g").run()
    finished = sorted(m.updates for m in result.members)
    assert all(m.status == "succeeded" for m in result.members)
    assert finished[0] < finished[-1] <= 12                       # members retire at different updates
    yield store, result
    torch.set_num_threads(saved)


def test_hf_learns_temporal_order_and_records_every_iteration(straight):
    store, result = straight
    for m in result.members:
        run = store.get_run(m.run_id)
        t, curves = run["metrics"], store.get_curve(m.run_id)
        assert m.error < 0.01                                     # chance is 3/4
        assert t["hf_iterations"] == t["updates"] == m.updates
        steps = list(range(1, m.updates + 1))
        for name in HFRule.RECORDS:                               # one point per HF iteration
            assert curves[name][0].tolist() == steps, name
        assert np.sum(curves["hf_cg_iterations"][1]) == t["hf_cg_iterations"]
        assert np.sum(curves["hf_accepted"][1]) == t["hf_accepted"] <= t["hf_iterations"]
        assert t["hf_gradient_evaluations"] == 2 * t["hf_iterations"]       # gradient + preconditioner
        # one product per CG iteration and one for each ρ, one more per warm start (all but the first)
        assert t["hf_curvature_products"] == t["hf_cg_iterations"] + 2 * t["hf_iterations"] - 1
        assert t["hf_wall_time"] == pytest.approx(np.sum(curves["hf_wall_time"][1])) and t["hf_wall_time"] > 0
        lam = curves["hf_damping"][1]
        assert lam[0] == pytest.approx(0.1)
        for i in range(1, len(lam)):                              # λ follows ρ (Levenberg–Marquardt)
            rho = curves["hf_rho"][1][i - 1]
            factor = 1.5 if not rho >= 0.25 else (2 / 3 if rho > 0.75 else 1.0)
            assert lam[i] == pytest.approx(lam[i - 1] * factor)
        before, after = curves["hf_loss_before"][1], curves["hf_loss_after"][1]
        assert np.all(after <= before) and after[-1] < 0.5 * before[0]
        assert run["config"]["optimizer"] == "hf" and run["config"]["gradient_batch"] == 120
        assert "cg_decay" not in run["config"]                    # unset settings are not stored


def test_an_interrupted_hf_training_resumes_to_the_uninterrupted_numbers(straight):
    """Interrupted before and after a member retires (the rule's state then holds fewer members)."""
    store_straight, result = straight
    first_retirement = min(m.updates for m in result.members)
    expected = record(store_straight)
    for at in (first_retirement - 1, first_retirement + 1):
        store = Store(":memory:")
        trainer = Trainer(hf(), store, group="g")
        signal_at(trainer, at, signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            trainer.run()
        stopped = [r for r in store.list_runs() if r["status"] == "stopped"]
        assert stopped and trainer.update == at
        resumed = resume(store, stopped[0]["id"])
        assert isinstance(resumed.loop.rule, HFRule) and resumed.loop.rule.ensemble == len(stopped)
        resumed.run()
        assert record(store) == expected, at


def _injected(trainer, at, member, how):
    """Make ``member``'s data or its quadratic model non-finite at update ``at``."""
    real = trainer.next_batch

    def next_batch(loop):
        batch = real(loop)
        if loop.update + 1 == at and how == "input":
            batch.x = batch.x.clone()
            batch.x[:, member] = math.nan
        return batch

    trainer.next_batch = next_batch


@pytest.mark.parametrize("how", ["input", "quadratic"])
def test_a_nonfinite_step_is_counted_rejected_and_never_written(monkeypatch, how):
    from bptt.optim import elman_curvature

    config = hf(seeds=[0, 1], max_updates=4, eval_every=100, record_every=1)
    store = Store(":memory:")
    trainer = Trainer(config, store)
    at, member = 3, 1
    _injected(trainer, at, member, how)
    if how == "quadratic":                                        # G·p of ρ's q(p) not finite for member 1
        real_gv = elman_curvature.ElmanGaussNewton.gv

        def gv(self, v):
            out = real_gv(self, v)
            if trainer.loop.update + 1 == at:
                out[member] = math.inf
            return out

        monkeypatch.setattr(elman_curvature.ElmanGaussNewton, "gv", gv)
    snapshots = []
    real_step = trainer.loop.rule.step

    def step(model, batch):
        snapshots.append({k: p.detach().clone() for k, p in model.params.items()})
        return real_step(model, batch)

    trainer.loop.rule.step = step
    trainer.run()
    rid = trainer.run_ids[member]
    curves, run = store.get_curve(rid), store.get_run(rid)
    assert curves["nonfinite"][1].tolist() == [0, 0, 1, 0]
    assert curves["hf_accepted"][1][at - 1] == 0 and curves["hf_step_size"][1][at - 1] == 0
    lam = curves["hf_damping"][1]
    assert lam[at] == pytest.approx(1.5 * lam[at - 1])            # λ raised
    for k in snapshots[at - 1]:                                  # member 1 unchanged by update 3
        assert torch.equal(snapshots[at][k][member], snapshots[at - 1][k][member]), k
        assert not torch.equal(snapshots[at][k][0], snapshots[at - 1][k][0]), k
    assert run["metrics"]["nonfinite"] == 1 and run["metrics"]["hf_accepted"] == 3
    events = [(e["step"], e["kind"], e["detail"]) for e in store.events(rid)]
    assert events == [(at, "nonfinite", HFRule.NONFINITE_EVENT)]
    assert store.get_run(trainer.run_ids[0])["metrics"]["nonfinite"] == 0
    assert all(torch.isfinite(p).all() for p in trainer.model.params.values())


@pytest.mark.parametrize("task", ["temporal_order", "adding", "memorization"])
@pytest.mark.parametrize("unit,init", [("tanh", "smart_tanh"), ("sigmoid", "sigmoid"), ("relu", "identity"),
                                       ("linear", "orthogonal")])
def test_every_elman_unit_and_output_trains(task, unit, init):
    options = {"n_values": 2, "n_pos": 1} if task == "memorization" else {}
    length = 5 if task == "memorization" else 10
    config = hf(task=task, task_options=options, min_length=length, max_length=length, hidden=6, unit=unit, init=init,
                seeds=[0, 1], max_updates=3, eval_every=100, check_sequences=50, eval_sequences=50,
                gradient_batch=40, curvature_batch=20, cg_max_iters=10)
    store = Store(":memory:")
    trainer = Trainer(config, store)
    assert trainer.loop.rule.hf._elman and trainer.loop.rule.hf.structural_damping == pytest.approx(1 / 30)
    trainer.run()
    for rid in trainer.run_ids:
        curves = store.get_curve(rid)
        before, after = curves["hf_loss_before"][1], curves["hf_loss_after"][1]
        assert np.all(np.isfinite(after)) and np.all(after <= before) and np.any(after < before)
        assert store.get_run(rid)["metrics"]["hf_iterations"] == 3


@pytest.mark.parametrize("model", [m for m in MODELS if m != "elman"])
def test_every_ensemble_model_trains_with_hf(model):
    options = {"delay": 2} if model == "skip" else {}
    config = hf(model=model, model_options=options, init="smart_tanh", seeds=[0, 1], max_updates=3,
                eval_every=100, check_sequences=50, eval_sequences=50, gradient_batch=40, curvature_batch=20,
                cg_max_iters=10)
    store = Store(":memory:")
    trainer = Trainer(config, store)
    rule = trainer.loop.rule
    assert isinstance(rule, HFRule) and not rule.hf._elman and rule.hf.structural_damping == 0.0
    start = {k: v.detach().clone() for k, v in trainer.model.params.items()}
    result = trainer.run()
    fixed = getattr(MODELS[model], "FIXED", ())
    for k, v in result.model.params.items():
        assert torch.equal(v, start[k]) == (k in fixed), k        # an ESN's reservoir never moves
    for rid in trainer.run_ids:
        after = store.get_curve(rid)["hf_loss_after"][1]
        before = store.get_curve(rid)["hf_loss_before"][1]
        assert np.all(after <= before) and after[-1] < before[0]


def test_a_training_config_dict_builds_hf_as_the_command_line_does():
    """A row of a reproduction is a dict of TrainConfig fields; optimizer 'hf' goes through build.py."""
    row = {"task": "temporal_order", "min_length": 10, "max_length": 10, "hidden": 12, "method": "msgd",
           "optimizer": "hf", "damping": 0.1, "structural_damping": 0.05, "cg_max_iters": 30, "cg_decay": 0.9,
           "cg_tolerance": 1e-3, "gradient_batch": 120, "curvature_batch": 40, "seeds": [0]}
    config = TrainConfig(**row).validate()
    trainer = Trainer(config)
    rule = trainer.loop.rule
    assert isinstance(rule, HFRule) and type(build_rule(config, trainer.model)) is HFRule
    opt = rule.hf
    assert (opt.structural_damping, opt.cg_max_iters, opt.cg_decay, opt.cg_tolerance, opt.curvature_batch) == \
        (0.05, 30, 0.9, 1e-3, 40)
    assert torch.allclose(opt.damping, torch.tensor([0.1]))
    assert trainer.next_batch(trainer.loop).x.shape[2] == 120      # the gradient batch, drawn per member
    stored = config.member_at(0)
    assert {k: stored[k] for k in row if k != "seeds"} == {k: v for k, v in row.items() if k != "seeds"}
    default = TrainConfig(**{**row, "curvature_batch": None, "gradient_batch": None}).validate()
    assert default.update_batch == 1000 and default.hf_options()["curvature_batch"] == 100


@pytest.mark.parametrize("kw,match", [
    (dict(damping=-1.0), "damping"), (dict(damping=math.nan), "damping"),
    (dict(structural_damping=-0.1), "structural_damping"), (dict(structural_damping=math.inf), "structural_damping"),
    (dict(gradient_batch=0), "gradient_batch"), (dict(curvature_batch=-2), "curvature_batch"),
    (dict(curvature_batch=2.5), "curvature_batch"), (dict(cg_max_iters=0), "cg_max_iters"),
    (dict(cg_max_iters=math.nan), "cg_max_iters"), (dict(cg_decay=1.5), "cg_decay"),
    (dict(cg_tolerance=0.0), "cg_tolerance"),
    (dict(curvature_batch=500), "must not exceed gradient_batch"),
    (dict(method="msgd-cr"), "neither clips nor adds"),
    (dict(batch_size=50), "leave batch_size"),
    (dict(model="lstm", structural_damping=0.1), "only the elman"),
    (dict(l2=0.1), "L1/L2"),
    (dict(optimizer="adam", damping=0.1, gradient_batch=None, curvature_batch=None, cg_max_iters=None),
     "settings of optimizer 'hf'"),
])
def test_hf_settings_that_do_not_fit_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(hf(), **kw).validate()
