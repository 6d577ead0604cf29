"""The device samplers, decoded on the CPU with the same rules as the host generators' tests."""

import numpy as np
import pytest
import torch

import bptt.tasks as tasks
from bptt.tasks.device import DEVICE_SAMPLERS, sample_on_device

STARTS = {"temporal_order": (1, 5), "temporal_order_3bit": (1, 3, 6)}


def decode_temporal_order(x, y, length, starts, pos_seen, labels, distractors):
    """Check one member's sequences ``x [T, B, 6]``, ``y [B]`` against the problem's rule."""
    k, width = len(starts), length // 10
    x, y = x.cpu().numpy(), y.cpu().numpy()
    assert np.isin(x, (0.0, 1.0)).all() and (x.sum(-1) == 1.0).all()
    sym = x.argmax(-1)
    relevant = sym < 2
    assert (relevant.sum(0) == k).all(), "wrong number of relevant symbols"
    _, t_idx = np.nonzero(relevant.T)
    pos = t_idx.reshape(-1, k)
    bits = sym[pos, np.arange(pos.shape[0])[:, None]]
    for j, s in enumerate(starts):
        lo = s * length // 10
        assert ((pos[:, j] >= lo) & (pos[:, j] < lo + width)).all()
        pos_seen[j].update((pos[:, j] - lo).tolist())
    np.testing.assert_array_equal((bits * (2 ** np.arange(k))).sum(1), y)
    labels.append(y)
    distractors.append(sym[~relevant])


def check_statistics(starts, length, pos_seen, labels, distractors):
    width = length // 10
    for seen in pos_seen:                                  # both ends of every window are reached
        assert 0 in seen and width - 1 in seen and max(seen) < width
    d = np.concatenate(distractors)
    assert d.min() == 2 and d.max() == 5
    counts = np.bincount(d, minlength=6)[2:]
    assert (np.abs(counts / counts.mean() - 1) < 0.1).all()
    counts = np.bincount(np.concatenate(labels), minlength=2 ** len(starts))
    expected = counts.sum() / 2 ** len(starts)
    assert (np.abs(counts / expected - 1) < 0.3).all(), counts


@pytest.mark.parametrize("name", sorted(STARTS))
@pytest.mark.parametrize("length", [10, 50, 137])
def test_temporal_order_decodes_like_the_host_generator(name, length):
    g = torch.Generator().manual_seed(length)
    starts = STARTS[name]
    pos_seen, labels, distractors = [set() for _ in starts], [], []
    for _ in range(8):
        x, y = sample_on_device(name, 250, length, g, "cpu")
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (length, 250, 6) and y.shape == (250,)
        decode_temporal_order(x, y, length, starts, pos_seen, labels, distractors)
    check_statistics(starts, length, pos_seen, labels, distractors)
    host_x, _ = tasks.get(name).sample(batch_size=4, length=length)      # the same layout as the host's
    assert host_x.shape[0] == length and host_x.shape[2] == x.shape[2]


def test_per_member_lengths_pad_with_zeros_and_decode_at_their_own_length():
    lengths = [50, 100, 150, 200, 250]
    g = torch.Generator().manual_seed(0)
    starts = STARTS["temporal_order"]
    stats = {L: ([set() for _ in starts], [], []) for L in lengths}
    for _ in range(8):
        x, y = sample_on_device("temporal_order", 250, lengths, g, "cpu")
        assert x.shape == (250, 5, 250, 6) and y.shape == (5, 250)
        for e, L in enumerate(lengths):
            assert (x[L:, e] == 0).all()
            decode_temporal_order(x[:L, e], y[e], L, starts, *stats[L])
    for L in lengths:
        check_statistics(starts, L, *stats[L])


def test_permutation_decodes():
    g = torch.Generator().manual_seed(1)
    x, y = sample_on_device("permutation", 2000, [20, 12], g, "cpu")
    assert x.shape == (20, 2, 2000, 100)
    sym = x.argmax(-1)
    assert (x[:12].sum(-1) == 1).all() and (x[12:, 1] == 0).all()
    assert torch.equal(sym[0], y)
    assert set(y.unique().tolist()) == {0, 1} and abs(float(y.float().mean()) - 0.5) < 0.05
    rest = sym[1:12]
    assert int(rest.min()) == 2 and int(rest.max()) == 99


def test_same_generator_state_same_batch_and_refusals():
    a = sample_on_device("temporal_order", 5, 30, torch.Generator().manual_seed(3), "cpu")
    b = sample_on_device("temporal_order", 5, 30, torch.Generator().manual_seed(3), "cpu")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="no device sampler"):
        sample_on_device("adding", 5, 30, torch.Generator(), "cpu")
    with pytest.raises(ValueError, match="at least 10"):
        sample_on_device("temporal_order", 5, [30, 9], torch.Generator(), "cpu")
    with pytest.raises(ValueError, match="batch"):
        sample_on_device("temporal_order", 0, 30, torch.Generator(), "cpu")
    assert set(DEVICE_SAMPLERS) <= set(tasks.names())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_draws_on_a_cuda_device():
    g = torch.Generator(device="cuda").manual_seed(0)
    x, y = sample_on_device("temporal_order", 250, [50, 100], g, "cuda")
    assert x.is_cuda and y.is_cuda
    stats = ([set(), set()], [], [])
    decode_temporal_order(x[:100, 1], y[1], 100, (1, 5), *stats)
