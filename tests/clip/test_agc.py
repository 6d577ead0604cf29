"""AGC: unit-wise clipping against a per-unit loop, for each kind of parameter and layout."""

import math

import pytest
import torch

from bptt.clip import AGC
from bptt.models.elman import ElmanRNN


def unit_rule(w, g, clipping, eps, units_first=True):
    """Plain loop: each unit (a slice along the unit axis) clipped on its own."""
    out = g.clone()
    if w.dim() <= 1:
        pairs = [(slice(None), slice(None))] if w.dim() == 1 else [((), ())]
    elif units_first:
        pairs = [((i,), (i,)) for i in range(w.shape[0])]
    else:
        pairs = [((..., i), (..., i)) for i in range(w.shape[-1])]
    for wi, gi in pairs:
        wn = float(torch.linalg.vector_norm(w[wi]))
        gn = float(torch.linalg.vector_norm(g[gi]))
        limit = clipping * max(wn, eps)
        if gn > limit:
            out[gi] = g[gi] * (limit / gn)
    return out


def with_grads(module, scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype) * scale
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("scale", [1e-7, 0.05, 10.0])
def test_pytorch_layers(scale):
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"lstm": torch.nn.LSTM(3, 4), "conv": torch.nn.Conv2d(2, 3, 3),
                               "head": torch.nn.Linear(4, 2)}).double()
    net.gain = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))     # a scalar parameter
    with torch.no_grad():
        net.head.bias.zero_()                                                 # a zero unit: eps applies
    before = with_grads(net, scale)
    total = torch.linalg.vector_norm(torch.cat([g.flatten() for g in before]))
    clipper = AGC(clipping=0.05, eps=1e-3)
    norm = clipper(net)
    torch.testing.assert_close(norm, total, rtol=1e-14, atol=0)
    changed = False
    for p, g in zip(net.parameters(), before):
        expected = unit_rule(p.detach(), g, 0.05, 1e-3)
        torch.testing.assert_close(p.grad, expected, rtol=1e-13, atol=1e-300)
        changed |= not torch.equal(p.grad, g)
    assert int(clipper.clipped) == int(changed)
    assert changed == (scale > 1e-7)


def test_bptt_model_units_are_columns():
    model = ElmanRNN(3, 5, 2, ensemble=4, dtype=torch.float64, seed=3)
    g = torch.Generator().manual_seed(1)
    before = {}
    scales = torch.tensor([1e-7, 0.1, 1.0, 10.0], dtype=torch.float64)
    for name, p in model.params.items():
        p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64) * scales.reshape(-1, *[1] * (p.dim() - 1))
        before[name] = p.grad.clone()
    clipper = AGC(clipping=0.02)
    norm = clipper(model)
    assert norm.shape == (4,)
    for name, p in model.params.items():
        for e in range(4):
            expected = unit_rule(p[e].detach(), before[name][e], 0.02, 1e-3, units_first=False)
            torch.testing.assert_close(p.grad[e], expected, rtol=1e-13, atol=1e-300)
    assert clipper.clipped.tolist() == [0, 1, 1, 1]
    # the same weights seen in PyTorch's layout give another answer
    for name, p in model.params.items():
        p.grad = before[name].clone()
    AGC(clipping=0.02, layout="out_in")(model)
    assert not torch.equal(model.params["W_rec"].grad[3],
                           unit_rule(model.W_rec[3].detach(), before["W_rec"][3], 0.02, 1e-3, False))


@pytest.mark.parametrize("policy", ["skip", "ignore"])
def test_nonfinite_member(policy):
    W = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    W.grad = torch.randn(2, 3, 3, dtype=torch.float64) * 10
    W.grad[1, 0, 0] = math.nan
    before = W.grad.clone()
    norm = AGC(nonfinite=policy)([W], ensemble=True)
    assert torch.isfinite(norm).tolist() == [True, False]
    assert not torch.equal(W.grad[0], before[0])                       # member 0 clipped
    expected = torch.zeros_like(before[1]) if policy == "skip" else before[1]
    torch.testing.assert_close(W.grad[1], expected, rtol=0, atol=0, equal_nan=True)
    W.grad[1, 0, 0] = math.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        AGC()([W], ensemble=True)


def test_bad_input():
    for kwargs, name in [({"clipping": 0.0}, "clipping"), ({"clipping": math.nan}, "clipping"),
                         ({"eps": math.inf}, "eps"), ({"eps": -1e-3}, "eps"), ({"layout": "io"}, "layout")]:
        with pytest.raises(ValueError, match=name):
            AGC(**kwargs)
    with pytest.raises(ValueError, match="weights"):
        AGC()({"W": torch.ones(2, 3, 3)})


def test_state_round_trip():
    lin = torch.nn.Linear(4, 3).double()
    a = AGC(clipping=0.01)
    with_grads(lin, 1.0)
    a(lin)
    b = AGC(clipping=0.01)
    b.load_state_dict(a.state_dict())
    assert b.steps == 1 and int(b.clipped) == 1
    with pytest.raises(ValueError, match="clipping"):
        AGC(clipping=0.1).load_state_dict(a.state_dict())
