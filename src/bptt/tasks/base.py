"""Common interface for sequence tasks.

A task produces batches of input sequences and targets for a recurrent
network.  Inputs are time-major ``float32`` tensors of shape
``[T, B, n_in]``; the shape and type of the targets depend on
:attr:`Task.output`:

``"last_softmax"``
    one class per sequence, read at the last step: ``int64`` ``[B]``.
``"softmax"``
    one class per step: ``int64`` ``[T, B]``.
``"last_linear"``
    a real vector per sequence, read at the last step: ``float32``
    ``[B, n_out]``.
``"sigmoid"``
    independent binary outputs per step: ``float32`` ``[T, B, n_out]``.

Each task owns its own random generator,
``numpy.random.Generator(numpy.random.PCG64(seed))``, so two tasks built
with the same seed yield the same sequence of batches, and successive
calls to :meth:`Task.sample` yield fresh batches.
"""

from __future__ import annotations

import abc
import operator
from typing import Any, ClassVar

import numpy as np
import torch

OUTPUT_KINDS = ("last_softmax", "softmax", "last_linear", "sigmoid")


def _as_int(value: Any, what: str) -> int:
    """Return ``value`` as a Python int, rejecting bools and non-integers."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{what} must be an integer, got {type(value).__name__} {value!r}"
        ) from None


class Task(abc.ABC):
    """Base class of all tasks.

    Subclasses set the class attributes below, set ``n_in`` and ``n_out``
    in their constructor (after calling ``super().__init__(seed)``) and
    implement :meth:`sample`, starting it with :meth:`_check_sample_args`.

    Parameters
    ----------
    seed : int
        Seed of the task's own ``PCG64`` generator (non-negative).

    Attributes
    ----------
    name : str
        Registry name of the task.
    n_in, n_out : int
        Input and output sizes of a network solving the task.
    output : str
        How outputs are read; one of ``"last_softmax"``, ``"softmax"``,
        ``"last_linear"``, ``"sigmoid"``.
    error_measure : str
        Short description of what counts as an error.
    tolerance : float or None
        For ``"last_linear"`` tasks, the squared error (summed over
        outputs) above which a sequence counts as wrong; ``None`` otherwise.
    min_length : int
        Smallest length accepted by :meth:`sample`.
    seed : int
        The seed the generator was built from.
    rng : numpy.random.Generator
        The task's generator.
    """

    name: ClassVar[str] = ""
    output: ClassVar[str] = ""
    error_measure: ClassVar[str] = ""
    tolerance: ClassVar[float | None] = None
    min_length: ClassVar[int] = 1

    n_in: int
    n_out: int

    def __init__(self, seed: int = 0) -> None:
        seed = _as_int(seed, "seed")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def reset(self) -> None:
        """Restart the generator, so the next batches repeat from the first."""
        self.rng = np.random.Generator(np.random.PCG64(self.seed))

    def kwargs(self) -> dict[str, Any]:
        """Constructor keyword arguments (other than ``seed``) of this task."""
        return {}

    @abc.abstractmethod
    def sample(self, batch_size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw a fresh batch.

        Parameters
        ----------
        batch_size : int
            Number of sequences ``B`` (at least 1).
        length : int
            Requested length ``L`` (at least :attr:`min_length`); the actual
            number of steps ``T`` is given by each task's generation rule.

        Returns
        -------
        x : torch.Tensor
            ``float32`` inputs of shape ``[T, B, n_in]``.
        y : torch.Tensor
            Targets; shape and type as described for :attr:`output`.
        """

    def _check_sample_args(self, batch_size: Any, length: Any) -> tuple[int, int]:
        """Validate the arguments of :meth:`sample` and return them as ints."""
        batch_size = _as_int(batch_size, "batch_size")
        length = _as_int(length, "length")
        if batch_size < 1:
            raise ValueError(f"{self.name}: batch_size must be at least 1, got {batch_size}")
        if length < self.min_length:
            raise ValueError(
                f"{self.name}: length must be at least {self.min_length}, got {length}"
            )
        return batch_size, length

    def describe(self) -> dict[str, Any]:
        """Plain-data description of the task, suitable for storing with results."""
        return {
            "name": self.name,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "output": self.output,
            "error_measure": self.error_measure,
            "tolerance": self.tolerance,
            "min_length": self.min_length,
            "kwargs": dict(self.kwargs()),
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in self.kwargs().items()]
        args.append(f"seed={self.seed!r}")
        return f"{type(self).__name__}({', '.join(args)})"
