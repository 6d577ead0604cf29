"""Adaptive norm clipping: the threshold follows the gradient norms seen so far.

Three rules, each a :class:`bptt.clip.Clipper` (called on parameters, in place, returns
the norm before clipping, state per member ``[E]`` with ``state_dict()``):

* :class:`AverageNorm` — the paper's own advice for choosing Algorithm 1's threshold;
* :class:`AutoClip` — Seetharaman, Wichern, Pardo & Le Roux (2020);
* :class:`ZClip` — Kumar, Owen, Roy Chowdhury & Güra (2025).

All measure the 2-norm of all gradients as one vector (per member), rescale the whole
gradient (``g ← τ/‖g‖ · g``) when the rule fires, and keep only finite norms in their
statistics. Every decision is a tensor operation: no host synchronisation (except under
``nonfinite="error"``).
"""

from __future__ import annotations

import math

import torch

from bptt.clip.clipper import Clipper
from bptt.clip.functional import check_positive, clip_to_threshold_
from bptt.clip.gradients import Gradients


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _write(buffer: torch.Tensor, pos: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> None:
    """``buffer[pos[m], m] = value[m]`` for the members ``m`` where ``mask`` holds."""
    idx = pos.unsqueeze(0)
    old = buffer.gather(0, idx).squeeze(0)
    buffer.scatter_(0, idx, torch.where(mask, value, old).unsqueeze(0))


class AverageNorm(Clipper):
    """Algorithm 1 with the threshold set from the average norm (paper, §3.2).

    The paper: "One good heuristic for setting this threshold is to look at statistics
    on the average norm over a sufficiently large number of updates"; a summary of the
    paper (StatWiki, 2015) gives thresholds from half to ten times that norm. The rule,
    per member:

        τ = factor · (mean of the last ``window`` norms before this update),
        if ‖g‖ ≥ τ then g ← τ/‖g‖ · g.

    The norms averaged are the norms *before* clipping (averaging clipped norms with a
    factor below 1 would shrink τ towards zero), and only finite ones. During the
    warm-up — until ``warmup`` finite norms have been recorded — the gradients are left
    unchanged and only recorded; the first clipped update is the ``warmup + 1``-th.

    Args:
        factor: τ as a multiple of the average norm, finite and > 0 (½ to 10 suggested).
        window: N, how many of the latest norms the average covers (≥ 1).
        warmup: how many norms to record before clipping (≥ 1); default ``window``.
        nonfinite: ``"error"``, ``"skip"`` or ``"ignore"``.
    """

    def __init__(self, factor: float = 1.0, window: int = 100, warmup: int | None = None, *,
                 nonfinite: str = "error") -> None:
        super().__init__(nonfinite=nonfinite)
        self.factor = check_positive("factor", factor)
        if isinstance(self.factor, torch.Tensor):
            raise ValueError("factor must be a number")
        self.window = _check_int("window", window, 1)
        self.warmup = _check_int("warmup", window if warmup is None else warmup, 1)

    def hyperparameters(self) -> dict:
        return {"factor": self.factor, "window": self.window, "warmup": self.warmup}

    def _new_state(self, norm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"norms": norm.new_zeros((self.window, *norm.shape)),
                "count": torch.zeros(norm.shape, dtype=torch.long, device=norm.device)}

    def threshold(self) -> torch.Tensor | None:
        """τ for the next update (``inf`` while warming up); ``None`` before the first call."""
        if self._state is None:
            return None
        count = self._state["count"]
        mean = self._state["norms"].sum(0) / count.clamp(min=1, max=self.window)
        return torch.where(count >= self.warmup, self.factor * mean, math.inf)

    def _clip_(self, gs: Gradients, norm: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
        state = self._state
        clipped = clip_to_threshold_(gs, norm, self.threshold())
        _write(state["norms"], state["count"] % self.window, norm, finite)
        state["count"] += finite
        return clipped


class AutoClip(Clipper):
    """AutoClip (Seetharaman, Wichern, Pardo & Le Roux, "AutoClip: Adaptive gradient
    clipping for source separation networks", IEEE MLSP 2020).

    The rule, per member, at every update:

        append ‖g‖ to the history h (the norm before clipping);
        τ = the p-th percentile of h (the current norm included);
        if ‖g‖ > τ then g ← τ/‖g‖ · g.

    The percentile interpolates linearly between order statistics, as
    ``numpy.percentile`` does by default: with the n norms sorted, ``v[k]`` at rank
    ``r = p/100 · (n − 1)``, τ = v[⌊r⌋] + (r − ⌊r⌋)(v[⌊r⌋+1] − v[⌊r⌋]). The paper keeps
    every norm (``history=None``), which costs a sort of the whole history per update;
    ``history=N`` keeps the latest N. The paper finds p = 10 a good choice.

    Args:
        percentile: p, in (0, 100].
        history: how many of the latest norms to keep (≥ 1), or ``None`` for all.
        nonfinite: ``"error"``, ``"skip"`` or ``"ignore"``; a non-finite norm is not
            appended to the history.
    """

    _GROW = 128

    def __init__(self, percentile: float = 10.0, history: int | None = None, *,
                 nonfinite: str = "error") -> None:
        super().__init__(nonfinite=nonfinite)
        if (isinstance(percentile, bool) or not isinstance(percentile, (int, float))
                or not math.isfinite(percentile) or not 0 < percentile <= 100):
            raise ValueError(f"percentile must be a number in (0, 100], got {percentile!r}")
        self.percentile = float(percentile)
        self.history = None if history is None else _check_int("history", history, 1)

    def hyperparameters(self) -> dict:
        return {"percentile": self.percentile, "history": self.history}

    def _new_state(self, norm: torch.Tensor) -> dict[str, torch.Tensor]:
        size = self.history if self.history is not None else self._GROW
        return {"norms": norm.new_full((size, *norm.shape), math.nan),
                "count": torch.zeros(norm.shape, dtype=torch.long, device=norm.device)}

    def _clip_(self, gs: Gradients, norm: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
        state = self._state
        buffer = state["norms"]
        if self.history is None and self.steps >= buffer.shape[0]:      # room for every norm
            buffer = torch.cat([buffer, torch.full_like(buffer, math.nan)])
            state["norms"] = buffer
        _write(buffer, state["count"] % buffer.shape[0], norm, finite)
        state["count"] += finite
        n = state["count"].clamp(min=1, max=buffer.shape[0])
        ordered = buffer.sort(0).values                                   # NaN (empty slots) last
        rank = (n - 1).to(norm.dtype) * (self.percentile / 100)
        low = rank.floor()
        lo = low.long().unsqueeze(0)
        hi = torch.minimum(lo + 1, (n - 1).unsqueeze(0))
        a, b = ordered.gather(0, lo).squeeze(0), ordered.gather(0, hi).squeeze(0)
        tau = a + (rank - low) * (b - a)
        return clip_to_threshold_(gs, norm, tau, strict=True)


class ZClip(Clipper):
    """ZClip (Kumar, Owen, Roy Chowdhury & Güra, "ZClip: Adaptive Spike Mitigation for
    LLM Pre-Training", 2025), its plain z-score rule.

    The norm's mean μ and variance σ² are tracked by exponential moving averages; a
    norm that is an outlier by its z-score is clipped back to the edge of the normal
    range. Per member:

    * warm-up: the first ``warmup`` finite norms are collected and nothing is clipped;
      then μ = their mean, σ² = their variance (population, ÷ warmup);
    * afterwards, for each update with norm g:
      z = (g − μ)/σ; if z > z_threshold (equivalently g > μ + z_threshold·σ, which
      also covers σ = 0) then g* = μ + z_threshold·σ and the gradient is rescaled to
      norm g*, else g* = g;
      μ ← α·μ + (1 − α)·g*,  σ² ← α·σ² + (1 − α)·(g* − μ)²  (with the updated μ).

    The EMA thus follows the *clipped* norm, so a spike does not inflate the statistics.
    The paper's preferred variant ("reciprocal" or adaptive scaling) clips harder the
    larger z is; this class implements the plain rule above (in the authors' code, the
    mode that clips to ``mean + z_thresh·std``), and computes z without the ``1e-6``
    that code adds to σ.

    Args:
        alpha: the EMA's smoothing factor α, in (0, 1) (paper: 0.97).
        z_threshold: the z-score above which a norm is clipped, finite and > 0
            (paper: 2.5).
        warmup: how many norms to collect before clipping (≥ 2; paper: 25).
        nonfinite: ``"error"``, ``"skip"`` or ``"ignore"``; a non-finite norm neither
            counts towards the warm-up nor enters the EMA.
    """

    def __init__(self, alpha: float = 0.97, z_threshold: float = 2.5, warmup: int = 25, *,
                 nonfinite: str = "error") -> None:
        super().__init__(nonfinite=nonfinite)
        if (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                or not math.isfinite(alpha) or not 0 < alpha < 1):
            raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
        self.alpha = float(alpha)
        self.z_threshold = check_positive("z_threshold", z_threshold)
        if isinstance(self.z_threshold, torch.Tensor):
            raise ValueError("z_threshold must be a number")
        self.warmup = _check_int("warmup", warmup, 2)

    def hyperparameters(self) -> dict:
        return {"alpha": self.alpha, "z_threshold": self.z_threshold, "warmup": self.warmup}

    def _new_state(self, norm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"warmup_norms": norm.new_zeros((self.warmup, *norm.shape)),
                "count": torch.zeros(norm.shape, dtype=torch.long, device=norm.device),
                "mean": norm.new_zeros(norm.shape), "var": norm.new_zeros(norm.shape)}

    def threshold(self) -> torch.Tensor | None:
        """μ + z_threshold·σ for the next update (``inf`` while warming up)."""
        if self._state is None:
            return None
        s = self._state
        return torch.where(s["count"] >= self.warmup, s["mean"] + self.z_threshold * s["var"].sqrt(),
                           math.inf)

    def _clip_(self, gs: Gradients, norm: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
        s = self._state
        warming = s["count"] < self.warmup
        tau = self.threshold()
        clipped = clip_to_threshold_(gs, norm, tau, strict=True)
        # the EMA, with the clipped norm, for members past the warm-up
        g = torch.where(clipped, tau, norm)
        update = finite & ~warming
        mean = self.alpha * s["mean"] + (1 - self.alpha) * g
        var = self.alpha * s["var"] + (1 - self.alpha) * (g - mean) ** 2
        s["mean"] = torch.where(update, mean, s["mean"])
        s["var"] = torch.where(update, var, s["var"])
        # the warm-up: record, and start the EMA when it is complete
        record = finite & warming
        _write(s["warmup_norms"], s["count"].clamp(max=self.warmup - 1), norm, record)
        s["count"] += record
        done = record & (s["count"] == self.warmup)
        first_mean = s["warmup_norms"].mean(0)
        first_var = ((s["warmup_norms"] - first_mean) ** 2).mean(0)
        s["mean"] = torch.where(done, first_mean, s["mean"])
        s["var"] = torch.where(done, first_var, s["var"])
        return clipped
