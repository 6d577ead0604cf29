"""The spectrum of W_rec and what it says about vanishing and exploding (paper §2.1).

Backpropagating through one step multiplies the error signal by the Jacobian
∂x_{k+1}/∂x_k = W_recᵀ diag(σ'(x_k)), whose norm is at most η = λ₁ γ, with λ₁ the
largest singular value of W_rec and γ the bound on |σ'| (1 for tanh, 1/4 for
sigmoid units). Hence (eq. 7) ‖∂x_t/∂x_k‖ ≤ η^(t−k): λ₁ < 1/γ is *sufficient* for the
long-term components to vanish, and λ₁ > 1/γ is *necessary*, but not sufficient,
for them to explode.

In the linear case (σ = identity) the Jacobian is W_rec itself, and the error signal
decomposes over the eigenvectors of W_rec: the part along an eigenvector with
eigenvalue λ is multiplied by λ at every step back, so it decays when |λ| < 1 and
grows when |λ| > 1 (the paper's linear argument, §2.1).

Singular values and eigenvalues do not depend on the storage convention: this
library stores W_recᵀ (row vectors, see :class:`bptt.models.ElmanRNN`), which has
the same singular values and eigenvalues as the paper's W_rec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bptt.engine.units import GAMMA, check_unit

__all__ = [
    "VANISHING",
    "EXPLOSION_POSSIBLE",
    "RecurrentConditions",
    "LinearModes",
    "Spectrum",
    "as_square_matrix",
    "singular_values",
    "recurrent_conditions",
    "linear_modes",
    "spectrum",
    "model_spectrum",
]

VANISHING = "vanishing guaranteed"
EXPLOSION_POSSIBLE = "explosion possible"


def as_square_matrix(W, name: str = "W_rec") -> np.ndarray:
    """A finite, square, float64 NumPy matrix from an array or tensor ``[H, H]``."""
    if hasattr(W, "detach"):
        W = W.detach().to("cpu").double().numpy()
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"{name} must be a square [H, H] matrix, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError(f"{name} has non-finite entries")
    return W


def singular_values(W) -> np.ndarray:
    """Singular values of ``W``, largest first."""
    return np.linalg.svd(as_square_matrix(W), compute_uv=False)


@dataclass(frozen=True)
class RecurrentConditions:
    """The paper's conditions for vanishing and exploding gradients (§2.1).

    Attributes:
        unit: the recurrent unit.
        lambda1: largest singular value λ₁ of W_rec.
        gamma: γ, the bound on |σ'| for the unit.
        threshold: 1/γ, the value of λ₁ that separates the two regimes.
        eta: η = λ₁ γ, the bound on the norm of each step's Jacobian (eq. 7).
        spectral_radius: ρ, the largest |eigenvalue| of W_rec.
        verdict: ``"vanishing guaranteed"`` when λ₁ < 1/γ, else ``"explosion possible"``.
    """

    unit: str
    lambda1: float
    gamma: float
    threshold: float
    eta: float
    spectral_radius: float
    verdict: str

    @property
    def vanishing_guaranteed(self) -> bool:
        return self.verdict == VANISHING


def recurrent_conditions(W_rec, unit: str = "tanh") -> RecurrentConditions:
    """λ₁, γ, 1/γ, ρ and the verdict of §2.1 for a recurrent weight matrix ``[H, H]``.

    λ₁ < 1/γ guarantees that every long-term component vanishes (exponentially fast,
    as η^(t−k)); λ₁ ≥ 1/γ only makes explosion possible, it does not cause it.

    ``W_rec`` may instead be a one-layer Elman-type module wrapped in
    :class:`bptt.omega.Omega` (``nn.RNN``, ``nn.RNNCell``, a user cell declaring its
    recurrent weight); its weight and unit are used and ``unit`` is ignored. The
    conditions are stated for that map only: for gated cells (LSTM, GRU) or several
    layers there is no single W_rec and γ, and a ValueError says so.
    """
    from bptt.diagnostics.recurrent import elman_weight, is_wrapped

    if is_wrapped(W_rec):
        ew = elman_weight(W_rec)
        if ew is None:
            raise ValueError("the conditions of §2.1 are defined for a one-layer Elman-type map "
                             "h' = σ(h W_rec + …) (nn.RNN with num_layers=1, nn.RNNCell, or a user "
                             "cell given recurrent_weight=); use jacobian_norms or "
                             "lyapunov_exponents for this module")
        W_rec, unit = ew
    W = as_square_matrix(W_rec)
    unit = check_unit(unit)
    lam1 = float(np.linalg.svd(W, compute_uv=False)[0])
    gamma = float(GAMMA[unit])
    rho = float(np.abs(np.linalg.eigvals(W)).max())
    verdict = VANISHING if lam1 < 1.0 / gamma else EXPLOSION_POSSIBLE
    return RecurrentConditions(unit=unit, lambda1=lam1, gamma=gamma, threshold=1.0 / gamma,
                               eta=lam1 * gamma, spectral_radius=rho, verdict=verdict)


@dataclass(frozen=True)
class LinearModes:
    """The eigen-decomposition view of the linear network (σ = identity).

    In the paper's column convention x_t = W_rec x_{t−1}, one step forward multiplies
    the part of the state along eigenvector i of W_rec by λ_i, and one step back
    multiplies the part of the error signal along eigenvector i of W_recᵀ by the same
    λ_i: |λ_i| < 1 makes that component vanish over long lags, |λ_i| > 1 makes it
    explode. Entries are sorted by |λ|, largest first.

    Attributes:
        eigenvalues: ``[H]`` complex eigenvalues λ_i.
        vectors: ``[H, H]`` complex eigenvectors of the paper's W_rec (the transpose
            of what :class:`bptt.models.ElmanRNN` stores), column i for λ_i.
        factor: ``[H]`` |λ_i|, the factor per step.
        behaviour: ``"decays"`` (|λ| < 1), ``"grows"`` (|λ| > 1) or ``"persists"``
            (|λ| = 1 within ``tol``), per mode.
        half_life: ``[H]`` steps for a decaying mode to halve, ln 2 / −ln|λ|
            (0 for λ = 0); NaN for the others.
        doubling_time: ``[H]`` steps for a growing mode to double, ln 2 / ln|λ|;
            NaN for the others.
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    factor: np.ndarray
    behaviour: tuple[str, ...]
    half_life: np.ndarray
    doubling_time: np.ndarray

    @property
    def decaying(self) -> np.ndarray:
        """Indices of the modes that decay."""
        return np.flatnonzero(np.asarray(self.behaviour) == "decays")

    @property
    def growing(self) -> np.ndarray:
        """Indices of the modes that grow."""
        return np.flatnonzero(np.asarray(self.behaviour) == "grows")

    @property
    def spectral_radius(self) -> float:
        return float(self.factor[0])


