"""The one training loop: records per block without a host sync per update, retirement,
interrupts at a consistent point, and resumption that gives the uninterrupted numbers."""

import os
import signal
import threading

import numpy as np
import pytest
import torch

from bptt.omega import alpha_schedule
from bptt.optim import SHRINK, PaperSGD
from bptt.store import Store
from bptt.models import ElmanRNN
from bptt.training.loop import Batch, Schedule, TrainingLoop, deferred_interrupts
from bptt.training.synthetic import Trainer, resume
from bptt.training.trainer import TrainConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def retiring(**kw):
    """One member succeeds at update 220, the two others run to the budget."""
    base = dict(task="memorization", task_options={"n_values": 2, "n_pos": 1}, min_length=3, max_length=5,
                hidden=8, init="basic_tanh", method=["msgd-c", "msgd-cr", "msgd"], lr=[0.5, 0.5, 0.3],
                seeds=[0, 1, 2], max_updates=400, eval_every=20, check_sequences=50, eval_sequences=200,
                record_every=5, checkpoint_every=1000)
    base.update(kw)
    return TrainConfig(**base)


def record(store):
    """Everything the store holds about each run: status, metrics, every curve, events."""
    out = {}
    for r in store.list_runs():
        curves = store.get_curve(r["id"])
        out[r["config"]["seed"]] = {
            "status": r["status"], "metrics": r["metrics"],
            "curves": {k: (s.tolist(), v.tolist()) for k, (s, v) in curves.items()},
            "events": [(e["step"], e["kind"], e["detail"]) for e in store.events(r["id"])],
            "checkpoint_step": store.load_checkpoint(r["id"])[0]}
    return out


def same(a, b):
    """Equal number for number (NaN equal to NaN)."""
    assert sorted(a) == sorted(b)
    for seed in a:
        x, y = a[seed], b[seed]
        assert x["status"] == y["status"] and x["events"] == y["events"], seed
        assert x["checkpoint_step"] == y["checkpoint_step"], seed
        assert {k: v for k, v in x["metrics"].items() if k != "progress"} == \
            {k: v for k, v in y["metrics"].items() if k != "progress"}, seed
        assert sorted(x["curves"]) == sorted(y["curves"]), seed
        for k, (steps, values) in x["curves"].items():
            assert steps == y["curves"][k][0], (seed, k)
            np.testing.assert_array_equal(values, y["curves"][k][1], err_msg=f"{seed} {k}")


def signal_at(trainer, update, sig=signal.SIGINT):
    """Send ``sig`` to this process in the middle of update ``update``."""
    real = trainer.next_batch

    def next_batch(loop):
        batch = real(loop)
        if loop.update + 1 == update:
            signal.pthread_kill(threading.get_ident(), sig)
        return batch

    trainer.next_batch = next_batch


@pytest.fixture(scope="module")
def straight():
    store = Store(":memory:")
    res = Trainer(retiring(), store, group="g").run()
    assert [m.status for m in res.members] == ["failed", "succeeded", "failed"]
    assert [m.updates for m in res.members] == [400, 220, 400]
    return record(store)


@pytest.fixture
def sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt, as the command line arranges."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("update", [123, 220, 300])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_at_any_update_resumes_to_the_uninterrupted_numbers(straight, update, sig,
                                                                         sigterm_as_interrupt):
    store = Store(":memory:")
    trainer = Trainer(retiring(), store, group="g")
    signal_at(trainer, update, sig)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert trainer.update == update
    stopped = [r for r in store.list_runs() if r["status"] == "stopped"]
    assert len(stopped) == (3 if update < 220 else 2)
    assert all(store.load_checkpoint(r["id"])[0] == update for r in stopped)
    resumed = resume(store, stopped[0]["id"])
    assert resumed.update == update
    resumed.run()
    same(record(store), straight)


def test_an_interrupt_raised_inside_an_update_keeps_the_last_checkpoint(straight, monkeypatch):
    store = Store(":memory:")
    trainer = Trainer(retiring(checkpoint_every=50), store, group="g")
    real = trainer.after_update

    def after_update(loop, out):
        if loop.update == 123:
            raise KeyboardInterrupt          # not deferred: the update is half done
        real(loop, out)

    monkeypatch.setattr(trainer, "after_update", after_update)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    runs = store.list_runs()
    assert {r["status"] for r in runs} == {"stopped"}
    assert {store.load_checkpoint(r["id"])[0] for r in runs} == {100}
    resume(store, runs[0]["id"]).run()
    got = record(store)
    for seed in got:                          # the checkpoints fall elsewhere, nothing else differs
        got[seed]["checkpoint_step"] = straight[seed]["checkpoint_step"]
    same(got, straight)


def test_signals_are_deferred_inside_then_delivered_to_their_handlers():
    # Python's own SIGINT handler, as in a terminal: a job started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then installs none.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reached = []
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupts() as stop:
                signal.pthread_kill(threading.get_ident(), signal.SIGINT)
                reached.append(stop.requested)          # the signal did not interrupt this block
        assert reached == [True] and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # SIGINT ignored before (a background job): it stays ignored, nothing is raised
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with deferred_interrupts() as stop:
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        assert stop.requested and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous_int)
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with deferred_interrupts():
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]             # delivered once, on leaving
    finally:
        signal.signal(signal.SIGTERM, previous)
    with deferred_interrupts() as stop:             # nothing arrives: nothing is delivered
        pass
    assert not stop.requested


