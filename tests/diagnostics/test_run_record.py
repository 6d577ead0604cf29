"""A stored run's training record: read back from the store, and what its figure draws."""

import numpy as np
import pytest

from bptt.diagnostics.run_record import (
    RunRecord,
    load_run_model,
    load_run_record,
    plot_training_record,
    training_record_figure,
)
from bptt.methods import Method
from bptt.store import Store
from bptt.training.trainer import TrainConfig, Trainer


def test_run_record_reads_curves_and_nonfinite_events():
    store = Store(":memory:")
    rid = store.start_run({"task": "adding", "min_length": 50, "max_length": 50, "method": "msgd-c",
                           "init": "sigmoid", "seed": 4, "threshold": 1.0})
    rows = [{"step": s, "loss": 1.0 / s, "grad_norm": 10.0 ** ((s // 10) % 5 - 2),
             "grad_norm_mean": 0.1, "clipped": 0.5 if s % 20 == 0 else 0.0, "omega": 0.0,
             "omega_fraction": 1.0, "nonfinite": 1.0 if s == 40 else 0.0} for s in range(10, 110, 10)]
    rows[4].update(check_error=0.5, rho=1.2)
    store.log_curve(rid, rows)
    store.log_event(rid, 37, "nonfinite", "skipped")
    record = load_run_record(store, rid)
    assert record.nonfinite_steps.tolist() == [37]
    assert "adding" in record.title() and "msgd-c" in record.title() and "seed 4" in record.title()
    assert set(record.curves) >= {"loss", "grad_norm", "clipped", "check_error", "rho"}
    with pytest.raises(KeyError):
        load_run_record(store, 99)


def test_in_progress_checkpoint_selects_the_member(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    def stop(trainer):
        raise KeyboardInterrupt               # after the first update

    trainer = Trainer(TrainConfig(task="temporal_order", min_length=20, max_length=20, hidden=5,
                                  seeds=[3, 4], max_updates=5, eval_every=100, record_every=1), store,
                      callback=stop)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    model, member, step = load_run_model(store, trainer.run_ids[1])
    assert (member, step, model.ensemble) == (1, 1, 2)
    assert model.seeds[member] == 4


def record(method, *, threshold=1.0, alpha=2.0, nonfinite=()):
    steps = np.arange(10, 60, 10)
    curves = {"grad_norm": (steps, np.array([0.5, 3.0, 0.2, 8.0, 0.1])),
              "loss": (steps, np.linspace(1.0, 0.5, 5)),
              "rho": (steps, np.full(5, 0.9)),
              "omega": (steps, np.full(5, 0.1))}
    return RunRecord(run_id=7, status="failed", config={"method": method, "threshold": threshold, "alpha": alpha},
                     metrics={}, curves=curves, nonfinite_steps=np.asarray(nonfinite, dtype=np.int64))


def threshold_lines(fig):
    return [line for line in fig.axes[0].get_lines() if line.get_label().startswith("clipping threshold")]


@pytest.mark.parametrize("method", list(Method))
def test_the_threshold_is_drawn_for_the_clipping_methods_only(method):
    fig = training_record_figure(record(method.value, threshold=1.5))
    lines = threshold_lines(fig)
    assert len(lines) == (1 if method.clips else 0)
    if lines:
        assert list(lines[0].get_ydata()) == [1.5, 1.5]
    title = fig.axes[-1].get_title()
    assert ("weight α = 2" in title) == method.regularizes
    assert ("not trained on" in title) == (not method.regularizes)


def test_the_figure_draws_the_curves_and_the_nonfinite_updates():
    rec = record("msgd", nonfinite=(20, 40))
    fig = training_record_figure(rec)
    grad = [line for line in fig.axes[0].get_lines() if line.get_label() == "max over the block"]
    assert len(grad) == 1
    np.testing.assert_array_equal(grad[0].get_xdata(), rec.curves["grad_norm"][0])
    np.testing.assert_array_equal(grad[0].get_ydata(), rec.curves["grad_norm"][1])
    for ax in fig.axes[:4]:
        marks = [line for line in ax.get_lines() if list(line.get_xdata()) in ([20, 20], [40, 40])]
        assert len(marks) == 2


def test_an_unknown_method_draws_no_threshold(tmp_path):
    rec = record(None)
    assert threshold_lines(training_record_figure(rec)) == []
    paths = plot_training_record(rec, tmp_path / "r")
    assert sorted(p.name for p in paths) == ["r.csv", "r.png", "r.svg", "r_events.csv"]
    header = (tmp_path / "r.csv").read_text().splitlines()[0]
    assert header == "step,grad_norm,loss,omega,rho"
