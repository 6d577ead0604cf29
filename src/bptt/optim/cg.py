"""Preconditioned conjugate gradient as Hessian-free optimization runs it, per member.

Martens (2010) minimizes the damped quadratic model

    φ(x) = ½ xᵀ A x + bᵀ x,      A = G + λ I (+ μ λ G_S),   b = ∇f(θ),

by linear conjugate gradient with three changes to the textbook method:

* **the stopping rule** (§4.4): stop at iteration i when i > k, φ(x_i) < 0 and
  (φ(x_i) − φ(x_{i−k})) / φ(x_i) < k ε, with k = max(10, ⌈0.1 i⌉) and ε = 5·10⁻⁴: the
  relative progress over the last k iterations has become small;
* **a warm start** (§4.5): x_0 is the previous run's final iterate times a decay;
* **saved iterates for backtracking** (§4.6): x_i is kept at i = ⌈γ^j⌉, γ = 1.3, so
  that a shorter, less over-fitted step can be chosen afterwards (:func:`backtrack`).

All of it runs for E independent problems at once: vectors are ``[E, P]``, the
scalars α, β, φ are ``[E]``, and a member that has stopped keeps its iterate (its α is
zero) while the others go on. A member stops also on non-positive curvature pᵀAp ≤ 0,
on a non-finite number (its last finite iterate stays) or on a zero residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

#: Why a member's CG stopped.
MAX_ITERS, PROGRESS, NEGATIVE_CURVATURE, NONFINITE, CONVERGED = 0, 1, 2, 3, 4


@dataclass
class CGResult:
    """What :func:`conjugate_gradient` returns.

    Attributes:
        x: ``[E, P]`` each member's final iterate.
        iterations: ``[E]`` (int64) the iterations each member ran.
        phi: ``[E]`` φ at the final iterate.
        saved: ``(i, x_i [E, P])`` at the save schedule, ascending in i; a member that
            stopped before i holds its final iterate there.
        reason: ``[E]`` (int64) why each member stopped: :data:`MAX_ITERS`,
            :data:`PROGRESS`, :data:`NEGATIVE_CURVATURE`, :data:`NONFINITE` or
            :data:`CONVERGED` (a zero residual).
    """

    x: torch.Tensor
    iterations: torch.Tensor
    phi: torch.Tensor
    saved: list[tuple[int, torch.Tensor]]
    reason: torch.Tensor


def save_schedule(max_iters: int, factor: float = 1.3) -> list[int]:
    """The iterations at which iterates are saved: ⌈factor^j⌉ ≤ max_iters, j = 0, 1, ...

    Martens (2010), §4.6.
    """
    out, j = [], 0
    while True:
        i = math.ceil(factor ** j)
        if i > max_iters:
            return out
        if not out or i != out[-1]:
            out.append(i)
        j += 1


def progress_gap(i: int, min_gap: int = 10, gap_fraction: float = 0.1) -> int:
    """k = max(min_gap, ⌈gap_fraction · i⌉) of the stopping rule."""
    return max(min_gap, math.ceil(gap_fraction * i))


def progress_stop(phis: list[torch.Tensor], i: int, tolerance: float) -> torch.Tensor:
    """Martens' relative-progress rule at iteration i, ``[E]`` bool (§4.4).

    Args:
        phis: φ(x_0), ..., φ(x_i), each ``[E]``.
        i: the iteration just completed.
        tolerance: ε.
    """
    k = progress_gap(i)
    if i <= k:
        return torch.zeros_like(phis[i], dtype=torch.bool)
    now, before = phis[i], phis[i - k]
    return (now < 0) & ((now - before) / now < k * tolerance)


def conjugate_gradient(apply_A: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, x0: torch.Tensor,
                       *, preconditioner: torch.Tensor | None = None, max_iters: int = 250,
                       tolerance: float = 5e-4, save_factor: float = 1.3,
                       active: torch.Tensor | None = None) -> CGResult:
    """Minimize φ(x) = ½ xᵀAx + bᵀx for E members at once (solve A x = −b).

    Args:
        apply_A: v ``[E, P]`` → A v ``[E, P]`` (A symmetric, per member).
        b: ``[E, P]`` the linear term (the gradient).
        x0: ``[E, P]`` the starting point.
        preconditioner: ``[E, P]`` the diagonal of M (positive); each step uses M⁻¹ r.
            ``None``: no preconditioning.
        max_iters: at most this many iterations.
        tolerance: ε of the relative-progress rule.
        save_factor: γ of the save schedule.
        active: ``[E]`` bool, the members to run (the others keep ``x0``, 0 iterations).

    Returns:
        :class:`CGResult`.
    """
    E = b.shape[0]
    x = x0.clone()
    r = (apply_A(x) + b) if bool(x.ne(0).any()) else b.clone()         # r = A x + b = ∇φ(x)
    dot = lambda u, v: (u * v).sum(1)                                   # noqa: E731
    solve = (lambda v: v / preconditioner) if preconditioner is not None else (lambda v: v)  # noqa: E731
    y = solve(r)
    d = -y
    ry = dot(r, y)
    phi0 = 0.5 * dot(x, r + b)
    running = torch.ones(E, dtype=torch.bool, device=b.device) if active is None else active.clone()
    finite0 = torch.isfinite(phi0) & torch.isfinite(r).all(1)
    reason = torch.full((E,), MAX_ITERS, dtype=torch.long, device=b.device)
    reason[running & ~finite0] = NONFINITE
    running &= finite0
    iterations = torch.zeros(E, dtype=torch.long, device=b.device)
    phis = [torch.where(finite0, phi0, torch.zeros_like(phi0))]
    schedule = set(save_schedule(max_iters, save_factor))
    saved: list[tuple[int, torch.Tensor]] = []
    for i in range(1, max_iters + 1):
        if not bool(running.any()):
            break
        converged = running & (ry <= 0)                                 # r = 0: the exact minimum
        reason[converged] = CONVERGED
        running = running & ~converged
        if not bool(running.any()):
            break
        Ad = apply_A(d)
        curvature = dot(d, Ad)
        bad = running & ~(torch.isfinite(curvature) & torch.isfinite(Ad).all(1))
        negative = running & ~bad & (curvature <= 0)
        reason[bad] = NONFINITE
        reason[negative] = NEGATIVE_CURVATURE
        running = running & ~bad & ~negative
        alpha = torch.where(running, ry / torch.where(running, curvature, torch.ones_like(curvature)),
                            torch.zeros_like(ry))
        Ad = torch.where(running[:, None], Ad, torch.zeros_like(Ad))
        x = x + alpha[:, None] * d
        r = r + alpha[:, None] * Ad
        y = solve(r)
        ry_new = dot(r, y)
        beta = torch.where(running, ry_new / torch.where(running, ry, torch.ones_like(ry)), torch.zeros_like(ry))
        d = torch.where(running[:, None], -y + beta[:, None] * d, d)
        ry = torch.where(running, ry_new, ry)
        iterations = iterations + running.long()
        phi = 0.5 * dot(x, r + b)
        phis.append(torch.where(running, phi, phis[-1]))
        if i in schedule:
            saved.append((i, x.clone()))
        done = running & progress_stop(phis, i, tolerance)
        reason[done] = PROGRESS
        running = running & ~done
    return CGResult(x=x, iterations=iterations, phi=phis[-1], saved=saved, reason=reason)


def backtrack(result: CGResult, objective: Callable[[torch.Tensor], torch.Tensor]
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CG-iteration backtracking (Martens 2010, §4.6), per member.

    Starting from the final iterate, step back through the saved iterates (latest
    first) as long as the objective keeps decreasing; keep the best one seen. A saved
    iterate is a candidate for a member only when it is earlier than that member's
    final iteration. Non-finite objective values count as worse than any finite one.

    Args:
        result: a :class:`CGResult`.
        objective: p ``[E, P]`` → f(θ + p) ``[E]``.

    Returns:
        ``(p [E, P], f(θ + p) [E], iteration [E])``: the chosen iterate, its objective
        and the iteration it was saved at.
    """
    best = result.x
    f_best = objective(best)
    f_best = torch.where(torch.isfinite(f_best), f_best, torch.full_like(f_best, math.inf))
    chosen = result.iterations.clone()
    searching = torch.ones_like(chosen, dtype=torch.bool)
    for i, x_i in reversed(result.saved):
        relevant = i < result.iterations
        if not bool((searching & relevant).any()):
            continue
        f = objective(x_i)
        better = searching & relevant & torch.isfinite(f) & (f < f_best)
        best = torch.where(better[:, None], x_i, best)
        f_best = torch.where(better, f, f_best)
        chosen = torch.where(better, torch.full_like(chosen, i), chosen)
        searching = searching & (~relevant | better)
        if not bool(searching.any()):
            break
    return best, f_best, chosen
