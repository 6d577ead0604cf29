"""Small stand-ins for Table 1's corpora, shared by the tests of ``bptt.experiments.table1``."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest

from bptt.experiments.table1 import MusicSource, NaturalConfig, TextSource, protocol
from bptt.tasks.music import MusicData
from bptt.tasks.text import TextData

REPO = Path(__file__).resolve().parents[3]
DATA_DIR = Path(os.environ.get("BPTT_DATA", REPO.parent / "shared" / "data"))

needs_data = pytest.mark.skipif(
    not (DATA_DIR / "SHA256SUMS").is_file(),
    reason=f"the real data sets are not in {DATA_DIR} (set BPTT_DATA to a folder holding SHA256SUMS, "
           "music/*.mat and ptb/ptb.char.*.txt)")


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


def small(dataset="nottingham", **kw) -> NaturalConfig:
    base = dict(hidden=8, window=15, batch_size=3, eval_batch_size=4, max_epochs=3, patience=5,
                record_every=2, checkpoint_every=3, max_updates_per_epoch=None, eval_windows=None)
    base.update(kw)
    return protocol(dataset, "smoke", **base)


def check_outcome(store, run_id: int) -> dict:
    """Assert that a finished member's status, best epoch, figures, halvings and reason to
    stop are those its recorded per-epoch validation curve decides, under the settings
    stored with the run, by Table 1's rules:

    * an epoch whose finite validation figure is below the best so far becomes the best;
      it resets the count of epochs without progress only if it beats the best by more
      than ``rel_tol`` (relative), and every other epoch adds one to that count;
    * the learning rate halves after an epoch whose figure is above the previous one's
      (or not finite);
    * the member stops once ``patience`` epochs passed without progress, or else at
      ``max_epochs``; it succeeded if it has a finite best figure, diverged otherwise.

    Returns the run's metrics.
    """
    run = store.get_run(run_id)
    config = NaturalConfig(**{f.name: run["config"][f.name] for f in dataclasses.fields(NaturalConfig)
                              if f.name in run["config"]})          # fields left out when at their default
    curve = store.get_curve(run_id, ["valid_nll", "train_nll", "test_nll", "lr"])
    epochs, valid = curve["valid_nll"]
    assert list(epochs) == list(range(1, len(epochs) + 1))
    best, best_epoch, bad, halvings, prev = math.inf, 0, 0, 0, math.nan
    lr = float(curve["lr"][1][0])
    for e, v in zip(epochs, valid):
        assert curve["lr"][1][e - 1] == lr, (e, curve["lr"][1])     # the rate the epoch trained with
        if math.isfinite(v) and v < best:
            bad = 0 if (not math.isfinite(best) or v < best - config.rel_tol * abs(best)) else bad + 1
            best, best_epoch = float(v), int(e)
        else:
            bad += 1
        if config.halve_lr_on_rise and (not math.isfinite(v) or (math.isfinite(prev) and v > prev)):
            halvings += 1
            lr /= 2.0
        prev = v
        stopped = bad >= config.patience or e >= config.max_epochs
        assert stopped == (e == epochs[-1]), (e, bad)          # it trained exactly until a rule stopped it
    m = run["metrics"]
    assert run["status"] == ("succeeded" if math.isfinite(best) else "diverged")
    assert (m["epochs"], m["best_epoch"], m["lr_halvings"]) == (len(epochs), best_epoch, halvings)
    assert m["lr_final"] == lr
    if best_epoch:
        assert m["valid"] == best
        assert m["train"] == curve["train_nll"][1][best_epoch - 1]
        assert m["test"] == curve["test_nll"][1][best_epoch - 1]
    if bad >= config.patience:
        assert m["stop_reason"].startswith("no improvement") and f"for {config.patience} epochs" in m["stop_reason"]
    else:
        assert m["stop_reason"] == f"epoch budget ({config.max_epochs}) spent"
    return m
