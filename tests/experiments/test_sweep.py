"""Sweeps: packing, per-member settings, claiming, resuming after a kill, executors."""

import os
import signal
import threading
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

from bptt.experiments import execute as execute_module
from bptt.experiments import sweep as sw
from bptt.experiments.sweep import RunSpec, Sweep, pack, run_sweep, sweep_state
from bptt.store import OUTCOME_STATUSES, Store
from bptt.training.trainer import TrainConfig, Trainer

SWEEP_CODE = '''
from bptt.experiments.sweep import RunSpec, Sweep

def make_sweep(name="tiny", lengths=(20, 30), seeds=(0, 1), methods=("msgd", "msgd-cr"), max_updates=60,
               checkpoint_every=1000, evaluation=None):
    specs = []
    for L in lengths:
        for m in methods:
            for s in seeds:
                train = {"task": "temporal_order", "min_length": L, "max_length": L, "hidden": 8,
                         "init": "basic_tanh", "method": m, "lr": 0.05, "threshold": 1.0, "alpha": 2.0,
                         "seed": s, "max_updates": max_updates, "eval_every": 20, "check_sequences": 20,
                         "eval_sequences": 100, "record_every": 5, "checkpoint_every": checkpoint_every}
                specs.append(RunSpec(train, {"length": L, "method": m, "seed": s}, evaluation))
    return Sweep(name, specs)
'''
_ns: dict = {}
exec(SWEEP_CODE, _ns)
make_sweep = _ns["make_sweep"]


def outcomes(store, sweep):
    state = sweep_state(store, sweep)
    return {k: s.outcome for k, s in state.items()}


# -- definition and packing ----------------------------------------------------------------------
def test_keys_are_stable_and_packs_follow_shapes():
    a, b = make_sweep(), make_sweep()
    assert a.keys == b.keys and len(set(a.keys)) == 8
    assert make_sweep(name="other").keys[0] != a.keys[0]
    packs = pack(a)
    assert sorted(len(p.members) for p in packs) == [4, 4]          # one ensemble per length
    for p in packs:
        assert len({a.configs[i]["min_length"] for i in p.members}) == 1
    assert packs[0].cost >= packs[1].cost and a.configs[packs[0].members[0]]["min_length"] == 30
    small = Sweep("s", a.specs, max_ensemble=3)
    assert sorted(len(p.members) for p in pack(small)) == [1, 1, 3, 3]
    twins = [RunSpec(s.train, {"copy": c}) for s in a.specs[:2] for c in (0, 1)]   # same training, other labels
    assert sorted(len(p.members) for p in pack(Sweep("t", twins))) == [2, 2]


def test_bad_sweeps_are_refused():
    spec = make_sweep().specs[0]
    with pytest.raises(ValueError, match="more than once"):
        Sweep("dup", [spec, spec])
    with pytest.raises(ValueError, match="method"):
        Sweep("bad", [RunSpec({**spec.train, "method": "adam"})])
    with pytest.raises(ValueError, match="seed"):
        Sweep("bad", [RunSpec({k: v for k, v in spec.train.items() if k != "seed"})])


def test_per_member_settings_train_like_separate_settings():
    base = dict(task="temporal_order", min_length=20, max_length=20, hidden=8, init="basic_tanh", max_updates=30,
                eval_every=1000, check_sequences=20, eval_sequences=50)
    scalar = Trainer(TrainConfig(method="msgd-cr", lr=0.05, threshold=0.5, alpha=2.0, seeds=[0, 1], **base)).run()
    lists = Trainer(TrainConfig(method=["msgd-cr"] * 2, lr=[0.05] * 2, threshold=[0.5, 0.5], alpha=[2.0, 2.0],
                                seeds=[0, 1], **base)).run()
    for k in scalar.model.params:
        assert torch.equal(scalar.model.params[k], lists.model.params[k])
    cfg = TrainConfig(method=["msgd", "msgd-c", "msgd-cr"], lr=[0.05, 0.05, 0.02], threshold=0.01, alpha=2.0,
                      seeds=[0, 0, 0], **base)
    res = Trainer(cfg).run()
    assert [m.clipped_fraction for m in res.members] == [0.0, 1.0, 1.0]   # msgd never clips
    assert cfg.member_at(2)["method"] == "msgd-cr" and cfg.member_at(2)["lr"] == 0.02
    with pytest.raises(ValueError, match="seeds"):
        TrainConfig(method=["msgd", "msgd"], seeds=[0, 0], **base).validate()
    with pytest.raises(ValueError, match="entries"):
        TrainConfig(lr=[0.1, 0.2, 0.3], seeds=[0, 1], **base).validate()


