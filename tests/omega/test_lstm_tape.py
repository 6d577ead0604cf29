"""The LSTM layer's tape (gates and cells from its outputs) and error recursion against
``nn.LSTM`` and ``torch.autograd`` in float64."""

import pytest
import torch
from torch import nn

from bptt.omega.lstm_tape import signals, tanh, tape_from_states


def setup(seed=0, T=6, B=3, I=2, H=4):
    torch.manual_seed(seed)
    m = nn.LSTM(I, H).double()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)                        # saturating gates too
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(1, B, H, dtype=torch.float64) * 0.5
    c0 = torch.randn(1, B, H, dtype=torch.float64)
    return m, x, h0, c0


def unrolled(m, x, h0, c0):
    """The layer by PyTorch's cell, with each h_k and c_k a node of its own."""
    cell = nn.LSTMCell(m.input_size, m.hidden_size).double()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in m.state_dict().items()})
    h, c = h0[0], c0[0]
    hs, cs = [], []
    for t in range(x.shape[0]):
        h, c = cell(x[t], (h, c))
        h, c = h.view_as(h), c.view_as(c)
        hs.append(h)
        cs.append(c)
    return hs, cs


def test_tanh_is_tanh_to_rounding():
    z = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    assert torch.allclose(tanh(z), torch.tanh(z), atol=4e-16, rtol=0)


def test_gates_and_cells_from_the_outputs_equal_the_module():
    m, x, h0, c0 = setup()
    out, (h_T, c_T) = m(x, (h0, c0))
    h = torch.cat([h0, out.detach()])
    tape = tape_from_states(x, h, c0, m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
    assert torch.allclose(tape.c[-1], c_T[0].detach(), atol=1e-12, rtol=0)
    # h_k = o tanh(c_k) from the rebuilt gates and cells is the module's output
    assert torch.allclose(tape.act[:, :, 3] * tape.tc, out.detach(), atol=1e-12, rtol=0)
    _, cs = unrolled(m, x, h0, c0)
    assert torch.allclose(tape.c[1:], torch.stack(cs).detach(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("reads", ["last", "every step and the final state"])
def test_error_signals_equal_autograd(reads):
    m, x, h0, c0 = setup(seed=1)
    hs, cs = unrolled(m, x, h0, c0)
    g = torch.Generator().manual_seed(2)
    W = torch.randn(4, 3, generator=g, dtype=torch.float64)
    if reads == "last":
        loss = ((hs[-1] @ W) ** 2).sum()
    else:
        loss = sum(((h @ W) ** 2).sum() for h in hs) + (cs[-1] ** 3).sum() + (hs[-1] ** 2).sum()
    grads = [torch.zeros_like(v) if d is None else d
             for d, v in zip(torch.autograd.grad(loss, hs + cs, allow_unused=True), hs + cs)]
    T = len(hs)
    d_h = torch.stack(grads[:T])                          # total ∂E/∂h_k, ∂E/∂c_k
    d_c = torch.stack(grads[T:])
    readout = torch.stack([2 * (hh.detach() @ W) @ W.T for hh in hs])    # ∂E/∂h_k through the readout
    if reads == "last":
        direct = torch.zeros_like(readout)
        direct[-1] = readout[-1]
        final = (None, None)
    else:                                                 # the final state's terms come as ``final``
        direct = readout
        final = (2 * hs[-1].detach(), 3 * cs[-1].detach() ** 2)
    h = torch.cat([h0, torch.stack(hs).detach()])
    tape = tape_from_states(x, h, c0, m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
    sig = signals(tape, direct, final)
    assert torch.allclose(sig.dh, d_h, atol=1e-10, rtol=0)
    assert torch.allclose(sig.dc, d_c, atol=1e-10, rtol=0)
    # v^h_{k−1} = p_k W_hh, the part of ∂E/∂h_{k−1} through step k
    assert torch.allclose(sig.vh[1:], d_h[:-1] - direct[:-1], atol=1e-10, rtol=0)
    if reads == "last":                                   # v^h_0 = ∂E/∂h_0
        h0_leaf = h0.clone().requires_grad_(True)
        hs0, _ = unrolled(m, x, h0_leaf, c0)
        d_h0 = torch.autograd.grad(((hs0[-1] @ W) ** 2).sum(), h0_leaf)[0][0]
        assert torch.allclose(sig.vh[0], d_h0, atol=1e-10, rtol=0)


def test_omega_on_an_lstm_can_be_backpropagated_twice():
    """Ω's hand-derived gradient leaves what it saved intact (retain_graph works)."""
    from bptt.omega import Omega

    m, x, h0, c0 = setup(seed=3)
    model = Omega(m)
    out, _ = model(x, (h0, c0))
    loss = (out[-1] ** 2).sum()
    omega = model.penalty(loss)
    first = torch.autograd.grad(omega, list(m.parameters()), retain_graph=True)
    again = torch.autograd.grad(omega, list(m.parameters()))
    assert any(g.abs().sum() > 0 for g in first)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
