"""ElmanRNN's constructor and entry points refuse bad arguments with a message that
names the argument, what was given and what is allowed."""

import math

import pytest
import torch

from bptt import ElmanRNN


def build(**kw):
    args = dict(n_in=3, n_hidden=4, n_out=2)
    args.update(kw)
    return ElmanRNN(args.pop("n_in"), args.pop("n_hidden"), args.pop("n_out"), **args)


@pytest.mark.parametrize("kw, message", [
    (dict(unit="gelu"), r"unknown unit 'gelu'; choose one of tanh, sigmoid, relu, linear"),
    (dict(init="xavier"), r"unknown init 'xavier'; choose one of sigmoid, basic_tanh, smart_tanh"),
    (dict(output="softmaxx"), r"unknown output 'softmaxx'; choose one of last_softmax, softmax"),
    (dict(n_hidden=0), r"n_hidden must be a positive integer, got 0"),
    (dict(n_hidden=-2), r"n_hidden must be a positive integer, got -2"),
    (dict(n_hidden=2.5), r"n_hidden must be a positive integer, got 2.5"),
    (dict(n_hidden=math.nan), r"n_hidden must be a positive integer, got nan"),
    (dict(n_hidden=math.inf), r"n_hidden must be a positive integer, got inf"),
    (dict(n_hidden=True), r"n_hidden must be a positive integer, got True"),
    (dict(n_in=None), r"n_in must be a positive integer, got None"),
    (dict(n_out="2"), r"n_out must be a positive integer, got '2'"),
    (dict(seeds=[]), r"seeds must not be empty"),
    (dict(seeds=[0, 1.5]), r"seeds must be integers, got \[0, 1.5\]"),
    (dict(seeds=["a"]), r"seeds must be integers, got \['a'\]"),
    (dict(ensemble=0), r"ensemble must be a positive integer, got 0"),
    (dict(ensemble=2.5), r"ensemble must be a positive integer, got 2.5"),
    (dict(seed=1.5), r"seed must be an integer, got 1.5"),
    (dict(dtype=torch.float16), r"dtype must be torch.float32 or torch.float64, got torch.float16"),
    (dict(dtype="float64"), r"dtype must be torch.float32 or torch.float64, got float64"),
    (dict(init_options={"radus": 0.5}), r"unknown option 'radus' of init smart_tanh; it takes nonzero, radius"),
    (dict(init="basic_tanh", init_options={"radius": 0.5}), r"unknown option 'radius' of init basic_tanh; "
                                                            r"it takes none"),
    (dict(init_options={"nonzero": 0}), r"nonzero must be a positive integer, got 0"),
    (dict(init_options={"radius": -1.0}), r"radius must be finite and > 0, got -1.0"),
    (dict(init_options={"radius": math.nan}), r"radius must be finite and > 0, got nan"),
    (dict(init="orthogonal", init_options={"gain": math.inf}), r"gain must be finite, got inf"),
    (dict(init="identity", init_options={"scale": math.nan}), r"scale must be finite, got nan"),
])
def test_bad_constructor_arguments(kw, message):
    with pytest.raises(ValueError, match=message):
        build(**kw)


def test_good_arguments_still_build():
    m = build(n_hidden=4.0, seeds=[3, 3], init="orthogonal", init_options={"gain": 0.5}, dtype=torch.float64)
    assert (m.n_hidden, m.seeds, m.ensemble, m.dtype) == (4, [3, 3], 2, torch.float64)
    assert torch.equal(m.W_rec[0], m.W_rec[1])               # one seed, one network
    m = build(init_options={"nonzero": 2, "radius": 0.5})
    assert (torch.count_nonzero(m.W_rec[0], dim=1) == 2).all()
    assert torch.isfinite(m.W_rec).all()


def test_a_bad_omega_variant():
    m = build()
    x = torch.zeros(5, 2, 3)
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"unknown omega variant 'cubed'; choose one of squared, plain or None"):
        m.forward_backward(x, y, omega="cubed")


def test_inputs_of_the_wrong_shape():
    m = build(ensemble=2)
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"x has 4 input features, the model expects 3"):
        m.forward_backward(torch.zeros(5, 2, 4), y)
    with pytest.raises(ValueError, match=r"x has ensemble axis 3, the model has 2 members"):
        m.forward(torch.zeros(5, 3, 2, 3))
    with pytest.raises(ValueError, match=r"x must be \[T, B, I\] or \[T, E, B, I\]"):
        m.evaluate(torch.zeros(5, 3), y)
