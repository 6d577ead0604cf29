"""Training Table 1's ensembles: one step, the bookkeeping, the records, resuming."""

from __future__ import annotations

import math
import os
import signal
import threading
import subprocess
import sys

import numpy as np
import pytest
import torch

from bptt.experiments.table1 import NaturalTrainer, evaluate_split, train_natural
from bptt.methods import METHODS
from bptt.models import ElmanRNN
from bptt.omega import alpha_schedule
from bptt.store import Store
from bptt.training import checkpoint

from table1_toys import check_outcome, small, toy_music, toy_text


# ---------------------------------------------------------------------------------- a step

def test_ptb_step_sums_the_cost_keeps_biases_at_zero_and_scales_alpha():
    src = toy_text()
    cfg = small("ptb_1step", hidden=6, window=10, batch_size=2, threshold=1e6)
    trainer = NaturalTrainer(cfg, src, Store(":memory:"))
    batch = trainer.next_batch(trainer.loop)                 # the first window, as the loop gets it
    window = next(src.batches("train", 2, 10))
    assert torch.equal(batch.x, window.x) and torch.equal(batch.mask, window.mask)
    before = {k: v.detach().clone() for k, v in trainer.model.params.items()}
    T = 10
    assert batch.scale == T and batch.count == 2 * T
    alpha = torch.tensor([alpha_schedule(cfg.alpha_schedule, cfg.method_alpha0(m))(1) for m in METHODS])
    ref = trainer.model.forward_backward(batch.x, batch.y, alpha=alpha / T, omega="squared", h0=batch.h0,
                                         mask=batch.mask)
    trainer.loop.step(batch)
    lr = torch.tensor([0.001, 0.01, 0.05])
    for k, p in trainer.model.params.items():
        g = ref.grads[k] * T                               # ∇ of the cost summed over the window
        if k == "b":
            g = torch.zeros_like(g)
        expected = before[k] - lr.reshape(-1, *[1] * (g.dim() - 1)) * g
        np.testing.assert_allclose(p.detach().numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)
    assert torch.count_nonzero(trainer.model.b) == 0
    assert alpha[2] == 0.5 and alpha[0] == alpha[1] == 0.0   # α_1 = 1/(2·1), for MSGD-CR only


@pytest.mark.parametrize("alpha_time", ["epochs", "updates"])
def test_alpha_decays_with_the_epoch_or_with_the_update(alpha_time):
    # α_t = alpha0 / t of MSGD-CR, as the loop hands it to the model, update after update
    src = toy_music()
    cfg = small(max_epochs=2, alpha_time=alpha_time)
    trainer = NaturalTrainer(cfg, src, Store(":memory:"))
    seen = []
    model_pass = type(trainer.model).forward_backward

    def spy(model, x, y, *, alpha, **kw):
        seen.append((trainer.epoch + 1, trainer.update + 1, float(alpha[-1])))
        return model_pass(model, x, y, alpha=alpha, **kw)

    trainer.loop.model.forward_backward = spy.__get__(trainer.loop.model)
    trainer.run()
    epochs = {e for e, _, _ in seen}
    assert epochs == {1, 2} and len(seen) > len(epochs)
    for epoch, update, alpha in seen:
        t = epoch if alpha_time == "epochs" else update
        assert alpha == pytest.approx(cfg.alpha0 / t)
    # the setting is stored with every run
    assert all(trainer.store.get_run(m.run_id)["config"]["alpha_time"] == alpha_time for m in trainer.loop.members)


def test_table1_guards_the_clipping_methods_by_default():
    src = toy_music()
    for guard, expected in (("clipping", [False, True, True]), ("always", [True] * 3), ("never", [False] * 3)):
        trainer = NaturalTrainer(small(guard=guard), src, Store(":memory:"))
        assert trainer.loop.rule.guard == expected


