"""The rival remedies on Table 1's music data sets: one network per row, its own model and
update rule, Table 1's windows, epochs and evaluation; resumed exactly; read by the
remedies report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bptt.experiments.remedy_rows import rows as remedy_rows
from bptt.experiments.table1 import NaturalTrainer, evaluate_split, train_natural
from bptt.experiments.table1.run import remedy_row_config, train_remedy_rows
from bptt.models import ESN, LSTM, GRU, ElmanRNN
from bptt.optim import PaperSGD
from bptt.store import Store

from table1_toys import check_outcome, small, toy_music

LSTM_ROW = {"name": "lstm", "model": "lstm", "model_options": {"forget_bias": 1.0}}


def test_a_row_builds_its_own_network_and_update_rule():
    src = toy_music()
    trainer = NaturalTrainer(small(row=LSTM_ROW, methods=("msgd-c",), lr=0.5, threshold=3.0), src, Store(":memory:"))
    assert isinstance(trainer.model, LSTM) and trainer.model.ensemble == 1 and trainer.model.n_hidden == 8
    assert float(trainer.loop.rule.lr[0]) == 0.5
    gru = NaturalTrainer(small(row={"name": "gru", "model": "gru", "optimizer": "adam"}, methods=("msgd-c",),
                               lr=1e-3), src, Store(":memory:"))
    assert isinstance(gru.model, GRU) and not isinstance(gru.loop.rule, PaperSGD)
    paper = NaturalTrainer(small(), src, Store(":memory:"))
    assert isinstance(paper.model, ElmanRNN) and isinstance(paper.loop.rule, PaperSGD)


def test_a_rows_carried_state_is_the_whole_lstm_state():
    # the LSTM's state is (h, c): the window-to-window carry and the evaluation hold both
    src = toy_music()
    trainer = NaturalTrainer(small(row=LSTM_ROW, methods=("msgd-c",), lr=0.5), src, Store(":memory:"))
    batch = trainer.next_batch(trainer.loop)
    assert batch.h0.shape[-1] == trainer.model.state_size == 16
    nats, count = evaluate_split(trainer.model, src, "valid", batch_size=2, window=7)
    # one pass over whole sequences, from zero states, gives the same total
    total = 0.0
    for b in src.batches("valid", 64, 10_000):
        ev = trainer.model.evaluate(b.x, b.y, mask=b.mask)
        total += float(ev.loss[0]) * int(b.mask.sum())
    assert count == src.n_steps("valid")
    assert nats[0] == pytest.approx(total, rel=1e-5)


def test_a_row_trains_records_and_resumes_exactly(monkeypatch):
    src = toy_music()
    cfg = small(row=LSTM_ROW, methods=("msgd-c",), lr=0.5, max_epochs=2, window=12, batch_size=2)
    straight_store = Store(":memory:")
    straight = train_natural(cfg, straight_store, source=src)
    (a,) = straight.members
    check_outcome(straight_store, a.run_id)
    run = straight_store.get_run(a.run_id)
    assert run["sweep"] == "table1-smoke-remedies"            # never mistaken for one of the paper's methods
    assert run["config"]["row"] == LSTM_ROW and run["config"]["method"] == "msgd-c"
    assert np.isfinite(a.test) and a.updates > 0

    store = Store(":memory:")
    real, calls = NaturalTrainer.next_batch, []

    def next_batch(self, loop):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, loop)

    monkeypatch.setattr(NaturalTrainer, "next_batch", next_batch)
    with pytest.raises(KeyboardInterrupt):
        train_natural(cfg, store, source=src)
    monkeypatch.setattr(NaturalTrainer, "next_batch", real)
    (b,) = train_natural(cfg, store, source=src).members
    assert (a.train, a.valid, a.test, a.best_epoch, a.updates) == (b.train, b.valid, b.test, b.best_epoch, b.updates)
    want, got = straight_store.get_curve(a.run_id, ["loss"]), store.get_curve(b.run_id, ["loss"])
    np.testing.assert_array_equal(want["loss"][1], got["loss"][1])


def test_the_best_network_of_a_row_is_stored_as_its_own_model():
    from bptt.training import checkpoint

    src = toy_music()
    store = Store(":memory:")
    cfg = small(row={"name": "esn", "model": "esn", "optimizer": "adam"}, methods=("msgd",), lr=1e-2, max_epochs=2)
    (m,) = train_natural(cfg, store, source=src).members
    ck = store.load_checkpoint(m.run_id)
    assert ck is not None
    net = checkpoint.load_model(ck[1])
    assert isinstance(net, ESN) and net.ensemble == 1
    # the stored network gives the recorded best test figure
    nats, count = evaluate_split(net, src, "test", batch_size=cfg.eval_batch_size, window=cfg.eval_window)
    assert src.to_measure(nats[0], count) == pytest.approx(m.test, rel=1e-5)


@pytest.mark.parametrize("change, message", [
    (dict(dataset="ptb_1step"), "music data sets only"),
    (dict(methods=("msgd", "msgd-c")), "one network"),
    (dict(methods=("msgd-cr",)), "Table 1's own third method"),
    (dict(row={"name": "x", "model": "transformer"}), "makes no sense"),
    (dict(row={"name": "x", "model": "lstm", "hidden": 4}), "fields from"),
    (dict(row={"model": "lstm"}), "a name"),
    (dict(row={"name": "x", "model": "esn", "l2": 1e-3}), "makes no sense"),
])
def test_rows_that_make_no_sense_are_refused(change, message):
    from bptt.experiments.table1.protocol import protocol

    kw = dict(row=LSTM_ROW, methods=("msgd-c",), lr=0.5) | change
    dataset = kw.pop("dataset", "nottingham")
    with pytest.raises(ValueError, match=message):
        protocol(dataset, "smoke", **kw)


def test_without_a_row_the_configuration_hashes_as_before():
    cfg = small()
    assert cfg.row is None
    assert "row" not in cfg.as_dict() or cfg.as_dict()["row"] is None
    assert dataclasses.replace(cfg, row=None).group == cfg.group
    with_row = dataclasses.replace(cfg, row=LSTM_ROW, methods=("msgd-c",), lr=1.0).validate()
    assert with_row.group != cfg.group


def test_every_remedy_with_a_corpus_rate_trains_through_table1():
    rows = remedy_rows()
    assert {r.name for r in rows.values() if r.corpus_lr is not None} == {
        "lstm", "gru", "leaky", "irnn", "skip", "esn", "orthogonal", "nesterov", "rmsprop", "adam", "l1", "l2"}
    for row in rows.values():
        if row.corpus_lr is None:
            assert row.table1_method is not None or row.corpus_note
            continue
        config = remedy_row_config("nottingham", "quick", row)
        assert config.hidden == 300 and config.max_epochs == 5 and config.threshold == 8.0
        assert config.method_lr(row.method) == row.corpus_lr and config.row["name"] == row.name
        tc = config.train_config()
        assert tc.model == row.train["model"] and tc.optimizer == row.train.get("optimizer", "sgd")
        assert tc.l1 == row.train.get("l1", 0.0) and tc.l2 == row.train.get("l2", 0.0)


def test_train_remedy_rows_names_unknown_rows():
    with pytest.raises(ValueError, match="no remedy row .* named hf"):
        train_remedy_rows("nottingham", "smoke", Store(":memory:"), source=toy_music(), rows=["hf"])


def test_the_remedies_report_reads_the_rows_nottingham_figures():
    from bptt.experiments.registry import get
    from bptt.experiments.remedies_report import _nottingham

    store = Store(":memory:")
    src = toy_music()
    small_cfg = dict(hidden=8, window=15, batch_size=3, eval_batch_size=4, max_epochs=1, patience=5)
    rows = remedy_rows()
    for name in ("lstm", "adam"):
        config = dataclasses.replace(remedy_row_config("nottingham", "quick", rows[name]), **small_cfg).validate()
        train_natural(config, store, source=src)
    notts = get("remedies").context(store, [], None)["nottingham"]
    assert set(notts) == {"row:lstm", "row:adam"}
    cell = _nottingham(rows["lstm"], notts)
    assert cell.endswith("(rate 1)") and float(cell.split()[0]) == pytest.approx(notts["row:lstm"]["test"], abs=1e-3)
    assert "--remedies" in _nottingham(rows["gru"], notts)        # not run yet: says which command runs it
    assert "not run" in _nottingham(rows["hf"], notts)


def test_each_row_runs_at_two_rates_and_the_report_takes_the_better_validation_figure():
    from bptt.experiments.registry import get
    from bptt.experiments.remedies_report import _nottingham
    from bptt.store import Status

    rows = remedy_rows()
    assert rows["lstm"].corpus_lrs() == (1.0, 0.1) and rows["adam"].corpus_lrs() == (1e-3, 1e-4)
    store = Store(":memory:")
    for lr, valid, test in ((1.0, 5.0, 5.5), (0.1, 4.0, 4.25)):       # the smaller rate validates better
        rid = store.start_run({"experiment": "table1", "dataset": "nottingham", "method": "msgd-c", "lr": lr,
                               "row": {"name": "skip"}}, sweep="table1-quick-remedies")
        store.finish_run(rid, Status.SUCCEEDED, {"valid": valid, "test": test, "measure": "nll"})
    rid = store.start_run({"experiment": "table1", "dataset": "nottingham", "method": "msgd-c", "lr": 1.0,
                           "row": {"name": "orthogonal"}}, sweep="table1-quick-remedies")
    store.finish_run(rid, Status.SUCCEEDED, {"valid": float("nan"), "test": float("nan"), "measure": "nll"})
    rid = store.start_run({"experiment": "table1", "dataset": "nottingham", "method": "msgd-c", "lr": 0.1,
                           "row": {"name": "orthogonal"}}, sweep="table1-quick-remedies")
    store.finish_run(rid, Status.SUCCEEDED, {"valid": 4.5, "test": 4.75, "measure": "nll"})
    notts = get("remedies").context(store, [], None)["nottingham"]
    assert _nottingham(rows["skip"], notts) == "4.250 (rate 0.1; at 1: 5.500)"
    assert _nottingham(rows["orthogonal"], notts) == "4.750 (rate 0.1; at 1: —)"     # a non-finite run loses


def test_train_remedy_rows_trains_every_rate_of_the_rows_asked_for():
    src = toy_music()
    store = Store(":memory:")
    out = train_remedy_rows("nottingham", "smoke", store, source=src, rows=["l2"], echo=lambda s: None)
    assert sorted(out) == [("l2", 0.1), ("l2", 1.0)]
    runs = store.list_runs(sweep="table1-smoke-remedies")
    assert sorted(r["config"]["lr"] for r in runs) == [0.1, 1.0]
    assert all(r["config"]["row"]["l2"] == 1e-3 for r in runs)
