"""The success screen: a cheap test on a few fresh sequences before the full one.

The paper counts a run as solved when its error on 10,000 fresh sequences is under
1% (§4.1). Evaluating 10,000 sequences at every check would cost more than training,
so a check first screens the network on ``n`` fresh sequences and runs the full test
only when at most ``k`` of them are wrong. The screen may reject a network that
would pass the full test (a miss, which only delays its success to a later check);
``k`` is chosen so that a network whose true error rate is at the success threshold
``p`` passes the screen with probability at least ``confidence``. Since the number of
wrong sequences is Binomial(n, q) for a network with true error q, and its
distribution function falls as q grows, every network with q ≤ p passes at least as
often.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import binom

#: The least probability that a network whose true error is at the success threshold
#: passes the screen.
SCREEN_CONFIDENCE = 0.99


def screen_threshold(n: int, p: float = 0.01, confidence: float = 0.99) -> int:
    """The least ``k`` with P(Binomial(n, p) ≤ k) ≥ ``confidence``.

    Args:
        n: sequences in the screen (≥ 1).
        p: the success threshold on the true error rate, in (0, 1).
        confidence: the least probability that a network at ``p`` passes, in (0, 1).

    Returns:
        The most wrong sequences (of ``n``) that still pass the screen.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"the screen needs n >= 1 sequences, got {n!r}")
    for name, v in (("p", p), ("confidence", confidence)):
        if not (0 < v < 1 and math.isfinite(v)):
            raise ValueError(f"{name} must lie in (0, 1), got {v!r}")
    return int(binom.ppf(confidence, int(n), p))


def pass_probability(n: int, k: int, q: float) -> float:
    """P(a network with true error rate ``q`` passes a screen of ``n`` sequences at ``k``)."""
    return float(binom.cdf(k, int(n), q))


def miss_probability(n: int, k: int, p: float = 0.01) -> float:
    """The largest probability, over true error rates q ≤ ``p``, that the screen rejects
    a network: 1 − P(Binomial(n, p) ≤ k), reached at q = p."""
    return 1.0 - pass_probability(n, k, p)


@dataclass(frozen=True)
class ScreenRule:
    """The success check of the tasks: a screen of ``n`` fresh sequences passed with at
    most ``k`` wrong, then a confirmation on ``confirm`` fresh sequences passed with
    fewer than ``p · confirm`` wrong (none at all when ``strict``: the reference code's
    rule, stop when 0 of 10,000 are wrong)."""

    n: int
    k: int
    p: float
    confidence: float
    confirm: int
    strict: bool

    @property
    def miss(self) -> float:
        """The largest probability that a network with true error ≤ ``p`` fails the screen."""
        return 0.0 if self.strict else miss_probability(self.n, self.k, self.p)

    @property
    def reject_at(self) -> int:
        """The confirmation fails as soon as this many of its sequences are wrong (so it
        may stop early: the decision is the same as after all ``confirm`` sequences)."""
        return 1 if self.strict else max(1, math.ceil(self.p * self.confirm - 1e-9))

    def passes_screen(self, wrong: int) -> bool:
        return wrong <= self.k

    def passes(self, wrong: int, n: int) -> bool:
        """Whether ``wrong`` of ``n`` sequences meet the success criterion."""
        return wrong == 0 if self.strict else wrong / n < self.p

    def describe(self) -> str:
        """The rule in words, with its miss probability."""
        if self.strict:
            return (f"a screen of {self.n:,} fresh sequences passed with none wrong, then no error at all on "
                    f"{self.confirm:,} fresh sequences (the reference code's rule)")
        return (f"a screen of {self.n:,} fresh sequences passed with at most {self.k} wrong "
                f"(a network whose true error is ≤ {100 * self.p:g}% fails it with probability ≤ "
                f"{100 * self.miss:.2f}%; threshold derived for ≥ {100 * self.confidence:g}% confidence), "
                f"then fewer than {100 * self.p:g}% wrong on {self.confirm:,} fresh sequences, stopped as "
                f"soon as {self.reject_at:,} are wrong")


def screen_rule(n: int, confirm: int, p: float = 0.01, *, strict: bool = False,
                confidence: float = SCREEN_CONFIDENCE) -> ScreenRule:
    """The :class:`ScreenRule` of a screen of ``n`` sequences confirmed on ``confirm``.

    Args:
        n: sequences of the screen.
        confirm: sequences of the confirmation (the paper: 10,000).
        p: the success threshold on the error rate.
        strict: success only with no error (the screen then passes only with none wrong).
        confidence: see :func:`screen_threshold`.
    """
    k = 0 if strict else screen_threshold(n, p, confidence)
    return ScreenRule(int(n), int(k), float(p), float(confidence), int(confirm), bool(strict))
