"""Ω's terms (eq. 9 and the reference code's squared form) on inputs small enough to
compute by hand, and its coefficient c_k against autograd in float64."""

import math

import pytest
import torch

from bptt.omega import OMEGA_BOUND, check_omega, omega_terms

F64 = torch.float64


def tiny():
    """[T=2, E=2, B=2]. Member 0: ratios ‖v‖²/‖g‖² of 4, 1 and 9/4, and one pair whose
    ‖g‖² (1e-21) is below the bound; member 1: every pair below the bound."""
    v = torch.tensor([[[4.0, 1.0], [1.0, 1.0]],
                      [[9.0, 0.0], [1.0, 1.0]]], dtype=F64)
    g = torch.tensor([[[1.0, 1.0], [1e-21, 1e-21]],
                      [[4.0, 1e-21], [0.0, 1e-21]]], dtype=F64)
    return v, g


def test_squared_by_hand():
    v, g = tiny()
    out = omega_terms(v, g, "squared")
    # (4 − 1)², (1 − 1)², (9/4 − 1)² over the three pairs that entered
    assert out.omega[0].item() == pytest.approx((9.0 + 0.0 + 1.5625) / 3, rel=1e-15)
    assert out.omega[1].item() == 0.0
    assert out.fraction.tolist() == [0.75, 0.0]
    # c_k = 4 (r − 1) / ‖g‖² / (pairs that entered)
    expected = torch.tensor([[[4 * 3 / 1 / 3, 0.0], [0.0, 0.0]],
                             [[4 * 1.25 / 4 / 3, 0.0], [0.0, 0.0]]], dtype=F64)
    torch.testing.assert_close(out.coef, expected, rtol=1e-15, atol=0)


def test_plain_by_hand():
    v, g = tiny()
    out = omega_terms(v, g, "plain")
    # (2 − 1)², (1 − 1)², (3/2 − 1)²
    assert out.omega[0].item() == pytest.approx((1.0 + 0.0 + 0.25) / 3, rel=1e-15)
    assert out.omega[1].item() == 0.0
    assert out.fraction.tolist() == [0.75, 0.0]
    # c_k = 2 (1 − 1/√r) / ‖g‖² / (pairs that entered)
    expected = torch.tensor([[[2 * 0.5 / 1 / 3, 0.0], [0.0, 0.0]],
                             [[2 * (1 - 2 / 3) / 4 / 3, 0.0], [0.0, 0.0]]], dtype=F64)
    torch.testing.assert_close(out.coef, expected, rtol=1e-15, atol=0)


def test_plain_has_no_direction_at_v_zero():
    out = omega_terms(torch.zeros(1, 1, 1, dtype=F64), torch.ones(1, 1, 1, dtype=F64), "plain")
    assert out.omega.item() == 1.0 and out.coef.item() == 0.0


def test_the_bound_excludes_pairs_below_it_only():
    v = torch.full((3, 1, 1), 4.0, dtype=F64)
    g = torch.tensor([OMEGA_BOUND, OMEGA_BOUND * 0.99, 1.0], dtype=F64).reshape(3, 1, 1)
    out = omega_terms(v * g, g, "squared")        # ratio 4 wherever a pair enters
    assert out.fraction.item() == pytest.approx(2 / 3)
    assert out.omega.item() == pytest.approx(9.0)
    assert out.coef[1].item() == 0.0 and out.coef[0].item() != 0.0
    # a larger bound leaves out the pair at OMEGA_BOUND too
    assert omega_terms(v * g, g, "squared", bound=1e-10).fraction.item() == pytest.approx(1 / 3)


def test_fraction_over_the_given_number_of_pairs():
    v, g = tiny()
    out = omega_terms(v, g, "squared", n_pairs=torch.tensor([3.0, 2.0], dtype=F64))
    assert out.fraction.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("variant", ["squared", "plain"])
def test_coef_is_the_gradient_with_respect_to_v(variant):
    """∂Ω/∂v_k = c_k v_k, with Ω the mean of Ω_k over the pairs that entered."""
    gen = torch.Generator().manual_seed(0)
    T, E, B, H = 4, 3, 5, 6
    v = torch.randn(T, E, B, H, generator=gen, dtype=F64, requires_grad=True)
    g_norm2 = torch.rand(T, E, B, generator=gen, dtype=F64) * 3 + 0.1
    g_norm2[0, 0, :2] = 1e-30                     # left out
    g_norm2[:, 2] = 1e-30                         # a member with no pair at all
    v_norm2 = (v * v).sum(-1)
    entered = g_norm2 >= OMEGA_BOUND
    r = v_norm2 / g_norm2
    dev = (r - 1) if variant == "squared" else (r.sqrt() - 1)
    count = entered.sum(dim=(0, 2)).clamp_min(1)
    omega = torch.where(entered, dev * dev, torch.zeros_like(dev)).sum(dim=(0, 2)) / count
    (grad,) = torch.autograd.grad(omega.sum(), v)
    out = omega_terms(v_norm2.detach(), g_norm2, variant)
    torch.testing.assert_close(out.omega, omega.detach(), rtol=1e-13, atol=0)
    torch.testing.assert_close(out.coef[..., None] * v.detach(), grad, rtol=1e-12, atol=1e-300)
    assert out.fraction[2].item() == 0.0 and math.isclose(out.fraction[0].item(), 1 - 2 / (T * B))


def test_unknown_variant():
    v, g = tiny()
    with pytest.raises(ValueError, match="cubed"):
        omega_terms(v, g, "cubed")
    with pytest.raises(ValueError, match="squared, plain"):
        check_omega("cubed")
    assert check_omega(None) is None and check_omega("plain") == "plain"