# -- running, resuming ---------------------------------------------------------------------------
def test_inline_sweep_settles_each_run_once_and_rerunning_does_nothing(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    sweep = make_sweep(evaluation={"lengths": [20, 40], "sequences": 50, "seed": 0})
    first = run_sweep(sweep, store, progress=False)
    assert first.complete and first.trained == 8
    runs = store.list_runs(sweep="tiny")
    assert len(runs) == 8 and all(r["status"] in OUTCOME_STATUSES for r in runs)
    for r in runs:
        m = r["metrics"]
        assert m["pack_size"] == 4 and m["updates"] == 60 and m["work"] == 60 * r["config"]["min_length"]
        assert m["evaluation"]["lengths"] == [20, 40] and len(m["evaluation"]["errors"]) == 2
        assert r["config"]["labels"]["seed"] == r["config"]["seed"]
    packs = {r["metrics"]["pack"] for r in runs}
    assert len(packs) == 2
    again = run_sweep(sweep, store, progress=False)
    assert again.complete and again.trained == 0 and len(store.list_runs(sweep="tiny")) == 8


def test_interrupted_sweep_resumes_from_checkpoints(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    sweep = make_sweep(lengths=(20,), max_updates=80, checkpoint_every=10)
    real = Trainer.next_batch

    def next_batch(self, loop):
        if loop.update == 32:
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)        # during update 33: it completes, then training stops
        return real(self, loop)

    monkeypatch.setattr(Trainer, "next_batch", next_batch)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, store, progress=False)
    stopped = store.list_runs(sweep="tiny", status="stopped")
    assert len(stopped) == 4 and all(store.load_checkpoint(r["id"])[0] == 33 for r in stopped)
    monkeypatch.setattr(Trainer, "next_batch", real)
    summary = run_sweep(sweep, store, progress=False)
    assert summary.complete and summary.trained == 4
    for key, run in outcomes(store, sweep).items():
        assert run["metrics"]["resumed_at"] == 33 and run["metrics"]["updates"] == 80
        assert run["metrics"]["resumed_from"] in {r["id"] for r in stopped}


def test_missing_evaluation_is_done_on_the_next_pass(tmp_path, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    sweep = make_sweep(lengths=(20,), seeds=(0,), evaluation={"lengths": [25], "sequences": 40, "seed": 0})

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute_module, "_evaluate_runs", killed)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, store, progress=False)
    assert all("evaluation" not in r["metrics"] for r in store.list_runs())
    monkeypatch.undo()
    summary = run_sweep(sweep, store, progress=False)
    assert summary.trained == 0 and summary.evaluated == 2
    assert all(r["metrics"]["evaluation"]["lengths"] == [25] for r in store.list_runs())


