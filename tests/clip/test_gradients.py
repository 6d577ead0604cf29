"""collect: every form of parameters, ensembles inferred and checked."""

import pytest
import torch

from bptt.clip.gradients import collect
from bptt.models.elman import ElmanRNN


def with_grad(*shape):
    p = torch.zeros(shape, requires_grad=True)
    p.grad = torch.randn(shape)
    return p


def test_forms_and_defaults():
    a, b, c = with_grad(2, 3), torch.zeros(4, requires_grad=True), with_grad(5)
    gs = collect([a, b, c])
    assert gs.grads == [a.grad, c.grad] and gs.params == [a, c] and gs.keys == [0, 2]
    assert not gs.ensemble and gs.member_shape == ()
    assert collect(x for x in [a, b, c]).keys == [0, 2]
    assert collect(a).grads == [a.grad]

    lin = torch.nn.Linear(3, 2)
    lin.weight.grad = torch.ones(2, 3)
    gs = collect(lin)
    assert gs.keys == ["weight"] and not gs.ensemble

    mapping = {"W": torch.ones(3, 2, 2), "b": torch.ones(3, 2)}
    gs = collect(mapping)
    assert gs.ensemble and gs.members == 3 and gs.params is None and gs.mapping == mapping
    assert not collect(mapping, ensemble=False).ensemble

    model = ElmanRNN(2, 4, 3, ensemble=5)
    gs = collect(model)                                   # no gradients yet
    assert gs.ensemble and gs.members == 5 and gs.grads == [] and gs.mapping is None
    assert gs.zero_norm().shape == (5,)
    for p in model.params.values():
        p.grad = torch.ones_like(p)
    gs = collect(model)
    assert gs.row_vector and list(gs.mapping) == list(model.params)
    assert collect(model.parameters()).ensemble is False


def test_ensemble_shapes_are_checked():
    with pytest.raises(ValueError, match="'b' has shape \\(2, 4\\)"):
        collect({"W": torch.ones(3, 4, 4), "b": torch.ones(2, 4)})
    with pytest.raises(ValueError, match="parameter 0 is a scalar"):
        collect([with_grad()], ensemble=True)
    with pytest.raises(ValueError, match="parameter 1 is a str"):
        collect([with_grad(2), "w"])
    with pytest.raises(ValueError, match="got int"):
        collect(3)


def test_operations():
    grads = {"W": torch.full((2, 3, 3), 2.0), "b": torch.full((2, 3), 2.0)}
    gs = collect(grads)
    torch.testing.assert_close(gs.norm(), torch.full((2,), 2.0 * 12 ** 0.5))
    gs.scale_(torch.tensor([0.5, 1.0]))
    assert (grads["W"][0] == 1).all() and (grads["W"][1] == 2).all()
    gs.zero_(torch.tensor([False, True]))
    assert (grads["b"][1] == 0).all() and (grads["b"][0] == 1).all()
    p = with_grad(4)
    p.grad = torch.tensor([-3.0, 0.5, 2.0, -0.1])
    collect([p]).clamp_(1.0)
    assert p.grad.tolist() == pytest.approx([-1.0, 0.5, 1.0, -0.1])
