"""The Omega wrapper: same outputs as the module, cells, user cells, and bad input."""

import itertools

import pytest
import torch
from torch import nn

from bptt.omega import Omega, penalty

D = torch.float64
MODULES = [nn.RNN, nn.GRU, nn.LSTM]
CELLS = {nn.RNN: nn.RNNCell, nn.GRU: nn.GRUCell, nn.LSTM: nn.LSTMCell}


def flat(result):
    out, final = result
    return [out] + (list(final) if isinstance(final, tuple) else [final])


def initial(M, L, B, H, seed=0):
    g = torch.Generator().manual_seed(seed)
    h0 = torch.randn(L, B, H, generator=g, dtype=D)
    return (h0, torch.randn(L, B, H, generator=g, dtype=D)) if M is nn.LSTM else h0


@pytest.mark.parametrize("M,L,batch_first,with_h0,bias", [
    (M, L, bf, h0, bias) for M, L, bf, h0, bias in
    itertools.product(MODULES, [1, 2, 3], [False, True], [False, True], [True, False])])
def test_forward_equals_module(M, L, batch_first, with_h0, bias):
    torch.manual_seed(L)
    kw = {"nonlinearity": "relu"} if M is nn.RNN and L == 2 else {}
    m = M(3, 5, num_layers=L, batch_first=batch_first, bias=bias, **kw).double()
    T, B = 6, 4
    x = torch.randn(B, T, 3, dtype=D) if batch_first else torch.randn(T, B, 3, dtype=D)
    hx = initial(M, L, B, 5) if with_h0 else None
    want = flat(m(x, hx))
    for fused in (True, False):
        got = flat(Omega(m, fused=fused)(x, hx))
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.shape == b.shape
            assert torch.allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("M", MODULES)
@pytest.mark.parametrize("with_state", [False, True])
def test_cell_forward_equals_its_loop(M, with_state):
    torch.manual_seed(0)
    cell = CELLS[M](3, 5).double()
    x = torch.randn(7, 4, 3, dtype=D)
    state = None
    if with_state:
        h = torch.randn(4, 5, dtype=D)
        state = (h, torch.randn(4, 5, dtype=D)) if M is nn.LSTM else h
    s, outs = state, []
    for t in range(7):
        s = cell(x[t], s)
        outs.append(s[0] if isinstance(s, tuple) else s)
    out, final = Omega(cell)(x, state)
    assert torch.allclose(out, torch.stack(outs), rtol=0, atol=1e-12)
    for a, b in zip(final if isinstance(final, tuple) else (final,), s if isinstance(s, tuple) else (s,)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def lstm_user_cell(cell):
    def f(u, state):
        h, c = state
        i, fg, g, o = (u @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh).chunk(4, -1)
        c = torch.sigmoid(fg) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    return f


@pytest.mark.parametrize("M", MODULES)
@pytest.mark.parametrize("form", ["squared", "plain"])
def test_cells_and_user_cells_give_the_modules_omega(M, form):
    """A cell, and a user cell computing the same map, give the one-layer module's Ω and
    gradients (the module's are checked against brute force in test_lstm_gru.py)."""
    torch.manual_seed(1)
    m = M(3, 5).double()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)
    cell = CELLS[M](3, 5).double()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(m, name + "_l0"))
    x = torch.randn(8, 3, 3, dtype=D)
    W = torch.randn(5, 2, dtype=D)
    lstm = M is nn.LSTM
    zeros = torch.zeros(3, 5, dtype=D)
    results = []
    if lstm:
        user = Omega(lstm_user_cell(cell), output=0)
        user_state = (zeros, zeros)
    else:
        user = Omega(lambda u, h: cell(u, h))
        user_state = zeros
    for w, state, params in ((Omega(m), None, [m.weight_hh_l0, m.weight_ih_l0, m.bias_hh_l0]),
                             (Omega(cell), None, [cell.weight_hh, cell.weight_ih, cell.bias_hh]),
                             (user, user_state, [cell.weight_hh, cell.weight_ih, cell.bias_hh])):
        out, final = w(x, state)
        h_last = final[0] if isinstance(final, tuple) else final
        if w.family == "module":
            h_last = h_last[0]
        loss = torch.log_softmax(out @ W, -1)[..., 0].mean() + (h_last ** 2).sum()
        om = w.penalty(loss, form=form)
        grads = torch.autograd.grad(loss + 0.5 * om, params)
        results.append((float(om.detach()), grads))
    for om, grads in results[1:]:
        assert om == pytest.approx(results[0][0], rel=1e-11)
        for a, b in zip(grads, results[0][1]):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-13)