def test_an_unguarded_msgd_member_that_overflows_ends_diverged_with_its_best_epoch():
    # MSGD's gradient turns infinite at the second update of epoch 2; by default nothing guards it
    src = toy_music()
    store = Store(":memory:")
    trainer = NaturalTrainer(small(max_epochs=3), src, store)
    model_pass = type(trainer.model).forward_backward
    hit = []

    def overflow(model, x, y, **kw):
        out = model_pass(model, x, y, **kw)
        if trainer.epoch == 1 and trainer.position == 1:
            hit.append(trainer.update + 1)
            w = torch.ones_like(out.grads["W_rec"])
            w[0] = math.inf
            out.grads["W_rec"] = out.grads["W_rec"] * w
            out.grad_norm = out.grad_norm * w[:, 0, 0]
        return out

    trainer.loop.model.forward_backward = overflow.__get__(trainer.loop.model)
    trainer.run()
    msgd = store.get_run(trainer.loop.members[0].run_id)
    assert len(hit) == 1
    assert msgd["status"] == "diverged" and msgd["metrics"]["diverged_at"] == hit[0]
    assert msgd["metrics"]["best_epoch"] == 1 and math.isfinite(msgd["metrics"]["test"])
    assert [e["step"] for e in store.events(msgd["id"], "diverged")] == hit
    for m in trainer.loop.members[1:]:
        assert store.get_run(m.run_id)["status"] == "succeeded"


def test_msgd_never_clips_and_the_clipping_methods_do():
    src = toy_music()
    cfg = small(threshold=1e-3, max_epochs=1)
    store = Store(":memory:")
    res = train_natural(cfg, store, source=src)
    by = {m.method: m for m in res.members}
    assert by["msgd"].clipped_fraction == 0.0
    assert by["msgd-c"].clipped_fraction == 1.0 and by["msgd-cr"].clipped_fraction == 1.0
    s, clipped = store.get_curve(by["msgd-c"].run_id)["clipped"]
    assert np.all(clipped == 1.0) and np.all(np.diff(s) > 0)
    for mem in res.members:
        assert check_outcome(store, mem.run_id)["clipped_fraction"] == mem.clipped_fraction


# ------------------------------------------------------------------------- the bookkeeping

def _scripted(trainer: NaturalTrainer, valid: list[list[float]]) -> None:
    """Replace the trainer's evaluation by a script of validation figures, one row an epoch."""
    rows = iter(valid)

    def evaluate(split):
        if split == "valid":
            evaluate.last = np.array(next(rows))
            return evaluate.last
        return evaluate.last + 1.0 if split == "test" else np.ones(len(trainer.active))

    trainer.evaluate = evaluate


def test_learning_rates_halve_on_a_rise_and_members_stop_on_their_own():
    src = toy_music()
    cfg = small(max_epochs=6, patience=2, eval_train=False)
    store = Store(":memory:")
    trainer = NaturalTrainer(cfg, src, store)
    _scripted(trainer, [
        [5.0, 5.0, 5.0],
        [4.0, 5.5, 4.0],      # MSGD-C rises: halved
        [4.5, 5.6, 3.0],      # MSGD rises: halved; MSGD-C rises again: halved, 2 epochs without progress
        [4.6, 3.5],           # MSGD-C has left; MSGD: 2 epochs without progress, leaves
        [2.5],
        [2.4],
    ])
    trainer.run()
    runs = {r["config"]["method"]: r for r in store.list_runs()}
    for r in runs.values():                 # statuses and reasons follow from the recorded curves
        check_outcome(store, r["id"])
    msgd, clip, cr = (runs[m]["metrics"] for m in METHODS)
    assert clip["epochs"] == 3 and clip["best_epoch"] == 1 and clip["lr_halvings"] == 2
    assert clip["lr_final"] == 0.25 and "no improvement" in clip["stop_reason"]
    assert msgd["epochs"] == 4 and msgd["best_epoch"] == 2 and msgd["valid"] == 4.0
    assert msgd["test"] == 5.0 and msgd["lr_final"] == 0.25
    assert cr["epochs"] == 6 and cr["best_epoch"] == 6 and cr["valid"] == 2.4 and cr["lr_halvings"] == 1
    assert "budget" in cr["stop_reason"]
    assert len(store.events(runs["msgd-c"]["id"], "lr_halved")) == 2
    steps, size = store.get_curve(runs["msgd-cr"]["id"])["ensemble_size"]
    assert list(size) == [3, 3, 3, 2, 1, 1]
    # The stored best network is the one of the best epoch.
    _, payload = store.load_checkpoint(runs["msgd-cr"]["id"])
    best = checkpoint.loads(payload)
    assert best["kind"] == "member" and best["epoch"] == 6