def linear_modes(W_rec, tol: float = 1e-12) -> LinearModes:
    """Which directions decay and which grow in the linear network, and how fast.

    Args:
        W_rec: the recurrent weights ``[H, H]`` (either convention: the eigenvalues
            are those of its transpose too; the vectors are for the paper's W_rec,
            i.e. the transpose of what :class:`bptt.models.ElmanRNN` stores).
        tol: |λ| within ``tol`` of 1 counts as neither decaying nor growing.
    """
    W = as_square_matrix(W_rec)
    vals, vecs = np.linalg.eig(W.T)
    order = np.lexsort((-vals.imag, -vals.real, -np.abs(vals)))
    vals, vecs = vals[order], vecs[:, order]
    mag = np.abs(vals)
    behaviour = tuple("persists" if abs(m - 1.0) <= tol else ("decays" if m < 1 else "grows")
                      for m in mag)
    half = np.full(mag.size, np.nan)
    double = np.full(mag.size, np.nan)
    ln2 = math.log(2.0)
    for i, (m, b) in enumerate(zip(mag, behaviour)):
        if b == "decays":
            half[i] = 0.0 if m == 0 else ln2 / -math.log(m)
        elif b == "grows":
            double[i] = ln2 / math.log(m)
    return LinearModes(eigenvalues=vals.astype(complex), vectors=vecs.astype(complex),
                       factor=mag, behaviour=behaviour, half_life=half, doubling_time=double)


@dataclass(frozen=True)
class Spectrum:
    """Singular values, eigenvalues and the §2.1 conditions of one W_rec."""

    singular_values: np.ndarray
    eigenvalues: np.ndarray
    conditions: RecurrentConditions
    label: str = ""

    @property
    def unit(self) -> str:
        return self.conditions.unit


def spectrum(W_rec, unit: str = "tanh", label: str = "") -> Spectrum:
    """Everything :func:`bptt.diagnostics.plots.plot_spectra` draws, for one matrix."""
    W = as_square_matrix(W_rec)
    modes = linear_modes(W)
    return Spectrum(singular_values=singular_values(W), eigenvalues=modes.eigenvalues,
                    conditions=recurrent_conditions(W, unit), label=label)


def model_spectrum(model, member: int = 0, label: str = "") -> Spectrum:
    """:func:`spectrum` of member ``member`` of an :class:`bptt.models.ElmanRNN` (or of a
    one-layer Elman-type module wrapped in :class:`bptt.omega.Omega`)."""
    from bptt.diagnostics.gradient_flow import member_params
    from bptt.diagnostics.recurrent import elman_weight, is_wrapped

    if is_wrapped(model):
        conditions = recurrent_conditions(model)
        W = elman_weight(model)[0]
        return spectrum(W, conditions.unit, label=label)

    return spectrum(member_params(model, member)["W_rec"], model.unit, label=label)
