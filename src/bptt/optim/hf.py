"""Hessian-free optimization with structural damping, for an ensemble of RNNs.

Martens (2010), "Deep learning via Hessian-free optimization" (ICML), and Martens &
Sutskever (2011), "Learning recurrent neural networks with Hessian-free optimization"
(ICML). One :meth:`HessianFree.step` does, for each of the E members on its own:

1. f(θ) and ∇f(θ) on the gradient batch (for :class:`bptt.ElmanRNN` by the exact
   engine, and its curvature products by :mod:`bptt.optim.elman_curvature`; for any
   other model by ``torch.func``);
2. the preconditioner M = (diag(F) + λ)^0.75 (Martens 2010, §4.7), F the mean over the
   batch's sequences of the squared per-sequence gradients (``torch.func.vmap``);
3. conjugate gradient on φ(p) = ∇fᵀp + ½ pᵀ(G + λI + μλG_S)p with G (and G_S, the
   structural damping of M&S 2011, §4) from the curvature batch, started from the
   previous solution × 0.95, stopped by Martens' relative-progress rule
   (:mod:`bptt.optim.cg`);
4. backtracking over the saved CG iterates on the gradient batch (§4.6);
5. the reduction ratio ρ = (f(θ+p) − f(θ)) / (q(p) − q(0)), q the undamped
   Gauss–Newton model, and the Levenberg–Marquardt rule: λ × 3/2 when ρ < 1/4,
   λ × 2/3 when ρ > 3/4 (Martens 2010, §4.1);
6. a backtracking line search on the step: α ← 0.8 α until the Armijo condition
   f(θ + αp) ≤ f(θ) + c α ∇fᵀp, c = 10⁻², holds (Martens & Sutskever 2012, the
   chapter's line search); after ``line_search_max`` reductions, or when ∇fᵀp ≥ 0,
   the step is rejected;
7. θ ← θ + α p.

A member whose loss, gradient, quadratic model or step is not finite takes no step, its
λ is raised (× 3/2) and its CG warm start cleared; such events are counted per member.
See ``docs/hf.md`` for every setting and its source.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import torch

from bptt.engine import exact
from bptt.engine.outputs import OUTPUTS, PER_STEP
from bptt.engine.units import UNITS
from bptt.models.elman import ElmanRNN
from bptt.optim import cg
from bptt.optim.curvature import GaussNewton, Layout, case_losses, elman_function, module_function
from bptt.optim.elman_curvature import ElmanGaussNewton

#: μ of structural damping when the model gives its hidden pre-activations.
DEFAULT_STRUCTURAL_DAMPING = 1.0 / 30.0


@dataclass
class HFRecord:
    """What one :meth:`HessianFree.step` did, per member (tensors ``[E]`` on the CPU).

    Attributes:
        loss_before: f(θ) on the gradient batch.
        loss_after: f at the new θ on the gradient batch (= ``loss_before`` if rejected).
        rho: the reduction ratio ρ of the backtracked CG step (−inf when the step was
            not finite or the model predicted no decrease).
        damping: λ used in this step.
        next_damping: λ after the Levenberg–Marquardt update.
        cg_iterations: the CG iterations run.
        cg_chosen: the iteration of the iterate chosen by backtracking.
        cg_reason: why CG stopped (:data:`bptt.optim.cg.MAX_ITERS`, ``PROGRESS``,
            ``NEGATIVE_CURVATURE``, ``NONFINITE``).
        step_size: the line search's factor α (0 when rejected).
        accepted: whether θ changed.
        nonfinite: whether a non-finite number stopped this member's step.
        grad_norm: ‖∇f(θ)‖ on the gradient batch (NaN when the loss or the gradient
            was not finite).
        gradient_evaluations: gradients this member's step computed: the gradient,
            plus the per-sequence gradients of the preconditioner when it is on.
        curvature_products: Gauss–Newton products this member's step needed: one per
            CG iteration, one for the residual of a warm start, one for q(p) of ρ
            (0 when a non-finite loss or gradient stopped the step before CG).
        wall_time: seconds the whole step took (all members together).
    """

    loss_before: torch.Tensor
    loss_after: torch.Tensor
    rho: torch.Tensor
    damping: torch.Tensor
    next_damping: torch.Tensor
    cg_iterations: torch.Tensor
    cg_chosen: torch.Tensor
    cg_reason: torch.Tensor
    step_size: torch.Tensor
    accepted: torch.Tensor
    nonfinite: torch.Tensor
    grad_norm: torch.Tensor
    gradient_evaluations: torch.Tensor
    curvature_products: torch.Tensor
    wall_time: float


#: Levenberg–Marquardt thresholds on ρ and factors on λ (Martens 2010, §4.1).
RHO_LOW, RHO_HIGH, BOOST, DROP = 0.25, 0.75, 1.5, 2.0 / 3.0


def adjust_damping(damping: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """The Levenberg–Marquardt rule, per member (Martens 2010, §4.1).

    λ × 3/2 where ρ < 1/4, λ × 2/3 where ρ > 3/4, unchanged otherwise (a NaN ρ counts
    as a failure: λ × 3/2).

    Args:
        damping: λ ``[E]``.
        rho: the reduction ratio ρ ``[E]``.
    """
    raise_ = ~(rho >= RHO_LOW)
    return torch.where(raise_, damping * BOOST, torch.where(rho > RHO_HIGH, damping * DROP, damping))


def _nonnegative(name: str, value, *, allow_zero: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {need}, got {value!r}")
    return v


def _count(name: str, value, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or not math.isfinite(value) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if optional else ''}, got {value!r}")
    return int(value)


def _fraction(name: str, value, low: float, high: float) -> float:
    v = _nonnegative(name, value)
    if not low < v < high:
        raise ValueError(f"{name} must lie strictly between {low} and {high}, got {value!r}")
    return v


class HessianFree:
    """Hessian-free optimization (Martens 2010) with structural damping (M&S 2011).

    Works for :class:`bptt.ElmanRNN` (every unit and output kind; a fast path builds
    the model function with its hidden pre-activations) and for any ``nn.Module`` with
    the same call convention: every parameter carries the ensemble axis E first and
    ``model(x)`` returns output pre-activations ``[E, B, O]`` (last step) or
    ``[T, E, B, O]`` (per step). Members are independent problems, each with its own
    λ, CG run, ρ and line search; every product runs for all members at once.

    Args:
        model: the model; its parameters are updated in place.
        damping: the initial Tikhonov damping λ, a float or ``[E]`` tensor (≥ 0).
        structural_damping: μ; ``None`` gives 1/30 when hidden states are available
            (Elman models, or ``states_fn``) and 0 otherwise.
        cg_max_iters: at most this many CG iterations per step.
        cg_decay: the warm start's decay ζ (x_0 = ζ · previous final CG iterate).
        cg_tolerance: ε of the CG stopping rule.
        cg_save_factor: γ of the schedule of saved CG iterates (> 1).
        gradient_batch: the gradient uses the first this many sequences of the batch
            (``None``: all of it).
        curvature_batch: the Gauss–Newton products use the first this many sequences
            of the gradient batch, unless :meth:`step` gets a separate curvature batch
            (``None``: the whole gradient batch).
        preconditioner: use Martens' diagonal preconditioner (its per-sequence
            gradients need a model that ``torch.func.vmap`` can batch; pass ``False``
            for one it cannot).
        preconditioner_exponent: its exponent (0.75).
        line_search: run the backtracking line search on the final step.
        line_search_factor: the step shrinks by this factor each try (0.8).
        armijo: c of the sufficient-decrease condition (10⁻²).
        line_search_max: reductions tried before the step is rejected.
        output: the output kind; default ``model.output``.
        states_fn: for models other than ``ElmanRNN``, a function
            ``(params, x) → (z, a)`` computing the outputs and the hidden
            pre-activations ``[T, E, B, H]`` from parameters by name (for structural
            damping).
        hidden_unit: the hidden nonlinearity of ``states_fn`` (``"tanh"``,
            ``"sigmoid"``, ``"relu"``, ``"linear"``); default ``model.unit``.
        frozen: names of parameters that do not learn (they stay as they are and
            take no part in the curvature, the preconditioner or the step); default
            the model's ``FIXED`` names (an echo-state network's reservoir), else none.
            A model with frozen parameters takes the general path.

    Raises:
        ValueError: on a negative or non-finite damping or μ, a non-positive batch
            size or CG cap, factors outside their ranges, an unknown output kind, or
            structural damping without hidden states, or frozen names the model does
            not have.
    """

    def __init__(self, model: torch.nn.Module, *, damping: float | torch.Tensor = 1.0,
                 structural_damping: float | None = None, cg_max_iters: int = 250, cg_decay: float = 0.95,
                 cg_tolerance: float = 5e-4, cg_save_factor: float = 1.3, gradient_batch: int | None = None,
                 curvature_batch: int | None = None, preconditioner: bool = True,
                 preconditioner_exponent: float = 0.75, line_search: bool = True,
                 line_search_factor: float = 0.8, armijo: float = 1e-2, line_search_max: int = 20,
                 output: str | None = None, states_fn: Callable | None = None,
                 hidden_unit: str | None = None, frozen: Sequence[str] | None = None) -> None:
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self._elman = False            # the fast path: hand-derived products, the exact engine's gradient
        self._plain_module = False     # the model function is model(x) itself (no hidden states)
        names = [k for k, _ in model.named_parameters()]
        self.frozen = tuple(getattr(model, "FIXED", ())) if frozen is None else tuple(frozen)
        unknown = sorted(set(self.frozen) - set(names))
        if unknown:
            raise ValueError(f"frozen names {unknown} are not parameters of the model; its parameters: "
                             f"{', '.join(names)}")
        params = self._theta()
        if not params:
            raise ValueError("the model has no parameters that learn" if names else "the model has no parameters")
        E = next(iter(params.values())).shape[0] if next(iter(params.values())).dim() else 0
        for k, p in params.items():
            if p.dim() == 0 or p.shape[0] != E:
                raise ValueError(f"every parameter must carry the ensemble axis E first; {k!r} has shape "
                                 f"{tuple(p.shape)}, the first parameter {E} members")
        self.ensemble = E
        self.output = output if output is not None else getattr(model, "output", None)
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)} (pass output= for a model "
                             f"without an 'output' attribute), got {self.output!r}")
        self.hidden_unit = hidden_unit if hidden_unit is not None else getattr(model, "unit", None)
        if states_fn is not None:
            if self.hidden_unit not in UNITS:
                raise ValueError(f"hidden_unit must be one of {', '.join(UNITS)} with states_fn, "
                                 f"got {self.hidden_unit!r}")
            self._fn = states_fn if not self.frozen else self._with_frozen(states_fn)
        elif type(model) is ElmanRNN and not self.frozen:     # exactly eq. 2: the fast path
            self._fn = elman_function(self.hidden_unit, self.output)
            self._elman = True
        else:
            self._fn = module_function(model)
            self._plain_module = True
            self.hidden_unit = None
        has_states = self.hidden_unit is not None
        if structural_damping is None:
            structural_damping = DEFAULT_STRUCTURAL_DAMPING if has_states else 0.0
        self.structural_damping = _nonnegative("structural_damping", structural_damping)
        if self.structural_damping > 0 and not has_states:
            raise ValueError("structural_damping > 0 needs the hidden pre-activations: pass states_fn= and "
                             "hidden_unit= for this model, or structural_damping=0")
        self.cg_max_iters = _count("cg_max_iters", cg_max_iters)
        self.cg_decay = _nonnegative("cg_decay", cg_decay)
        if self.cg_decay > 1:
            raise ValueError(f"cg_decay must lie in [0, 1], got {cg_decay!r}")
        self.cg_tolerance = _nonnegative("cg_tolerance", cg_tolerance, allow_zero=False)
        self.cg_save_factor = _nonnegative("cg_save_factor", cg_save_factor)
        if self.cg_save_factor <= 1:
            raise ValueError(f"cg_save_factor must be > 1, got {cg_save_factor!r}")
        self.gradient_batch = _count("gradient_batch", gradient_batch, optional=True)
        self.curvature_batch = _count("curvature_batch", curvature_batch, optional=True)
        self.preconditioner = bool(preconditioner)
        self.preconditioner_exponent = _nonnegative("preconditioner_exponent", preconditioner_exponent)
        self.line_search = bool(line_search)
        self.line_search_factor = _fraction("line_search_factor", line_search_factor, 0.0, 1.0)
        self.armijo = _fraction("armijo", armijo, 0.0, 1.0)
        self.line_search_max = _count("line_search_max", line_search_max)
        self.layout = Layout(params)
        ref = next(iter(params.values()))
        self.damping = self._per_member("damping", damping, ref)
        self.previous = torch.zeros(E, self.layout.size, dtype=ref.dtype, device=ref.device)
        self.steps = 0
        self.nonfinite_count = torch.zeros(E, dtype=torch.long)

    # -- helpers -----------------------------------------------------------------------------
    def _per_member(self, name: str, value, ref: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value,
                            dtype=torch.float64)
        if t.dim() > 1 or t.numel() not in (1, self.ensemble):
            raise ValueError(f"{name} must be a float or a tensor of shape [{self.ensemble}], got {tuple(t.shape)}")
        if not bool((torch.isfinite(t) & (t >= 0)).all()):
            raise ValueError(f"{name} must be finite and >= 0, got {t.tolist()}")
        return t.reshape(-1).expand(self.ensemble).to(dtype=ref.dtype, device=ref.device).clone()

    def _theta(self) -> dict[str, torch.Tensor]:
        """θ: the parameters that learn, by name (detached)."""
        return {k: p.detach() for k, p in self.model.named_parameters() if k not in self.frozen}

    def _with_frozen(self, fn: Callable) -> Callable:
        """``fn`` given the frozen parameters beside θ (read from the model at each call)."""
        def run(params: dict, x: torch.Tensor):
            fixed = {k: p.detach() for k, p in self.model.named_parameters() if k in self.frozen}
            return fn({**fixed, **params}, x)
        return run

    def _loss(self, params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """f per member ``[E]``: the mean over the batch of the per-sequence losses."""
        z, _ = self._fn(params, x)
        return case_losses(z, y, self.output).mean(-1)

    def _loss_at(self, theta: dict, p: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """f(θ + p) per member, for p ``[E, P]``."""
        moved = self.layout.tree(self.layout.flat(theta) + p)
        with torch.no_grad():
            return self._loss(moved, x, y)

    def _gradient(self, theta: dict, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(θ) ``[E]`` and ∇f(θ) ``[E, P]``: by the exact engine for Elman models, else by autograd."""
        if self._elman:
            res = exact.forward_backward(theta, x, y, unit=self.hidden_unit, output=self.output, omega=None)
            return res.loss.detach(), self.layout.flat(res.grads)

        def total(params):
            f = self._loss(params, x, y)
            return f.sum(), f

        with torch.enable_grad():
            grads, (_, loss) = torch.func.grad_and_value(total, has_aux=True)(theta)
        return loss.detach(), self.layout.flat(grads).detach()

    @staticmethod
    def _batch_dims(x: torch.Tensor, y: torch.Tensor, output: str) -> tuple[int, int]:
        """The batch axis of x and of y."""
        bx = 1 if x.dim() == 3 else 2
        lead = 1 if output in PER_STEP else 0
        classes = output in ("last_softmax", "softmax")
        shared_dim = lead + 1 + (0 if classes else 1)
        by = lead if y.dim() == shared_dim else lead + 1
        return bx, by

    def _check_batch(self, batch, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"{what} must be a pair (x, y) as the tasks give them")
        x, y = batch
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ValueError(f"{what}: x and y must be tensors")
        if x.dim() not in (3, 4):
            raise ValueError(f"{what}: x must be [T, B, I] or [T, E, B, I], got shape {tuple(x.shape)}")
        return x, y

    def _slice(self, x, y, n: int | None, what: str):
        bx, by = self._batch_dims(x, y, self.output)
        B = x.shape[bx]
        if n is None:
            return x, y
        if B < n:
            raise ValueError(f"{what} holds {B} sequences, fewer than the {n} asked for")
        return x.narrow(bx, 0, n), y.narrow(by, 0, n)

    def _preconditioner(self, theta: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """diag(F) ``[E, P]``: the mean over sequences of the squared per-sequence gradients."""
        if self._elman:
            return ElmanGaussNewton(theta, x, self.output, self.hidden_unit).squared_case_gradients(y)
        bx, by = self._batch_dims(x, y, self.output)

        def one(params, xb, yb):
            return self._loss(params, xb.unsqueeze(bx), yb.unsqueeze(by)).sum()

        grads = torch.func.vmap(torch.func.grad(one), in_dims=(None, bx, by), chunk_size=64)(theta, x, y)
        return self.layout.flat({k: (g * g).mean(0) for k, g in grads.items()})

    # -- the step ------------------------------------------------------------------------------
    def step(self, batch, curvature_batch=None) -> HFRecord:
        """One Hessian-free update of every member.

        Args:
            batch: ``(x, y)`` as the tasks give them (x ``[T, B, I]`` or ``[T, E, B, I]``);
                the gradient uses its first ``gradient_batch`` sequences.
            curvature_batch: a separate ``(x, y)`` for the Gauss–Newton products; by
                default the first ``curvature_batch`` sequences of the gradient batch.

        Returns:
            :class:`HFRecord`.
        """
        x, y = self._check_batch(batch, "batch")
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        # small problems run on one thread, by the engine's rule (per-step work E·B·P)
        with exact._threads(self.ensemble * B * self.layout.size):
            return self._step(x, y, curvature_batch)

    def _step(self, x: torch.Tensor, y: torch.Tensor, curvature_batch) -> HFRecord:
        start = time.perf_counter()
        x, y = self._slice(x, y, self.gradient_batch, "batch")
        if curvature_batch is None:
            xc, yc = self._slice(x, y, self.curvature_batch, "the gradient batch")
        else:
            xc, yc = self._check_batch(curvature_batch, "curvature_batch")
            xc, yc = self._slice(xc, yc, self.curvature_batch, "curvature_batch")
        theta = self._theta()
        lam = self.damping.clone()

        # 1. f(θ) and ∇f(θ) on the gradient batch
        loss0, g = self._gradient(theta, x, y)
        ok = torch.isfinite(loss0) & torch.isfinite(g).all(1)
        g = torch.where(ok[:, None], g, torch.zeros_like(g))
        grad_norm = torch.where(ok, g.norm(dim=1), torch.full_like(loss0, math.nan))
        started = ok.clone()                          # the members that run CG

        # 2. the preconditioner
        M = None
        if self.preconditioner:
            F = self._preconditioner(theta, x, y)
            F = torch.where(torch.isfinite(F), F, torch.zeros_like(F))
            M = (F + lam[:, None]) ** self.preconditioner_exponent
            M = torch.where(M > 0, M, torch.ones_like(M))

        # 3. conjugate gradient on the damped quadratic model
        structural = self.structural_damping > 0
        curvature = (ElmanGaussNewton(theta, xc, self.output, self.hidden_unit, structural) if self._elman
                     else GaussNewton(self._fn, theta, xc, self.output, self.hidden_unit, structural))
        x0 = torch.where(ok[:, None], self.cg_decay * self.previous, torch.zeros_like(self.previous))
        warm = x0.ne(0).any(1)                        # its residual costs one product
        result = cg.conjugate_gradient(lambda v: curvature.damped(v, lam, self.structural_damping), g, x0,
                                       preconditioner=M, max_iters=self.cg_max_iters,
                                       tolerance=self.cg_tolerance, save_factor=self.cg_save_factor,
                                       active=ok)
        ok = ok & torch.isfinite(result.x).all(1)

        # 4. backtracking over the saved iterates, on the gradient batch
        p, f_p, chosen = cg.backtrack(result, lambda v: self._loss_at(theta, v, x, y))

        # 5. the reduction ratio and the Levenberg–Marquardt rule
        gp = (g * p).sum(1)
        q = gp + 0.5 * (p * curvature.gv(p)).sum(1)
        rho = (f_p - loss0) / q
        ok = ok & torch.isfinite(q) & torch.isfinite(f_p)
        rho = torch.where(ok & (q < 0) & torch.isfinite(rho), rho, torch.full_like(rho, -math.inf))
        new_lam = adjust_damping(lam, rho)

        # 6. the line search: α ← 0.8 α until f(θ + αp) ≤ f(θ) + c α ∇fᵀp
        alpha = torch.where(ok, torch.ones_like(lam), torch.zeros_like(lam))
        f_new = torch.where(ok, f_p, loss0)
        if self.line_search:
            sufficient = lambda f, a: torch.isfinite(f) & (f <= loss0 + self.armijo * a * gp)  # noqa: E731
            alpha = torch.where(gp < 0, alpha, torch.zeros_like(alpha))     # no descent direction: no step
            searching = (alpha > 0) & ~sufficient(f_p, alpha)
            for _ in range(self.line_search_max):
                if not bool(searching.any()):
                    break
                alpha = torch.where(searching, alpha * self.line_search_factor, alpha)
                f_try = self._loss_at(theta, alpha[:, None] * p, x, y)
                f_new = torch.where(searching, f_try, f_new)
                searching = searching & ~sufficient(f_try, alpha)
            alpha = torch.where(searching, torch.zeros_like(alpha), alpha)
        accepted = ok & (alpha > 0) & torch.isfinite(f_new)
        alpha = torch.where(accepted, alpha, torch.zeros_like(alpha))
        f_new = torch.where(accepted, f_new, loss0)

        # 7. the update, the warm start and the damping
        nonfinite = ~ok
        new_lam = torch.where(nonfinite, lam * BOOST, new_lam)
        with torch.no_grad():
            delta = self.layout.tree(torch.where(accepted[:, None], alpha[:, None] * p, torch.zeros_like(p)))
            for k, param in self.model.named_parameters():
                if k in delta:
                    param.add_(delta[k])
        self.previous = torch.where(nonfinite[:, None] | ~torch.isfinite(result.x), torch.zeros_like(result.x),
                                    result.x).detach()
        self.damping = new_lam
        self.nonfinite_count += nonfinite.cpu().long()
        self.steps += 1
        cpu = lambda t: t.detach().cpu()  # noqa: E731
        products = torch.where(started, result.iterations + warm.long() + 1, torch.zeros_like(result.iterations))
        return HFRecord(loss_before=cpu(loss0), loss_after=cpu(f_new), rho=cpu(rho), damping=cpu(lam),
                        next_damping=cpu(new_lam), cg_iterations=cpu(result.iterations), cg_chosen=cpu(chosen),
                        cg_reason=cpu(result.reason), step_size=cpu(alpha), accepted=cpu(accepted),
                        nonfinite=cpu(nonfinite), grad_norm=cpu(grad_norm),
                        gradient_evaluations=torch.full((self.ensemble,), 1 + int(self.preconditioner)),
                        curvature_products=cpu(products), wall_time=time.perf_counter() - start)

    def select(self, keep: list[int], model: torch.nn.Module) -> None:
        """Keep only the members at positions ``keep``, now held by ``model``.

        For a training loop that retires members: ``model`` is the smaller ensemble
        (e.g. ``old_model.select(keep)``); each kept member keeps its λ, CG warm start
        and non-finite count.
        """
        if not isinstance(model, torch.nn.Module):
            raise ValueError("select needs the model that holds the kept members (an nn.Module), "
                             f"got {type(model).__name__}")
        idx = torch.as_tensor(list(keep), dtype=torch.long)
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.ensemble:
            raise ValueError(f"keep must hold positions in 0..{self.ensemble - 1}, got {list(keep)}")
        E = len(keep)
        sizes = [p.shape[0] for p in model.parameters()]
        if any(n != E for n in sizes):
            raise ValueError(f"the model holds {sizes[0]} members, keep names {E}")
        damping, previous = self.damping[idx.to(self.damping.device)], self.previous[idx.to(self.previous.device)]
        count, steps = self.nonfinite_count[idx], self.steps
        self.model = model
        self.ensemble = E
        if self._plain_module:
            self._fn = module_function(model)
        self.layout = Layout(self._theta())
        self.damping, self.previous = damping.clone(), previous.clone()
        self.nonfinite_count, self.steps = count.clone(), steps

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """λ per member, the CG warm start, the step and non-finite counts."""
        return {"damping": self.damping.detach().cpu().clone(), "previous": self.previous.detach().cpu().clone(),
                "steps": self.steps, "nonfinite_count": self.nonfinite_count.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state saved by :meth:`state_dict` (for a model of the same shapes)."""
        keys = {"damping", "previous", "steps", "nonfinite_count"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"not a HessianFree state dict: expected the keys {sorted(keys)}")
        E, P = self.ensemble, self.layout.size
        if tuple(state["damping"].shape) != (E,) or tuple(state["previous"].shape) != (E, P):
            raise ValueError(f"the state is for another model: damping {tuple(state['damping'].shape)}, "
                             f"previous {tuple(state['previous'].shape)}; expected ({E},) and ({E}, {P})")
        ref = self.previous
        self.damping = state["damping"].to(dtype=ref.dtype, device=ref.device).clone()
        self.previous = state["previous"].to(dtype=ref.dtype, device=ref.device).clone()
        self.steps = int(state["steps"])
        self.nonfinite_count = state["nonfinite_count"].clone().long()
