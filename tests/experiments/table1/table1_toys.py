"""Small stand-ins for Table 1's corpora, shared by the tests of ``bptt.experiments.table1``."""

from __future__ import annotations

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