def test_a_member_without_a_finite_validation_figure_diverges():
    cfg = small(max_epochs=3, patience=5, eval_train=False, methods=("msgd", "msgd-c"))
    store = Store(":memory:")
    trainer = NaturalTrainer(cfg, toy_music(), store)
    _scripted(trainer, [[np.nan, 5.0], [np.inf, 4.0], [np.nan, 4.5]])
    trainer.run()
    runs = {r["config"]["method"]: r for r in store.list_runs()}
    bad, good = check_outcome(store, runs["msgd"]["id"]), check_outcome(store, runs["msgd-c"]["id"])
    assert runs["msgd"]["status"] == "diverged" and bad["best_epoch"] == 0 and bad["lr_halvings"] == 3
    assert runs["msgd-c"]["status"] == "succeeded" and good["best_epoch"] == 2 and good["lr_halvings"] == 1
    # Only a member with a best epoch leaves its best network behind.
    kinds = {m: checkpoint.loads(store.load_checkpoint(r["id"])[1])["kind"] for m, r in runs.items()}
    assert kinds == {"msgd": "training", "msgd-c": "member"}


def test_training_lowers_the_validation_loss_and_records_everything():
    src = toy_music()
    cfg = small(hidden=16, max_epochs=4, window=20, batch_size=2)
    store = Store(":memory:")
    untrained = ElmanRNN(88, 16, 88, init="sigmoid", output="sigmoid", seed=cfg.seed)
    nats, count = evaluate_split(untrained, src, "valid")
    start = nats[0] / count                                  # about 88 ln 2: every key at 1/2
    res = train_natural(cfg, store, source=src)
    for mem in res.members:
        run = store.get_run(mem.run_id)
        metrics = check_outcome(store, mem.run_id)
        assert mem.status == run["status"] and mem.best_epoch == metrics["best_epoch"]
        assert run["config"]["method"] == mem.method
        assert run["config"]["experiment"] == "table1" and run["sweep"] == f"table1-{run['config']['budget']}"
        curve = store.get_curve(mem.run_id)
        for name in ("train_nll", "valid_nll", "test_nll", "train_running", "lr", "epoch_seconds",
                     "eval_seconds", "ms_per_update", "epoch_clipped", "epoch_grad_norm_mean", "loss",
                     "grad_norm", "clipped", "omega"):
            assert name in curve, name
        s, valid = curve["valid_nll"]
        assert list(s) == [1, 2, 3, 4]
        assert start > 55 and valid.max() < 0.15 * start, (start, valid)
        assert mem.valid == valid.min() and mem.epochs == 4
        # The stored best network is the one of the best epoch, and it evaluates as recorded.
        _, payload = store.load_checkpoint(mem.run_id)
        best = checkpoint.loads(payload)
        assert best["kind"] == "member" and best["epoch"] == mem.best_epoch
        model = checkpoint.load_model(best)
        nats, count = evaluate_split(model, src, "valid", batch_size=cfg.eval_batch_size, window=cfg.eval_window)
        assert nats[0] / count == pytest.approx(mem.valid, rel=1e-5)
    t = res.timing
    assert t["epochs"] == 4 and t["ensemble_size"] == 3 and t["updates_per_epoch"] > 0
    assert t["ms_per_update"] > 0


# ------------------------------------------------------------------------------- resuming

def _interrupt_at(monkeypatch, call: int, exc: type[BaseException]):
    """At the ``call``-th update: a SIGINT (deferred to the update's end) or an exception."""
    real = NaturalTrainer.next_batch
    count = {"n": 0}

    def next_batch(self, loop):
        count["n"] += 1
        if count["n"] == call:
            if exc is KeyboardInterrupt:
                signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            else:
                raise exc("stop here")
        return real(self, loop)

    monkeypatch.setattr(NaturalTrainer, "next_batch", next_batch)
    return lambda: monkeypatch.setattr(NaturalTrainer, "next_batch", real)


