"""Why long-term dependencies are hard to learn: the diagnostics of the paper's §2.

* :mod:`.gradient_flow`: the temporal components of the gradient (eqs. 4–5), the
  error signals ∂E/∂h_k and the Jacobian norms ‖∂h_t/∂h_k‖ (eq. 7).
* :mod:`.spectra`: singular values and eigenvalues of W_rec, the conditions
  λ₁ < 1/γ (vanishing guaranteed) and λ₁ > 1/γ (explosion possible), and the
  eigen-modes of the linear network (§2.1).
* :mod:`.lyapunov`: Lyapunov exponents of the autonomous and input-driven network.
* :mod:`.depth`: a signal backpropagated through shared (recurrent) versus untied
  (deep feedforward) random weights.
* :mod:`.plots`: their figures (styled by :mod:`.figure_style`).
* :mod:`.run_record`: the training record of a stored run, read back and drawn.

Everything works on one member (``member=0`` by default) of an ensemble model, in
float64, and returns NumPy arrays or small frozen dataclasses. ``error_signal_norms``,
``jacobian_norms``, ``gradient_flow``, ``lyapunov_exponents`` and
``recurrent_conditions`` also take any recurrent PyTorch module wrapped in
:class:`bptt.omega.Omega` (:mod:`.recurrent`), with the loss as a callable of what the
wrapper returns; on a one-layer ``nn.RNN`` they equal the engine path's results.
"""

from .depth import DepthExperiment, backprop_norms, depth_experiment, growth_rate
from .gradient_flow import (
    COMPONENT_PARAMS,
    ErrorSignalNorms,
    GradientFlow,
    JacobianNorms,
    error_signal_norms,
    gradient_flow,
    jacobian_norms,
    member_params,
)
from .lyapunov import LyapunovSpectrum, lyapunov_exponents, model_lyapunov
from .recurrent import Recurrence, is_wrapped
from .spectra import (
    EXPLOSION_POSSIBLE,
    VANISHING,
    LinearModes,
    RecurrentConditions,
    Spectrum,
    linear_modes,
    model_spectrum,
    recurrent_conditions,
    singular_values,
    spectrum,
)

__all__ = [
    "COMPONENT_PARAMS",
    "DepthExperiment",
    "ErrorSignalNorms",
    "EXPLOSION_POSSIBLE",
    "GradientFlow",
    "JacobianNorms",
    "LinearModes",
    "LyapunovSpectrum",
    "Recurrence",
    "RecurrentConditions",
    "Spectrum",
    "VANISHING",
    "backprop_norms",
    "depth_experiment",
    "error_signal_norms",
    "gradient_flow",
    "growth_rate",
    "is_wrapped",
    "jacobian_norms",
    "linear_modes",
    "lyapunov_exponents",
    "member_params",
    "model_lyapunov",
    "model_spectrum",
    "recurrent_conditions",
    "singular_values",
    "spectrum",
]
