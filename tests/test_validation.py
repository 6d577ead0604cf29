"""Declarative checks: each constraint holds exactly where it should, and messages name
the field, what it must be and what it got."""

import math

import numpy as np
import pytest

from bptt.validation import NONE, Check, Interval, Options, PerMember, check_params


@pytest.mark.parametrize("c, good, bad", [
    (Interval(0, None, closed="neither"), [1e-9, 3, np.float64(2.0)], [0, -1, math.nan, math.inf, "1", True]),
    (Interval(0, 1, closed="left"), [0, 0.5], [1, -1e-9, math.nan]),
    (Interval(1, None, integer=True), [1, 7], [0, 1.5, 2.0, True]),
    (Interval(), [-1e300, 0.0], [math.nan, -math.inf]),
    (Options("norm", "elementwise"), ["norm"], ["Norm", None, 1]),
    (Options([1, 2]), [1, 2], [1.5, "1", True]),
    (NONE, [None], [0, "None"]),
    (PerMember(Interval(0, None)), [0.0, [0.0, 1.0], (2,)], [[], [1.0, math.nan], -1]),
    (Check(lambda v: v % 2 == 0, "even"), [2, 4], [3, "x"]),
])
def test_constraints_hold_where_they_should(c, good, bad):
    assert all(c.holds(v) for v in good), [v for v in good if not c.holds(v)]
    assert not any(c.holds(v) for v in bad), [v for v in bad if c.holds(v)]


def test_the_message_names_the_field_the_rule_and_the_bad_entry():
    constraints = {"lr": [PerMember(Interval(0, None, closed="neither"))], "unit": [NONE, Options("tanh")]}
    check_params({"lr": [0.1, 0.2], "unit": None}, constraints)
    with pytest.raises(ValueError, match=r"learning rate must be a finite number > 0, or a list .* got nan"):
        check_params({"lr": [0.1, math.nan], "unit": None}, constraints, {"lr": "learning rate"})
    with pytest.raises(ValueError, match=r"unit must be None or one of 'tanh', got 'relu'"):
        check_params({"lr": 1.0, "unit": "relu"}, constraints)


def test_checking_changes_nothing():
    values = {"lr": [0.1, 0.2], "methods": ["a", "b"]}
    check_params(values, {"lr": [PerMember(Interval(0, None))], "methods": [PerMember(Options("a", "b"))]})
    assert values == {"lr": [0.1, 0.2], "methods": ["a", "b"]} and isinstance(values["methods"], list)