def test_uniform_settings_are_the_per_member_case_with_equal_values():
    common = dict(task="adding", min_length=10, max_length=10, hidden=6, seeds=[0, 1], max_updates=30,
                  eval_every=100, eval_sequences=50, record_every=3, threshold=0.3)
    a = Trainer(TrainConfig(**common, method="msgd-cr", lr=0.05, alpha=2.0)).run()
    b = Trainer(TrainConfig(**common, method=["msgd-cr"] * 2, lr=[0.05] * 2, alpha=[2.0] * 2)).run()
    for k in a.model.params:
        assert torch.equal(a.model.params[k], b.model.params[k]), k


class Fixed(Schedule):
    """A schedule of a few fixed batches, to watch the loop itself."""

    problem = "fixed"

    def __init__(self, x, y, n):
        self.x, self.y, self.n = x, y, n

    def next_batch(self, loop):
        return Batch(self.x, self.y)

    def done(self, loop):
        return loop.update >= self.n

    def metrics(self, loop, m):
        return {"updates": loop.members[m].updates}


def test_records_are_block_means_and_nonfinite_updates_become_events():
    E, T, B = 2, 8, 4
    model = ElmanRNN(2, 5, 1, unit="linear", init="basic_tanh", output="last_linear", seeds=[0, 1])
    with torch.no_grad():
        model.W_rec[1] *= 100.0               # member 1 explodes: every update is refused
    w1 = model.W_rec[1].detach().clone()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(T, B, 2, generator=g), torch.randn(B, 1, generator=g)
    store = Store(":memory:")
    rule = PaperSGD([0.01, 0.01], threshold=[1.0, 1.0], clip=[True, True])
    loop = TrainingLoop(model, rule, alpha=[alpha_schedule("constant", 0.0)] * E, omega="squared", store=store,
                        record_every=3, checkpoint_every=100)
    loop.start_runs([{"seed": 0}, {"seed": 1}])
    reference = model.select([0, 1])
    losses = []
    for _ in range(6):
        out = reference.forward_backward(x, y, omega="squared")
        losses.append(out.loss.double())
        PaperSGD([0.01, 0.01], threshold=[1.0, 1.0], clip=[True, True]).step(reference.params, out.grads,
                                                                            out.grad_norm)
    loop.run(Fixed(x, y, 6))
    steps, loss = store.get_curve(loop.members[0].run_id)["loss"]
    assert steps.tolist() == [3, 6]
    want = torch.stack(losses)[:, 0]
    np.testing.assert_allclose(loss, [want[:3].mean().item(), want[3:].mean().item()], rtol=1e-12)
    bad_run = loop.members[1].run_id
    assert store.get_curve(bad_run)["nonfinite"][1].tolist() == [3.0, 3.0]
    assert [e["step"] for e in store.events(bad_run, "nonfinite")] == [1, 2, 3, 4, 5, 6]
    assert loop.members[1].nonfinite == 6 and loop.members[0].nonfinite == 0
    torch.testing.assert_close(model.W_rec[1].detach(), w1 * (1 - 0.01 * SHRINK) ** 6)
    for k, p in reference.params.items():
        assert torch.equal(model.params[k][0], p[0]), k


class TorchSGD:
    """Another update rule, built on ``torch.optim.SGD``: the loop needs nothing else."""

    def __init__(self, params, lr):
        self.lr = lr
        self.select(None, params)

    def step(self, params, grads, norm):
        for k, p in params.items():
            p.grad = grads[k].clone()
        self.optimizer.step()
        none = torch.zeros(norm.shape[0], dtype=torch.bool)
        return none, none

    def select(self, keep, params):
        self.optimizer = torch.optim.SGD(list(params.values()), lr=self.lr)

    def state_dict(self):
        return {"name": "torch-sgd", "lr": self.lr}

    def load_state_dict(self, state):
        self.lr = state["lr"]


def test_another_update_rule_plugs_into_the_loop_unchanged():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(7, 4, 2, generator=g, dtype=torch.float64), torch.randn(4, 1, generator=g, dtype=torch.float64)

    def model():
        return ElmanRNN(2, 5, 1, init="basic_tanh", output="last_linear", seeds=[0, 1, 2], dtype=torch.float64)

    ours, theirs = model(), model()
    kw = dict(alpha=[alpha_schedule("constant", 0.5)] * 3, omega="squared", record_every=2)
    a = TrainingLoop(ours, PaperSGD([0.05] * 3, dtype=torch.float64), **kw)
    b = TrainingLoop(theirs, TorchSGD(theirs.params, 0.05), **kw)
    for loop in (a, b):
        for _ in range(3):
            loop.step(Batch(x, y))
        loop.retire([1])                      # a member leaves: the rule follows the ensemble
        for _ in range(3):
            loop.step(Batch(x, y))
    assert a.active == b.active == [0, 2] and b.model.ensemble == 2
    for k, p in a.model.params.items():
        torch.testing.assert_close(b.model.params[k], p, rtol=1e-12, atol=1e-14)
    assert not torch.equal(b.model.params["W_rec"], model().select([0, 2]).params["W_rec"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_an_update_does_not_wait_for_the_device():
    model = ElmanRNN(2, 8, 1, init="basic_tanh", output="last_linear", seeds=[0, 1, 2], device="cuda")
    rule = PaperSGD([0.1, 0.1, 0.1], threshold=[1.0, 0.5, 1.0], clip=[False, True, True], device="cuda")
    loop = TrainingLoop(model, rule, alpha=[alpha_schedule("inverse", 0.5)] * 3, omega="squared", record_every=4)
    g = torch.Generator(device="cuda").manual_seed(0)
    batch = Batch(torch.randn(10, 3, 4, 2, device="cuda", generator=g), torch.randn(3, 4, 1, device="cuda",
                                                                                    generator=g))
    loop.step(batch)                            # the first pass may allocate its buffers
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            loop.step(batch)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    loop.flush()                                # the host reads the records here, once per block
    assert loop.members[0].updates == 3
