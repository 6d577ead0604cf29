"""Gauss–Newton products against the explicit matrices Jᵀ H_L J of tiny float64 networks."""

import pytest
import torch

from bptt.engine import reference
from bptt.engine.outputs import PER_STEP
from bptt.models import ElmanRNN
from bptt.optim.curvature import GaussNewton, Layout, elman_function, module_function

N_IN, N_HIDDEN, N_OUT, T, B, E = 3, 4, 3, 5, 3, 2


def batch(output: str, gen: torch.Generator):
    x = torch.randn(T, B, N_IN, dtype=torch.float64, generator=gen)
    if output == "last_softmax":
        y = torch.randint(0, N_OUT, (B,), generator=gen)
    elif output == "softmax":
        y = torch.randint(0, N_OUT, (T, B), generator=gen)
    elif output == "last_linear":
        y = torch.randn(B, N_OUT, dtype=torch.float64, generator=gen)
    else:
        y = torch.rand(T, B, N_OUT, dtype=torch.float64, generator=gen).round()
    return x, y


def explicit_matrices(model: ElmanRNN, x: torch.Tensor):
    """G and G_S of all members together, ``[E·P, E·P]``, from explicit Jacobians."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    layout = Layout(params)
    theta = layout.flat(params).reshape(-1)

    def outputs(flat):
        p = layout.tree(flat.reshape(E, -1))
        return torch.func.functional_call(model, p, (x,))

    def preactivations(flat):
        p = layout.tree(flat.reshape(E, -1))
        hs = reference.run_states(p, x, model.unit)
        return torch.stack([torch.bmm(hs[t], p["W_rec"]) + x[t] @ p["W_in"] + p["b"][:, None, :]
                            for t in range(T)])

    z = outputs(theta)
    Jz = torch.autograd.functional.jacobian(outputs, theta).reshape(-1, theta.numel())
    rows = z.reshape(-1, N_OUT)
    n = z.shape[0] * z.shape[2] if model.output in PER_STEP else z.shape[1]
    blocks = []
    for row in rows:
        if model.output in ("last_softmax", "softmax"):
            p = torch.softmax(row, -1)
            blocks.append(torch.diag(p) - torch.outer(p, p))
        elif model.output == "last_linear":
            blocks.append(2.0 * torch.eye(N_OUT, dtype=row.dtype))
        else:
            p = torch.sigmoid(row)
            blocks.append(torch.diag(p * (1 - p)))
    H_L = torch.block_diag(*blocks) / n
    G = Jz.T @ H_L @ Jz
    a = preactivations(theta)
    Ja = torch.autograd.functional.jacobian(preactivations, theta).reshape(-1, theta.numel())
    slope = {"tanh": 1 - torch.tanh(a) ** 2, "sigmoid": torch.sigmoid(a) * (1 - torch.sigmoid(a)),
             "relu": (a > 0).double(), "linear": torch.ones_like(a)}[model.unit]
    G_S = Ja.T @ torch.diag(slope.reshape(-1) / n) @ Ja
    return G, G_S, params


@pytest.mark.parametrize("output", ["last_softmax", "softmax", "last_linear", "sigmoid"])
@pytest.mark.parametrize("unit", ["tanh", "sigmoid", "relu", "linear"])
def test_products_match_explicit_gauss_newton(output, unit):
    gen = torch.Generator().manual_seed(hash((output, unit)) % 1000)
    model = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=E, unit=unit, init="basic_tanh", output=output,
                     dtype=torch.float64, seed=3)
    x, y = batch(output, gen)
    G, G_S, params = explicit_matrices(model, x)
    P = G.shape[0] // E
    v = torch.randn(E, P, dtype=torch.float64, generator=gen)
    gn = GaussNewton(elman_function(unit, output), params, x, output, unit, structural=True)
    torch.testing.assert_close(gn.gv(v).reshape(-1), G @ v.reshape(-1), rtol=0, atol=1e-10)
    torch.testing.assert_close(gn.sv(v).reshape(-1), G_S @ v.reshape(-1), rtol=0, atol=1e-10)
    lam, mu = torch.tensor([0.7, 2.5], dtype=torch.float64), 0.3
    lam_full = lam.repeat_interleave(P)
    damped = G @ v.reshape(-1) + lam_full * v.reshape(-1) + mu * lam_full * (G_S @ v.reshape(-1))
    torch.testing.assert_close(gn.damped(v, lam, mu).reshape(-1), damped, rtol=0, atol=1e-10)
    # without structural damping the damped product is G + λI
    plain = GaussNewton(elman_function(unit, output), params, x, output, unit, structural=False)
    torch.testing.assert_close(plain.damped(v, lam, mu).reshape(-1), G @ v.reshape(-1) + lam_full * v.reshape(-1),
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("output", ["last_softmax", "sigmoid"])
def test_generic_module_path_matches_explicit(output):
    """Any nn.Module of the call convention (here ElmanRNN through its plain forward)."""
    gen = torch.Generator().manual_seed(7)
    model = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=E, unit="tanh", output=output, dtype=torch.float64)
    x, y = batch(output, gen)
    G, _, params = explicit_matrices(model, x)
    v = torch.randn(E, G.shape[0] // E, dtype=torch.float64, generator=gen)
    gn = GaussNewton(module_function(model), params, x, output)
    torch.testing.assert_close(gn.gv(v).reshape(-1), G @ v.reshape(-1), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="hidden pre-activations"):
        GaussNewton(module_function(model), params, x, output, "tanh", structural=True)


def test_members_do_not_interact():
    """G is block-diagonal over the ensemble: a tangent on member 0 leaves member 1 at zero."""
    gen = torch.Generator().manual_seed(1)
    model = ElmanRNN(N_IN, N_HIDDEN, N_OUT, ensemble=E, output="last_softmax", dtype=torch.float64)
    x, _ = batch("last_softmax", gen)
    params = {k: p.detach() for k, p in model.named_parameters()}
    gn = GaussNewton(elman_function("tanh", "last_softmax"), params, x, "last_softmax", "tanh", structural=True)
    v = torch.randn(E, Layout(params).size, dtype=torch.float64, generator=gen)
    v[1] = 0
    out = gn.damped(v, torch.ones(E, dtype=torch.float64), 0.5)
    assert out[0].abs().max() > 0
    assert out[1].abs().max() == 0
