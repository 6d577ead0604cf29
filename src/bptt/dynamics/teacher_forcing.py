"""Teacher forcing on the one-unit network (Doya 1993) and the bifurcation it avoids.

Doya ("Bifurcations of recurrent neural networks in gradient descent learning", 1993)
showed that a recurrent network trained by gradient descent meets bifurcations: when
the parameters cross a fold (saddle-node point) of the map, the attractor the state
sits on vanishes, the state jumps to another one, the loss jumps and the gradient
spikes; the paper (Pascanu, Mikolov & Bengio 2013, §2.2 and the discussion of Fig. 6)
takes this up as one source of exploding gradients. Teacher forcing is the remedy he
discusses: the state is reset to the target at every step, so the loss is a sum of
one-step transitions and its gradient never flows through the long-run dynamics.

The network is the map of :mod:`.unit_map`, ``x_t = w u(x_{t-1}) + b`` with the state
as its output, trained to follow a target trajectory ``y_1..y_T`` from ``x_0``
(a constant trajectory asks for a fixed point):

* free running: ``L = (1/T) Σ_t (x_t − y_t)²`` with ``x_t`` iterated from ``x_0``;
  the exact gradient by forward-mode recursion (as in :mod:`.cliff`),
  ``∂x_t/∂w = u(x_{t−1}) + w u'(x_{t−1}) ∂x_{t−1}/∂w``,
  ``∂x_t/∂b = 1 + w u'(x_{t−1}) ∂x_{t−1}/∂b``;
* teacher forced: ``L = (1/T) Σ_t (x̂_t − y_t)²`` with ``x̂_t = w u(y_{t−1}) + b``
  (``y_0 = x_0``): the state is the target before each step, so
  ``∂L/∂w = (2/T) Σ_t (x̂_t − y_t) u(y_{t−1})`` and ``∂L/∂b = (2/T) Σ_t (x̂_t − y_t)``.

Everything is float64 NumPy; the figure is :func:`bptt.dynamics.plots_teacher_forcing.plot_teacher_forcing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bptt.dynamics.fixed_points import fold_points
from bptt.dynamics.unit_map import activation, check_count, check_finite, check_positive

__all__ = ["TrainingPath", "TeacherForcingDemo", "target_trajectory", "free_loss_and_grad",
           "forced_loss_and_grad", "train_one_unit", "bistable", "fold_crossings", "teacher_forcing_demo"]

#: The parameters that may train.
TRAINABLE = ("w", "b")


def target_trajectory(target, steps: int | None = None) -> np.ndarray:
    """The target trajectory ``y_1..y_T`` as a float64 array.

    Args:
        target: a number (a fixed point to reach: the constant trajectory of length
            ``steps``) or a sequence of numbers (the trajectory itself).
        steps: T, for a number.

    Raises:
        ValueError: for anything else. Teacher forcing needs a target for the state at
            every step; the pathological tasks of §4.1 (a task name) only score an
            output at the end of the sequence, so they have none.
    """
    from bptt import tasks as task_registry

    if isinstance(target, str):
        if target in task_registry.names():
            raise ValueError(f"teacher forcing needs a target state at every step; the task {target!r} "
                             f"has no target trajectory (it scores outputs, not states): give a fixed point "
                             f"(a number) or a trajectory (a list of numbers)")
        try:
            target = float(target)
        except ValueError:
            raise ValueError(f"target must be a number (a fixed point) or a list of numbers (a trajectory), "
                             f"got {target!r}") from None
    if np.ndim(target) == 0:
        if steps is None:
            raise ValueError("a fixed-point target needs the number of steps T")
        steps = check_count(steps, "steps", 1)
        return np.full(steps, check_finite(target, "target"))
    try:
        y = np.asarray(target, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"target must be a number or a list of numbers, got {target!r}") from None
    if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
        raise ValueError(f"a target trajectory must be a non-empty list of finite numbers, got shape {y.shape}")
    return y


def free_loss_and_grad(w: float, b: float, x0: float, target: np.ndarray,
                       unit: str = "sigmoid") -> tuple[float, float, float, np.ndarray]:
    """The free-running loss and its exact gradient.

    Returns:
        ``(L, ∂L/∂w, ∂L/∂b, x)`` with ``x`` the states ``x_0..x_T`` ``[T + 1]``.
    """
    u = activation(unit)
    T = len(target)
    x = np.empty(T + 1)
    x[0] = x0
    dw = db = 0.0
    gw = gb = 0.0
    for t in range(1, T + 1):
        f, jac = float(u.f(x[t - 1])), w * float(u.df(x[t - 1]))
        dw, db = f + jac * dw, 1.0 + jac * db
        x[t] = w * f + b
        r = x[t] - target[t - 1]
        gw += r * dw
        gb += r * db
    loss = float(np.mean((x[1:] - target) ** 2))
    return loss, 2.0 * gw / T, 2.0 * gb / T, x


def forced_loss_and_grad(w: float, b: float, x0: float, target: np.ndarray,
                         unit: str = "sigmoid") -> tuple[float, float, float, np.ndarray]:
    """The teacher-forced loss (one-step transitions from the targets) and its gradient.

    Returns:
        ``(L, ∂L/∂w, ∂L/∂b, x̂)`` with ``x̂`` the forced predictions ``x̂_1..x̂_T`` ``[T]``.
    """
    u = activation(unit)
    prev = np.concatenate(([x0], target[:-1]))                   # y_0..y_{T-1}
    f = u.f(prev)
    pred = w * f + b
    r = pred - target
    T = len(target)
    return float(np.mean(r * r)), float(2.0 * np.sum(r * f) / T), float(2.0 * np.sum(r) / T), pred


@dataclass(frozen=True)
class TrainingPath:
    """Gradient descent on the one-unit network, with or without teacher forcing.

    ``params[k] = (w_k, b_k)``, ``k = 0..n``; ``loss[k]`` the loss minimised and
    ``free_loss[k]`` the free-running loss at ``params[k]`` (equal without forcing);
    ``grad_norm[k]`` ``‖∂L/∂(w, b)‖`` of the loss minimised (trained parameters only)
    and ``free_grad_norm[k]`` that of the free-running loss; ``x_final[k]`` the free-running
    state ``x_T`` (where the network actually goes).
    """

    params: np.ndarray
    loss: np.ndarray
    free_loss: np.ndarray
    grad_norm: np.ndarray
    free_grad_norm: np.ndarray
    x_final: np.ndarray
    forcing: bool
    lr: float
    train: tuple[str, ...]
    unit: str

    @property
    def label(self) -> str:
        return "teacher forcing" if self.forcing else "free running (BPTT)"


def train_one_unit(w0: float, b0: float, target, *, x0: float = -2.0, steps: int = 30,
                   lr: float = 0.1, n_steps: int = 300, forcing: bool = False,
                   train: tuple[str, ...] = TRAINABLE, unit: str = "sigmoid") -> TrainingPath:
    """Plain gradient descent on ``(w, b)`` from ``(w0, b0)``.

    Args:
        w0, b0: the initial parameters.
        target: a fixed point (a number) or a trajectory (see :func:`target_trajectory`).
        x0: the initial state.
        steps: T, for a fixed-point target.
        lr: the learning rate.
        n_steps: gradient descent steps.
        forcing: train on the teacher-forced loss instead of the free-running one.
        train: the parameters that train (``("w", "b")``, ``("b",)`` or ``("w",)``).
        unit: ``"sigmoid"`` (Doya's) or ``"tanh"``.

    Returns:
        :class:`TrainingPath`.
    """
    activation(unit)
    w, b = check_finite(w0, "w0"), check_finite(b0, "b0")
    x0 = check_finite(x0, "x0")
    lr = check_positive(lr, "lr")
    n_steps = check_count(n_steps, "n_steps", 0)
    train = tuple(train)
    if not train or any(p not in TRAINABLE for p in train) or len(set(train)) != len(train):
        raise ValueError(f"train must name some of {TRAINABLE}, got {train!r}")
    y = target_trajectory(target, steps)
    mask = np.array([p in train for p in TRAINABLE], dtype=float)
    params = np.empty((n_steps + 1, 2))
    loss, free_loss, x_final = (np.empty(n_steps + 1) for _ in range(3))
    norm, free_norm = np.empty(n_steps + 1), np.empty(n_steps + 1)
    for k in range(n_steps + 1):
        params[k] = (w, b)
        fl, fw, fb, xs = free_loss_and_grad(w, b, x0, y, unit)
        free_loss[k], x_final[k] = fl, xs[-1]
        free_norm[k] = float(np.hypot(*(mask * (fw, fb))))
        if forcing:
            L, gw, gb, _ = forced_loss_and_grad(w, b, x0, y, unit)
        else:
            L, gw, gb = fl, fw, fb
        g = mask * (gw, gb)
        loss[k], norm[k] = L, float(np.hypot(*g))
        if k < n_steps:
            w, b = w - lr * g[0], b - lr * g[1]
    return TrainingPath(params=params, loss=loss, free_loss=free_loss, grad_norm=norm,
                        free_grad_norm=free_norm, x_final=x_final, forcing=bool(forcing), lr=lr,
                        train=train, unit=activation(unit).name)


def bistable(w: float, b: float, unit: str = "sigmoid") -> bool:
    """Whether ``(w, b)`` lies between the two folds (two stable fixed points)."""
    folds = fold_points(w, unit)
    return len(folds) == 2 and folds[0].b < b < folds[1].b


def fold_crossings(params: np.ndarray, unit: str = "sigmoid") -> list[int]:
    """The iterations ``k`` at which ``params[k] → params[k + 1]`` crosses a fold
    (enters or leaves the bistable region; :func:`bptt.dynamics.fixed_points.fold_points`)."""
    inside = [bistable(float(w), float(b), unit) for w, b in params]
    return [k for k in range(len(inside) - 1) if inside[k] != inside[k + 1]]


@dataclass(frozen=True)
class TeacherForcingDemo:
    """The same start and target trained free running and with teacher forcing."""

    free: TrainingPath
    forced: TrainingPath
    target: np.ndarray
    x0: float


def teacher_forcing_demo(w0: float = 5.0, b0: float = -2.8, target=2.0, *, x0: float = -2.0,
                         steps: int = 50, lr: float = 0.001, n_steps: int = 600,
                         train: tuple[str, ...] = ("b",), unit: str = "sigmoid") -> TeacherForcingDemo:
    """Doya's experiment: from the lower attractor, learn to sit at the high fixed point
    ``target`` (or follow a trajectory), by BPTT on the free-running loss and with teacher
    forcing. Free running, the parameters cross the fold where the lower attractor
    vanishes and the gradient spikes there; forced, the same crossing leaves no mark.

    With the defaults (Doya's w = 5 sigmoid unit, only b trains) the free-running path
    leaves the bistable region at the fold b = −2.344, where the lower attractor
    vanishes, between iterations 25 and 26, and its gradient norm jumps from about 20 to
    256 there; the forced gradient stays below 1 throughout (it converges to a b where 2
    is a fixed point, but x_0 = −2 is not in its basin: the free-running loss stays high,
    the other side of Doya's remedy).
    """
    kw = dict(x0=x0, steps=steps, lr=lr, n_steps=n_steps, train=train, unit=unit)
    free = train_one_unit(w0, b0, target, forcing=False, **kw)
    forced = train_one_unit(w0, b0, target, forcing=True, **kw)
    return TeacherForcingDemo(free=free, forced=forced, target=target_trajectory(target, steps), x0=float(x0))
