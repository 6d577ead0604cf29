"""Declarative checks of configuration values, run once at the public boundary.

A configuration lists, per field, the constraints its value must meet (in the spirit of
scikit-learn's ``_parameter_constraints``); :func:`check_params` tests them all and
raises ``ValueError`` naming the field, what it must be, and the value it got. Checks
never change the values they look at.

Example::

    CONSTRAINTS = {"lr": [PerMember(Interval(0, None, closed="neither"))],
                   "clip": [Options("norm", "elementwise")]}
    check_params({"lr": 0.01, "clip": "norm"}, CONSTRAINTS, labels={"lr": "learning rate"})
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


class Constraint:
    """A property a value must have; ``describe()`` says which, for error messages."""

    def holds(self, value) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A finite real (or, with ``integer``, an int) between ``left`` and ``right``.

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``None`` for a
    bound means unbounded on that side. NaN and ±inf never hold.
    """

    left: float | None = None
    right: float | None = None
    closed: str = "both"
    integer: bool = False

    def holds(self, value) -> bool:
        if isinstance(value, bool):
            return False
        kind = numbers.Integral if self.integer else numbers.Real
        if not isinstance(value, kind) or not math.isfinite(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        what = "an integer" if self.integer else "a finite number"
        lo = "" if self.left is None else ("[" if self.closed in ("both", "left") else "(") + f"{self.left:g}"
        hi = "" if self.right is None else f"{self.right:g}" + ("]" if self.closed in ("both", "right") else ")")
        if lo and hi:
            return f"{what} in {lo}, {hi}"
        if lo:
            return f"{what} {'>=' if lo[0] == '[' else '>'} {self.left:g}"
        if hi:
            return f"{what} {'<=' if hi[-1] == ']' else '<'} {self.right:g}"
        return what


class Options(Constraint):
    """One of the given values (``Options("a", "b")``, or ``Options(sequence)``)."""

    def __init__(self, *options) -> None:
        if len(options) == 1 and isinstance(options[0], (list, tuple)):
            options = tuple(options[0])
        self.options = options

    def holds(self, value) -> bool:
        if not isinstance(value, (str, int, float, bool, type(None))):
            return False
        return any(value == o and type(value) is type(o) or (isinstance(o, str) and value == o)
                   for o in self.options)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(str(o)) if isinstance(o, str) else repr(o) for o in self.options)


@dataclass(frozen=True)
class Check(Constraint):
    """A custom test ``predicate(value) -> bool`` with its description."""

    predicate: Callable[[object], bool]
    description: str

    def holds(self, value) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.description


@dataclass(frozen=True)
class PerMember(Constraint):
    """A value meeting ``constraint``, or a non-empty list or tuple of such values (one per
    ensemble member; the list's length is checked against the members elsewhere)."""

    constraint: Constraint

    def holds(self, value) -> bool:
        if isinstance(value, (list, tuple)):
            return len(value) > 0 and all(self.constraint.holds(v) for v in value)
        return self.constraint.holds(value)

    def describe(self) -> str:
        return f"{self.constraint.describe()}, or a list of such values (one per member)"

    def bad(self, value):
        """The first entry that fails, for the error message."""
        if isinstance(value, (list, tuple)):
            return next((v for v in value if not self.constraint.holds(v)), value)
        return value


NONE = Options(None)


def check_params(values: Mapping[str, object], constraints: Mapping[str, Iterable[Constraint]],
                 labels: Mapping[str, str] | None = None) -> None:
    """Raise ``ValueError`` for the first value in ``values`` that meets none of its constraints.

    Args:
        values: field name → value.
        constraints: field name → the constraints of which the value must meet one.
        labels: how to name a field in messages (default: its name).
    """
    labels = labels or {}
    for name, options in constraints.items():
        options = list(options)
        value = values[name]
        if any(c.holds(value) for c in options):
            continue
        shown = value
        for c in options:
            if isinstance(c, PerMember) and isinstance(value, (list, tuple)):
                shown = c.bad(value)
        what = " or ".join("None" if c is NONE else c.describe() for c in options)
        raise ValueError(f"{labels.get(name, name)} must be {what}, got {shown!r}")
