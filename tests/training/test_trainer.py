"""The training loop: it learns, it is deterministic, it records, it resumes exactly."""

import dataclasses
import math
import os
import signal
import threading
import subprocess
import sys

import numpy as np
import pytest
import torch

from bptt.store import Store
from bptt.training.trainer import TrainConfig, Trainer


def small(**kw):
    base = dict(task="temporal_order", min_length=20, max_length=20, hidden=16, init="basic_tanh",
                method="msgd-cr", lr=0.05, seeds=[0, 1], max_updates=60, eval_every=20,
                check_sequences=50, eval_sequences=200, record_every=5, checkpoint_every=1000)
    base.update(kw)
    return TrainConfig(**base)


def test_training_lowers_the_loss():
    cfg = small(task="adding", method="msgd-c", lr=0.05, max_updates=300, eval_every=1000, seeds=[0, 1, 2])
    store = Store(":memory:")
    res = Trainer(cfg, store).run()
    for m in res.members:
        s, loss = store.get_curve(m.run_id)["loss"]
        assert loss[-5:].mean() < 0.5 * loss[:2].mean(), (loss[:3], loss[-5:])
        assert m.status == ("succeeded" if m.error < cfg.success_error else "failed")
        assert store.get_run(m.run_id)["status"] == m.status


