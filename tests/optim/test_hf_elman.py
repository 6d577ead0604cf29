"""The Elman fast path of the Gauss–Newton products against the general torch.func path."""

import pytest
import torch

from bptt.models import ElmanRNN
from bptt.optim.curvature import GaussNewton, Layout, elman_function
from bptt.optim.elman_curvature import ElmanGaussNewton


@pytest.mark.parametrize("output", ["last_softmax", "softmax", "last_linear", "sigmoid"])
@pytest.mark.parametrize("unit", ["tanh", "sigmoid", "relu", "linear"])
@pytest.mark.parametrize("per_member_x", [False, True])
def test_fast_path_matches_general_path(output, unit, per_member_x):
    gen = torch.Generator().manual_seed(11)
    T, B, E, I, H, O = 7, 4, 3, 3, 5, 3
    model = ElmanRNN(I, H, O, ensemble=E, unit=unit, init="basic_tanh", output=output,
                     dtype=torch.float64, seed=2)
    x = torch.randn(T, E, B, I, dtype=torch.float64, generator=gen) if per_member_x else \
        torch.randn(T, B, I, dtype=torch.float64, generator=gen)
    params = {k: p.detach() for k, p in model.named_parameters()}
    general = GaussNewton(elman_function(unit, output), params, x, output, unit, structural=True)
    fast = ElmanGaussNewton(params, x, output, unit, structural=True)
    v = torch.randn(E, Layout(params).size, dtype=torch.float64, generator=gen)
    lam = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(fast.gv(v), general.gv(v), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.sv(v), general.sv(v), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.damped(v, lam, 0.2), general.damped(v, lam, 0.2), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("output", ["last_softmax", "softmax", "last_linear", "sigmoid"])
@pytest.mark.parametrize("per_member", [False, True])
def test_fast_preconditioner_matches_vmap(output, per_member):
    """Mean squared per-sequence gradients: the fast path against torch.func.vmap(grad)."""
    from bptt.optim import HessianFree

    gen = torch.Generator().manual_seed(5)
    T, B, E, I, H, O = 6, 9, 2, 3, 4, 3
    model = ElmanRNN(I, H, O, ensemble=E, unit="tanh", init="basic_tanh", output=output,
                     dtype=torch.float64, seed=4)
    lead = (T,) if output in ("softmax", "sigmoid") else ()
    mid = (E, B) if per_member else (B,)
    x = torch.randn(T, *mid, I, dtype=torch.float64, generator=gen)
    if output in ("last_softmax", "softmax"):
        y = torch.randint(0, O, lead + mid, generator=gen)
    else:
        y = torch.rand(*lead, *mid, O, dtype=torch.float64, generator=gen)
    opt = HessianFree(model)
    params = {k: p.detach() for k, p in model.named_parameters()}
    fast = opt._preconditioner(params, x, y)
    opt._elman = False
    general = opt._preconditioner(params, x, y)
    torch.testing.assert_close(fast, general, rtol=1e-10, atol=1e-13)
    small = ElmanGaussNewton(params, x, output, "tanh").squared_case_gradients(y, chunk=2)
    torch.testing.assert_close(small, general, rtol=1e-10, atol=1e-13)
