"""``model.save``, ``bptt.load`` and ``bptt.load_run`` for every model kind, through the one
checkpoint format (read with ``weights_only=True``)."""

import signal

import pytest
import torch

import bptt
from bptt.models import MODELS
from bptt.store import Store
from bptt.training.synthetic import Trainer
from bptt.training.trainer import TrainConfig

from test_loop import signal_at


@pytest.mark.parametrize("name", list(MODELS))
def test_a_saved_model_loads_as_the_same_network(name, tmp_path):
    model = MODELS[name](3, 6, 2, seeds=[4, 9], output="last_softmax", dtype=torch.float64)
    with torch.no_grad():
        for p in model.params.values():
            p.add_(0.25)                                   # not what the seeds alone would draw
    path = tmp_path / f"{name}.pt"
    model.save(path)
    torch.load(path, weights_only=True)                    # a plain payload
    loaded = bptt.load(path)
    assert type(loaded) is type(model) and loaded.config() == model.config()
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    assert torch.equal(model(x), loaded(x))


def test_every_model_knows_its_name():
    assert all(cls.KIND == name for name, cls in MODELS.items())


def test_load_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        bptt.load(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable bptt checkpoint"):
        bptt.load(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="no directory"):
        MODELS["gru"](2, 3, 2).save(tmp_path / "missing" / "m.pt")


def _config(model, **kw):
    return TrainConfig(task="memorization", task_options={"n_values": 2, "n_pos": 1}, min_length=3, max_length=3,
                       hidden=6, model=model, method="msgd-c", optimizer="adam", lr=0.01, seeds=[0, 1],
                       max_updates=20, eval_every=10, check_sequences=20, eval_sequences=40, **kw)


@pytest.mark.parametrize("name", list(MODELS))
def test_load_run_gives_the_network_a_run_finished_with(name, tmp_path):
    path = tmp_path / "runs.sqlite"
    store = Store(path)
    result = Trainer(_config(name), store).run()
    for m, member in enumerate(result.members):
        net = bptt.load_run(path if m == 0 else store, member.run_id)
        assert type(net) is MODELS[name] and net.seeds == [member.seed]
        want = result.model.select([m])
        for k, p in want.state_dict().items():
            assert torch.equal(net.state_dict()[k], p), k


def test_load_run_of_a_stopped_run_gives_its_member_of_the_checkpoint():
    store = Store(":memory:")
    trainer = Trainer(_config("gru"), store)
    signal_at(trainer, 7, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    for j, m in enumerate(trainer.active):
        net = bptt.load_run(store, trainer.run_ids[m])
        assert net.seeds == [trainer.model.seeds[j]]
        assert torch.equal(net.W_rec[0], trainer.model.W_rec[j])


def test_load_run_refuses_unknown_stores_and_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results store"):
        bptt.load_run(tmp_path / "none.sqlite", 1)
    store = Store(":memory:")
    with pytest.raises(KeyError):
        bptt.load_run(store, 5)
    rid = store.start_run({"task": "adding"})
    with pytest.raises(ValueError, match="no saved network"):
        bptt.load_run(store, rid)
