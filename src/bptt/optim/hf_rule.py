"""Hessian-free optimization as an update rule of the training loop.

The gradient rules (:class:`bptt.optim.PaperSGD`, :class:`bptt.optim.ClippedRule`)
receive the gradient the loop computed. Hessian-free optimization (Martens 2010;
Martens & Sutskever 2011; :class:`bptt.optim.HessianFree`) needs the batch itself: it
evaluates the loss and the gradient on it, runs conjugate gradient on Gauss–Newton
products of a part of it, and tries candidate steps on it. :class:`HFRule` therefore
declares ``takes_batches = True``, and :class:`bptt.training.loop.TrainingLoop` hands
it the model and the batch of each update in place of gradients (the one hook the
loop has for such rules). Everything else is as for any rule: ``select`` when members
retire, ``state_dict``/``load_state_dict`` in the loop's one checkpoint.

What the loop records for each update (:class:`BatchStep`): the loss before the step,
‖∇f‖ and the non-finite flag as for every rule, and per member the values of
:data:`HFRule.RECORDS` (curves, one point per HF iteration) and the counts summed into
the run's metrics (:data:`HFRule.TOTALS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bptt.optim.hf import HessianFree

#: Sequences drawn afresh for each HF iteration's gradient when the configuration
#: does not say (this library's choice; see ``docs/hf.md``).
DEFAULT_GRADIENT_BATCH = 1000
#: The curvature batch defaults to this fraction of the gradient batch (this library's
#: choice, within the tenth to a quarter of Martens 2010, §4.3's practice).
CURVATURE_FRACTION = 0.1


def default_curvature_batch(gradient_batch: int) -> int:
    """The curvature batch of a gradient batch when none is given: a tenth of it (≥ 1)."""
    return max(1, int(gradient_batch * CURVATURE_FRACTION))


@dataclass
class BatchStep:
    """What one update of a rule that takes batches hands back to the training loop.

    Attributes:
        loss: f(θ) on the batch before the update, ``[E]``.
        grad_norm: ‖∇f(θ)‖ on the batch, ``[E]`` (NaN where not finite).
        nonfinite: ``[E]`` bool, the members whose step a non-finite number stopped
            (their parameters did not change).
        values: per-member values of this update by name, each ``[E]`` float64; the
            rule's ``RECORDS`` become curves, its ``TOTALS`` are summed per run.
    """

    loss: torch.Tensor
    grad_norm: torch.Tensor
    nonfinite: torch.Tensor
    values: dict[str, torch.Tensor]


class HFRule:
    """:class:`bptt.optim.HessianFree` behind the update-rule interface of the training loop.

    Args:
        model: the ensemble it trains (any of :data:`bptt.models.MODELS`); the loop
            passes the model it holds at each step, so the rule follows the model
            through retirements and checkpoint restores.
        damping: the initial Tikhonov damping λ₀ (default 1.0).
        structural_damping: μ (default 1/30 for Elman networks, 0 for models that do
            not expose their hidden pre-activations).
        cg_max_iters: the CG cap (default 250).
        cg_decay: ζ, the warm start's decay (default 0.95).
        cg_tolerance: ε of Martens' CG stopping rule (default 5·10⁻⁴).
        curvature_batch: the Gauss–Newton products use the first this many sequences
            of each update's batch (``None``: all of it).
        frozen: names that do not learn (default: the model's ``FIXED``, e.g. an
            echo-state network's reservoir, whose readout alone then trains).

    ``None`` leaves a setting at :class:`HessianFree`'s default.

    Raises:
        ValueError: a setting out of range (see :class:`HessianFree`).
    """

    name = "hessian-free"
    #: The loop hands this rule the model and the batch instead of gradients.
    takes_batches = True
    #: Per-update values written as curves (one point per HF iteration).
    RECORDS = ("hf_loss_before", "hf_loss_after", "hf_rho", "hf_damping", "hf_cg_iterations", "hf_accepted",
               "hf_step_size", "hf_wall_time")
    #: Per-update values summed, per member, into its run's metrics.
    TOTALS = ("hf_iterations", "hf_accepted", "hf_cg_iterations", "hf_gradient_evaluations",
              "hf_curvature_products", "hf_wall_time")
    #: The detail of the loop's ``nonfinite`` event for this rule.
    NONFINITE_EVENT = "non-finite loss, gradient or quadratic model: step rejected, damping raised"

    def __init__(self, model, *, damping: float | None = None, structural_damping: float | None = None,
                 cg_max_iters: int | None = None, cg_decay: float | None = None, cg_tolerance: float | None = None,
                 curvature_batch: int | None = None, frozen=None) -> None:
        given = {"damping": damping, "cg_max_iters": cg_max_iters, "cg_decay": cg_decay,
                 "cg_tolerance": cg_tolerance}
        self.hf = HessianFree(model, structural_damping=structural_damping, curvature_batch=curvature_batch,
                              frozen=frozen, **{k: v for k, v in given.items() if v is not None})
        self._pending: dict | None = None     # a loaded state waiting for the model it belongs to

    @property
    def ensemble(self) -> int:
        return len(self._pending["damping"]) if self._pending is not None else self.hf.ensemble

    @property
    def damping(self) -> torch.Tensor:
        """λ of each member now, ``[E]``."""
        return (self._pending if self._pending is not None else self.hf.state_dict())["damping"]

    # -- binding to the loop's model --------------------------------------------------------
    def _bind(self, model) -> None:
        """Point the optimizer at ``model``, the loop's ensemble now (a restored checkpoint's
        model is a new object): the members' state stays, or a loaded one takes its place."""
        if model is self.hf.model and self._pending is None:
            return
        E = next(iter(model.parameters())).shape[0]
        if self._pending is None and E != self.hf.ensemble:
            raise ValueError(f"the update rule holds the state of {self.hf.ensemble} members, the model {E}")
        if E > self.hf.ensemble:
            raise ValueError(f"the model holds {E} members, more than the {self.hf.ensemble} this rule was built for")
        self.hf.select(list(range(E)), model)
        if self._pending is not None:
            self.hf.load_state_dict(self._pending)
            self._pending = None

    # -- the update ---------------------------------------------------------------------------
    def step(self, model, batch) -> BatchStep:
        """One Hessian-free iteration of every member of ``model`` on ``batch``.

        Args:
            model: the loop's ensemble (its parameters are updated in place).
            batch: a :class:`bptt.training.loop.Batch`: ``x`` ``[T, E, B, I]`` or
                ``[T, B, I]`` and ``y``; no initial state, mask, per-member lengths or
                cost scale (Hessian-free runs on whole sequences from a zero state).

        Returns:
            :class:`BatchStep`.
        """
        for what, value in (("an initial state h0", batch.h0), ("a mask", batch.mask),
                            ("per-member lengths", batch.lengths)):
            if value is not None:
                raise ValueError(f"Hessian-free training takes whole sequences from a zero state, "
                                 f"not batches with {what}")
        if batch.scale != 1.0:
            raise ValueError("Hessian-free training takes batches whose cost is a plain mean (scale 1)")
        self._bind(model)
        rec = self.hf.step((batch.x, batch.y))
        E = rec.loss_before.shape[0]
        f64 = lambda t: t.to(torch.float64)  # noqa: E731
        values = {"hf_loss_before": f64(rec.loss_before), "hf_loss_after": f64(rec.loss_after),
                  "hf_rho": f64(rec.rho), "hf_damping": f64(rec.damping), "hf_cg_iterations": f64(rec.cg_iterations),
                  "hf_accepted": f64(rec.accepted), "hf_step_size": f64(rec.step_size),
                  "hf_wall_time": torch.full((E,), rec.wall_time, dtype=torch.float64),
                  "hf_iterations": torch.ones(E, dtype=torch.float64),
                  "hf_gradient_evaluations": f64(rec.gradient_evaluations),
                  "hf_curvature_products": f64(rec.curvature_products)}
        return BatchStep(loss=rec.loss_before, grad_norm=rec.grad_norm, nonfinite=rec.nonfinite.clone(),
                         values=values)

    def select(self, keep: list[int], model) -> None:
        """Keep the members at positions ``keep``, now held by ``model`` (each keeps its
        λ, CG warm start and non-finite count)."""
        if self._pending is not None:
            idx = torch.as_tensor(list(keep), dtype=torch.long)
            self._pending = {**self._pending, "damping": self._pending["damping"][idx],
                             "previous": self._pending["previous"][idx],
                             "nonfinite_count": self._pending["nonfinite_count"][idx]}
            self._bind(model)
            return
        self.hf.select(list(keep), model)

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's per-member state (tensors and numbers only)."""
        return {"name": self.name, "hf": dict(self._pending) if self._pending is not None else self.hf.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state saved by :meth:`state_dict`; it may hold fewer members than the
        model the rule was built with (members retired before the checkpoint), and then
        applies to the model the loop hands the next step."""
        if not isinstance(state, dict) or state.get("name") != self.name or not isinstance(state.get("hf"), dict):
            raise ValueError(f"a checkpoint of update rule {state.get('name') if isinstance(state, dict) else state!r}"
                             f" cannot load into {self.name!r}")
        inner = state["hf"]
        damping = inner.get("damping")
        if not isinstance(damping, torch.Tensor) or damping.dim() != 1:
            raise ValueError("not a Hessian-free state: expected a damping tensor [E]")
        if damping.shape[0] == self.hf.ensemble:
            self.hf.load_state_dict(inner)
            self._pending = None
        elif damping.shape[0] < self.hf.ensemble:
            self._pending = dict(inner)
        else:
            raise ValueError(f"the state holds {damping.shape[0]} members, more than the {self.hf.ensemble} "
                             f"of this rule's model")
