"""The linear one-unit case: x_t = w^t x0 and its derivatives in w."""

import numpy as np
import pytest

from bptt.dynamics import (
    linear_derivatives,
    linear_iterate,
)


@pytest.mark.parametrize("w,x0,t", [(0.9, 1.3, 20), (1.1, -0.7, 15), (-1.05, 2.0, 9),
                                    (0.5, 1.0, 2), (2.0, 1.0, 1), (1.7, 0.4, 0)])
def test_linear_derivatives_finite_differences(w, x0, t):
    d = linear_derivatives(w, x0, t)
    assert float(d.x) == pytest.approx(float(linear_iterate(w, x0, t)), rel=1e-13, abs=1e-15)
    h = 1e-5
    fp = float(linear_iterate(w + h, x0, t))
    fm = float(linear_iterate(w - h, x0, t))
    f0 = float(linear_iterate(w, x0, t))
    assert float(d.dx_dw) == pytest.approx((fp - fm) / (2 * h), rel=1e-7, abs=1e-8)
    assert float(d.d2x_dw2) == pytest.approx((fp - 2 * f0 + fm) / h ** 2, rel=1e-4, abs=1e-4)
    assert float(d.dx_dw) == pytest.approx(t * w ** (t - 1) * x0 if t else 0.0, rel=1e-14)


def test_linear_derivatives_match_autograd():
    torch = pytest.importorskip("torch")
    for w0, x0, t in [(0.95, 1.2, 30), (1.05, -0.5, 25), (-0.8, 3.0, 7)]:
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        x = torch.tensor(x0, dtype=torch.float64)
        for _ in range(t):
            x = w * x
        (g1,) = torch.autograd.grad(x, w, create_graph=True)
        (g2,) = torch.autograd.grad(g1, w)
        d = linear_derivatives(w0, x0, t)
        assert float(d.x) == pytest.approx(x.item(), rel=1e-13)
        assert float(d.dx_dw) == pytest.approx(g1.item(), rel=1e-12)
        assert float(d.d2x_dw2) == pytest.approx(g2.item(), rel=1e-12)


def test_linear_derivatives_vectorised_and_ratio():
    w = np.array([0.5, 0.9, 1.1, 2.0])
    d = linear_derivatives(w, 1.0, 10)
    assert d.dx_dw.shape == (4,)
    # Curvature over gradient is (t - 1) / w.
    assert np.allclose(d.d2x_dw2 / d.dx_dw, 9.0 / w, rtol=1e-13)
    z = linear_derivatives(0.0, 1.0, 1)
    assert float(z.dx_dw) == 1.0 and float(z.d2x_dw2) == 0.0


@pytest.mark.parametrize("call", [
    lambda: linear_derivatives(1.0, 1.0, -1),
    lambda: linear_derivatives(1.0, 1.0, 2.5),
])
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