#: Curves that measure time, which no two runs share.
TIMINGS = {"epoch_seconds", "eval_seconds", "ms_per_update"}


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_or_killed_training_resumes_exactly(monkeypatch, exc):
    src = toy_music()
    cfg = small(max_epochs=3, window=12, batch_size=2)
    straight_store = Store(":memory:")
    straight = train_natural(cfg, straight_store, source=src)

    store = Store(":memory:")
    restore = _interrupt_at(monkeypatch, 9, exc)        # mid-epoch 2 (6 windows per epoch)
    with pytest.raises(exc):
        train_natural(cfg, store, source=src)
    restore()
    statuses = {r["status"] for r in store.list_runs()}
    assert statuses == ({"stopped"} if exc is KeyboardInterrupt else {"running"})
    resumed = train_natural(cfg, store, source=src)
    assert len(store.list_runs()) == 3                   # the same runs, continued
    for a, b in zip(straight.members, resumed.members):
        assert (a.train, a.valid, a.test, a.best_epoch, a.updates) == (b.train, b.valid, b.test,
                                                                       b.best_epoch, b.updates)
        assert b.status == a.status and b.stop_reason == a.stop_reason
        check_outcome(store, b.run_id)
        want, got = straight_store.get_curve(a.run_id), store.get_curve(b.run_id)
        assert sorted(want) == sorted(got)
        for name in sorted(set(want) - TIMINGS):            # every curve, number for number
            np.testing.assert_array_equal(want[name][0], got[name][0], err_msg=name)
            np.testing.assert_array_equal(want[name][1], got[name][1], err_msg=name)
        assert straight_store.get_run(a.run_id)["metrics"] == store.get_run(b.run_id)["metrics"]
        assert [(e["step"], e["kind"], e["detail"]) for e in straight_store.events(a.run_id)] == \
            [(e["step"], e["kind"], e["detail"]) for e in store.events(b.run_id)]
    again = train_natural(cfg, store, source=src)
    assert again.reused and len(store.list_runs()) == 3




def test_runs_live_in_another_process_are_left_alone_and_resumed_once_it_died(monkeypatch):
    src = toy_music()
    cfg = small(max_epochs=2, window=12, batch_size=2)
    straight = train_natural(cfg, Store(":memory:"), source=src)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store = Store(":memory:")
        # The runs are started as if by the other process, which then stops writing.
        monkeypatch.setattr(os, "getpid", lambda: other.pid)
        restore = _interrupt_at(monkeypatch, 5, RuntimeError)
        with pytest.raises(RuntimeError, match="stop here"):
            train_natural(cfg, store, source=src)
        restore()
        monkeypatch.undo()
        runs = store.list_runs()
        assert {r["status"] for r in runs} == {"running"} and {r["pid"] for r in runs} == {other.pid}
        assert all(store.is_live(r) and not store.owns(r) for r in runs)
        with pytest.raises(RuntimeError, match=f"being trained by process {other.pid}"):
            train_natural(cfg, store, source=src)
        assert [r["status"] for r in store.list_runs()] == ["running"] * 3
    finally:
        other.kill()
        other.wait()
    assert not any(store.is_live(r) for r in store.list_runs())
    resumed = train_natural(cfg, store, source=src)
    assert len(store.list_runs()) == 3
    for a, b in zip(straight.members, resumed.members):
        assert (a.valid, a.test, a.updates) == (b.valid, b.test, b.updates)
        check_outcome(store, b.run_id)


def test_a_time_budget_stops_every_member_when_another_epoch_would_not_fit(monkeypatch):
    from bptt.experiments.table1 import training

    src = toy_music()
    cfg = small(max_epochs=6, patience=10)
    # each epoch "takes" 10 s of training: the curves the budget reads say so
    real_end = NaturalTrainer.end_epoch

    def end_epoch(self):
        self.stats.seconds = 10.0
        return real_end(self)

    monkeypatch.setattr(NaturalTrainer, "end_epoch", end_epoch)
    monkeypatch.setattr(training.time, "perf_counter", lambda: 0.0)        # evaluation takes no time
    store = Store(":memory:")
    res = train_natural(cfg, store, source=src, time_budget=35.0)            # 3 epochs fit, a 4th would not
    for m in res.members:
        assert m.epochs == 3 and m.status == "succeeded" and "time budget (0.583333 min)" in m.stop_reason
        assert store.get_curve(m.run_id, ["valid_nll"])["valid_nll"][0].tolist() == [1, 2, 3]
    # without a budget the same configuration runs its six epochs
    res = train_natural(cfg, Store(":memory:"), source=src)
    assert all(m.epochs == 6 for m in res.members)
    # the budget counts the epochs of a resumed run too: interrupted after 2 epochs, resumed with 35 s
    store = Store(":memory:")
    calls = []

    def interrupting(self):
        out = end_epoch(self)
        calls.append(self.epoch)
        if self.epoch == 2 and len(calls) == 2:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(NaturalTrainer, "end_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train_natural(cfg, store, source=src)
    monkeypatch.setattr(NaturalTrainer, "end_epoch", end_epoch)
    res = train_natural(cfg, store, source=src, time_budget=35.0)
    assert all(m.epochs == 3 for m in res.members)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "soon"])
def test_a_time_budget_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="time budget"):
        train_natural(small(), Store(":memory:"), source=toy_music(), time_budget=bad)
