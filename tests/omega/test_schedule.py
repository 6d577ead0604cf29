"""Schedules of Ω's weight α (§4): constant, and α₀/t."""

import math

import pytest

from bptt.omega import ConstantAlpha, InverseTimeAlpha, alpha_schedule


def test_constant():
    s = alpha_schedule("constant", 2.0)
    assert isinstance(s, ConstantAlpha)
    assert [s(t) for t in (1, 2, 10, 10**6)] == [2.0] * 4


def test_inverse_time():
    s = alpha_schedule("inverse", 0.5)
    assert isinstance(s, InverseTimeAlpha)
    assert [s(t) for t in (1, 2, 4, 1000)] == [0.5, 0.25, 0.125, 0.0005]
    assert s(0) == 0.5                            # before the first update, α₀


def test_zero_alpha_is_allowed():
    assert alpha_schedule("inverse", 0.0)(3) == 0.0


@pytest.mark.parametrize("alpha", [-1.0, -1e-12, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("kind", ["constant", "inverse"])
def test_bad_alpha(kind, alpha):
    with pytest.raises(ValueError, match="alpha must be finite and >= 0"):
        alpha_schedule(kind, alpha)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="'linear'.*constant.*inverse"):
        alpha_schedule("linear", 1.0)
