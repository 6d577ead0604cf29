"""Music loaders and the window iterator, on the real data files."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from bptt.data import registry
from bptt.tasks import checksums
from bptt.tasks.music import (
    MUSIC_FILES,
    MUSIC_NAMES,
    N_KEYS,
    count_windows,
    frame_nll_sum,
    iterate_windows,
    load_music,
    nll_per_step,
)

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BPTT_DATA", REPO.parent / "shared" / "data"))

needs_data = pytest.mark.skipif(
    not (DATA_DIR / "SHA256SUMS").is_file(),
    reason=f"real data directory {DATA_DIR} (with SHA256SUMS) is absent",
)

# train / valid / test sequence counts from the data README
README_SIZES = {
    "jsb_chorales": (229, 76, 77),
    "nottingham": (694, 173, 170),
    "musedata": (524, 135, 124),
    "piano_midi": (87, 12, 25),
}


@pytest.fixture(scope="module")
def music():
    if not (DATA_DIR / "SHA256SUMS").is_file():
        pytest.skip(f"real data directory {DATA_DIR} (with SHA256SUMS) is absent")
    return {name: load_music(name, DATA_DIR) for name in MUSIC_NAMES}


@needs_data
def test_checksums_pass_on_real_files():
    checksums.clear_cache()
    checksums.verify(DATA_DIR, list(MUSIC_FILES.values()))
    # a second call is served from the cache
    checksums.verify(DATA_DIR, list(MUSIC_FILES.values()))


@needs_data
def test_corrupt_file_is_named(tmp_path):
    rel = MUSIC_FILES["jsb_chorales"]
    (tmp_path / "music").mkdir()
    raw = bytearray((DATA_DIR / rel).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (tmp_path / rel).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="JSB_Chorales.mat") as err:
        load_music("jsb_chorales", tmp_path)
    assert registry.get(rel).sha256 in str(err.value)
    assert hashlib.sha256(bytes(raw)).hexdigest() in str(err.value)
    assert f"bptt data download --dataset jsb_chorales --data-dir {tmp_path}" in str(err.value)


@needs_data
def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nottingham.mat") as err:
        load_music("nottingham", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "music" / "Nottingham.mat") in msg
    assert f"bptt data download --dataset nottingham --data-dir {tmp_path}" in msg
    assert "data_dir" not in msg and "verify=" not in msg


@needs_data
def test_missing_file_is_named_without_verification(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nottingham.mat") as err:
        load_music("nottingham", tmp_path, verify=False)
    assert "bptt data download --dataset nottingham" in str(err.value)


@needs_data
def test_a_directory_needs_only_the_files(tmp_path):
    rel = MUSIC_FILES["jsb_chorales"]
    (tmp_path / "music").mkdir()
    shutil.copy(DATA_DIR / rel, tmp_path / rel)
    data = load_music("jsb_chorales", tmp_path)
    assert data.n_sequences("train") == README_SIZES["jsb_chorales"][0]


@needs_data
def test_a_disagreeing_sha256sums_is_refused(tmp_path):
    rel = MUSIC_FILES["jsb_chorales"]
    (tmp_path / "music").mkdir()
    shutil.copy(DATA_DIR / rel, tmp_path / rel)
    wrong = "0" * 64
    (tmp_path / "SHA256SUMS").write_text(f"{wrong}  {rel}\n")
    with pytest.raises(ValueError, match="JSB_Chorales.mat") as err:
        load_music("jsb_chorales", tmp_path)
    assert wrong in str(err.value) and registry.get(rel).sha256 in str(err.value)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="jsb_chorales.*nottingham.*musedata.*piano_midi"):
        load_music("bach", "/nonexistent")


@pytest.mark.parametrize("name", MUSIC_NAMES)
def test_split_sizes_match_readme(music, name):
    data = music[name]
    assert tuple(data.n_sequences(s) for s in ("train", "valid", "test")) == README_SIZES[name]


@pytest.mark.parametrize("name", MUSIC_NAMES)
def test_frames_are_binary_88_keys(music, name):
    for split in ("train", "valid", "test"):
        for seq in music[name].split(split):
            assert seq.dtype == np.uint8
            assert seq.ndim == 2 and seq.shape[1] == N_KEYS
            assert seq.shape[0] >= 2
            assert seq.max() <= 1


def _decode_lanes(windows, batch_size):
    """Rebuild the sequences a stream of windows went through, lane by lane.

    Returns the rebuilt sequences (inputs of all steps then the last target)
    and checks on the way that targets are the next frames of the inputs.
    """
    current: list[list[np.ndarray] | None] = [None] * batch_size
    targets: list[list[np.ndarray] | None] = [None] * batch_size
    done: list[np.ndarray] = []

    def close(b):
        if current[b] is not None:
            xs = np.concatenate(current[b])
            ys = np.concatenate(targets[b])
            # the target of each step is the input of the next one
            np.testing.assert_array_equal(ys[:-1], xs[1:])
            done.append(np.concatenate([xs, ys[-1:]]))
        current[b] = targets[b] = None

    for x, y, mask, reset in windows:
        assert x.dtype == y.dtype == mask.dtype == torch.float32
        assert reset.dtype == torch.bool
        assert x.shape == y.shape and x.shape[1:] == (batch_size, N_KEYS)
        assert mask.shape == x.shape[:2]
        m = mask.numpy().astype(bool)
        for b in range(batch_size):
            col = m[:, b]
            n = int(col.sum())
            # real steps form a prefix of the window
            assert col[:n].all() and not col[n:].any()
            # padding is zero
            assert not x[n:, b].any() and not y[n:, b].any()
            if reset[b]:
                assert n > 0
                close(b)
                current[b], targets[b] = [], []
            if n:
                # a lane only continues a sequence it started
                assert current[b] is not None
                current[b].append(x[:n, b].numpy().astype(np.uint8))
                targets[b].append(y[:n, b].numpy().astype(np.uint8))
    for b in range(batch_size):
        close(b)
    return done


def _key(seq):
    return (seq.shape, seq.tobytes())


@pytest.mark.parametrize(
    "name,split,batch_size,window",
    [
        ("jsb_chorales", "valid", 8, 200),
        ("jsb_chorales", "train", 16, 37),
        ("piano_midi", "valid", 4, 200),
        ("nottingham", "test", 32, 200),
        ("musedata", "valid", 20, 200),
    ],
)
def test_windows_cover_every_step_once(music, name, split, batch_size, window):
    data = music[name]
    seqs = data.split(split)
    windows = list(data.windows(split, batch_size=batch_size, window=window, rng=0))
    assert all(w.x.shape[0] <= window for w in windows)
    assert sum(float(w.mask.sum()) for w in windows) == data.n_steps(split)
    assert data.n_steps(split) == sum(len(s) - 1 for s in seqs)
    # resets: exactly one per sequence
    assert sum(int(w.reset.sum()) for w in windows) == len(seqs)
    rebuilt = _decode_lanes(windows, batch_size)
    assert Counter(map(_key, rebuilt)) == Counter(map(_key, seqs))


def test_windows_small_handmade():
    rng = np.random.default_rng(1)
    seqs = [(rng.random((t, N_KEYS)) < 0.1).astype(np.uint8) for t in (5, 12, 3, 1, 8)]
    ws = list(iterate_windows(seqs, batch_size=2, window=4))
    # sequences of 4, 11, 2, 0, 7 steps: chunk counts 1, 3, 1, 0, 2
    assert sum(float(w.mask.sum()) for w in ws) == 4 + 11 + 2 + 7
    assert sum(int(w.reset.sum()) for w in ws) == 4  # the 1-frame sequence has no step
    rebuilt = _decode_lanes(ws, 2)
    assert Counter(map(_key, rebuilt)) == Counter(_key(s) for s in seqs if len(s) > 1)
    # each sequence goes to the lane with fewer chunks: lane 0 gets the 4-,
    # 2- and 7-step sequences (1 + 1 + 2 chunks), lane 1 the 11-step one (3
    # chunks, reset only in the first; the lane then runs dry)
    assert [w.reset.tolist() for w in ws] == [[True, True], [True, False], [True, False], [False, False]]
    assert [w.mask.sum(0).tolist() for w in ws] == [[4, 4], [2, 4], [4, 3], [3, 0]]
    assert [w.x.shape[0] for w in ws] == [4, 4, 4, 3]


def test_count_windows_is_the_number_of_windows_iterated():
    rng = np.random.default_rng(2)
    seqs = [(rng.random((t, N_KEYS)) < 0.1).astype(np.uint8) for t in (5, 12, 3, 1, 8, 40, 2, 17)]
    # the handmade case above: lane 1 holds the 11-step sequence's 3 chunks, lane 0 four
    assert count_windows(seqs[:5], batch_size=2, window=4) == 4
    for batch_size, window, seed in ((1, 4, None), (2, 4, 0), (3, 5, 1), (8, 3, 2), (20, 100, 3)):
        n = count_windows(seqs, batch_size, window, rng=seed)
        assert n == len(list(iterate_windows(seqs, batch_size, window, rng=seed))), (batch_size, window, seed)
    # a Generator is advanced exactly as the iterator advances it
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert [count_windows(seqs, 3, 4, rng=a) for _ in range(3)] == \
        [len(list(iterate_windows(seqs, 3, 4, rng=b))) for _ in range(3)]
    assert count_windows([], 2, 4) == 0 and count_windows([seqs[3]], 2, 4) == 0
    for bad in (dict(batch_size=0, window=4), dict(batch_size=2, window=0)):
        with pytest.raises(ValueError, match="must be >= 1"):
            count_windows(seqs, **bad)


def test_frame_nll_matches_definition():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, N_KEYS)
    y = (torch.rand(3, 2, N_KEYS) < 0.2).float()
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    p = torch.sigmoid(logits)
    manual = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum(-1)
    expected = float((manual * mask).sum())
    got = frame_nll_sum(logits, y, mask)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert nll_per_step(got, 3) == pytest.approx(expected / 3, rel=1e-5)
