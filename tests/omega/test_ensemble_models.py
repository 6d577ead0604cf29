"""Ω in the ensemble models differentiated by autograd (LSTM, GRU, leaky, skip):
loss, Ω, its fraction and every gradient of loss + α·Ω against a brute-force float64
computation from each step's full Jacobian; the echo-state network refuses Ω."""

import pytest
import torch

from bptt.models import MODELS
from bptt.models.base import mean_loss

AUTOGRAD = ("lstm", "gru", "leaky", "skip")
OPTIONS = {"skip": {"delay": 2}, "leaky": {"init": "basic_tanh"}, "gru": {"reset_after": True}}


def build(name, output="last_softmax", ensemble=2, **kw):
    kw = {"dtype": torch.float64, **OPTIONS.get(name, {}), **kw}
    m = MODELS[name](3, 4, 3, output=output, ensemble=ensemble, **kw)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():                        # away from the initialization's symmetries
        for p in m.params.values():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.4)
    return m


def batch(output, T=6, B=3, E=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    lead = (T,) if E is None else (T, E)
    x = torch.randn(*lead, B, 3, generator=g, dtype=torch.float64)
    if output == "last_softmax":
        y = torch.randint(0, 3, (B,), generator=g)
    elif output == "softmax":
        y = torch.randint(0, 3, (T, B), generator=g)
    else:                                        # last_linear
        y = torch.randn(B, 3, generator=g, dtype=torch.float64)
    return x, y


def brute_force(m, x, y, alpha, form, h0=None, mask=None):
    """Loss, Ω, fraction and grads of Σ_e loss_e + α_e Ω_e from explicit Jacobians.

    δ_T = ∂E/∂s_T through the readout, δ_k = (readout part) + δ_{k+1} J_{k+1}, with
    J_k = ∂s_k/∂s_{k−1} the full Jacobian of one step of the model's loop for each
    member and sequence; Ω_e averages (‖δ_{k+1}J_{k+1}‖^p/‖δ_{k+1}‖^p − 1)² (p = 2
    squared, 1 plain) over the pairs with ‖δ_{k+1}‖² ≥ 1e-20, J_{k+1} a function of
    the weights, δ and the states constant."""
    leaves = {k: p.detach().clone().requires_grad_(True) for k, p in m.params.items()}
    tensors = leaves | dict(m.named_buffers())
    frozen = {k: t.detach() for k, t in tensors.items()}
    T, E, H, S = x.shape[0], m.ensemble, m.n_hidden, m.state_size
    B = x.shape[-2]
    states = [torch.zeros(E, B, S, dtype=torch.float64) if h0 is None else h0]
    with torch.no_grad():
        for t in range(T):
            states.append(m._run(frozen, x[t:t + 1], states[-1], False)[1])
    free = [s.clone().requires_grad_(True) for s in states[1:]]
    h = torch.stack([s[..., :H] for s in free]) if m.per_step else free[-1][..., :H]
    direct = torch.autograd.grad(mean_loss(m._readout(frozen, h), y, m.output, mask).sum(), free,
                                 allow_unused=True)
    direct = [torch.zeros_like(s) if d is None else d for d, s in zip(direct, free)]

    def jacobian(k, params):                     # [E, B, S, S]: ∂s_k/∂s_{k−1} per member and sequence
        f = lambda s: m._run(params, x[k - 1:k], s, False)[1]             # noqa: E731
        full = torch.autograd.functional.jacobian(f, states[k - 1], create_graph=params is tensors)
        return torch.stack([torch.stack([full[e, b, :, e, b, :] for b in range(B)]) for e in range(E)])

    delta = [None] * (T + 1)
    delta[T] = direct[T - 1]
    for k in range(T - 1, 0, -1):
        delta[k] = direct[k - 1] + torch.einsum("ebi,ebij->ebj", delta[k + 1], jacobian(k + 1, frozen))
    omega, fraction = [], []
    a = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1).expand(E)
    n_pairs = T * B if mask is None else float(mask.sum())
    for e in range(E):
        terms, count = [], 0
        for k in range(T):
            J = jacobian(k + 1, tensors)[e]
            for b in range(B):
                d = delta[k + 1][e, b]
                dn = d.square().sum()
                if dn < 1e-20:
                    continue
                vn = (d @ J[b]).square().sum()
                r = vn / dn if form == "squared" else (vn / dn).sqrt()
                terms.append((r - 1) ** 2)
                count += 1
        omega.append(torch.stack(terms).mean() if terms else torch.zeros((), dtype=torch.float64))
        fraction.append(count / n_pairs)
    omega = torch.stack(omega)
    hs, _ = m._run(tensors, x, h0, m.per_step)
    loss = mean_loss(m._readout(tensors, hs), y, m.output, mask)
    grads = torch.autograd.grad(loss.sum() + (a * omega).sum(), list(leaves.values()), allow_unused=True)
    grads = {k: torch.zeros_like(p) if g is None else g for (k, p), g in zip(leaves.items(), grads)}
    return loss.detach(), omega.detach(), torch.tensor(fraction, dtype=torch.float64), grads


