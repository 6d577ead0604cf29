"""ClippedOptimizer: the same parameters as clipping by hand before each step."""

import functools
import io

import pytest
import torch

from bptt.clip import AutoClip, ClipNorm, ClippedOptimizer, ZClip, clip_grad_norm_, clip_grad_value_


class Net(torch.nn.Module):
    """An LSTM and a linear head: the usual case the clippers are for."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lstm = torch.nn.LSTM(3, 8)
        self.head = torch.nn.Linear(8, 2)

    def loss(self, step):
        g = torch.Generator().manual_seed(step)
        x = torch.randn(12, 4, 3, generator=g)
        y = torch.randn(4, 2, generator=g)
        out, _ = self.lstm(x)
        return (self.head(out[-1]) - y).pow(2).sum() * (50.0 if step % 3 == 0 else 1.0)


def train(opt, net, steps, start=0):
    norms = []
    for t in range(start, start + steps):
        opt.zero_grad()
        net.loss(t).backward()
        opt.step()
        norms.append(opt.last_norm.clone())
    return norms


def test_sgd_with_a_threshold_is_algorithm_1_then_sgd():
    net, ref = Net(), Net()
    opt = ClippedOptimizer(torch.optim.SGD(net.parameters(), lr=0.05), 1.0)
    sgd = torch.optim.SGD(ref.parameters(), lr=0.05)
    norms = train(opt, net, 12)
    for t in range(12):
        sgd.zero_grad()
        ref.loss(t).backward()
        assert torch.equal(clip_grad_norm_(ref.parameters(), 1.0), norms[t])
        sgd.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.equal(p, q)
    assert isinstance(opt.clipper, ClipNorm) and int(opt.clipper.clipped) > 0


@pytest.mark.parametrize("optim", [torch.optim.Adam, torch.optim.RMSprop, torch.optim.SGD])
def test_adaptive_clipper_with_torch_optimizers(optim):
    net, ref = Net(), Net()
    opt = ClippedOptimizer(optim(net.parameters(), lr=1e-3), AutoClip(percentile=25))
    base, clipper = optim(ref.parameters(), lr=1e-3), AutoClip(percentile=25)
    train(opt, net, 8)
    for t in range(8):
        base.zero_grad()
        ref.loss(t).backward()
        clipper(ref.parameters())
        base.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.equal(p, q)


def test_state_dict_restores_optimizer_and_clipper_mid_stream():
    net = Net()
    opt = ClippedOptimizer(torch.optim.Adam(net.parameters(), lr=1e-3), ZClip(warmup=3))
    train(opt, net, 5)
    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict()}, buffer)
    saved = opt.state_dict()
    assert saved["clipper"]["kind"] == "ZClip" and saved["clipper"]["steps"] == 5

    twin = Net()
    twin_opt = ClippedOptimizer(torch.optim.Adam(twin.parameters(), lr=1e-3), ZClip(warmup=3))
    blob = torch.load(io.BytesIO(buffer.getvalue()))
    twin.load_state_dict(blob["model"])
    twin_opt.load_state_dict(blob["opt"])
    a, b = train(opt, net, 6, start=5), train(twin_opt, twin, 6, start=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for p, q in zip(net.parameters(), twin.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="state dict"):
        twin_opt.load_state_dict(blob["opt"]["optimizer"])


def test_closure_callables_and_schedulers():
    net = Net()
    opt = ClippedOptimizer(torch.optim.SGD(net.parameters(), lr=0.1),
                           functools.partial(clip_grad_value_, clip_value=0.01))
    sched = torch.optim.lr_scheduler.StepLR(opt.optimizer, step_size=1, gamma=0.5)

    def closure():
        opt.zero_grad()
        loss = net.loss(0)
        loss.backward()
        return loss

    before = [p.detach().clone() for p in net.parameters()]
    loss = opt.step(closure)
    assert loss.ndim == 0 and bool(opt.last_norm)                   # something was clamped
    for p, b in zip(net.parameters(), before):
        assert (p.detach() - b).abs().max() <= 0.1 * 0.01 + 1e-7    # lr × clip_value
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    assert opt.state_dict()["clipper"] is None


def test_ensemble_parameters():
    E = 3
    W = torch.zeros(E, 4, 4, requires_grad=True)
    b = torch.zeros(E, 4, requires_grad=True)
    opt = ClippedOptimizer(torch.optim.SGD([W, b], lr=1.0), 1.0, ensemble=True)
    scale = torch.tensor([0.01, 1.0, 10.0])
    W.grad = torch.ones(E, 4, 4) * scale.reshape(-1, 1, 1)
    b.grad = torch.ones(E, 4) * scale.reshape(-1, 1)
    opt.step()
    assert opt.last_norm.shape == (E,)
    moved = torch.linalg.vector_norm(torch.cat([W.detach().reshape(E, -1), b.detach()], 1), dim=1)
    assert moved[0] == pytest.approx(float(opt.last_norm[0]))     # below the threshold: plain step
    assert moved[1:].tolist() == pytest.approx([1.0, 1.0])


def test_bad_arguments():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="torch.optim.Optimizer"):
        ClippedOptimizer([p], 1.0)
    with pytest.raises(ValueError, match="LBFGS"):
        ClippedOptimizer(torch.optim.LBFGS([p]), 1.0)
    with pytest.raises(ValueError, match="max_norm"):
        ClippedOptimizer(torch.optim.SGD([p], lr=0.1), float("nan"))
    with pytest.raises(ValueError, match="clipper"):
        ClippedOptimizer(torch.optim.SGD([p], lr=0.1), "norm")
