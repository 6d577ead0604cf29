"""Algorithm 1 and element-wise clipping for any PyTorch network, in place on ``.grad``.

:func:`clip_grad_norm_` is the paper's Algorithm 1 (§3.2) with the calling convention
of ``torch.nn.utils.clip_grad_norm_``; :func:`clip_grad_value_` is Mikolov's
element-wise clipping, which the paper compares it with. Both take parameters in every
form :func:`bptt.clip.gradients.collect` knows, and ensembles (one norm per member).

Non-finite norms
----------------
``nonfinite`` chooses what happens when a norm is NaN or ±inf (a gradient holds a NaN
or an inf, or the norm overflowed):

* ``"error"`` (default): raise ``RuntimeError`` before any gradient is touched;
* ``"skip"``: set that member's gradients to zero, so the optimizer's update does
  nothing for it (with plain SGD; an optimizer with momentum or weight decay still
  moves). The skip is reported by the returned norm itself: a gradient was zeroed
  exactly where the returned norm is not finite. The clipper objects also count it;
* ``"ignore"``: leave that member's gradients as they are (no clipping).

Host synchronisation: ``"error"`` must read the norm on the host to decide whether to
raise (one synchronisation per call on an accelerator). ``"skip"`` and ``"ignore"`` run
without one: the decisions are made by tensor operations on the device. A tensor
``max_norm``/``clip_value`` is checked on the host (one synchronisation); a float is not.
"""

from __future__ import annotations

import math

import torch

from bptt.clip import norm as ensemble_norm
from bptt.clip.gradients import Gradients, collect

NONFINITE_POLICIES = ("error", "skip", "ignore")


# -- checks at the boundary -------------------------------------------------------------
def check_policy(nonfinite: str) -> str:
    """Return ``nonfinite`` if it is one of ``"error"``, ``"skip"``, ``"ignore"``."""
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be 'error', 'skip' or 'ignore'; got {nonfinite!r}")
    return nonfinite


