"""Table 1's data sources and the evaluation over whole splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt.experiments.table1 import TextSource, evaluate_split, load_source
from bptt.models import ElmanRNN

from table1_toys import DATA_DIR, needs_data, toy_music, toy_text


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


@pytest.mark.parametrize("make", [toy_music, toy_text])
def test_n_windows_is_the_number_of_batches(make):
    src = make()
    for split in ("train", "valid"):
        for batch_size, window, rng in ((1, 7, None), (2, 15, 0), (3, 40, 5), (4, 1000, 9)):
            batches = list(src.batches(split, batch_size, window, rng=rng))
            assert src.n_windows(split, batch_size, window, rng=rng) == len(batches)
            assert sum(int(b.mask.sum()) for b in batches) == src.n_steps(split)


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


def test_an_unknown_data_set_is_refused():
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        load_source("mnist")
