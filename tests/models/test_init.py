"""The paper's initializations, drawn exactly, one seed per member."""

import pytest
import torch

from bptt import ElmanRNN
from bptt.models.init import member_init, spectral_radius


def test_sigmoid_and_basic_tanh_scales():
    for name, std, unit in (("sigmoid", 0.01, "sigmoid"), ("basic_tanh", 0.1, "tanh")):
        m = ElmanRNN(6, 200, 4, init=name, seed=1, dtype=torch.float64)
        assert m.unit == unit
        for k in ("W_rec", "W_in", "W_out"):
            w = m.params[k].detach()
            assert abs(float(w.std()) - std) < 0.05 * std, (name, k)
            assert abs(float(w.mean())) < 0.05 * std
        assert torch.count_nonzero(m.b) == 0 and torch.count_nonzero(m.b_out) == 0


def test_smart_tanh_sparsity_and_radius():
    m = ElmanRNN(6, 50, 4, ensemble=3, init="smart_tanh", seed=0, dtype=torch.float64)
    W = m.W_rec.detach()
    assert (torch.count_nonzero(W, dim=2) == 15).all()          # 15 entries kept per row
    assert torch.allclose(spectral_radius(W), torch.full((3,), 0.95, dtype=torch.float64), atol=1e-10)
    assert abs(float(m.W_in.detach().std()) - 0.01) < 0.002
    assert m.unit == "tanh"


def test_orthogonal_and_identity():
    W = ElmanRNN(3, 20, 2, init="orthogonal", seed=0, dtype=torch.float64).W_rec.detach()[0]
    assert torch.allclose(W @ W.T, torch.eye(20, dtype=torch.float64), atol=1e-12)
    m = ElmanRNN(3, 20, 2, init="identity", seed=0, init_options={"scale": 0.9})
    assert torch.equal(m.W_rec.detach()[0], 0.9 * torch.eye(20))
    assert m.unit == "relu"


def test_each_member_is_its_own_seed():
    ens = ElmanRNN(6, 30, 4, ensemble=3, init="smart_tanh", seed=10, dtype=torch.float64)
    assert ens.seeds == [10, 11, 12]
    for e, seed in enumerate(ens.seeds):
        single = ElmanRNN(6, 30, 4, init="smart_tanh", seed=seed, dtype=torch.float64)
        for k in single.params:
            assert torch.equal(single.params[k].detach()[0], ens.params[k].detach()[e])
    assert not torch.equal(ens.W_rec[0], ens.W_rec[1])
    # float32 draws the same network, rounded
    f32 = ElmanRNN(6, 30, 4, ensemble=3, init="smart_tanh", seed=10)
    assert torch.allclose(f32.W_rec.double(), ens.W_rec.detach(), atol=1e-7)


def test_same_seed_same_numbers():
    a = member_init("basic_tanh", 2, 8, 1, seed=5)
    b = member_init("basic_tanh", 2, 8, 1, seed=5)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kwargs, match", [
    ({"init": "xavier"}, "unknown init"), ({"unit": "gelu"}, "unknown unit"),
    ({"output": "crf"}, "unknown output"), ({"ensemble": 0}, "ensemble"),
    ({"dtype": torch.float16}, "dtype")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ElmanRNN(6, 10, 4, **kwargs)


def test_bad_inputs_are_explained():
    m = ElmanRNN(6, 10, 4)
    with pytest.raises(ValueError, match="input features"):
        m.forward_backward(torch.zeros(5, 2, 7), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[T, B, I\]"):
        m.forward_backward(torch.zeros(5, 6), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="omega"):
        m.forward_backward(torch.zeros(5, 2, 6), torch.zeros(2, dtype=torch.long), omega="cubic")


def test_select_keeps_members():
    ens = ElmanRNN(6, 10, 4, ensemble=4, seed=0)
    sub = ens.select([3, 1])
    assert sub.seeds == [3, 1]
    assert torch.equal(sub.W_rec[0], ens.W_rec[3]) and torch.equal(sub.W_out[1], ens.W_out[1])
