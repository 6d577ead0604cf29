"""AverageNorm, AutoClip, ZClip: each against a plain-Python statement of its rule."""

import io
import math

import numpy as np
import pytest
import torch

from bptt.clip import AutoClip, AverageNorm, ZClip

# gradient scales over a stream: a slow drift with spikes
SCALES = [1.0, 1.2, 0.9, 1.1, 1.0, 8.0, 1.05, 0.95, 1.3, 20.0, 1.0, 0.8, 1.1, 1.0, 5.0, 0.9, 1.2, 1.0,
          0.7, 30.0, 1.1, 1.0, 0.9, 1.0, 1.4, 1.0]


def network(seed=0, E=None):
    g = torch.Generator().manual_seed(seed)
    lead = () if E is None else (E,)
    return [torch.randn(*lead, *shape, generator=g, dtype=torch.float64).requires_grad_()
            for shape in [(4, 3), (4,), (2, 4)]]


def set_grads(params, step, scales, seed=0):
    """Gradients of step `step`: random directions, norm proportional to the scale."""
    g = torch.Generator().manual_seed(1000 * seed + step)
    for p in params:
        d = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if isinstance(scales, torch.Tensor):
            d = d * scales.reshape(-1, *([1] * (p.dim() - 1)))
        else:
            d = d * scales
        p.grad = d


def norm_of(params, ensemble=False):
    if ensemble:
        E = params[0].shape[0]
        return torch.linalg.vector_norm(torch.cat([p.grad.reshape(E, -1) for p in params], 1), dim=1)
    return torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params]))


def run(clipper, scales, seed=0):
    params = network(seed)
    before, after = [], []
    for t, s in enumerate(scales):
        set_grads(params, t, s, seed)
        before.append(float(clipper(params)))
        after.append(float(norm_of(params)))
    return before, after


# -- plain statements of the rules ----------------------------------------------------------
def average_norm_rule(norms, factor, window, warmup):
    history, out = [], []
    for n in norms:
        tau = factor * sum(history[-window:]) / len(history[-window:]) if len(history) >= warmup else math.inf
        out.append(tau if n >= tau else n)
        history.append(n)
    return out


def autoclip_rule(norms, p, history=None):
    seen, out = [], []
    for n in norms:
        seen.append(n)
        tau = float(np.percentile(seen if history is None else seen[-history:], p))
        out.append(tau if n > tau else n)
    return out


def zclip_rule(norms, alpha, z, warmup):
    warm, out, mean, var = [], [], None, None
    for n in norms:
        if mean is None:
            warm.append(n)
            out.append(n)
            if len(warm) == warmup:
                mean = sum(warm) / warmup
                var = sum((x - mean) ** 2 for x in warm) / warmup
            continue
        tau = mean + z * math.sqrt(var)
        g = tau if n > tau else n
        out.append(g)
        mean = alpha * mean + (1 - alpha) * g
        var = alpha * var + (1 - alpha) * (g - mean) ** 2
    return out


CASES = [
    (lambda: AverageNorm(factor=2.0, window=5, warmup=3), lambda n: average_norm_rule(n, 2.0, 5, 3)),
    (lambda: AverageNorm(factor=0.5, window=4), lambda n: average_norm_rule(n, 0.5, 4, 4)),
    (lambda: AutoClip(percentile=10), lambda n: autoclip_rule(n, 10)),
    (lambda: AutoClip(percentile=75, history=6), lambda n: autoclip_rule(n, 75, 6)),
    (lambda: ZClip(alpha=0.9, z_threshold=2.0, warmup=5), lambda n: zclip_rule(n, 0.9, 2.0, 5)),
    (lambda: ZClip(warmup=10), lambda n: zclip_rule(n, 0.97, 2.5, 10)),
]


@pytest.mark.parametrize("make, rule", CASES)
def test_against_the_rule(make, rule):
    clipper = make()
    before, after = run(clipper, SCALES)
    expected = rule(before)
    assert after == pytest.approx(expected, rel=1e-12)
    clipped = sum(a < b * (1 - 1e-9) for a, b in zip(after, before))
    assert clipped > 0
    assert int(clipper.clipped) == clipped
    assert clipper.steps == len(SCALES)


def test_warmup_leaves_gradients_alone():
    for clipper in (AverageNorm(factor=0.5, window=3, warmup=4), ZClip(warmup=4)):
        params = network()
        for t in range(4):
            set_grads(params, t, SCALES[t] * (100 if t == 3 else 1))
            expected = [p.grad.clone() for p in params]
            clipper(params)
            for p, e in zip(params, expected):
                assert torch.equal(p.grad, e)
        assert int(clipper.clipped) == 0


def test_autoclip_unbounded_history_grows():
    scales = [1.0 + 0.01 * (t % 17) for t in range(300)]
    clipper = AutoClip(percentile=50)
    before, after = run(clipper, scales)
    assert after == pytest.approx(autoclip_rule(before, 50), rel=1e-12)
    assert clipper.state["norms"].shape[0] >= 300


