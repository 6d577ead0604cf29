"""One checkpoint format, read in one place: version 2 loads with weights_only=True;
version-1 stores written before it still open, resume exactly and give up their networks."""

import collections
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bptt.cli import main
from bptt.experiments.table1 import MusicSource, protocol, train_natural
from bptt.experiments.sweep import load_models
from bptt.models import ElmanRNN
from bptt.store import Store
from bptt.tasks.music import MusicData
from bptt.training import checkpoint as ckpt
from bptt.training.trainer import TrainConfig, Trainer

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "v1-reference.json").read_text())


def _close(a, b):
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return a == b
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def _record(store, runs):
    """``{seed: {"status", "metrics", "curves"}}`` of ``runs``, as the reference holds them."""
    out = {}
    for r in runs:
        curves = store.get_curve(r["id"])
        out[r["config"]["seed"]] = {
            "status": r["status"], "metrics": r["metrics"],
            "curves": {k: [[int(s), None if math.isnan(v) else float(v)] for s, v in zip(*curves[k])]
                       for k in ("loss", "grad_norm", "omega", "check_error") if k in curves}}
    return out


def _same(got, want, name):
    assert got["status"] == want["status"], name
    for k, v in want["metrics"].items():
        assert _close(got["metrics"][k], v), (name, k, got["metrics"][k], v)
    assert set(got["curves"]) == set(want["curves"]), name
    for k, points in want["curves"].items():
        assert [p[0] for p in got["curves"][k]] == [p[0] for p in points], (name, k)
        for (_, a), (_, b) in zip(got["curves"][k], points):
            assert _close(a, b), (name, k, a, b)


def _copy(tmp_path, name):
    path = tmp_path / f"{name}.sqlite"
    shutil.copy(DATA / f"{name}.sqlite", path)
    return path


def _payloads(path):
    store = Store(path)
    return store, {r["id"]: (r, store.load_checkpoint(r["id"])[1]) for r in store.list_runs()}


# ------------------------------------------------------------------------------- version 2

def _trainer(**kw):
    base = dict(task="temporal_order", min_length=10, max_length=14, hidden=4, seeds=[0, 1], max_updates=12,
                eval_every=5, check_sequences=10, eval_sequences=20, record_every=3, checkpoint_every=6)
    base.update(kw)
    return Trainer(TrainConfig(**base), Store(":memory:"))


def test_a_training_checkpoint_holds_only_plain_types_and_loads_weights_only():
    trainer = _trainer()
    trainer.run()
    payload = ckpt.dumps(trainer.state())
    state = torch.load(io.BytesIO(payload), weights_only=True)          # no allow-list needed
    assert (state["format"], state["version"], state["kind"], state["problem"]) == \
        ("bptt-checkpoint", 2, "training", "synthetic")

    def plain(x):
        if isinstance(x, dict):
            return all(isinstance(k, (str, int)) and plain(v) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return all(plain(v) for v in x)
        return x is None or isinstance(x, (bool, int, float, str, torch.Tensor))
    assert plain(state)
    assert all(type(m["status"]) is str for m in state["loop"]["members"])


def test_final_networks_are_member_checkpoints():
    trainer = _trainer()
    res = trainer.run()
    for m in res.members:
        step, payload = trainer.store.load_checkpoint(m.run_id)
        state = ckpt.loads(payload)
        assert state["kind"] == "member" and step == m.updates
        net = ckpt.load_model(state)
        assert net.seeds == [m.seed]
    both = load_models([trainer.store.load_checkpoint(m.run_id)[1] for m in res.members])
    for k, p in res.model.params.items():
        assert torch.equal(both.params[k], p), k


class Foreign:
    pass


def test_unreadable_payloads_are_refused_with_a_message():
    with pytest.raises(ValueError, match="not a readable bptt checkpoint"):
        ckpt.loads(b"not a checkpoint")
    buf = io.BytesIO()
    torch.save({"x": Foreign()}, buf)                  # unpickling it would run code from elsewhere
    with pytest.raises(ValueError, match="not a readable bptt checkpoint"):
        ckpt.loads(buf.getvalue())
    buf = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buf)
    with pytest.raises(ValueError, match="not a bptt checkpoint"):
        ckpt.loads(buf.getvalue())
    buf = io.BytesIO()
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION + 1, "kind": "member"}, buf)
    with pytest.raises(ValueError, match="newer"):
        ckpt.loads(buf.getvalue())


