"""The pathological synthetic problems of Pascanu, Mikolov & Bengio (2013).

Section 4.1 of "On the difficulty of training recurrent neural networks"
(ICML 2013) trains recurrent networks on long-time-lag problems taken from
Hochreiter & Schmidhuber (1997) and Martens & Sutskever (2011): the
temporal order problem (two and three bits), the addition and
multiplication problems, the random permutation problem and the noiseless
memorization problem.  Each class below generates one of them; its
docstring states the exact generation rule.

Notation used in the docstrings: ``L`` is the requested length, ``B`` the
batch size, ``int(.1L)`` is ``floor(L / 10)``; "``p`` in ``a..+n``" means
``a <= p < a + n`` drawn uniformly; ``randint(n)`` is uniform over
``0..n-1``.  Everything drawn "per sequence" is drawn independently for each
of the ``B`` sequences.  Inputs are time-major ``[T, B, n_in]``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from .base import Task, _as_int

__all__ = [
    "TemporalOrder",
    "TemporalOrder3Bit",
    "Adding",
    "Multiplication",
    "Permutation",
    "Memorization",
    "Memorization5Bit",
]


def _one_hot(symbols: np.ndarray, n: int) -> np.ndarray:
    """One-hot ``float32`` encoding of an integer array along a new last axis."""
    out = np.zeros(symbols.shape + (n,), dtype=np.float32)
    np.put_along_axis(out, symbols[..., None], np.float32(1.0), axis=-1)
    return out


class _TemporalOrderBase(Task):
    """Temporal order problem with one relevant bit per entry of ``_starts``.

    ``_starts`` holds, in tenths of ``L``, where each relevant window begins;
    every window is ``int(.1L)`` steps wide.
    """

    _starts: ClassVar[tuple[int, ...]] = ()
    output = "last_softmax"
    error_measure = "wrong class at the last step"
    tolerance = None
    min_length = 10

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.n_in = 6
        self.n_out = 2 ** len(self._starts)

    def sample(self, batch_size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        B, L = self._check_sample_args(batch_size, length)
        rng = self.rng
        width = L // 10
        symbols = rng.integers(2, 6, size=(L, B))
        cols = np.arange(B)
        positions = [s * L // 10 + rng.integers(0, width, size=B) for s in self._starts]
        values = rng.integers(0, 2, size=(len(self._starts), B))
        label = np.zeros(B, dtype=np.int64)
        for k, pos in enumerate(positions):
            symbols[pos, cols] = values[k]
            label += values[k] << k
        x = torch.from_numpy(_one_hot(symbols, self.n_in))
        y = torch.from_numpy(label)
        return x, y


class TemporalOrder(_TemporalOrderBase):
    """Temporal order problem, two relevant symbols, four classes.

    Generation rule (``T = L`` steps, ``n_in = 6`` one-hot symbols,
    ``n_out = 4``, read at the last step with a softmax):

    * every step holds a distractor symbol uniform in ``2..5``;
    * per sequence, ``p0`` in ``int(.1L)..+int(.1L)`` and ``p1`` in
      ``int(.5L)..+int(.1L)``;
    * symbols ``v0, v1`` uniform in ``{0, 1}`` replace the distractors at
      ``p0`` and ``p1``;
    * the target class is ``v0 + 2 * v1``.

    A sequence is wrong when the predicted class at the last step differs
    from the target.  ``min_length`` is 10 so that ``int(.1L) >= 1``.
    Random draws per batch, in order: distractors ``[L, B]``, ``p0``, ``p1``,
    values ``[2, B]``.
    """

    name = "temporal_order"
    _starts = (1, 5)


class TemporalOrder3Bit(_TemporalOrderBase):
    """Temporal order problem, three relevant symbols, eight classes.

    Generation rule (``T = L`` steps, ``n_in = 6`` one-hot symbols,
    ``n_out = 8``, read at the last step with a softmax):

    * every step holds a distractor symbol uniform in ``2..5``;
    * per sequence, ``p0`` in ``int(.1L)..+int(.1L)``, ``p1`` in
      ``int(.3L)..+int(.1L)`` and ``p2`` in ``int(.6L)..+int(.1L)``;
    * symbols ``v0, v1, v2`` uniform in ``{0, 1}`` replace the distractors
      at ``p0, p1, p2``;
    * the target class is ``v0 + 2 * v1 + 4 * v2``.

    A sequence is wrong when the predicted class at the last step differs
    from the target.  ``min_length`` is 10.  Random draws per batch, in
    order: distractors ``[L, B]``, ``p0``, ``p1``, ``p2``, values ``[3, B]``.
    """

    name = "temporal_order_3bit"
    _starts = (1, 3, 6)


class _TwoMarkerBase(Task):
    """Addition / multiplication problem; subclasses define ``_combine``."""

    output = "last_linear"
    tolerance = 0.04
    error_measure = "squared error at the last step above 0.04"
    min_length = 10

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.n_in = 2
        self.n_out = 1

    @staticmethod
    def _combine(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sample(self, batch_size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        B, L = self._check_sample_args(batch_size, length)
        rng = self.rng
        T = L + int(rng.integers(0, L // 10))
        x = np.zeros((T, B, 2), dtype=np.float32)
        x[:, :, 1] = rng.random((T, B), dtype=np.float32)
        first = T // 10
        p0 = rng.integers(0, first, size=B)
        p1 = first + rng.integers(0, 4 * T // 10, size=B)
        cols = np.arange(B)
        x[p0, cols, 0] = 1.0
        x[p1, cols, 0] = 1.0
        v0 = x[p0, cols, 1].astype(np.float64)
        v1 = x[p1, cols, 1].astype(np.float64)
        y = self._combine(v0, v1).astype(np.float32)[:, None]
        return torch.from_numpy(x), torch.from_numpy(y)


class Adding(_TwoMarkerBase):
    """Addition problem.

    Generation rule (``n_in = 2``, ``n_out = 1``, linear output read at the
    last step):

    * one length for the whole batch, ``l = L + randint(int(.1L))``, so
      ``L <= T = l <= L + int(.1L) - 1``;
    * channel 1 holds a value uniform in ``[0, 1)`` at every step;
    * channel 0 is a marker, 0 everywhere except 1 at two steps: per
      sequence ``p0`` in ``0..int(.1l)-1`` and ``p1`` in
      ``int(.1l)..+int(.4l)``;
    * the target is ``(v0 + v1) / 2`` where ``v0, v1`` are the channel-1
      values at ``p0`` and ``p1``.

    A sequence is wrong when its squared error exceeds ``tolerance = 0.04``.
    ``min_length`` is 10.  Random draws per batch, in order: the extra
    length, values ``[l, B]`` (``float32``), ``p0``, ``p1``.
    """

    name = "adding"

    @staticmethod
    def _combine(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
        return (v0 + v1) / 2.0


class Multiplication(_TwoMarkerBase):
    """Multiplication problem.

    Generated exactly as :class:`Adding` (one length
    ``l = L + randint(int(.1L))`` per batch, channel 1 uniform in
    ``[0, 1)``, markers on channel 0 at ``p0`` in ``0..int(.1l)-1`` and
    ``p1`` in ``int(.1l)..+int(.4l)``), but the target is the product
    ``v0 * v1`` of the two marked values.

    A sequence is wrong when its squared error exceeds ``tolerance = 0.04``.
    ``min_length`` is 10.
    """

    name = "multiplication"

    @staticmethod
    def _combine(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
        return v0 * v1


class Permutation(Task):
    """Random permutation problem.

    Generation rule (``T = L`` steps, ``n_in = n_out = 100`` one-hot
    symbols, softmax read at the last step):

    * the first symbol ``v`` is uniform in ``{0, 1}``;
    * every other symbol is uniform in ``2..99``;
    * the target class is ``v``, i.e. the network must output at the last
      step the class of the first symbol.

    A sequence is wrong when the predicted class at the last step differs
    from the target.  ``min_length`` is 10.  Random draws per batch, in
    order: symbols ``[L, B]`` in ``2..99``, then ``v``.
    """

    name = "permutation"
    output = "last_softmax"
    error_measure = "wrong class at the last step"
    tolerance = None
    min_length = 10

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.n_in = 100
        self.n_out = 100

    def sample(self, batch_size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        B, L = self._check_sample_args(batch_size, length)
        rng = self.rng
        symbols = rng.integers(2, 100, size=(L, B))
        first = rng.integers(0, 2, size=B)
        symbols[0] = first
        x = torch.from_numpy(_one_hot(symbols, self.n_in))
        y = torch.from_numpy(first.astype(np.int64))
        return x, y


class Memorization(Task):
    """Noiseless memorization problem.

    Parameters
    ----------
    seed : int
        Generator seed.
    n_values : int, default 5
        Size of the pattern alphabet (at least 2).
    n_pos : int, default 10
        Length of the pattern (at least 1).  The defaults give a pattern of
        ``10 * log2(5)``, about 23 bits.

    Generation rule (``T = L + 2 * n_pos`` steps, ``n_in = n_values + 2``,
    ``n_out = n_values + 1``, softmax at every step):

    * a pattern of ``n_pos`` symbols, each uniform over ``0..n_values-1``
      (per sequence), is presented one-hot on channels ``0..n_values-1`` in
      steps ``0..n_pos-1``; nothing else is on in those steps;
    * from step ``n_pos`` on, the blank channel ``n_values`` is on at every
      step except step ``L + n_pos``, where the go channel ``n_values + 1``
      is on instead;
    * the target is the blank class ``n_values`` at every step except the
      last ``n_pos``: the target at step ``L + n_pos + j`` is pattern
      symbol ``j``.

    A sequence counts as right only if the predicted class is right at every
    one of its ``T`` steps.  ``min_length`` is 1.  Random draws per batch:
    the pattern ``[n_pos, B]``.
    """

    name = "memorization"
    output = "softmax"
    error_measure = "any wrong step (a sequence is right only if every step is right)"
    tolerance = None
    min_length = 1

    def __init__(self, seed: int = 0, n_values: int = 5, n_pos: int = 10) -> None:
        super().__init__(seed)
        n_values = _as_int(n_values, "n_values")
        n_pos = _as_int(n_pos, "n_pos")
        if n_values < 2:
            raise ValueError(f"{self.name}: n_values must be at least 2, got {n_values}")
        if n_pos < 1:
            raise ValueError(f"{self.name}: n_pos must be at least 1, got {n_pos}")
        self.n_values = n_values
        self.n_pos = n_pos
        self.n_in = n_values + 2
        self.n_out = n_values + 1

    @property
    def bits(self) -> float:
        """Information content of the pattern, ``n_pos * log2(n_values)``."""
        return self.n_pos * float(np.log2(self.n_values))

    def kwargs(self) -> dict[str, Any]:
        return {"n_values": self.n_values, "n_pos": self.n_pos}

    def sample(self, batch_size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        B, L = self._check_sample_args(batch_size, length)
        nv, npos = self.n_values, self.n_pos
        blank, go = nv, nv + 1
        T = L + 2 * npos
        pattern = self.rng.integers(0, nv, size=(npos, B))
        inputs = np.full((T, B), blank, dtype=np.int64)
        inputs[:npos] = pattern
        inputs[L + npos] = go
        targets = np.full((T, B), blank, dtype=np.int64)
        targets[L + npos:] = pattern
        x = torch.from_numpy(_one_hot(inputs, self.n_in))
        y = torch.from_numpy(targets)
        return x, y


class Memorization5Bit(Memorization):
    """Memorization problem with a 5-bit pattern: ``n_values=2, n_pos=5``.

    Identical to :class:`Memorization` except for the defaults, which give
    ``n_in = 4``, ``n_out = 3`` and ``T = L + 10``.
    """

    name = "memorization_5bit"

    def __init__(self, seed: int = 0, n_values: int = 2, n_pos: int = 5) -> None:
        super().__init__(seed, n_values=n_values, n_pos=n_pos)