def test_zclip_clips_a_spike_to_the_edge_and_follows_the_clipped_norm():
    clipper = ZClip(alpha=0.9, z_threshold=2.0, warmup=5)
    params = network()
    for t in range(5):
        set_grads(params, t, 1.0 + 0.1 * t)
        clipper(params)
    mean, var = float(clipper.state["mean"]), float(clipper.state["var"])
    set_grads(params, 99, 50.0)
    clipper(params)
    edge = mean + 2.0 * math.sqrt(var)
    assert float(norm_of(params)) == pytest.approx(edge, rel=1e-12)
    new_mean = 0.9 * mean + 0.1 * edge                 # the clipped norm, not the spike
    assert float(clipper.state["mean"]) == pytest.approx(new_mean, rel=1e-12)
    assert float(clipper.state["var"]) == pytest.approx(0.9 * var + 0.1 * (edge - new_mean) ** 2, rel=1e-12)


@pytest.mark.parametrize("make, rule", CASES[:5])
def test_ensemble_members_are_independent(make, rule):
    E = 3
    streams = torch.tensor([SCALES, [s * 3 for s in reversed(SCALES)], [1.0] * len(SCALES)],
                           dtype=torch.float64)
    clipper = make()
    params = network(E=E)
    after = []
    for t in range(len(SCALES)):
        set_grads(params, t, streams[:, t])
        norm = clipper(params, ensemble=True)
        assert norm.shape == (E,)
        after.append(norm_of(params, ensemble=True))
    after = torch.stack(after)
    assert clipper.clipped.shape == (E,)
    for e in range(E):
        single = make()
        mine = network()
        for t in range(len(SCALES)):
            set_grads(params, t, streams[:, t])
            for p, q in zip(mine, params):
                p.grad = q.grad[e].clone()
            single(mine)
            assert float(norm_of(mine)) == pytest.approx(float(after[t, e]), rel=1e-12)
        assert int(single.clipped) == int(clipper.clipped[e])


@pytest.mark.parametrize("make, rule", CASES)
def test_restored_mid_stream_continues_exactly(make, rule):
    original = make()
    params = network()
    for t in range(9):
        set_grads(params, t, SCALES[t])
        original(params)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    restored = make()
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    twin = network()
    for t in range(9, len(SCALES)):
        set_grads(params, t, SCALES[t])
        set_grads(twin, t, SCALES[t])
        assert torch.equal(original(params), restored(twin))
        for p, q in zip(params, twin):
            assert torch.equal(p.grad, q.grad)
    a, b = original.state_dict(), restored.state_dict()
    assert a["steps"] == b["steps"] == len(SCALES)
    for k in a["state"]:
        assert torch.equal(a["state"][k].nan_to_num(-1.0), b["state"][k].nan_to_num(-1.0))


def test_load_refuses_other_hyperparameters_kind_and_size():
    a = AverageNorm(factor=2.0, window=5)
    run(a, SCALES[:3])
    with pytest.raises(ValueError, match="hyperparameters"):
        AverageNorm(factor=3.0, window=5).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="AverageNorm"):
        ZClip().load_state_dict(a.state_dict())
    b = AverageNorm(factor=2.0, window=5)
    b.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="3 members"):
        params = network(E=3)
        set_grads(params, 0, 1.0)
        b(params, ensemble=True)


@pytest.mark.parametrize("make", [lambda **k: AverageNorm(window=3, warmup=2, **k),
                                  lambda **k: AutoClip(percentile=50, **k),
                                  lambda **k: ZClip(warmup=2, **k)])
@pytest.mark.parametrize("policy", ["error", "skip", "ignore"])
def test_nonfinite_norms_stay_out_of_the_statistics(make, policy):
    clipper = make(nonfinite=policy)
    params = network()
    for t in range(4):
        set_grads(params, t, SCALES[t])
        clipper(params)
    state = {k: v.clone() for k, v in clipper.state.items()}
    set_grads(params, 50, 1.0)
    params[1].grad[0] = math.nan
    before = [p.grad.clone() for p in params]
    if policy == "error":
        with pytest.raises(RuntimeError, match="non-finite"):
            clipper(params)
        assert clipper.steps == 4
    else:
        norm = clipper(params)
        assert math.isnan(float(norm))
        for p, b in zip(params, before):
            expected = torch.zeros_like(b) if policy == "skip" else b
            torch.testing.assert_close(p.grad, expected, rtol=0, atol=0, equal_nan=True)
        assert int(clipper.nonfinite_count) == 1
    for k, v in clipper.state.items():
        if k != "nonfinite":
            assert torch.equal(v.nan_to_num(-1.0), state[k].nan_to_num(-1.0)), k


@pytest.mark.parametrize("make, name", [
    (lambda: AverageNorm(factor=math.nan), "factor"),
    (lambda: AverageNorm(factor=-1.0), "factor"),
    (lambda: AverageNorm(factor=math.inf), "factor"),
    (lambda: AverageNorm(window=0), "window"),
    (lambda: AverageNorm(window=2.5), "window"),
    (lambda: AverageNorm(warmup=0), "warmup"),
    (lambda: AverageNorm(nonfinite="raise"), "nonfinite"),
    (lambda: AutoClip(percentile=0), "percentile"),
    (lambda: AutoClip(percentile=101), "percentile"),
    (lambda: AutoClip(percentile=math.nan), "percentile"),
    (lambda: AutoClip(history=0), "history"),
    (lambda: ZClip(alpha=1.0), "alpha"),
    (lambda: ZClip(alpha=math.nan), "alpha"),
    (lambda: ZClip(z_threshold=math.inf), "z_threshold"),
    (lambda: ZClip(z_threshold=0.0), "z_threshold"),
    (lambda: ZClip(warmup=1), "warmup"),
])
def test_hyperparameters_are_checked(make, name):
    with pytest.raises(ValueError, match=name):
        make()