# ------------------------------------------------------------------------------- version 1

def test_every_version_1_payload_loads_weights_only_and_migrates(tmp_path):
    kinds = collections.Counter()
    for name in ("train-v1", "table1-v1"):
        _, payloads = _payloads(_copy(tmp_path, name))
        for rid, (run, payload) in payloads.items():
            state = ckpt.loads(payload)
            assert state["format"] == ckpt.FORMAT and state["version"] == 2
            kinds[(name, state["kind"])] += 1
            net = ckpt.load_model(state)
            assert isinstance(net, ElmanRNN) and net.n_hidden == 4
            if state["kind"] == "training":
                assert rid in [m["run_id"] for m in state["loop"]["members"]]
    assert kinds == {("train-v1", "training"): 2, ("train-v1", "member"): 2,
                     ("table1-v1", "training"): 3, ("table1-v1", "member"): 3}


def test_version_1_table1_states_need_the_numpy_allow_list(tmp_path):
    _, payloads = _payloads(_copy(tmp_path, "table1-v1"))
    stopped = [p for r, p in payloads.values() if r["status"] == "stopped"]
    with pytest.raises(Exception, match="numpy"):
        torch.load(io.BytesIO(stopped[0]), weights_only=True)
    state = ckpt.loads(stopped[0])
    stats = state["schedule"]["stats"]
    assert all(not type(v).__module__.startswith("numpy") for v in stats.values())


