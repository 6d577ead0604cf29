"""Adaptive gradient clipping, unit-wise (Brock, De, Smith & Simonyan, "High-performance
large-scale image recognition without normalization", ICML 2021, §4).

Each unit's gradient is kept small relative to the unit's weights: for unit i with
weights W_i and gradient G_i,

    if ‖G_i‖ > λ · max(‖W_i‖, ε) then G_i ← λ · max(‖W_i‖, ε) / ‖G_i‖ · G_i,

with λ = ``clipping`` and ε = ``eps`` (which keeps zero-initialised units from being
frozen at zero). The norms are Frobenius norms over the unit's fan-in.
"""

from __future__ import annotations

import torch

from bptt.clip.clipper import Clipper
from bptt.clip.functional import check_positive
from bptt.clip.gradients import Gradients

LAYOUTS = ("auto", "out_in", "in_out")


class AGC(Clipper):
    """Unit-wise adaptive gradient clipping (Brock et al. 2021), see the module docstring.

    What a unit is, per parameter (after the member axis, with an ensemble):

    * a weight of two or more axes in PyTorch's layout (``layout="out_in"``: ``nn.Linear``
      ``[out, in]``, ``nn.LSTM`` ``[4H, in]``, convolutions ``[out, in, kh, kw]``): each
      index of the first axis is a unit, its norm taken over all other axes;
    * a weight in the row-vector layout of bptt's models (``layout="in_out"``:
      ``W_rec``, ``W_in``, ``W_out`` are ``[E, in, out]``, h ← σ(h W + ...)): each index of
      the last axis is a unit, its norm taken over all other axes;
    * a 1-D parameter (a bias, a gain: ``[H]``, or ``[E, H]`` with an ensemble) is one
      unit: its whole vector, as in the authors' reference code;
    * a scalar parameter (``[]``, or ``[E]`` with an ensemble) is its own unit.

    The paper does not clip the final classifier layer; pass only the parameters you
    want clipped (e.g. all but the head's). Returns the 2-norm of all gradients before
    clipping (per member); ``clipped`` counts updates in which any unit was clipped.
    A member whose total norm is not finite is handled by ``nonfinite`` as a whole
    (``"ignore"`` leaves all its gradients unchanged). AGC needs the weights, so it
    takes parameters (or a model), not a mapping of gradients.

    Args:
        clipping: λ, finite and > 0 (paper: 0.01 for large batches; larger for small).
        eps: ε, finite and > 0 (paper: 1e-3).
        layout: ``"out_in"``, ``"in_out"``, or ``"auto"``: ``"in_out"`` for bptt
            models (objects with a ``.params`` mapping), ``"out_in"`` otherwise.
        nonfinite: ``"error"``, ``"skip"`` or ``"ignore"``.
    """

    needs_weights = True

    def __init__(self, clipping: float = 0.01, eps: float = 1e-3, *, layout: str = "auto",
                 nonfinite: str = "error") -> None:
        super().__init__(nonfinite=nonfinite)
        for name, value in (("clipping", clipping), ("eps", eps)):
            if isinstance(check_positive(name, value), torch.Tensor):
                raise ValueError(f"{name} must be a number")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be 'auto', 'out_in' or 'in_out'; got {layout!r}")
        self.clipping, self.eps, self.layout = float(clipping), float(eps), layout

    def hyperparameters(self) -> dict:
        return {"clipping": self.clipping, "eps": self.eps, "layout": self.layout}

    def _unit_dims(self, dim: int, lead: int, row_vector: bool) -> tuple[int, ...] | None:
        """The axes a unit's norm runs over (``None``: each element is a unit)."""
        own = dim - lead                                  # axes after the member axis
        if own == 0:
            return None
        if own == 1:
            return (lead,)
        in_out = self.layout == "in_out" or (self.layout == "auto" and row_vector)
        axes = range(lead, dim - 1) if in_out else range(lead + 1, dim)
        return tuple(axes)

    def _clip_(self, gs: Gradients, norm: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
        lead = 1 if gs.ensemble else 0
        any_clipped = torch.zeros(norm.shape, dtype=torch.bool, device=norm.device)
        keep = finite if self.nonfinite != "error" else None
        for p, g in zip(gs.params, gs.grads):
            dims = self._unit_dims(g.dim(), lead, gs.row_vector)
            if dims is None:
                g_norm, w_norm = g.abs(), p.detach().abs()
            else:
                g_norm = torch.linalg.vector_norm(g, 2, dim=dims, keepdim=True)
                w_norm = torch.linalg.vector_norm(p.detach(), 2, dim=dims, keepdim=True)
            limit = self.clipping * w_norm.clamp(min=self.eps)
            fire = g_norm > limit
            if keep is not None:
                fire &= keep.to(g.device).reshape(-1, *([1] * (g.dim() - 1))) if lead else keep.to(g.device)
            g.mul_(torch.where(fire, limit / g_norm, 1.0))
            hit = fire.reshape(fire.shape[0], -1).any(1) if lead else fire.any()
            any_clipped |= hit.to(norm.device)
        return any_clipped
