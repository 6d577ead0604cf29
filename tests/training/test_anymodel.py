"""The training loop with any model and any update rule: every model trains, the rule's
state travels in the checkpoint (interrupt + resume = the uninterrupted numbers), and
settings that do not fit are refused at the configuration."""

import math
import signal

import pytest
import torch

from bptt.models import MODELS, ElmanRNN
from bptt.optim import ClippedRule, PaperSGD
from bptt.store import Store
from bptt.training.synthetic import Trainer, resume
from bptt.training.trainer import TrainConfig

from test_loop import record, same, signal_at


pytestmark = pytest.mark.usefixtures("one_thread")


def small(**kw):
    base = dict(task="memorization", task_options={"n_values": 2, "n_pos": 1}, min_length=3, max_length=5,
                hidden=8, method=["msgd-c", "msgd"], lr=[0.02, 0.01], seeds=[0, 1], max_updates=60,
                eval_every=20, check_sequences=50, eval_sequences=100, record_every=5, checkpoint_every=1000)
    base.update(kw)
    return TrainConfig(**base)


def test_the_default_configuration_builds_the_papers_network_and_rule():
    t = Trainer(small(init="smart_tanh"))
    assert type(t.model) is ElmanRNN and type(t.loop.rule) is PaperSGD


@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_trains_through_the_loop(model):
    store = Store(":memory:")
    t = Trainer(small(model=model, optimizer="adam", clip="zclip", clip_options={"warmup": 3}, weight_decay=0.01),
                store)
    assert type(t.model) is MODELS[model] and isinstance(t.loop.rule, ClippedRule)
    start = {k: v.detach().clone() for k, v in t.model.params.items()}
    result = t.run()
    fixed = getattr(MODELS[model], "FIXED", ())
    assert type(result.model) is MODELS[model] and result.model.seeds == [0, 1]
    for k, v in result.model.params.items():
        assert torch.equal(v, start[k]) == (k in fixed), k          # fixed weights never move, the rest do
    curves = store.get_curve(t.run_ids[0])
    assert all(math.isfinite(v) for v in curves["loss"][1])
    assert {r["config"].get("model", "elman") for r in store.list_runs()} == {model}
    assert ("model" in store.list_runs()[0]["config"]) == (model != "elman")   # defaults are not stored


def _interrupted_equals_straight(config, at):
    straight = Store(":memory:")
    Trainer(config, straight, group="g").run()
    store = Store(":memory:")
    trainer = Trainer(config, store, group="g")
    signal_at(trainer, at, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    stopped = [r for r in store.list_runs() if r["status"] == "stopped"]
    assert stopped and trainer.update == at
    resumed = resume(store, stopped[0]["id"])
    assert type(resumed.loop.rule) is type(trainer.loop.rule)
    resumed.run()
    same(record(store), record(straight))


@pytest.mark.parametrize("settings", [
    dict(optimizer="adam", clip="zclip", clip_options={"warmup": 4}, lr=[0.02, 0.01]),
    dict(optimizer="nesterov", clip="average-norm", momentum=0.8, clip_options={"window": 5, "factor": 0.5}),
    dict(model="lstm", optimizer="adam", clip="zclip", betas=[0.8, 0.99], clip_options={"warmup": 4}),
], ids=["elman-adam-zclip", "elman-nesterov-average-norm", "lstm-adam-zclip"])
def test_an_interrupted_training_resumes_to_the_uninterrupted_numbers(settings):
    _interrupted_equals_straight(small(**settings), 33)


@pytest.mark.parametrize("kw,match", [
    (dict(model="esn", method="msgd-cr"), "keeps its recurrent weights fixed"),
    (dict(model="esn", method=["msgd-cr", "msgd"], alpha=1.0), "msgd-cr adds Ω"),
    (dict(model="esn", unit="relu"), "takes no unit"),
    (dict(model="gru", init="identity"), "no initialization"),
    (dict(model="lstm", model_options={"delay": 3}), "takes no option delay"),
    (dict(model="resnet"), "model must be one of"),
    (dict(optimizer="sgd", momentum=0.9), "takes no momentum"),
    (dict(optimizer="adam", momentum=0.9), "takes no momentum"),
    (dict(optimizer="nesterov", momentum=math.nan), "momentum must be"),
    (dict(optimizer="adam", betas=[0.9, math.inf]), "betas must be"),
    (dict(optimizer="adam", eps=math.nan), "eps must be"),
    (dict(optimizer="adam", weight_decay=math.inf), "weight_decay must be"),
    (dict(lr=[0.1, math.nan]), "learning rate"),
    (dict(threshold=[1.0, math.inf], method="msgd-c"), "clipping threshold"),
    (dict(alpha=math.nan, method="msgd-cr"), "alpha"),
    (dict(clip="zclip", clip_options={"z_threshold": math.nan}), "finite"),
    (dict(clip="zclip", clip_options={"alpha": math.inf}), "alpha must be"),
    (dict(clip="none", method="msgd-c"), "clipping 'none'"),
    (dict(clip="norm", clip_options={"window": 4}), "takes no clip options"),
    (dict(clip="gradnorm"), "clip must be one of"),
])
def test_settings_that_do_not_fit_are_refused_by_the_configuration(kw, match):
    with pytest.raises(ValueError, match=match):
        small(**kw).validate()
