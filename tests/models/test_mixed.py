"""MixedElmanRNN: members with their own initialization and unit, drawn as alone."""

import pytest
import torch

from bptt.models import ElmanRNN
from bptt.models.mixed import MixedElmanRNN, from_config, stack

INITS = ["sigmoid", "smart_tanh", "basic_tanh", "smart_tanh"]
SEEDS = [3, 3, 4, 5]


def make(**kw):
    return MixedElmanRNN(6, 12, 4, init=INITS, seeds=SEEDS, **kw)


def test_each_member_is_drawn_as_a_one_member_network():
    model = make()
    assert model.units == ["sigmoid", "tanh", "tanh", "tanh"] and model.unit == tuple(model.units)
    for e, (init, seed) in enumerate(zip(INITS, SEEDS)):
        alone = ElmanRNN(6, 12, 4, init=init, seeds=[seed])
        for name, p in alone.params.items():
            assert torch.equal(model.params[name][e], p[0]), (e, name)


def test_select_and_config_round_trip():
    model = make()
    again = from_config(model.config())
    assert isinstance(again, MixedElmanRNN) and again.units == model.units
    tanh = model.select([1, 3])
    assert type(tanh) is ElmanRNN and tanh.init == "smart_tanh" and tanh.unit == "tanh"
    assert torch.equal(tanh.W_rec, model.W_rec[[1, 3]])
    both = model.select([2, 0])
    assert isinstance(both, MixedElmanRNN) and both.inits == ["basic_tanh", "sigmoid"]
    parts = [model.select([0]), model.select([1, 2])]
    joined = stack([p.config() for p in parts], [p.params for p in parts])
    assert joined.inits == INITS[:3] and torch.equal(joined.W_in, model.W_in[:3])


def test_the_exact_engine_takes_one_unit():
    model = make()
    x, y = torch.zeros(5, 2, 6), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="kernel='persistent'"):
        model.forward_backward(x, y)
    with pytest.raises(ValueError, match="kernel='persistent'"):
        model.evaluate(x, y)
    tanh = MixedElmanRNN(6, 12, 4, init=["basic_tanh", "smart_tanh"], seeds=[0, 1])
    out = tanh.forward_backward(x, y)                              # one unit: the exact engine runs
    ref = [ElmanRNN(6, 12, 4, init=i, seeds=[s]).forward_backward(x, y) for i, s in (("basic_tanh", 0),
                                                                                    ("smart_tanh", 1))]
    torch.testing.assert_close(out.loss, torch.cat([r.loss for r in ref]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="one entry per seed"):
        MixedElmanRNN(6, 12, 4, init=["sigmoid"], seeds=[0, 1])
    with pytest.raises(ValueError, match="unknown init"):
        MixedElmanRNN(6, 12, 4, init=["sigmoid", "tanh"], seeds=[0, 1])
    with pytest.raises(ValueError, match="unknown unit"):
        MixedElmanRNN(6, 12, 4, init=["sigmoid", "sigmoid"], unit=["sigmoid", "cosh"], seeds=[0, 1])