def check(m, x, y, alpha, form="squared", h0=None, mask=None):
    out = m.forward_backward(x, y, alpha=alpha, omega=form, h0=h0, mask=mask)
    loss, omega, fraction, grads = brute_force(m, x, y, alpha, form, h0=h0, mask=mask)
    assert torch.allclose(out.loss, loss, atol=1e-12, rtol=0)
    assert torch.allclose(out.omega, omega, atol=1e-12, rtol=0), (out.omega, omega)
    assert torch.allclose(out.omega_fraction, fraction, atol=1e-12, rtol=0)
    assert (out.omega > 0).all()
    for k, g in grads.items():
        assert torch.allclose(out.grads[k], g, atol=1e-10, rtol=0), (k, (out.grads[k] - g).abs().max())
    return out


@pytest.mark.parametrize("name", AUTOGRAD)
@pytest.mark.parametrize("form", ["squared", "plain"])
def test_gradient_of_loss_plus_alpha_omega_equals_brute_force(name, form):
    m = build(name)
    x, y = batch("last_softmax")
    out = check(m, x, y, torch.tensor([0.7, 3.0], dtype=torch.float64), form)
    plain = m.forward_backward(x, y, alpha=0.0)
    # Ω moves the gradient of every member it weighs, the recurrent weights included
    assert not torch.allclose(out.grads["W_rec"], plain.grads["W_rec"], atol=1e-6)
    assert torch.allclose(out.loss, plain.loss, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", AUTOGRAD)
def test_per_step_outputs_a_mask_an_initial_state_and_inputs_per_member(name):
    m = build(name, output="softmax")
    x, y = batch("softmax", E=2)
    mask = torch.ones(6, 3, dtype=torch.float64)
    mask[4:, 0] = 0
    h0 = 0.3 * torch.randn(2, 3, m.state_size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    if name == "lstm":                            # an LSTM's h lies in (−1, 1)
        h0[..., :4] = torch.tanh(h0[..., :4])
    out = check(m, x, y, 1.5, "squared", h0=h0, mask=mask)
    # the padded steps carry no error signal: the pairs that enter are the real ones
    assert torch.equal(out.omega_fraction, torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_a_member_with_alpha_zero_gets_the_hand_derived_gradient(name):
    m = build(name, output="last_linear")
    x, y = batch("last_linear")
    with_omega = m.forward_backward(x, y, alpha=torch.tensor([0.0, 2.0], dtype=torch.float64))
    without = m.forward_backward(x, y, alpha=0.0)           # the hand-derived pass
    assert without.omega.abs().sum() == 0 and with_omega.omega[0] > 0
    for k, g in without.grads.items():
        assert torch.allclose(with_omega.grads[k][0], g[0], atol=1e-12, rtol=0), k
    assert torch.allclose(with_omega.h_last, without.h_last, atol=1e-12, rtol=0)


def test_the_echo_state_network_refuses_omega():
    m = MODELS["esn"](3, 4, 3, ensemble=2, dtype=torch.float64)
    x, y = batch("last_softmax")
    with pytest.raises(ValueError, match="echo-state"):
        m.forward_backward(x, y, alpha=0.5, omega="squared")


def test_an_unknown_form_is_refused():
    m = build("lstm")
    x, y = batch("last_softmax")
    with pytest.raises(ValueError, match="unknown omega variant"):
        m.forward_backward(x, y, alpha=0.5, omega="cubed")