def test_a_version_1_stopped_training_resumes_to_the_uninterrupted_numbers(tmp_path):
    path = _copy(tmp_path, "train-v1")
    store = Store(path)
    stopped = [r for r in store.list_runs() if r["status"] == "stopped"]
    assert len(stopped) == 2 and store.load_checkpoint(stopped[0]["id"])[0] == 15
    res = CliRunner().invoke(main, ["train", "--resume", str(stopped[0]["id"]), "--store", str(path),
                                    "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "resuming group v1-stopped at update 15 with 2 active members" in res.output
    store = Store(path)
    runs = [store.get_run(r["id"]) for r in stopped]
    want = {int(name.rsplit("/s", 1)[1]): v for name, v in REFERENCE["train"].items()}
    got = _record(store, runs)
    assert sorted(got) == sorted(want) == [2, 3]
    for seed in got:
        _same(got[seed], want[seed], f"seed {seed}")


def test_the_final_networks_of_a_version_1_store_are_read(tmp_path):
    store, payloads = _payloads(_copy(tmp_path, "train-v1"))
    finished = sorted((r["config"]["seed"], p) for r, p in payloads.values() if r["status"] != "stopped")
    model = load_models([p for _, p in finished])
    assert model.seeds == [0, 1] and model.ensemble == 2
    for seed, p in finished:
        v1 = torch.load(io.BytesIO(p), weights_only=True)
        for k, t in v1["model"].items():
            assert torch.equal(model.state_dict()[k][seed], t[0]), k
    # The stopped trainer's own networks come back with it, member by member.
    stopped = [r for r, _ in payloads.values() if r["status"] == "stopped"]
    trainer = Trainer.from_checkpoint(store.load_checkpoint(stopped[0]["id"])[1])
    assert trainer.update == 15 and trainer.model.seeds == [2, 3] and trainer.group == "v1-stopped"


def toy_music(seed=0, n=(6, 3, 3), length=(20, 70)):
    """The toy piano rolls the version-1 Table 1 store was trained on (as in its tests)."""
    rng = np.random.default_rng(seed)

    def seq():
        T = int(rng.integers(*length))
        roll = np.zeros((T, 88), dtype=np.uint8)
        start = int(rng.integers(0, 80))
        for t in range(T):
            roll[t, 40 + (start + t) % 8] = 1
            roll[t, (start + 3 * t) % 88] = rng.random() < 0.5
        return roll

    return MusicSource(MusicData("toy", *[[seq() for _ in range(k)] for k in n]))


def table1_config(**kw):
    # the version-1 store counted α's t in updates and guarded every member
    base = dict(hidden=4, window=12, batch_size=2, eval_batch_size=4, max_epochs=3, patience=5,
                record_every=2, checkpoint_every=3, max_updates_per_epoch=None, eval_windows=None,
                alpha_time="updates", guard="always")
    base.update(kw)
    return protocol("nottingham", "smoke", **base)


def test_a_version_1_table1_ensemble_resumes_to_the_uninterrupted_numbers(tmp_path):
    store = Store(_copy(tmp_path, "table1-v1"))
    source = toy_music()
    finished = train_natural(table1_config(max_epochs=2), store, source=source)
    assert finished.reused                                 # the finished one is read back, not trained
    stopped = [r for r in store.list_runs() if r["status"] == "stopped"]
    assert len(stopped) == 3 and {store.load_checkpoint(r["id"])[0] for r in stopped} == {8}
    result = train_natural(table1_config(seed=1), store, source=source)
    assert not result.reused and {m.run_id for m in result.members} == {r["id"] for r in stopped}
    for m in result.members:
        run = store.get_run(m.run_id)
        curves = store.get_curve(m.run_id)
        got = {"status": run["status"], "metrics": run["metrics"],
               "curves": {k: [[int(s), None if math.isnan(v) else float(v)] for s, v in zip(*curves[k])]
                          for k in ("loss", "grad_norm", "omega", "train_nll", "valid_nll", "test_nll", "lr")
                          if k in curves}}
        _same(got, REFERENCE["table1"][f"table1/nottingham/{m.method}"], m.method)


def test_the_best_networks_of_a_version_1_table1_store_are_read(tmp_path):
    store, payloads = _payloads(_copy(tmp_path, "table1-v1"))
    best = [(r, p) for r, p in payloads.values() if r["status"] == "succeeded"]
    assert len(best) == 3
    for run, payload in best:
        state = ckpt.loads(payload)
        assert state["kind"] == "member" and state["epoch"] == run["metrics"]["best_epoch"]
        net = ckpt.load_model(state)
        v1 = torch.load(io.BytesIO(payload), weights_only=True)
        assert v1["kind"] == "table1-best"
        for k, t in v1["model"].items():
            assert torch.equal(net.state_dict()[k], t), k


def test_plain_turns_numpy_and_enums_into_plain_values_and_refuses_the_rest():
    from bptt.store import Status

    got = ckpt.plain({"a": np.float64(1.5), "b": np.arange(3), "s": Status.STOPPED, "t": (1, 2), 3: None})
    assert got["a"] == 1.5 and type(got["a"]) is float and type(got["s"]) is str and got["t"] == [1, 2]
    assert torch.equal(got["b"], torch.arange(3)) and got[3] is None
    with pytest.raises(TypeError, match="only tensors"):
        ckpt.plain({"x": Foreign()})


def test_the_newest_training_checkpoint_is_chosen_and_final_networks_are_passed_over():
    trainer = _trainer()
    store = trainer.store
    net = ElmanRNN(2, 3, 1, init="basic_tanh", output="last_linear", seeds=[0])
    ids = [store.start_run({"n": i}) for i in range(4)]
    store.save_checkpoint(ids[0], 50, ckpt.dumps(ckpt.member(net)))
    for rid, step in ((ids[1], 30), (ids[2], 40)):
        trainer.loop.update = step
        store.save_checkpoint(rid, step, ckpt.dumps(trainer.state()))
    step, state = ckpt.latest_training(store, ids)
    assert step == 40 and state["loop"]["update"] == 40
    assert ckpt.latest_training(store, [ids[0], ids[3]]) is None
    buf = io.BytesIO()
    torch.save({"format": ckpt.FORMAT, "version": ckpt.VERSION, "kind": "optimizer"}, buf)
    with pytest.raises(ValueError, match="unknown kind"):
        ckpt.loads(buf.getvalue())
