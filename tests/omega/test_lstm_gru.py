"""Ω under "full" semantics against a brute-force float64 computation over the state map.

The brute force builds each layer's step map from PyTorch's documented equations,
unrolls it with a zero perturbation ε added to every state tensor after every step (so
that ∂E/∂ε_k is δ_k, each state tensor taken as an output of the step map), takes
v_k = δ_{k+1} J_k with J_k the explicit Jacobian of one step
(``torch.autograd.functional.jacobian``, one per step and sequence), Ω by the formula
written out here, and its gradient by autograd with δ and s_k detached.
"""

import pytest
import torch
from torch import nn

from bptt.omega import Omega



@pytest.fixture(autouse=True)
def float64():
    """Every tensor and module of these tests in float64 (restored afterwards)."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(saved)


def rnn_step(p, u, s, nonlinearity="tanh"):
    a = u @ p["weight_ih"].T + s[0] @ p["weight_hh"].T
    if "bias_ih" in p:
        a = a + p["bias_ih"] + p["bias_hh"]
    return (torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a),)


def lstm_step(p, u, s):
    h, c = s
    a = u @ p["weight_ih"].T + h @ p["weight_hh"].T
    if "bias_ih" in p:
        a = a + p["bias_ih"] + p["bias_hh"]
    H = h.shape[-1]
    i, f, g, o = (a[..., k * H:(k + 1) * H] for k in range(4))
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def gru_step(p, u, s):
    h = s[0]
    H = h.shape[-1]
    gi = u @ p["weight_ih"].T + (p["bias_ih"] if "bias_ih" in p else 0)
    gh = h @ p["weight_hh"].T + (p["bias_hh"] if "bias_hh" in p else 0)
    r = torch.sigmoid(gi[..., :H] + gh[..., :H])
    z = torch.sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
    n = torch.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
    return ((1 - z) * n + z * h,)


STEPS = {nn.RNN: rnn_step, nn.LSTM: lstm_step, nn.GRU: gru_step}


def layer_params(m, layer):
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if m.bias else [])
    return {n: getattr(m, f"{n}_l{layer}") for n in names}


def brute_force(m, x_tm, first, loss_fn, form, alpha):
    """Ω and the gradients of loss + α·Ω of every parameter, by brute force."""
    step = STEPS[type(m)]
    T, B = x_tm.shape[:2]
    L = m.num_layers
    P = len(first)
    eps = [[[torch.zeros(B, m.hidden_size, requires_grad=True) for _ in range(P)]
            for _ in range(T)] for _ in range(L)]
    inp = x_tm
    states, finals = [], []
    for layer in range(L):
        p = layer_params(m, layer)
        s = tuple(f[layer] for f in first)
        seq = [s]
        for t in range(T):
            s = tuple(a + e for a, e in zip(step(p, inp[t], s), eps[layer][t]))
            seq.append(s)
        states.append(seq)
        finals.append(s)
        inp = torch.stack([st[0] for st in seq[1:]])
    out = inp
    final = tuple(torch.stack([f[k] for f in finals]) for k in range(P))
    loss = loss_fn(out, final)
    flat_eps = [e for lay in eps for st in lay for e in st]
    deltas = torch.autograd.grad(loss, flat_eps, retain_graph=True, allow_unused=True)
    deltas = [torch.zeros(B, m.hidden_size) if d is None else d for d in deltas]
    idx = 0
    omega = 0.0
    for layer in range(L):
        p = layer_params(m, layer)
        u_layer = x_tm if layer == 0 else torch.stack([st[0] for st in states[layer - 1][1:]]).detach()
        terms, count = [], 0
        for k in range(T):
            d = torch.cat(deltas[idx + k * P: idx + (k + 1) * P], -1).detach()      # δ_{k+1} [B, S]
            for b in range(B):
                s_k = torch.cat([q[b] for q in states[layer][k]]).detach()
                u = u_layer[k, b].detach()
                H = m.hidden_size

                def f(sflat):
                    parts = tuple(sflat[j * H:(j + 1) * H] for j in range(P))
                    return torch.cat(step(p, u, parts))

                J = torch.autograd.functional.jacobian(f, s_k, create_graph=True)   # [S, S]
                v = d[b] @ J
                dn = (d[b] * d[b]).sum()
                if dn < 1e-20:
                    continue
                if form == "squared":
                    term = ((v * v).sum() / dn - 1) ** 2
                else:
                    term = (torch.sqrt((v * v).sum() / dn) - 1) ** 2
                terms.append(term)
                count += 1
        idx += T * P
        omega = omega + torch.stack(terms).sum() / count
    params = list(m.parameters())
    grads = torch.autograd.grad(loss + alpha * omega, params)
    return float(omega.detach()), [g.detach() for g in grads]


def make(M, L, bias=True, batch_first=False, seed=0, H=4, I=3):
    torch.manual_seed(seed)
    m = M(I, H, num_layers=L, bias=bias, batch_first=batch_first)
    with torch.no_grad():
        for q in m.parameters():
            q.mul_(2.5)            # weights large enough that every term matters
    return m


def losses(kind, M):
    g = torch.Generator().manual_seed(3)
    W = torch.randn(4, 2, generator=g)

    def per_step(out, final):
        return torch.log_softmax(out @ W, -1)[..., 0].mean()

    def last_and_final(out, final):
        # reads the last output, and the final state of every layer (c too for an LSTM)
        extra = sum((f ** 2).sum() for f in final) * 0.1
        return ((out[-1] @ W) ** 2).sum() + extra

    return per_step if kind == "per_step" else last_and_final


@pytest.mark.parametrize("M", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("form", ["squared", "plain"])
@pytest.mark.parametrize("loss_kind", ["per_step", "last_and_final"])
def test_full_semantics_against_brute_force(M, L, form, loss_kind):
    T, B = 5, 3
    m = make(M, L)
    x = torch.randn(T, B, 3, generator=torch.Generator().manual_seed(1))
    P = 2 if M is nn.LSTM else 1
    first = tuple(torch.randn(L, B, 4, generator=torch.Generator().manual_seed(7 + j)) * 0.5 for j in range(P))
    loss_fn = losses(loss_kind, M)
    alpha = 0.7
    om_ref, g_ref = brute_force(m, x, first, loss_fn, form, alpha)
    for fused in (True, False):
        w = Omega(m, fused=fused)
        out, final = w(x, first if P == 2 else first[0])
        final = final if P == 2 else (final,)
        loss = loss_fn(out, final)
        om = w.penalty(loss, form=form, semantics="full")
        assert abs(float(om.detach()) - om_ref) <= 1e-10 * max(1.0, abs(om_ref))
        grads = torch.autograd.grad(loss + alpha * om, list(m.parameters()))
        for a, b in zip(grads, g_ref):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), (a - b).abs().max()


@pytest.mark.parametrize("M", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("T", [1, 4])
def test_batch_first_no_bias_and_one_step(M, batch_first, T):
    B = 2
    m = make(M, 2, bias=False, batch_first=batch_first, seed=5)
    x_tm = torch.randn(T, B, 3, generator=torch.Generator().manual_seed(2))
    loss_fn = losses("per_step", M)
    P = 2 if M is nn.LSTM else 1
    first = tuple(torch.zeros(2, B, 4) for _ in range(P))
    om_ref, g_ref = brute_force(m, x_tm, first, loss_fn, "squared", 1.3)
    w = Omega(m)
    out, _ = w(x_tm.transpose(0, 1) if batch_first else x_tm)
    loss = loss_fn(out.transpose(0, 1) if batch_first else out, None)
    om = w.penalty(loss)
    assert abs(float(om.detach()) - om_ref) <= 1e-10 * max(1.0, om_ref)
    grads = torch.autograd.grad(loss + 1.3 * om, list(m.parameters()))
    for a, b in zip(grads, g_ref):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("M", [nn.LSTM, nn.GRU, nn.RNN])
def test_error_signals_against_autograd(M):
    """The hand-derived recursions give ∂E/∂s_k of every layer and step."""
    T, B, L = 6, 3, 3
    m = make(M, L, seed=9)
    x = torch.randn(T, B, 3, generator=torch.Generator().manual_seed(4))
    P = 2 if M is nn.LSTM else 1
    loss_fn = losses("last_and_final", M)
    w_fused, w_steps = Omega(m), Omega(m, fused=False)
    got = []
    for w in (w_fused, w_steps):
        out, final = w(x)
        got.append(w.error_signals(loss_fn(out, final if P == 2 else (final,))))
    # autograd: perturbations on every state tensor
    step = STEPS[M]
    eps = [[[torch.zeros(B, 4, requires_grad=True) for _ in range(P)] for _ in range(T)] for _ in range(L)]
    inp, finals = x, []
    for layer in range(L):
        s = tuple(torch.zeros(B, 4) for _ in range(P))
        seq = []
        for t in range(T):
            s = tuple(a + e for a, e in zip(step(layer_params(m, layer), inp[t], s), eps[layer][t]))
            seq.append(s[0])
        finals.append(s)
        inp = torch.stack(seq)
    loss = loss_fn(inp, tuple(torch.stack([f[k] for f in finals]) for k in range(P)))
    for layer in range(L):
        for part in range(P):
            want = torch.stack(torch.autograd.grad(loss, [eps[layer][t][part] for t in range(T)],
                                                   retain_graph=True))
            for g in got:
                assert torch.allclose(g[layer][part], want, rtol=1e-11, atol=1e-13)
