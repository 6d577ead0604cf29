"""Tests of the synthetic tasks: targets are decoded from the inputs alone."""

import json

import numpy as np
import pytest
import torch

import bptt.tasks as tasks

LENGTHS = [10, 50, 137, 200]
N_SEQ = 2000

ALL_NAMES = [
    "adding",
    "memorization",
    "memorization_5bit",
    "multiplication",
    "permutation",
    "temporal_order",
    "temporal_order_3bit",
]


def draw(task, length, n_seq=N_SEQ, batch_size=250):
    """Yield batches as numpy arrays until ``n_seq`` sequences are drawn."""
    for _ in range(n_seq // batch_size):
        x, y = task.sample(batch_size=batch_size, length=length)
        yield x, y


def assert_one_hot(x):
    """Every step of every sequence has exactly one channel at 1, others 0."""
    assert np.isin(x, (0.0, 1.0)).all()
    assert (x.sum(-1) == 1.0).all()


# ---------------------------------------------------------------- registry


def test_names_sorted_and_complete():
    assert tasks.names() == sorted(ALL_NAMES)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_attributes_and_describe(name):
    task = tasks.get(name, seed=3)
    assert task.name == name
    assert isinstance(task.n_in, int) and isinstance(task.n_out, int)
    assert task.output in ("last_softmax", "softmax", "last_linear", "sigmoid")
    assert isinstance(task.error_measure, str) and task.error_measure
    if task.output == "last_linear":
        assert task.tolerance == pytest.approx(0.04)
    else:
        assert task.tolerance is None
    d = task.describe()
    for key in ("name", "n_in", "n_out", "output", "error_measure", "tolerance", "kwargs", "seed"):
        assert key in d
    assert d["name"] == name and d["seed"] == 3
    assert d["n_in"] == task.n_in and d["n_out"] == task.n_out
    json.dumps(d)  # storable as plain data
    assert type(task).__name__ in repr(task) and "seed=3" in repr(task)


def test_expected_sizes():
    expected = {
        "temporal_order": (6, 4, "last_softmax", 10),
        "temporal_order_3bit": (6, 8, "last_softmax", 10),
        "adding": (2, 1, "last_linear", 10),
        "multiplication": (2, 1, "last_linear", 10),
        "permutation": (100, 100, "last_softmax", 10),
        "memorization": (7, 6, "softmax", 1),
        "memorization_5bit": (4, 3, "softmax", 1),
    }
    for name, (n_in, n_out, output, min_length) in expected.items():
        task = tasks.get(name)
        assert (task.n_in, task.n_out, task.output, task.min_length) == (
            n_in,
            n_out,
            output,
            min_length,
        ), name


def test_classes_exported():
    assert tasks.get("temporal_order").__class__ is tasks.TemporalOrder
    assert isinstance(tasks.get("memorization_5bit"), tasks.Memorization)
    assert issubclass(tasks.Adding, tasks.Task)


# ---------------------------------------------------------- temporal order


@pytest.mark.parametrize(
    "name, starts",
    [("temporal_order", (1, 5)), ("temporal_order_3bit", (1, 3, 6))],
)
@pytest.mark.parametrize("length", LENGTHS)
def test_temporal_order(name, starts, length):
    task = tasks.get(name, seed=length)
    k = len(starts)
    width = length // 10
    ranges = [(s * length // 10, s * length // 10 + width) for s in starts]
    pos_seen = [set() for _ in starts]
    labels, distractors = [], []
    for x, y in draw(task, length):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (length, 250, 6) and y.shape == (250,)
        x, y = x.numpy(), y.numpy()
        assert_one_hot(x)
        sym = x.argmax(-1)  # [T, B]
        relevant = sym < 2
        assert (relevant.sum(0) == k).all(), "wrong number of relevant symbols"
        _, t_idx = np.nonzero(relevant.T)  # sorted by sequence, then time
        pos = t_idx.reshape(-1, k)  # [B, k], increasing in time
        bits = sym[pos, np.arange(pos.shape[0])[:, None]]
        for j, (lo, hi) in enumerate(ranges):
            assert ((pos[:, j] >= lo) & (pos[:, j] < hi)).all()
            pos_seen[j].update(np.unique(pos[:, j]).tolist())
        decoded = (bits * (2 ** np.arange(k))).sum(1)
        np.testing.assert_array_equal(decoded, y)
        labels.append(y)
        distractors.append(sym[~relevant])
    for j, (lo, hi) in enumerate(ranges):
        assert lo in pos_seen[j] and hi - 1 in pos_seen[j], (j, sorted(pos_seen[j]))
    distractors = np.concatenate(distractors)
    assert distractors.min() == 2 and distractors.max() == 5
    counts = np.bincount(distractors, minlength=6)[2:]
    assert (np.abs(counts / counts.mean() - 1) < 0.1).all()
    counts = np.bincount(np.concatenate(labels), minlength=2**k)
    assert len(counts) == 2**k
    expected = N_SEQ / 2**k
    assert (np.abs(counts / expected - 1) < 0.3).all(), counts


# ------------------------------------------------- addition / multiplication


@pytest.mark.parametrize(
    "name, combine",
    [("adding", lambda a, b: (a + b) / 2), ("multiplication", lambda a, b: a * b)],
)
@pytest.mark.parametrize("length", LENGTHS)
def test_two_marker(name, combine, length):
    task = tasks.get(name, seed=length + 1)
    n_batches, batch_size = 200, 10
    lengths = set()
    ends = {"p0_lo": False, "p0_hi": False, "p1_lo": False, "p1_hi": False}
    targets, values = [], []
    for _ in range(n_batches):
        x, y = task.sample(batch_size=batch_size, length=length)
        assert x.dtype == torch.float32 and y.dtype == torch.float32
        T = x.shape[0]
        assert x.shape == (T, batch_size, 2) and y.shape == (batch_size, 1)
        assert length <= T <= length + length // 10 - 1
        lengths.add(T)
        x, y = x.numpy(), y.numpy()
        marker, val = x[..., 0], x[..., 1]
        assert np.isin(marker, (0.0, 1.0)).all()
        assert (marker.sum(0) == 2).all(), "need exactly two markers"
        assert (val >= 0).all() and (val < 1).all()
        _, t_idx = np.nonzero(marker.T == 1)
        pos = t_idx.reshape(-1, 2)
        p0, p1 = pos[:, 0], pos[:, 1]
        first = T // 10
        assert ((p0 >= 0) & (p0 < first)).all()
        assert ((p1 >= first) & (p1 < first + 4 * T // 10)).all()
        ends["p0_lo"] |= bool((p0 == 0).any())
        ends["p0_hi"] |= bool((p0 == first - 1).any())
        ends["p1_lo"] |= bool((p1 == first).any())
        ends["p1_hi"] |= bool((p1 == first + 4 * T // 10 - 1).any())
        cols = np.arange(batch_size)
        v0 = val[p0, cols].astype(np.float64)
        v1 = val[p1, cols].astype(np.float64)
        np.testing.assert_allclose(y[:, 0], combine(v0, v1), rtol=0, atol=1e-6)
        targets.append(y[:, 0])
        values.append(val.ravel())
    assert all(ends.values()), ends
    assert min(lengths) == length and max(lengths) == length + length // 10 - 1
    values = np.concatenate(values)
    assert abs(values.mean() - 0.5) < 0.01
    targets = np.concatenate(targets)
    expected_mean = 0.5 if name == "adding" else 0.25
    assert abs(targets.mean() - expected_mean) < 0.03
    assert task.tolerance == 0.04


# ------------------------------------------------------------- permutation


@pytest.mark.parametrize("length", LENGTHS)
def test_permutation(length):
    task = tasks.get("permutation", seed=7)
    labels = []
    seen = np.zeros(100, dtype=bool)
    for x, y in draw(task, length):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (length, 250, 100) and y.shape == (250,)
        x, y = x.numpy(), y.numpy()
        assert_one_hot(x)
        sym = x.argmax(-1)
        assert np.isin(sym[0], (0, 1)).all()
        rest = sym[1:]
        assert (rest >= 2).all() and (rest <= 99).all()
        seen[np.unique(rest)] = True
        np.testing.assert_array_equal(y, sym[0])
        labels.append(y)
    assert seen[2:].all(), "distractors must cover 2..99"
    counts = np.bincount(np.concatenate(labels), minlength=2)
    assert len(counts) == 2 and (np.abs(counts / (N_SEQ / 2) - 1) < 0.1).all()


# ------------------------------------------------------------ memorization


@pytest.mark.parametrize(
    "name, kwargs, n_values, n_pos",
    [
        ("memorization", {}, 5, 10),
        ("memorization_5bit", {}, 2, 5),
        ("memorization", {"n_values": 3, "n_pos": 4}, 3, 4),
    ],
)
@pytest.mark.parametrize("length", [1, 10, 50, 137])
def test_memorization(name, kwargs, n_values, n_pos, length):
    task = tasks.get(name, seed=11, **kwargs)
    assert task.n_in == n_values + 2 and task.n_out == n_values + 1
    blank, go = n_values, n_values + 1
    T = length + 2 * n_pos
    symbol_counts = np.zeros(n_values, dtype=np.int64)
    for x, y in draw(task, length, n_seq=1000):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == (T, 250, n_values + 2) and y.shape == (T, 250)
        x, y = x.numpy(), y.numpy()
        assert_one_hot(x)
        sym = x.argmax(-1)
        pattern = sym[:n_pos]
        assert (pattern < n_values).all(), "pattern steps hold only pattern symbols"
        tail = sym[n_pos:]
        expected_tail = np.full(tail.shape, blank)
        expected_tail[length] = go  # step length + n_pos overall
        np.testing.assert_array_equal(tail, expected_tail)
        np.testing.assert_array_equal(y[: length + n_pos], blank)
        np.testing.assert_array_equal(y[length + n_pos :], pattern)
        go_step = np.nonzero(sym[:, 0] == go)[0]
        assert go_step.tolist() == [length + n_pos]
        symbol_counts += np.bincount(pattern.ravel(), minlength=n_values)
    expected = symbol_counts.sum() / n_values
    assert (np.abs(symbol_counts / expected - 1) < 0.1).all(), symbol_counts


def test_memorization_bits():
    assert tasks.get("memorization").bits == pytest.approx(10 * np.log2(5))
    assert tasks.get("memorization_5bit").bits == pytest.approx(5.0)


# ------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", ALL_NAMES)
def test_determinism(name):
    a, b, c = (tasks.get(name, seed=s) for s in (5, 5, 6))
    batches_a = [a.sample(batch_size=8, length=40) for _ in range(3)]
    batches_b = [b.sample(batch_size=8, length=40) for _ in range(3)]
    batches_c = [c.sample(batch_size=8, length=40) for _ in range(3)]
    for (xa, ya), (xb, yb) in zip(batches_a, batches_b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # successive batches differ, and so does another seed
    assert not torch.equal(batches_a[0][0], batches_a[1][0])
    assert any(
        xa.shape != xc.shape or not torch.equal(xa, xc)
        for (xa, _), (xc, _) in zip(batches_a, batches_c)
    )
    a.reset()
    xr, yr = a.sample(batch_size=8, length=40)
    assert torch.equal(xr, batches_a[0][0]) and torch.equal(yr, batches_a[0][1])


def test_seed_accepts_numpy_int():
    x1, _ = tasks.get("adding", seed=np.int64(2)).sample(4, 20)
    x2, _ = tasks.get("adding", seed=2).sample(4, 20)
    assert torch.equal(x1, x2)


# ------------------------------------------------------------------ errors


def test_unknown_name():
    with pytest.raises(ValueError) as err:
        tasks.get("no_such_task")
    message = str(err.value)
    assert "no_such_task" in message
    for name in ALL_NAMES:
        assert name in message


@pytest.mark.parametrize("name", ALL_NAMES)
def test_length_too_small(name):
    task = tasks.get(name)
    with pytest.raises(ValueError, match="length must be at least"):
        task.sample(batch_size=4, length=task.min_length - 1)
    task.sample(batch_size=4, length=task.min_length)  # the minimum itself is fine


@pytest.mark.parametrize("name", ALL_NAMES)
def test_batch_size_zero(name):
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        tasks.get(name).sample(batch_size=0, length=20)


def test_bad_kwargs():
    with pytest.raises(ValueError, match="n_values"):
        tasks.get("temporal_order", n_values=3)
    with pytest.raises(ValueError, match="unexpected"):
        tasks.get("memorization", n_value=3)
    with pytest.raises(ValueError, match="n_values must be at least 2"):
        tasks.get("memorization", n_values=1)
    with pytest.raises(ValueError, match="n_pos must be at least 1"):
        tasks.get("memorization_5bit", n_pos=0)
    with pytest.raises(ValueError):
        tasks.get("memorization", n_values="five")
    with pytest.raises(ValueError):
        tasks.get("adding", seed=-1)