def test_same_seed_same_numbers_and_records():
    a = Trainer(small(), None).run()
    b = Trainer(small(), None).run()
    for k in a.model.params:
        assert torch.equal(a.model.params[k], b.model.params[k])
    c = Trainer(small(seeds=[0, 2]), None).run()
    assert torch.equal(a.model.W_rec[0], c.model.W_rec[0])
    assert not torch.equal(a.model.W_rec[1], c.model.W_rec[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_training_on_cuda_follows_the_cpu_run():
    cfg = dict(dtype="float64", method=["msgd", "msgd-c", "msgd-cr"], seeds=[0, 1, 2], threshold=0.5)
    cpu = Trainer(small(**cfg), None).run()
    gpu = Trainer(small(device="cuda", **cfg), None).run()
    assert gpu.model.params["W_rec"].is_cuda
    for k, v in cpu.model.params.items():
        assert torch.allclose(gpu.model.params[k].cpu(), v, rtol=1e-8, atol=1e-10), k
    assert [m.status for m in gpu.members] == [m.status for m in cpu.members]


def test_store_records_config_status_curves():
    store = Store(":memory:")
    cfg = small()
    res = Trainer(cfg, store).run()
    for m in res.members:
        run = store.get_run(m.run_id)
        assert run["status"] == ("succeeded" if run["metrics"]["error"] < cfg.success_error else "failed")
        assert run["config"]["seed"] == m.seed and run["config"]["method"] == "msgd-cr"
        assert run["metrics"]["updates"] == 60
        curve = store.get_curve(m.run_id)
        for name in ("loss", "grad_norm", "clipped", "omega", "omega_fraction", "check_error", "rho"):
            assert name in curve, name
        steps, omega = curve["omega"]
        assert list(steps[:3]) == [5, 10, 15] and np.all(omega >= 0)
        assert len(curve["rho"][0]) == 3
        assert store.load_checkpoint(m.run_id) is not None


class StopAt:
    """A callback that interrupts training after update ``update``."""

    def __init__(self, update):
        self.update = update

    def __call__(self, trainer):
        if trainer.update == self.update:
            raise KeyboardInterrupt


def test_stop_and_resume_continues_exactly():
    straight = Trainer(small(max_updates=80), None).run()
    store = Store(":memory:")
    first = Trainer(small(max_updates=80, record_every=1), store, callback=StopAt(37))  # between evaluations
    with pytest.raises(KeyboardInterrupt):
        first.run()
    step, payload = store.load_checkpoint(first.run_ids[0])
    assert step == 37
    resumed = Trainer.from_checkpoint(payload, store)
    assert resumed.update == 37 and resumed.run_ids == first.run_ids
    done = resumed.run()
    for k in straight.model.params:
        assert torch.equal(straight.model.params[k], done.model.params[k]), k
    assert [m.error for m in straight.members] == [m.error for m in done.members]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_after_the_update_in_progress(monkeypatch, sig):
    store = Store(":memory:")
    trainer = Trainer(small(max_updates=500), store)
    calls = {"n": 0}
    real = trainer.next_batch

    def interrupted(loop):
        calls["n"] += 1
        if calls["n"] == 33:
            signal.pthread_kill(threading.get_ident(), sig)          # arrives in the middle of update 33
        return real(loop)

    def as_interrupt(signum, frame):           # SIGTERM as the command line and sweep workers take it
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "next_batch", interrupted)
    previous = signal.signal(signal.SIGTERM, as_interrupt)
    try:
        before = signal.getsignal(sig)
        with pytest.raises(KeyboardInterrupt):
            trainer.run()
        assert signal.getsignal(sig) is before
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert trainer.update == 33 and calls["n"] == 33
    for rid in trainer.run_ids:
        assert store.get_run(rid)["status"] == "stopped"
        step, _ = store.load_checkpoint(rid)
        assert step == 33


SIGTERM_SCRIPT = """
import os, signal, sys
from bptt.store import Store
from bptt.training.trainer import TrainConfig, Trainer
trainer = Trainer(TrainConfig(task="temporal_order", min_length=20, max_length=20, hidden=8, seeds=[0, 1],
                              max_updates=500, eval_every=20, check_sequences=20, eval_sequences=50),
                  Store(sys.argv[1]))
real = trainer.next_batch
def next_batch(loop):
    if loop.update == 16:
        os.kill(os.getpid(), signal.SIGTERM)    # the default action: end the process
    return real(loop)
trainer.next_batch = next_batch
trainer.run()
print("not reached")
"""


def test_sigterm_with_its_default_action_ends_the_process_after_the_checkpoint(tmp_path):
    path = tmp_path / "s.sqlite"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", SIGTERM_SCRIPT, str(path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert "not reached" not in proc.stdout
    store = Store(path)
    runs = store.list_runs()
    assert len(runs) == 2 and {r["status"] for r in runs} == {"stopped"}
    assert {store.load_checkpoint(r["id"])[0] for r in runs} == {17}


def test_nonfinite_updates_are_counted_not_fatal_when_guarded():
    # a huge learning rate on a linear unit makes the gradients overflow
    cfg = small(unit="linear", init="basic_tanh", lr=50.0, method="msgd", max_updates=40, seeds=[0], guard="always")
    store = Store(":memory:")
    res = Trainer(cfg, store).run()
    m = res.members[0]
    assert m.nonfinite > 0 and m.status != "diverged"
    assert store.count_events(m.run_id, "nonfinite") == m.nonfinite
    assert res.model is not None and torch.isfinite(res.model.W_rec).all()


def test_an_unguarded_member_that_overflows_ends_diverged_at_the_update_it_happened():
    # the same overflow under the default guard: MSGD does not clip, so nothing protects it
    cfg = small(unit="linear", init="basic_tanh", lr=50.0, method=["msgd", "msgd-c"], max_updates=40,
                seeds=[0, 0], record_every=1)
    store = Store(":memory:")
    res = Trainer(cfg, store).run()
    plain, clipped = res.members
    assert plain.status == "diverged" and clipped.status != "diverged"
    run = store.get_run(plain.run_id)
    u = run["metrics"]["diverged_at"]
    assert run["status"] == "diverged" and plain.updates == u < 40
    assert plain.nonfinite == 0                              # nothing refused: the update was applied
    assert [e["step"] for e in store.events(plain.run_id, "diverged")] == [u]
    # the numbers that decide it: the gradient norm (or loss) of update u is not finite, those before are
    curve = store.get_curve(plain.run_id, ["grad_norm", "loss"])
    steps, norms = curve["grad_norm"]
    losses = curve["loss"][1]
    at = list(steps).index(u)
    assert not (math.isfinite(norms[at]) and math.isfinite(losses[at]))
    assert all(math.isfinite(v) for v in norms[:at]) and all(math.isfinite(v) for v in losses[:at])
    assert steps[-1] == u                                   # nothing recorded after it left
    # the clipping member trained on to the end of its budget, unharmed
    assert clipped.updates == 40 or clipped.status == "succeeded"


@pytest.mark.parametrize("guard, expected", [("clipping", [False, True, True]), ("always", [True, True, True]),
                                             ("never", [False, False, False])])
def test_which_members_the_guard_protects(guard, expected):
    cfg = small(method=["msgd", "msgd-c", "msgd-cr"], seeds=[0, 0, 0], guard=guard)
    assert Trainer(cfg).loop.rule.guard == expected


def test_an_unknown_guard_is_refused():
    with pytest.raises(ValueError, match="guard"):
        small(guard="sometimes").validate()


@pytest.mark.parametrize("kw, match", [
    ({"method": "sgd"}, "method"), ({"threshold": -1.0}, "threshold"), ({"task": "nope"}, "task"),
    ({"min_length": 5, "max_length": 5}, "length"), ({"seeds": [1, 1]}, "seeds"), ({"lr": 0.0}, "learning rate"),
    ({"alpha": -1.0}, "alpha"), ({"lr": math.nan}, "learning rate"), ({"lr": math.inf}, "learning rate"),
    ({"threshold": math.nan}, "threshold"), ({"threshold": math.inf}, "threshold"),
    ({"alpha": math.nan}, "alpha"), ({"alpha": math.inf}, "alpha"),
    ({"seeds": [0, 1], "lr": [0.1, math.nan]}, "learning rate"), ({"seeds": [0, 1], "lr": [0.1]}, "entries"),
    ({"method": "msgd", "threshold": math.nan}, "threshold"), ({"hidden": 0}, "hidden"),
    ({"success_error": 1.0}, "success_error")])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        small(**kw).validate()


def test_validation_changes_nothing():
    cfg = small(method=("msgd", "msgd-c"), lr=(0.1, 0.2))
    before = dataclasses.asdict(cfg)
    assert cfg.validate() is cfg
    assert dataclasses.asdict(cfg) == before and isinstance(cfg.method, tuple)


def test_success_retires_members():
    # memorization with one position and one value is learnable in a few hundred updates
    cfg = small(task="memorization", task_options={"n_values": 2, "n_pos": 1}, min_length=3, max_length=3,
                method="msgd-c", lr=0.5, max_updates=2000, eval_every=20, seeds=[0, 1])
    res = Trainer(cfg, Store(":memory:")).run()
    assert all(m.status == "succeeded" for m in res.members)
    assert all(m.updates < 2000 and m.error < 0.01 for m in res.members)
