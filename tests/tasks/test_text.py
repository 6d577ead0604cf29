"""Character-level Penn Treebank loader and stream, on the real data files."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bptt.data import registry
from bptt.tasks import checksums
from bptt.tasks.text import (
    PTB_CHAR_FILES,
    bits_per_char,
    char_nll_sum,
    load_ptb_chars,
    stream_windows,
)

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BPTT_DATA", REPO.parent / "shared" / "data"))

needs_data = pytest.mark.skipif(
    not (DATA_DIR / "SHA256SUMS").is_file(),
    reason=f"real data directory {DATA_DIR} (with SHA256SUMS) is absent",
)


@pytest.fixture(scope="module")
def ptb():
    if not (DATA_DIR / "SHA256SUMS").is_file():
        pytest.skip(f"real data directory {DATA_DIR} (with SHA256SUMS) is absent")
    return load_ptb_chars(DATA_DIR)


def _file_symbols(split):
    return (DATA_DIR / PTB_CHAR_FILES[split]).read_text(encoding="utf-8").replace(" ", "")


@needs_data
def test_checksums_pass_on_real_files():
    checksums.clear_cache()
    checksums.verify(DATA_DIR, list(PTB_CHAR_FILES.values()))


@needs_data
def test_corrupt_file_is_named(tmp_path):
    (tmp_path / "ptb").mkdir()
    for rel in PTB_CHAR_FILES.values():
        shutil.copy(DATA_DIR / rel, tmp_path / rel)
    rel = PTB_CHAR_FILES["valid"]
    raw = bytearray((tmp_path / rel).read_bytes())
    raw[1000] = ord("q") if raw[1000] != ord("q") else ord("z")
    (tmp_path / rel).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"ptb\.char\.valid\.txt") as err:
        load_ptb_chars(tmp_path)
    assert registry.get(rel).sha256 in str(err.value)
    assert f"bptt data download --dataset ptb --data-dir {tmp_path}" in str(err.value)


@needs_data
def test_missing_file_is_named(tmp_path):
    (tmp_path / "ptb").mkdir()
    shutil.copy(DATA_DIR / PTB_CHAR_FILES["train"], tmp_path / PTB_CHAR_FILES["train"])
    with pytest.raises(FileNotFoundError, match=r"ptb\.char\.valid\.txt") as err:
        load_ptb_chars(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "ptb" / "ptb.char.valid.txt") in msg
    assert f"bptt data download --dataset ptb --data-dir {tmp_path}" in msg


def test_unknown_symbol_in_valid_is_named(tmp_path):
    (tmp_path / "ptb").mkdir()
    texts = {"train": "ab_ba\n", "valid": "ab_c\n", "test": "a\n"}
    for split, text in texts.items():
        (tmp_path / PTB_CHAR_FILES[split]).write_text("".join(c + " " for c in text))
    with pytest.raises(ValueError, match=r"\['c'\]"):
        load_ptb_chars(tmp_path, verify=False)


def test_malformed_file_is_rejected(tmp_path):
    (tmp_path / "ptb").mkdir()
    for rel in PTB_CHAR_FILES.values():
        (tmp_path / rel).write_text("a b\n")
    with pytest.raises(ValueError, match="symbol space"):
        load_ptb_chars(tmp_path, verify=False)


def test_vocabulary(ptb):
    assert ptb.vocab_size == 50
    assert list(ptb.vocab) == sorted(ptb.vocab)
    assert "_" in ptb.vocab and "\n" in ptb.vocab and " " not in ptb.vocab
    for split in ("train", "valid", "test"):
        arr = ptb.split(split)
        assert arr.dtype == np.int64
        assert arr.min() >= 0 and arr.max() < ptb.vocab_size


@pytest.mark.parametrize("split", ["valid", "test"])
def test_decode_reproduces_file_without_spaces(ptb, split):
    text = _file_symbols(split)
    assert ptb.n_symbols(split) == len(text)
    assert ptb.decode(ptb.split(split)) == text


def test_train_symbol_count(ptb):
    assert ptb.n_symbols("train") == len(_file_symbols("train"))


def _decode_stream(windows, batch_size):
    xs = [[] for _ in range(batch_size)]
    ys = [[] for _ in range(batch_size)]
    for x, y, mask in windows:
        assert x.dtype == y.dtype == torch.int64 and mask.dtype == torch.float32
        assert x.shape == y.shape == mask.shape and x.shape[1] == batch_size
        m = mask.numpy().astype(bool)
        for b in range(batch_size):
            n = int(m[:, b].sum())
            assert m[:n, b].all() and not m[n:, b].any()
            xs[b].append(x[:n, b].numpy())
            ys[b].append(y[:n, b].numpy())
    return [np.concatenate(v) for v in xs], [np.concatenate(v) for v in ys]


@pytest.mark.parametrize("ahead", [1, 5])
@pytest.mark.parametrize("batch_size,window", [(32, 100), (7, 200)])
def test_stream_covers_every_prediction_once(ptb, ahead, batch_size, window):
    data = ptb.valid
    windows = list(ptb.stream("valid", batch_size, window, ahead=ahead))
    assert all(w.x.shape[0] <= window for w in windows)
    n_pred = ptb.n_predictions("valid", ahead)
    assert n_pred == len(data) - ahead
    assert sum(float(w.mask.sum()) for w in windows) == n_pred
    lanes_x, lanes_y = _decode_stream(windows, batch_size)
    # lanes are contiguous, in order, and together cover all inputs once
    np.testing.assert_array_equal(np.concatenate(lanes_x), data[: len(data) - ahead])
    # targets are the inputs shifted by `ahead`
    np.testing.assert_array_equal(np.concatenate(lanes_y), data[ahead:])
    start = 0
    for lx, ly in zip(lanes_x, lanes_y):
        np.testing.assert_array_equal(ly, data[start + ahead : start + ahead + len(lx)])
        start += len(lx)
    lengths = [len(v) for v in lanes_x]
    assert max(lengths) - min(lengths) <= 1


def test_stream_small_handmade():
    data = np.arange(23)
    ws = list(stream_windows(data, batch_size=3, window=4, ahead=5))
    # 18 pairs in lanes of 6: inputs 0-5, 6-11, 12-17
    assert [w.x.shape[0] for w in ws] == [4, 2]
    assert ws[0].x[:, 1].tolist() == [6, 7, 8, 9]
    assert ws[0].y[:, 1].tolist() == [11, 12, 13, 14]
    assert ws[1].x[:, 2].tolist() == [16, 17]
    assert ws[1].y[:, 2].tolist() == [21, 22]
    assert float(sum(w.mask.sum() for w in ws)) == 18


def test_bits_per_char():
    torch.manual_seed(0)
    logits = torch.randn(4, 3, 50)
    y = torch.randint(0, 50, (4, 3))
    mask = torch.ones(4, 3)
    mask[3, 2] = 0
    logp = torch.log_softmax(logits, -1)
    manual = -sum(float(logp[t, b, y[t, b]]) for t in range(4) for b in range(3) if mask[t, b])
    total = char_nll_sum(logits, y, mask)
    assert float(total) == pytest.approx(manual, rel=1e-5)
    assert bits_per_char(total, 11) == pytest.approx(manual / 11 / math.log(2), rel=1e-5)
    # a uniform model over 50 symbols costs log2(50) bits
    assert bits_per_char(11 * math.log(50), 11) == pytest.approx(math.log2(50))