def test_penalty_function_and_method_agree_and_report_per_layer():
    torch.manual_seed(2)
    m = nn.LSTM(3, 4, num_layers=3).double()
    w = Omega(m)
    out, _ = w(torch.randn(5, 2, 3, dtype=D))
    loss = out.square().sum()
    a = w.penalty(loss, form="plain")
    b = penalty(w, loss, form="plain")
    assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-14)
    assert w.last.per_layer.shape == (3,)
    assert float(w.last.per_layer.sum()) == pytest.approx(float(a.detach()), rel=1e-12)
    assert torch.all((w.last.fraction > 0) & (w.last.fraction <= 1))


def test_pairs_without_error_are_left_out():
    """Pairs whose δ_{k+1} is zero do not enter: a loss reading one sequence of B leaves
    a fraction 1/B, and a loss with zero gradient everywhere gives Ω = 0."""
    torch.manual_seed(3)
    m = nn.GRU(2, 3).double()
    w = Omega(m)
    out, _ = w(torch.randn(4, 5, 2, dtype=D))
    om = w.penalty(out[:, 0].square().sum())
    assert float(w.last.fraction[0]) == pytest.approx(1 / 5)
    assert float(om.detach()) > 0
    om = w.penalty((out * 0).sum())
    assert float(om.detach()) == 0.0
    assert float(w.last.fraction[0]) == 0.0


# -- bad input ------------------------------------------------------------------------------

def test_bidirectional_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="bidirectional"):
        Omega(nn.LSTM(3, 4, bidirectional=True))


def test_unknown_objects_are_refused():
    with pytest.raises(ValueError, match="Omega wraps"):
        Omega(nn.Linear(3, 4).weight)
    with pytest.raises(ValueError, match="proj_size"):
        Omega(nn.LSTM(3, 4, proj_size=2))


def test_penalty_before_forward():
    w = Omega(nn.GRU(3, 4))
    with pytest.raises(ValueError, match="before penalty"):
        w.penalty(torch.tensor(1.0, requires_grad=True))


def test_loss_not_depending_on_outputs():
    m = nn.RNN(3, 4)
    w = Omega(m)
    w(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="does not depend"):
        w.penalty(m.weight_hh_l0.sum())
    with pytest.raises(ValueError, match="does not depend"):
        w.penalty(torch.tensor(2.0))


def test_unknown_form_and_semantics():
    w = Omega(nn.RNN(3, 4))
    out, _ = w(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="unknown form"):
        w.penalty(out.sum(), form="cubed")
    with pytest.raises(ValueError, match="unknown semantics"):
        w.penalty(out.sum(), semantics="partial")


@pytest.mark.parametrize("module", [nn.LSTM(3, 4), nn.GRUCell(3, 4)])
def test_reference_semantics_needs_an_elman_map(module):
    w = Omega(module)
    out, _ = w(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="Elman-type"):
        w.penalty(out.sum(), semantics="reference")


def test_user_cell_without_recurrent_weight_has_no_reference_semantics():
    W = torch.randn(4, 4, requires_grad=True)
    w = Omega(lambda u, h: torch.tanh(h @ W.T + u.sum(-1, keepdim=True)))
    out, _ = w(torch.randn(5, 2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="Elman-type"):
        w.penalty(out.sum(), semantics="reference")
    assert float(w.penalty(out.sum()).detach()) >= 0


def test_user_cell_state_mismatch():
    W = torch.randn(4, 4)
    grow = Omega(lambda u, h: torch.cat([h, h], -1))
    with pytest.raises(ValueError, match="form it takes"):
        grow(torch.randn(3, 2, 1), torch.zeros(2, 4))
    to_tuple = Omega(lambda u, h: (h @ W, h))
    with pytest.raises(ValueError, match="form it takes"):
        to_tuple(torch.randn(3, 2, 1), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="initial state"):
        Omega(lambda u, h: h)(torch.randn(3, 2, 1))
    with pytest.raises(ValueError, match="batch"):
        Omega(lambda u, h: h)(torch.randn(3, 2, 1), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="output=2"):
        Omega(lambda u, s: s, output=2)(torch.randn(3, 2, 1), (torch.zeros(2, 4), torch.zeros(2, 4)))


def test_module_state_shape_and_dropout():
    w = Omega(nn.LSTM(3, 4, num_layers=2))
    with pytest.raises(ValueError, match="initial state must have shape"):
        w(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"tuple \(h0, c0\)"):
        w(torch.randn(5, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="3-D"):
        w(torch.randn(5, 3))
    drop = Omega(nn.GRU(3, 4, num_layers=2, dropout=0.5))
    with pytest.raises(ValueError, match="dropout"):
        drop(torch.randn(5, 2, 3))
    drop.eval()
    drop(torch.randn(5, 2, 3))


def test_recurrent_weight_needs_a_unit():
    with pytest.raises(ValueError, match="unit"):
        Omega(lambda u, h: h, recurrent_weight=torch.eye(3))
    with pytest.raises(ValueError, match="square"):
        Omega(lambda u, h: h, recurrent_weight=torch.ones(3, 2), unit="tanh")
