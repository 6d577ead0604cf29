"""Sequence tasks and their registry.

The registered tasks are the pathological synthetic problems of Pascanu,
Mikolov & Bengio (2013), section 4.1; see :mod:`bptt.tasks.synthetic`.

Example
-------
>>> import bptt.tasks as tasks
>>> task = tasks.get("temporal_order", seed=0)
>>> x, y = task.sample(batch_size=20, length=100)
>>> tuple(x.shape), tuple(y.shape)
((100, 20, 6), (20,))
"""

from __future__ import annotations

import inspect
from typing import Any

from .base import OUTPUT_KINDS, Task
from .synthetic import (
    Adding,
    Memorization,
    Memorization5Bit,
    Multiplication,
    Permutation,
    TemporalOrder,
    TemporalOrder3Bit,
)

__all__ = [
    "OUTPUT_KINDS",
    "REGISTRY",
    "Task",
    "TemporalOrder",
    "TemporalOrder3Bit",
    "Adding",
    "Multiplication",
    "Permutation",
    "Memorization",
    "Memorization5Bit",
    "get",
    "names",
]

REGISTRY: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        TemporalOrder,
        TemporalOrder3Bit,
        Adding,
        Multiplication,
        Permutation,
        Memorization,
        Memorization5Bit,
    )
}


def names() -> list[str]:
    """Sorted names of the registered tasks."""
    return sorted(REGISTRY)


def _options(cls: type[Task]) -> list[str]:
    """Keyword arguments accepted by ``cls`` besides ``seed``."""
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "seed")]


def get(name: str, seed: int = 0, **kwargs: Any) -> Task:
    """Build the task registered under ``name``.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    seed : int
        Seed of the task's random generator.
    **kwargs
        Passed to the task's constructor.

    Raises
    ------
    ValueError
        On an unknown name, on keyword arguments the task does not accept,
        or on invalid argument values.
    """
    try:
        cls = REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown task {name!r}; valid names: {', '.join(names())}"
        ) from None
    options = _options(cls)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        accepted = ", ".join(options) if options else "none"
        raise ValueError(
            f"task {name!r} got unexpected argument(s) {', '.join(unknown)}; "
            f"accepted arguments besides seed: {accepted}"
        )
    try:
        return cls(seed=seed, **kwargs)
    except TypeError as err:
        raise ValueError(f"invalid arguments for task {name!r}: {err}") from err
