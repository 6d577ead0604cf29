"""The vanishing-gradient regularizer Ω (paper §3.3, eqs. 9 and 10): the formula, once.

Ω asks the backpropagated error to keep its norm as it travels one step back in time:

    Ω = Σ_k Ω_k,   Ω_k = ( ‖δ_{k+1} ∂x_{k+1}/∂x_k‖ / ‖δ_{k+1}‖ − 1 )²          (eq. 9)

where δ_{k+1} = ∂E/∂x_{k+1} is the error signal at step k+1. Following eq. 10, the
gradient of Ω is taken with δ_{k+1} and the states held constant, so that Ω
influences the recurrent weights only through the one explicit factor W_rec inside
∂x_{k+1}/∂x_k.

Here (as in the paper's reference implementation) the state x_k is the hidden vector
h_k of ``h_k = σ(h_{k-1} W_rec + u_k W_in + b)``, so with g_{k+1} = ∂E/∂h_{k+1}

    g_{k+1} ∂h_{k+1}/∂h_k = (g_{k+1} ⊙ σ'(a_{k+1})) W_rec^T =: v_k,

which is exactly the recurrent part of ∂E/∂h_k that backpropagation computes anyway.
Two variants:

* ``"squared"`` (the reference implementation's, the default):
  Ω_k = (‖v_k‖² / ‖g_{k+1}‖² − 1)²;
* ``"plain"`` (eq. 9 as printed): Ω_k = (‖v_k‖ / ‖g_{k+1}‖ − 1)².

Pairs (k, sequence) whose ‖g_{k+1}‖² is below ``bound`` (1e-20) carry no usable
direction and are left out; Ω is the mean of Ω_k over the pairs that entered, and the
fraction of pairs that entered is reported with it. k runs over every step, the step
into the initial state h_0 included.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

OMEGA_VARIANTS = ("squared", "plain")

#: Pairs whose ‖∂E/∂h_{k+1}‖² is below this are left out of Ω (reference code's bound).
OMEGA_BOUND = 1e-20


def check_omega(variant: str | None) -> str | None:
    if variant is not None and variant not in OMEGA_VARIANTS:
        raise ValueError(
            f"unknown omega variant {variant!r}; choose one of {', '.join(OMEGA_VARIANTS)} or None"
        )
    return variant


@dataclass(frozen=True)
class OmegaTerms:
    """Ω per ensemble member and its gradient with respect to v_k.

    Attributes:
        omega: ``[E]`` mean of Ω_k over the pairs that entered (0 where none did).
        fraction: ``[E]`` fraction of the (step, sequence) pairs that entered.
        coef: ``[T, E, B]`` c_k with ∂Ω/∂v_k = c_k · v_k (0 for pairs left out), so
            that Ω's gradient with respect to W_rec is
            ``Σ_k c_k v_k^T (g_{k+1} ⊙ σ'(a_{k+1}))`` (eq. 10).
    """

    omega: torch.Tensor
    fraction: torch.Tensor
    coef: torch.Tensor


def omega_terms(
    v_norm2: torch.Tensor,
    g_norm2: torch.Tensor,
    variant: str = "squared",
    *,
    n_pairs: torch.Tensor | float | None = None,
    bound: float = OMEGA_BOUND,
) -> OmegaTerms:
    """Ω (eq. 9, or the reference code's squared form) and ∂Ω/∂v, per ensemble member.

    Args:
        v_norm2: ``[T, E, B]`` ‖v_k‖², with v_k = g_{k+1} ∂h_{k+1}/∂h_k, k = 0..T−1.
        g_norm2: ``[T, E, B]`` ‖g_{k+1}‖² = ‖∂E/∂h_{k+1}‖².
        variant: ``"squared"`` or ``"plain"``.
        n_pairs: the number of (step, sequence) pairs the fraction is taken over
            (default T·B; pass the number of unpadded steps for masked batches).
        bound: pairs with ‖g_{k+1}‖² < bound are left out.

    Returns:
        :class:`OmegaTerms`.
    """
    T, E, B = v_norm2.shape
    entered = g_norm2 >= bound                                   # [T,E,B]
    safe_d = torch.where(entered, g_norm2, torch.ones_like(g_norm2))
    ratio = torch.where(entered, v_norm2 / safe_d, torch.ones_like(v_norm2))
    if variant == "squared":
        # Ω_k = (r − 1)², r = ‖v‖²/d:  ∂Ω_k/∂v = 2 (r − 1) · 2 v / d
        dev = ratio - 1.0
        term = dev * dev
        coef = 4.0 * dev / safe_d
    elif variant == "plain":
        # Ω_k = (√r − 1)²:  ∂Ω_k/∂v = 2 (1 − 1/√r) v / d; zero where v = 0 (no direction)
        root = ratio.sqrt()
        dev = root - 1.0
        term = dev * dev
        inv_root = torch.where(root > 0, 1.0 / root.clamp_min(1e-300), torch.zeros_like(root))
        coef = torch.where(root > 0, 2.0 * (1.0 - inv_root) / safe_d, torch.zeros_like(root))
    else:
        raise ValueError(f"unknown omega variant {variant!r}")
    entered_f = entered.to(v_norm2.dtype)
    count = entered_f.sum(dim=(0, 2))                            # [E]
    denom = count.clamp_min(1.0)
    omega = (term * entered_f).sum(dim=(0, 2)) / denom
    if n_pairs is None:
        n_pairs = float(T * B)
    fraction = count / n_pairs
    return OmegaTerms(omega=omega, fraction=fraction, coef=(coef * entered_f) / denom[None, :, None])
