"""The one-unit map and its iteration."""

import math

import pytest

from bptt.dynamics import (
    iterate,
)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_iterate_matches_loop():
    x = iterate(5.0, -2.5, 0.3, 25)
    y = 0.3
    for _ in range(25):
        y = 5.0 * _sigmoid(y) - 2.5
    assert float(x) == pytest.approx(y, abs=1e-13)