def test_a_live_claim_is_left_alone(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    sweep = make_sweep(lengths=(20,), seeds=(0,))
    held = store.claim(sweep.keys[0], sweep.configs[0], sweep="tiny")       # this process, alive
    summary = run_sweep(sweep, store, progress=False)
    assert summary.trained == 1 and summary.skipped == 1 and summary.running_elsewhere == 1
    assert store.get_run(held)["status"] == "running"


KILL_SCRIPT = SWEEP_CODE + '''
import sys
from bptt.experiments.sweep import run_sweep
run_sweep(make_sweep(lengths=(20, 25, 30), max_updates=150, checkpoint_every=10), sys.argv[1], progress=False)
'''


def test_kill_and_resume_in_two_processes(tmp_path):
    """SIGKILL a sweep mid-way, then finish it with two processes at once."""
    path = tmp_path / "s.sqlite"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    sweep = make_sweep(lengths=(20, 25, 30), max_updates=150, checkpoint_every=10)
    proc = subprocess.Popen([sys.executable, str(script), str(path)])
    deadline = time.monotonic() + 120
    try:
        while True:                # kill once one pack is settled and another has a checkpoint
            assert proc.poll() is None, "the sweep finished before it could be killed"
            assert time.monotonic() < deadline
            if path.exists():
                with Store(path) as s:
                    runs = s.list_runs(sweep="tiny")
                    settled = [r for r in runs if r["status"] in OUTCOME_STATUSES]
                    live = [r for r in runs if r["status"] == "running" and s.load_checkpoint(r["id"])]
                if settled and live:
                    break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Store(path) as s:
        before = {r["id"]: r for r in s.list_runs(sweep="tiny")}
    settled_before = {r["key"]: r["id"] for r in before.values() if r["status"] in OUTCOME_STATUSES}
    assert settled_before and any(r["status"] == "running" for r in before.values())

    both = [subprocess.Popen([sys.executable, str(script), str(path)]) for _ in range(2)]
    assert [p.wait(timeout=180) for p in both] == [0, 0]

    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    store = Store(path)
    runs = store.list_runs(sweep="tiny")
    for key in sweep.keys:
        mine = [r for r in runs if r["key"] == key]
        final = [r for r in mine if r["status"] in OUTCOME_STATUSES]
        assert len(final) == 1, mine                                    # settled exactly once
        if key in settled_before:
            assert final[0]["id"] == settled_before[key] and len(mine) == 1   # never repeated
        new = [r for r in mine if r["id"] not in before]
        assert len(new) <= 1                                            # the two processes never both ran it
        assert all(r["status"] == "stopped" for r in mine if r is not final[0])
    resumed = [r for r in runs if "resumed_from" in r["metrics"]]
    assert resumed and all(r["metrics"]["resumed_at"] > 0 for r in resumed)


def test_progress_display_counts_from_the_store(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    sweep = make_sweep(lengths=(20,), seeds=(0,))
    bar = sw.SweepProgress(store, sweep, enabled=False)
    assert bar.counts == {"settled": 0, "succeeded": 0, "running": 0}
    store.claim(sweep.keys[0], sweep.configs[0], sweep="tiny")
    rid = store.claim(sweep.keys[1], sweep.configs[1], sweep="tiny")
    store.finish_run(rid, "succeeded", {"updates": 40})
    bar.refresh(force=True)
    assert bar.counts == {"settled": 1, "succeeded": 1, "running": 1}
    bar.close()


def test_unknown_executor():
    with pytest.raises(ValueError, match="executor"):
        sw.make_executor("threads")


def test_a_setting_left_at_its_default_does_not_change_a_runs_key():
    from bptt.experiments.grid import KEY_DEFAULTS, keyed
    from bptt.experiments.sweep import RunSpec, Sweep

    base = {"task": "temporal_order", "min_length": 10, "max_length": 10, "seed": 0}
    spec = RunSpec(base)
    assert spec.train_config()["guard"] == KEY_DEFAULTS["guard"]
    assert "guard" not in keyed(spec.train_config())
    plain = Sweep("s", [spec]).keys[0]
    assert Sweep("s", [RunSpec({**base, "guard": "clipping"})]).keys[0] == plain
    assert Sweep("s", [RunSpec({**base, "guard": "always"})]).keys[0] != plain
