"""The natural problems of §4.2 (Table 1): protocol, loop, evaluation, records, resume."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bptt.cli import main
from bptt.experiments import natural
from bptt.experiments.natural import (
    DATASETS, PAPER_TABLE1, MusicSource, NaturalTrainer, TextSource, evaluate_split, load_source,
    protocol, train_natural,
)
from bptt.models import ElmanRNN
from bptt.store import Store
from bptt.tasks.music import MusicData
from bptt.tasks.text import TextData

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BPTT_DATA", REPO.parent / "shared" / "data"))

needs_data = pytest.mark.skipif(
    not (DATA_DIR / "SHA256SUMS").is_file(),
    reason=f"the real data sets are not in {DATA_DIR} (set BPTT_DATA to a folder holding SHA256SUMS, "
           "music/*.mat and ptb/ptb.char.*.txt)")


@pytest.fixture(autouse=True)
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def toy_music(seed=0, n=(6, 3, 3), length=(20, 70)) -> MusicSource:
    """Piano rolls with a learnable pattern: a key rises by one every step."""
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


def toy_text(ahead=1) -> TextSource:
    vocab = tuple("_abcdefgh\n")
    rng = np.random.default_rng(0)
    splits = [rng.integers(0, len(vocab), size=k).astype(np.int64) for k in (900, 300, 300)]
    return TextSource(TextData(vocab, *splits), ahead=ahead)


def small(dataset="nottingham", **kw) -> natural.NaturalConfig:
    base = dict(hidden=8, window=15, batch_size=3, eval_batch_size=4, max_epochs=3, patience=5,
                record_every=2, checkpoint_every=3, max_updates_per_epoch=None, eval_windows=None)
    base.update(kw)
    return protocol(dataset, "smoke", **base)


# ------------------------------------------------------------------------------- protocol

def test_protocol_holds_the_papers_settings():
    for name in ("piano_midi", "nottingham"):
        c = protocol(name, "full")
        assert (c.hidden, c.unit, c.window, c.lr, c.threshold, c.alpha0, c.alpha_schedule) == \
            (300, "sigmoid", 200, 1.0, 8.0, 0.5, "inverse")
        assert c.halve_lr_on_rise and c.bias and not c.summed_cost
    c = protocol("musedata", "full")
    assert (c.hidden, c.lr, c.alpha0, c.threshold) == (400, 0.5, 0.1, 8.0)
    for name, ahead in (("ptb_1step", 1), ("ptb_5step", 5)):
        c = protocol(name, "full")
        assert (c.hidden, c.bias, c.threshold, c.summed_cost, c.ahead) == (500, False, 45.0, True, ahead)
        assert [c.method_lr(m) for m in natural.METHODS] == [0.001, 0.01, 0.05]
        assert c.method_threshold("msgd") is None and c.method_alpha0("msgd-c") == 0.0
    assert protocol("ptb_1step", "quick").hidden == 128
    assert protocol("nottingham", "quick").hidden == 300
    assert set(PAPER_TABLE1) == set(DATASETS)
    assert PAPER_TABLE1["nottingham"]["msgd-cr"] == (2.95, 3.36)
    assert PAPER_TABLE1["ptb_5step"]["msgd"] is None
    for bad in (dict(dataset="mnist"), dict(budget="huge")):
        with pytest.raises(ValueError):
            protocol(**({"dataset": "nottingham"} | bad))
    with pytest.raises(ValueError, match="learning rate"):
        protocol("nottingham", "full", lr=0.0)
    with pytest.raises(ValueError, match="methods"):
        protocol("nottingham", "full", methods=("msgd", "adam"))
    a, b = protocol("nottingham", "full"), protocol("nottingham", "full", seed=1)
    assert a.group != b.group and a.group == protocol("nottingham", "full").group


# ----------------------------------------------------------------------------- evaluation

def test_evaluation_carries_the_state_and_counts_every_step():
    src = toy_music()
    model = ElmanRNN(88, 12, 88, ensemble=2, init="basic_tanh", unit="sigmoid", output="sigmoid", seed=3)
    totals = []
    for batch_size, window in ((1, 7), (2, 30), (5, 1000)):
        nats, count = evaluate_split(model, src, "train", batch_size=batch_size, window=window)
        assert count == src.n_steps("train")
        totals.append(nats)
    # Cut anywhere, packed in any lanes: the same numbers, since the state is carried
    # across windows and zeroed where a sequence starts.
    np.testing.assert_allclose(totals[0], totals[1], rtol=1e-5)
    np.testing.assert_allclose(totals[0], totals[2], rtol=1e-5)
    # ... and the same as each sequence run whole from a zero state.
    whole = np.zeros(2)
    for seq in src.data.train:
        x = torch.from_numpy(seq[:-1]).float().unsqueeze(1)
        y = torch.from_numpy(seq[1:]).float().unsqueeze(1)
        whole += model.evaluate(x, y).loss.double().numpy() * (len(seq) - 1)
    np.testing.assert_allclose(totals[0], whole, rtol=1e-5)

    text = toy_text(ahead=5)
    m = ElmanRNN(10, 6, 10, ensemble=1, init="basic_tanh", unit="sigmoid", output="softmax", seed=1)
    a, n_a = evaluate_split(m, text, "valid", batch_size=1, window=13)
    b, n_b = evaluate_split(m, text, "valid", batch_size=1, window=295)
    assert n_a == n_b == text.n_steps("valid") == 295
    np.testing.assert_allclose(a, b, rtol=1e-5)


@needs_data
def test_full_splits_of_the_real_files_are_evaluated_whole():
    cache = {}
    music = load_source("jsb_chorales", DATA_DIR)
    text = load_source("ptb_5step", DATA_DIR, cache=cache)
    assert load_source("ptb_1step", DATA_DIR, cache=cache).data is text.data
    for src, n_out, output, expected in ((music, 88, "sigmoid", 88 * math.log(2)),
                                         (text, 50, "softmax", math.log(50))):
        model = ElmanRNN(n_out, 4, n_out, init="sigmoid", output=output)
        with torch.no_grad():
            for p in model.params.values():
                p.zero_()                      # every output exactly 1/2, or uniform over 50
        nats, count = evaluate_split(model, src, "valid", batch_size=128, window=500)
        assert count == src.n_steps("valid")
        assert nats[0] / count == pytest.approx(expected, rel=1e-5)
    assert text.n_steps("valid") == text.data.n_symbols("valid") - 5
    assert TextSource.to_measure(math.log(50) * 10, 10) == pytest.approx(math.log2(50))


# ---------------------------------------------------------------------------------- a step

def test_ptb_step_sums_the_cost_keeps_biases_at_zero_and_scales_alpha():
    src = toy_text()
    cfg = small("ptb_1step", hidden=6, window=10, batch_size=2, threshold=1e6)
    trainer = NaturalTrainer(cfg, src, Store(":memory:"))
    trainer._start_runs()
    batch = next(src.batches("train", 2, 10))
    before = {k: v.detach().clone() for k, v in trainer.model.params.items()}
    T = 10
    alpha = torch.tensor([trainer._schedules[m](1) for m in range(3)])
    ref = trainer.model.forward_backward(batch.x, batch.y, alpha=alpha / T, omega="squared", mask=batch.mask)
    trainer.step(batch)
    lr = torch.tensor([0.001, 0.01, 0.05])
    for k, p in trainer.model.params.items():
        g = ref.grads[k] * T                               # ∇ of the cost summed over the window
        if k == "b":
            g = torch.zeros_like(g)
        expected = before[k] - lr.reshape(-1, *[1] * (g.dim() - 1)) * g
        np.testing.assert_allclose(p.detach().numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)
    assert torch.count_nonzero(trainer.model.b) == 0
    assert alpha[2] == 0.5 and alpha[0] == alpha[1] == 0.0   # α_1 = 1/(2·1), for MSGD+CR only


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


# ------------------------------------------------------------------------- the bookkeeping

def test_learning_rates_halve_on_a_rise_and_members_stop_on_their_own():
    src = toy_music()
    cfg = small(max_epochs=6, patience=2, eval_train=False)
    store = Store(":memory:")
    trainer = NaturalTrainer(cfg, src, store)
    script = iter([
        [5.0, 5.0, 5.0],
        [4.0, 5.5, 4.0],      # MSGD+C rises: halved
        [4.5, 5.6, 3.0],      # MSGD rises: halved; MSGD+C rises again: halved, 2 epochs without progress
        [4.6, 3.5],           # MSGD+C has left; MSGD: 2 epochs without progress, leaves
        [2.5],
        [2.4],
    ])

    def fake_evaluate(split):
        row = np.array(next(script) if split == "valid" else [1.0] * len(trainer.active))
        if split == "valid":
            fake_evaluate.last = row
            return row
        return fake_evaluate.last + 1.0 if split == "test" else row

    trainer.evaluate = fake_evaluate
    trainer.run()
    runs = {r["config"]["method"]: r for r in store.list_runs()}
    msgd, clip, cr = (runs[m]["metrics"] for m in natural.METHODS)
    assert clip["epochs"] == 3 and clip["best_epoch"] == 1 and clip["lr_halvings"] == 2
    assert clip["lr_final"] == 0.25 and "no improvement" in clip["stop_reason"]
    assert msgd["epochs"] == 4 and msgd["best_epoch"] == 2 and msgd["valid"] == 4.0
    assert msgd["test"] == 5.0 and msgd["lr_final"] == 0.25
    assert cr["epochs"] == 6 and cr["best_epoch"] == 6 and cr["valid"] == 2.4 and cr["lr_halvings"] == 1
    assert "budget" in cr["stop_reason"]
    assert all(r["status"] == "succeeded" for r in runs.values())
    assert len(store.events(runs["msgd-c"]["id"], "lr_halved")) == 2
    steps, size = store.get_curve(runs["msgd-cr"]["id"])["ensemble_size"]
    assert list(size) == [3, 3, 3, 2, 1, 1]
    # The stored best network is the one of the best epoch, and it evaluates as recorded.
    _, payload = store.load_checkpoint(runs["msgd-cr"]["id"])
    best = torch.load(io.BytesIO(payload), weights_only=False)
    assert best["kind"] == "table1-best" and best["epoch"] == 6


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
        assert run["status"] == "succeeded" and run["config"]["method"] == mem.method
        assert run["config"]["experiment"] == "table1" and run["sweep"] == "table1"
        curve = store.get_curve(mem.run_id)
        for name in ("train_nll", "valid_nll", "test_nll", "train_running", "lr", "epoch_seconds",
                     "eval_seconds", "ms_per_update", "epoch_clipped", "epoch_grad_norm_mean", "loss",
                     "grad_norm", "clipped", "omega"):
            assert name in curve, name
        s, valid = curve["valid_nll"]
        assert list(s) == [1, 2, 3, 4]
        assert start > 55 and valid.max() < 0.15 * start, (start, valid)
        assert mem.valid == valid.min() and mem.epochs == 4
    t = res.timing
    assert t["epochs"] == 4 and t["ensemble_size"] == 3 and t["updates_per_epoch"] > 0
    assert t["ms_per_update"] > 0


# ------------------------------------------------------------------------------- resuming

def _interrupt_at(monkeypatch, call: int, exc: type[BaseException]):
    real = NaturalTrainer.step
    count = {"n": 0}

    def step(self, batch):
        count["n"] += 1
        if count["n"] == call:
            raise exc("stop here")
        return real(self, batch)

    monkeypatch.setattr(NaturalTrainer, "step", step)
    return lambda: monkeypatch.setattr(NaturalTrainer, "step", real)


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
        assert b.status == "succeeded"
        for name in ("valid_nll", "lr"):
            np.testing.assert_array_equal(straight_store.get_curve(a.run_id)[name][1],
                                          store.get_curve(b.run_id)[name][1])
    again = train_natural(cfg, store, source=src)
    assert again.reused and len(store.list_runs()) == 3


# ------------------------------------------------------------------ smoke on the real files

@needs_data
def test_smoke_every_data_set_through_the_command_line(tmp_path):
    store_path, out = tmp_path / "runs.sqlite", tmp_path / "out"
    args = ["reproduce", "table1", "--budget", "smoke", "--data-dir", str(DATA_DIR), "--store", str(store_path),
            "--out", str(out), "--threads", "1", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    store = Store(store_path)
    runs = store.list_runs()
    assert len(runs) == 3 * len(DATASETS)
    assert {r["status"] for r in runs} == {"succeeded"}
    for r in runs:
        m = r["metrics"]
        assert math.isfinite(m["train"]) and math.isfinite(m["test"]) and m["updates"] == 6
        if r["config"]["method"] == "msgd":
            assert m["clipped_fraction"] == 0.0
        if r["config"]["dataset"].startswith("ptb"):
            _, payload = store.load_checkpoint(r["id"])
            best = torch.load(io.BytesIO(payload), weights_only=False)
            assert torch.count_nonzero(best["model"]["b"]) == 0
    report = (out / "table1.md").read_text()
    for label in natural.DATASET_LABEL.values():
        assert label in report
    assert "3.67 / 3.80" in report and "ms / update" in report
    for name in ("table1.json", "table1.png", "table1.svg"):
        assert (out / name).stat().st_size > 0
    # Again: everything is read back from the store, nothing is trained.
    again = CliRunner().invoke(main, args + ["--dataset", "nottingham"])
    assert again.exit_code == 0, again.output
    assert "not trained again" in again.output and len(store.list_runs()) == 3 * len(DATASETS)


def test_a_missing_data_folder_is_reported(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "table1", "--budget", "smoke", "--dataset", "jsb_chorales",
                                       "--data-dir", str(tmp_path / "nowhere"), "--store",
                                       str(tmp_path / "s.sqlite"), "--no-progress"])
    assert result.exit_code != 0
    assert "music/JSB_Chorales.mat" in result.output and str(tmp_path / "nowhere") in result.output
    assert "bptt data download --dataset jsb_chorales" in result.output


@needs_data
def test_max_epochs_caps_training_and_keeps_capped_runs_apart(tmp_path):
    store_path = tmp_path / "runs.sqlite"
    args = ["reproduce", "table1", "--budget", "smoke", "--dataset", "jsb_chorales", "--data-dir", str(DATA_DIR),
            "--store", str(store_path), "--out", str(tmp_path / "out"), "--no-progress"]
    capped = CliRunner().invoke(main, args + ["--max-epochs", "1"])
    assert capped.exit_code == 0, capped.output
    runs = Store(store_path).list_runs()
    assert len(runs) == 3
    assert {r["config"]["max_epochs"] for r in runs} == {1}
    assert {r["metrics"]["updates"] for r in runs} == {3}            # one epoch of 3 smoke updates
    assert "epoch budget (1) spent" in (tmp_path / "out" / "table1.md").read_text()
    # The uncapped budget is a different ensemble: it trains anew instead of reading the capped runs back.
    uncapped = CliRunner().invoke(main, args)
    assert uncapped.exit_code == 0, uncapped.output
    assert "not trained again" not in uncapped.output
    assert len(Store(store_path).list_runs()) == 6
