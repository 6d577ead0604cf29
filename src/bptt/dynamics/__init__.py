"""One-unit recurrent network dynamics (Pascanu, Mikolov & Bengio 2013, §2.2-2.3).

:mod:`.unit_map` holds the map ``x_t = w u(x_{t-1}) + b`` and its iteration;
:mod:`.fixed_points` its fixed points, folds and bifurcation diagram; :mod:`.basins`
the basins of attraction and orbits across their boundary; :mod:`.cliff` the error
surface of Figure 6 with exact gradients and gradient descent with and without norm
clipping; :mod:`.linear` the linear case; :mod:`.plots` draws them.
"""

from bptt.dynamics.basins import (
    Basins,
    PerturbationPair,
    Trajectories,
    basins,
    compare_pairs,
    default_basin_b_range,
    perturbation_pairs,
    trajectories,
)
from bptt.dynamics.cliff import (
    CliffDemo,
    DescentPath,
    ErrorSurface,
    cliff_demo,
    descent_trajectory,
    error_surface,
    loss_and_grad,
)
from bptt.dynamics.fixed_points import (
    Bifurcation,
    Fold,
    bifurcation,
    critical_points,
    default_b_range,
    fixed_points,
    fold_points,
)
from bptt.dynamics.linear import LinearDerivatives, linear_derivatives, linear_iterate
from bptt.dynamics.unit_map import UNITS, activation, iterate, orbit

__all__ = [
    "UNITS",
    "Basins",
    "Bifurcation",
    "CliffDemo",
    "DescentPath",
    "ErrorSurface",
    "Fold",
    "LinearDerivatives",
    "PerturbationPair",
    "Trajectories",
    "activation",
    "basins",
    "bifurcation",
    "cliff_demo",
    "compare_pairs",
    "critical_points",
    "default_b_range",
    "default_basin_b_range",
    "descent_trajectory",
    "error_surface",
    "fixed_points",
    "fold_points",
    "iterate",
    "linear_derivatives",
    "linear_iterate",
    "loss_and_grad",
    "orbit",
    "perturbation_pairs",
    "trajectories",
]
