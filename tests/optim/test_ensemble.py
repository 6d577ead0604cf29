"""The ensemble optimizers: each member steps exactly as ``torch.optim``'s optimizer on that
member alone (float64, 1e-12), refused members stand still, and bad hyperparameters are
refused with a clear error."""

import math

import pytest
import torch

from bptt.optim import EnsembleAdam, EnsembleNesterov, EnsembleRMSprop, EnsembleSGD

E = 3
SHAPES = {"W_rec": (4, 4), "b": (4,)}


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(E, *s, generator=g, dtype=torch.float64) for k, s in SHAPES.items()}


def _grads(step):
    g = torch.Generator().manual_seed(100 + step)
    return {k: torch.randn(E, *s, generator=g, dtype=torch.float64) * (1 + step) for k, s in SHAPES.items()}


CASES = [
    ("sgd", lambda: EnsembleSGD([0.1, 0.05, 0.2], dtype=torch.float64),
     lambda e, ps: torch.optim.SGD(ps, lr=[0.1, 0.05, 0.2][e])),
    ("nesterov", lambda: EnsembleNesterov([0.1, 0.05, 0.2], momentum=[0.9, 0.5, 0.0], weight_decay=[0.0, 0.01, 0.1],
                                          dtype=torch.float64),
     lambda e, ps: torch.optim.SGD(ps, lr=[0.1, 0.05, 0.2][e], momentum=[0.9, 0.5, 0.0][e], nesterov=e < 2,
                                   weight_decay=[0.0, 0.01, 0.1][e])),
    ("rmsprop", lambda: EnsembleRMSprop([0.01, 0.02, 0.03], momentum=[0.0, 0.9, 0.5], smoothing=[0.99, 0.9, 0.5],
                                        eps=[1e-8, 1e-6, 1e-3], weight_decay=[0.0, 0.0, 0.05], dtype=torch.float64),
     lambda e, ps: torch.optim.RMSprop(ps, lr=[0.01, 0.02, 0.03][e], momentum=[0.0, 0.9, 0.5][e],
                                       alpha=[0.99, 0.9, 0.5][e], eps=[1e-8, 1e-6, 1e-3][e],
                                       weight_decay=[0.0, 0.0, 0.05][e])),
    ("adam", lambda: EnsembleAdam([0.001, 0.01, 0.1], betas=([0.9, 0.5, 0.0], [0.999, 0.9, 0.99]),
                                  eps=[1e-8, 1e-6, 1e-4], weight_decay=[0.0, 0.01, 0.0], dtype=torch.float64),
     lambda e, ps: torch.optim.Adam(ps, lr=[0.001, 0.01, 0.1][e], betas=([0.9, 0.5, 0.0][e], [0.999, 0.9, 0.99][e]),
                                    eps=[1e-8, 1e-6, 1e-4][e], weight_decay=[0.0, 0.01, 0.0][e], foreach=False)),
]


def _torch_member(make, e, steps, skip=()):
    ps = {k: v[e].clone().requires_grad_(True) for k, v in _params().items()}
    opt = make(e, list(ps.values()))
    for t in range(steps):
        if t in skip:
            continue
        for k, p in ps.items():
            p.grad = _grads(t)[k][e].clone()
        opt.step()
    return {k: p.detach() for k, p in ps.items()}


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_every_member_steps_as_torch_optim_does(name, ours, theirs):
    params, opt = _params(), ours()
    for t in range(6):
        opt.update(params, _grads(t))
    for e in range(E):
        want = _torch_member(theirs, e, 6)
        for k in SHAPES:
            torch.testing.assert_close(params[k][e], want[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_a_refused_member_keeps_its_parameters_and_state(name, ours, theirs):
    params, opt = _params(), ours()
    active = torch.tensor([True, False, True])
    for t in range(5):
        before = {k: v.clone() for k, v in params.items()}
        opt.update(params, _grads(t), active=active if t == 2 else None)
        if t == 2:
            for k in SHAPES:
                assert torch.equal(params[k][1], before[k][1])
    want = _torch_member(theirs, 1, 5, skip={2})
    for k in SHAPES:
        torch.testing.assert_close(params[k][1], want[k], rtol=1e-12, atol=1e-12)
    assert opt.steps.tolist() == [5, 4, 5]


def test_select_and_state_dict_continue_exactly():
    a, b = EnsembleAdam([0.01, 0.02, 0.03], dtype=torch.float64), None
    pa = _params()
    for t in range(3):
        a.update(pa, _grads(t))
    b = EnsembleAdam([1.0, 1.0, 1.0], dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    pb = {k: v.clone() for k, v in pa.items()}
    a.select([0, 2])
    b.select([0, 2])
    pa = {k: v[[0, 2]].clone() for k, v in pa.items()}
    pb = {k: v[[0, 2]].clone() for k, v in pb.items()}
    g = {k: v[[0, 2]] for k, v in _grads(7).items()}
    a.update(pa, g)
    b.update(pb, g)
    for k in SHAPES:
        assert torch.equal(pa[k], pb[k])
    assert a.lr.tolist() == [0.01, 0.03]


@pytest.mark.parametrize("build", [
    lambda: EnsembleSGD([0.1, math.nan]),
    lambda: EnsembleSGD(math.inf),
    lambda: EnsembleNesterov(0.1, momentum=[0.9, math.nan], ensemble=2),
    lambda: EnsembleNesterov(0.1, momentum=1.0),
    lambda: EnsembleRMSprop(0.1, smoothing=math.inf),
    lambda: EnsembleRMSprop(0.1, eps=0.0),
    lambda: EnsembleAdam(0.1, betas=(0.9, math.nan)),
    lambda: EnsembleAdam(0.1, betas=(-0.1, 0.9)),
    lambda: EnsembleAdam(0.1, eps=math.nan),
    lambda: EnsembleAdam(0.1, weight_decay=-math.inf),
])
def test_non_finite_or_out_of_range_hyperparameters_are_refused(build):
    with pytest.raises(ValueError, match="must be a finite number"):
        build()