def check_positive(name: str, value) -> torch.Tensor | float:
    """A finite value > 0: a number (returned as a float) or a tensor of them."""
    if isinstance(value, torch.Tensor):
        if value.dim() > 1 or not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"{name} must be a number or a 1-D tensor of numbers, got {value!r}")
        if not bool(torch.isfinite(value).all()) or bool((value <= 0).any()):
            raise ValueError(f"{name} must be finite and > 0, got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(value)


def check_norm_type(norm_type) -> float:
    """The order p of the norm: a number > 0, or ``inf`` (also the string ``"inf"``)."""
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(f"norm_type must be a number > 0 or inf, got {norm_type!r}") from None
    if isinstance(norm_type, bool) or math.isnan(p) or p <= 0:
        raise ValueError(f"norm_type must be a number > 0 or inf (a p-norm), got {norm_type!r}")
    return p


def _check_members(name: str, value, gs: Gradients):
    """``value`` (checked positive) fits the gradients: one number, or one per member.

    Returns it, a one-element tensor as 0-dim.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.reshape(())
    if isinstance(value, torch.Tensor):
        if not gs.ensemble:
            raise ValueError(f"{name} has {value.numel()} values; a tensor of thresholds needs "
                             "ensemble=True (one per member)")
        if gs.members is not None and value.shape != (gs.members,):
            raise ValueError(f"{name} must be a number or [E] = [{gs.members}], "
                             f"got shape {tuple(value.shape)}")
    return value


def raise_if_nonfinite(norm: torch.Tensor, nonfinite: str) -> None:
    """Under ``nonfinite="error"``, raise ``RuntimeError`` for a non-finite norm (a host sync)."""
    if nonfinite != "error":
        return
    finite = torch.isfinite(norm)
    if bool(finite.all()):
        return
    where = (f"members {torch.nonzero(~finite).flatten().tolist()} have" if norm.dim()
             else "the total gradient norm is")
    raise RuntimeError(
        f"{where} a non-finite gradient norm ({norm.tolist()}), so the gradients cannot be "
        "clipped (nonfinite='error'). Pass nonfinite='skip' to zero those gradients (the "
        "update then does nothing) or nonfinite='ignore' to leave them unchanged.")


# -- the rule ---------------------------------------------------------------------------
def clip_to_threshold_(gs: Gradients, norm: torch.Tensor, threshold: torch.Tensor | float,
                       *, eps: float = 0.0, strict: bool = False) -> torch.Tensor:
    """Rescale in place every (member's) gradient whose norm reaches ``threshold``.

    ``g ← threshold / (‖g‖ + eps) · g`` where ``‖g‖ ≥ threshold`` (``>`` when
    ``strict``) and ``‖g‖`` is finite; other gradients are left alone. The factor is
    computed as PyTorch computes its own (``(‖g‖ + eps)⁻¹ · threshold``, at most 1).

    Args:
        gs: the gradients.
        norm: their norm, 0-dim or ``[E]``.
        threshold: a float, or a tensor broadcastable to ``norm``.
        eps: added to the norm in the factor's denominator.
        strict: clip only above the threshold, not at it.

    Returns:
        Bool tensor shaped like ``norm``: where the gradient was rescaled.
    """
    finite = torch.isfinite(norm)
    reached = norm > threshold if strict else norm >= threshold
    clipped = finite & reached
    denominator = norm + eps if eps else norm
    factor = denominator.reciprocal().mul(threshold).clamp(max=1.0)
    gs.scale_(torch.where(clipped, factor, 1.0))
    return clipped


def _clip_mapping_(gs: Gradients, max_norm, nonfinite: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's form: :func:`bptt.clip.norm.clip_by_global_norm`, written back in place."""
    grads = gs.mapping
    norm = ensemble_norm.global_norm(grads)
    raise_if_nonfinite(norm, nonfinite)
    # as a tensor (already checked): the same numbers, and no check of a float on the host
    threshold = torch.as_tensor(max_norm, dtype=norm.dtype, device=norm.device)
    clipped_grads, clipped = ensemble_norm.clip_by_global_norm(grads, threshold, norm)
    for name, g in grads.items():
        g.copy_(clipped_grads[name])
    if nonfinite == "skip":
        gs.zero_(~torch.isfinite(norm))
    return norm, clipped


def norm_clip_(gs: Gradients, max_norm, norm_type: float, eps: float, nonfinite: str
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1 on collected gradients (arguments already checked): ``(norm, clipped)``."""
    if not gs.grads:
        return gs.zero_norm(), torch.zeros(gs.member_shape, dtype=torch.bool)
    if gs.mapping is not None and gs.ensemble and norm_type == 2.0 and eps == 0.0:
        return _clip_mapping_(gs, max_norm, nonfinite)
    norm = gs.norm(norm_type)
    raise_if_nonfinite(norm, nonfinite)
    if isinstance(max_norm, torch.Tensor):
        max_norm = max_norm.to(norm.device, norm.dtype)
    clipped = clip_to_threshold_(gs, norm, max_norm, eps=eps)
    if nonfinite == "skip":
        gs.zero_(~torch.isfinite(norm))
    return norm, clipped


# -- public functions -------------------------------------------------------------------
def clip_grad_norm_(parameters, max_norm: float | torch.Tensor, norm_type: float = 2.0, *,
                    nonfinite: str = "error", ensemble: bool | None = None,
                    eps: float = 0.0) -> torch.Tensor:
    """Algorithm 1 of the paper (§3.2), in place on the gradients.

    ``ĝ ← ∂E/∂θ;  if ‖ĝ‖ ≥ threshold then ĝ ← threshold/‖ĝ‖ · ĝ``, with ``threshold =
    max_norm`` and ``‖·‖`` the p-norm of all gradients seen as one vector (of each
    member's gradients with an ensemble).

    Compared with ``torch.nn.utils.clip_grad_norm_``, which multiplies every gradient
    by ``min(1, c)`` with ``c = max_norm · (‖g‖ + 1e-6)⁻¹``:

    * the returned norm is the same number, bit for bit, for every ``norm_type``
      (computed in the same way); gradients whose norm is below the threshold are left
      bit for bit as PyTorch leaves them (unchanged);
    * where Algorithm 1 clips (``‖g‖ ≥ max_norm``) the factor is ``max_norm/‖g‖``, so
      the clipped norm is ``max_norm``; PyTorch's is ``max_norm/(‖g‖ + 1e-6)``, whose
      norm falls short of ``max_norm`` by about ``1e-6·max_norm/‖g‖``. With
      ``eps=1e-6`` the factor is PyTorch's, computed as PyTorch computes it, and the
      clipped gradients are PyTorch's bit for bit;
    * PyTorch scales whenever ``c < 1``, i.e. also for ``max_norm − 1e-6 < ‖g‖ <
      max_norm`` (to rounding), which Algorithm 1 leaves alone. At ``‖g‖ = max_norm``
      both rescale (Algorithm 1's ``≥``); with ``eps=0`` the factor there is 1 (to
      rounding), so only the clipper objects' ``clipped`` count shows it;
    * non-finite norms: PyTorch's default multiplies by ``min(1, c)`` anyway (NaN
      gradients for a NaN norm, zeros and NaNs for an infinite one); here ``nonfinite``
      decides (see the module's docstring).

    Args:
        parameters: a tensor, an iterable of tensors (a generator is fine), an
            ``nn.Module``, a bptt model, or a mapping name → ``[E, ...]`` gradient (the
            engine's form, clipped by :func:`bptt.clip.norm.clip_by_global_norm` for the
            2-norm, so the numbers are the training core's; written back in place).
            Parameters without ``.grad`` are skipped.
        max_norm: the threshold, finite and > 0; with an ensemble also a ``[E]`` tensor
            (one threshold per member).
        norm_type: p of the p-norm, > 0, or ``inf``.
        nonfinite: ``"error"``, ``"skip"`` or ``"ignore"``.
        ensemble: gradients are ``[E, ...]`` and each member is clipped on its own;
            ``None``: yes for bptt models and mappings, no otherwise.
        eps: added to ‖g‖ in the factor's denominator (0: Algorithm 1; 1e-6: PyTorch).

    Returns:
        The norm before clipping: 0-dim (PyTorch's ``tensor(0.)`` when no parameter has
        a gradient), or ``[E]`` with an ensemble. Where it is not finite under
        ``nonfinite="skip"``, the gradients were set to zero.

    Raises:
        ValueError: ``max_norm``, ``norm_type``, ``eps`` or ``nonfinite`` invalid;
            ensemble gradients whose leading sizes disagree (the message names them).
        RuntimeError: a non-finite norm under ``nonfinite="error"``.
    """
    max_norm = check_positive("max_norm", max_norm)
    norm_type = check_norm_type(norm_type)
    check_policy(nonfinite)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    gs = collect(parameters, ensemble)
    max_norm = _check_members("max_norm", max_norm, gs)
    with torch.no_grad():
        return norm_clip_(gs, max_norm, norm_type, float(eps), nonfinite)[0]


def clip_grad_value_(parameters, clip_value: float | torch.Tensor, *,
                     ensemble: bool | None = None) -> torch.Tensor:
    """Mikolov's element-wise clipping: every gradient component clamped to ``[−v, v]``.

    The numbers are those of ``torch.nn.utils.clip_grad_value_`` (a clamp is exact).
    NaN components stay NaN (a clamp does not change them) and do not count as
    clipped. No host synchronisation for a float ``clip_value``.

    Args:
        parameters: any form :func:`clip_grad_norm_` takes (a mapping of ``[E, ...]``
            gradients goes through :func:`bptt.clip.norm.clip_elementwise`).
        clip_value: ``v``, finite and > 0; with an ensemble also ``[E]``.
        ensemble: as in :func:`clip_grad_norm_`.

    Returns:
        Bool tensor: whether any component was changed, 0-dim, or ``[E]`` per member.
    """
    clip_value = check_positive("clip_value", clip_value)
    gs = collect(parameters, ensemble)
    clip_value = _check_members("clip_value", clip_value, gs)
    with torch.no_grad():
        if not gs.grads:
            return torch.zeros(gs.member_shape, dtype=torch.bool)
        if gs.mapping is not None and gs.ensemble:
            first = gs.grads[0]
            value = torch.as_tensor(clip_value, dtype=first.dtype, device=first.device)
            clipped_grads, clipped = ensemble_norm.clip_elementwise(gs.mapping, value)
            for name, g in gs.mapping.items():
                g.copy_(clipped_grads[name])
            return clipped
        peak = gs.norm(float("inf"))                 # max |g|, per member with an ensemble
        if isinstance(clip_value, torch.Tensor):
            clip_value = clip_value.to(peak.device, peak.dtype)
        clipped = peak > clip_value
        if isinstance(clip_value, torch.Tensor):
            for g in gs.grads:
                v = clip_value.to(g.device, g.dtype)
                v = v.reshape(-1, *([1] * (g.dim() - 1))) if gs.ensemble else v
                g.clamp_(min=-v, max=v)
        else:
            gs.clamp_(clip_value)
        return clipped
