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

from scipy.stats import binom


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
