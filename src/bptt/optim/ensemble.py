"""Update rules beyond plain SGD, for ensembles: every hyperparameter per member, ``[E]``.

Each optimizer here steps a mapping of ``[E, ...]`` parameters from gradients of the
same shapes, member by member, with hyperparameters held as ``[E]`` tensors (so one
ensemble can hold a row of a sweep over learning rates or momenta). For one member
each computes exactly what the ``torch.optim`` optimizer of the same name computes
(the tests compare them to 1e-12 in float64):

* :class:`EnsembleSGD` — θ ← θ − lr · g (``torch.optim.SGD`` without momentum);
* :class:`EnsembleNesterov` — SGD with Nesterov momentum (Sutskever, Martens, Dahl &
  Hinton, "On the importance of initialization and momentum in deep learning", ICML
  2013), in ``torch.optim.SGD(nesterov=True, dampening=0)``'s form:
  d = g + λθ, b ← μb + d, θ ← θ − lr · (d + μb);
* :class:`EnsembleRMSprop` — Tieleman & Hinton (2012), ``torch.optim.RMSprop``
  (not centred): d = g + λθ, v ← ρv + (1 − ρ)d², b ← μb + d/(√v + ε), θ ← θ − lr · b;
* :class:`EnsembleAdam` — Kingma & Ba (ICLR 2015), ``torch.optim.Adam`` (L2 weight
  decay, not AdamW): m ← β₁m + (1 − β₁)d, v ← β₂v + (1 − β₂)d²,
  θ ← θ − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε).

A member that is not ``active`` at a step (the non-finite guard refused its gradient)
keeps its parameters and its state unchanged, its step count included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def check_member_values(name: str, values: Sequence[float], *, low: float | None = None,
                        high: float | None = None, low_open: bool = False, high_open: bool = False) -> list[float]:
    """``values`` as floats, each finite and within the bounds; ``ValueError`` naming
    ``name``, the rule and the first value that breaks it."""
    out = []
    for v in values:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (low is None or (v > low if low_open else v >= low))
        ok = ok and (high is None or (v < high if high_open else v <= high))
        if not ok:
            lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
            hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
            rule = f"in {lo or '(-inf'}, {hi or 'inf)'}"
            raise ValueError(f"{name} must be a finite number {rule} for every member, got {v!r}")
        out.append(float(v))
    return out


def per_member(value, n: int, name: str) -> list:
    """``value`` (a number, a list of ``n`` numbers or a tensor) as a list of ``n`` numbers."""
    if isinstance(value, torch.Tensor):
        value = value.reshape(-1).tolist()
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries for an ensemble of {n}")
        return list(value)
    return [value] * n


def _axes(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t [E]`` shaped to broadcast against ``like [E, ...]``."""
    return t.reshape(-1, *([1] * (like.dim() - 1)))


class EnsembleOptimizer:
    """The base: hyperparameters ``[E]``, state per parameter name, ``select`` and state dicts.

    Args:
        lr: learning rates, one per member (a number is shared), finite and > 0.
        ensemble: E (default: the length of ``lr`` when it is a list, else 1).
        weight_decay: λ ≥ 0, one per member (L2 added to the gradient).
        dtype, device: of the hyperparameter and state tensors (the parameters').
    """

    name = "?"
    #: the per-member hyperparameters, in ``state_dict`` order.
    HYPER: tuple[str, ...] = ("lr", "weight_decay")
    #: the state kept per parameter (besides the step count).
    BUFFERS: tuple[str, ...] = ()

    def __init__(self, lr, *, ensemble: int | None = None, weight_decay=0.0,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", **hyper) -> None:
        E = ensemble if ensemble is not None else (len(lr) if isinstance(lr, (list, tuple)) else 1)
        self._dtype, self._device = dtype, torch.device(device)
        values = {"lr": check_member_values("learning rate", per_member(lr, E, "lr"), low=0, low_open=True),
                  "weight_decay": check_member_values("weight_decay", per_member(weight_decay, E, "weight_decay"),
                                                      low=0)}
        for key, (value, bounds) in hyper.items():
            values[key] = check_member_values(key, per_member(value, E, key), **bounds)
        for key in self.HYPER:
            setattr(self, key, torch.tensor(values[key], dtype=dtype, device=self._device))
        self.steps = torch.zeros(E, dtype=dtype, device=self._device)
        self.state: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def ensemble(self) -> int:
        return self.lr.shape[0]

    def _buffers(self, name: str, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if name not in self.state:
            self.state[name] = {b: torch.zeros_like(p) for b in self.BUFFERS}
        return self.state[name]

    def _direction(self, name: str, p: torch.Tensor, d: torch.Tensor, t: torch.Tensor,
                   buffers: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step to subtract (lr included) and the new buffers, for every member."""
        raise NotImplementedError

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
               active: torch.Tensor | None = None, skip: Sequence[str] = ()) -> None:
        """Step every parameter in place (``skip``: names left alone, e.g. fixed weights).

        Args:
            params, grads: name → ``[E, ...]``.
            active: ``[E]`` bool, the members that step (``None``: all).
        """
        t = self.steps + 1 if active is None else torch.where(active, self.steps + 1, self.steps)
        for name, p in params.items():
            if name in skip:
                continue
            d = grads[name]
            d = d + _axes(self.weight_decay, p) * p
            buffers = self._buffers(name, p)
            step, new = self._direction(name, p, d, t, buffers)
            if active is None:
                p.sub_(step)
                buffers.update(new)
            else:
                keep = _axes(active, p)
                p.sub_(torch.where(keep, step, torch.zeros_like(step)))
                for b, v in new.items():
                    buffers[b] = torch.where(keep, v, buffers[b])
        self.steps = t

    def select(self, keep: Sequence[int]) -> None:
        """Keep the members at positions ``keep``."""
        idx = torch.as_tensor(list(keep), dtype=torch.long, device=self._device)
        for key in self.HYPER:
            setattr(self, key, getattr(self, key)[idx].clone())
        self.steps = self.steps[idx].clone()
        self.state = {n: {b: v[idx].clone() for b, v in bufs.items()} for n, bufs in self.state.items()}

    def state_dict(self) -> dict:
        """Tensors and strings only: the hyperparameters, step counts and buffers."""
        return {"name": self.name, **{k: getattr(self, k).detach().cpu().clone() for k in self.HYPER},
                "steps": self.steps.detach().cpu().clone(),
                "state": {n: {b: v.detach().cpu().clone() for b, v in bufs.items()} for n, bufs in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"a state of optimizer {state.get('name')!r} cannot load into {self.name!r}")
        move = {"dtype": self._dtype, "device": self._device}
        for k in self.HYPER:
            setattr(self, k, state[k].to(**move).clone())
        self.steps = state["steps"].to(**move).clone()
        self.state = {n: {b: v.to(**move).clone() for b, v in bufs.items()} for n, bufs in state["state"].items()}


class EnsembleSGD(EnsembleOptimizer):
    """θ ← θ − lr · (g + λθ), per member (``torch.optim.SGD`` without momentum)."""

    name = "sgd"

    def _direction(self, name, p, d, t, buffers):
        return _axes(self.lr, p) * d, {}


class EnsembleNesterov(EnsembleOptimizer):
    """SGD with Nesterov momentum μ ∈ [0, 1) per member (see the module docstring)."""

    name = "nesterov"
    HYPER = ("lr", "weight_decay", "momentum")
    BUFFERS = ("momentum_buffer",)

    def __init__(self, lr, *, momentum=0.9, **kw) -> None:
        super().__init__(lr, momentum=(momentum, {"low": 0.0, "high": 1.0, "high_open": True}), **kw)

    def _direction(self, name, p, d, t, buffers):
        mu = _axes(self.momentum, p)
        buf = mu * buffers["momentum_buffer"] + d
        return _axes(self.lr, p) * (d + mu * buf), {"momentum_buffer": buf}


class EnsembleRMSprop(EnsembleOptimizer):
    """RMSprop with smoothing ρ ∈ [0, 1), ε > 0 and momentum μ ∈ [0, 1) per member."""

    name = "rmsprop"
    HYPER = ("lr", "weight_decay", "smoothing", "eps", "momentum")
    BUFFERS = ("square_avg", "momentum_buffer")

    def __init__(self, lr, *, smoothing=0.99, eps=1e-8, momentum=0.0, **kw) -> None:
        super().__init__(lr, smoothing=(smoothing, {"low": 0.0, "high": 1.0, "high_open": True}),
                         eps=(eps, {"low": 0.0, "low_open": True}),
                         momentum=(momentum, {"low": 0.0, "high": 1.0, "high_open": True}), **kw)

    def _direction(self, name, p, d, t, buffers):
        rho = _axes(self.smoothing, p)
        sq = rho * buffers["square_avg"] + (1 - rho) * d * d
        buf = _axes(self.momentum, p) * buffers["momentum_buffer"] + d / (sq.sqrt() + _axes(self.eps, p))
        return _axes(self.lr, p) * buf, {"square_avg": sq, "momentum_buffer": buf}


class EnsembleAdam(EnsembleOptimizer):
    """Adam with β₁, β₂ ∈ [0, 1) and ε > 0 per member (see the module docstring)."""

    name = "adam"
    HYPER = ("lr", "weight_decay", "beta1", "beta2", "eps")
    BUFFERS = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr, *, betas=(0.9, 0.999), eps=1e-8, **kw) -> None:
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        unit = {"low": 0.0, "high": 1.0, "high_open": True}
        super().__init__(lr, beta1=(betas[0], unit), beta2=(betas[1], unit),
                         eps=(eps, {"low": 0.0, "low_open": True}), **kw)

    def _direction(self, name, p, d, t, buffers):
        b1, b2 = _axes(self.beta1, p), _axes(self.beta2, p)
        m = b1 * buffers["exp_avg"] + (1 - b1) * d
        v = b2 * buffers["exp_avg_sq"] + (1 - b2) * d * d
        tt = _axes(t, p).clamp(min=1)
        bc1, bc2 = 1 - b1 ** tt, 1 - b2 ** tt
        denom = v.sqrt() / bc2.sqrt() + _axes(self.eps, p)
        return (_axes(self.lr, p) / bc1) * m / denom, {"exp_avg": m, "exp_avg_sq": v}


#: The optimizers by name (``"sgd"`` here is the plain rule; the paper's rule with its
#: guard and Algorithm 1 is :class:`bptt.optim.PaperSGD`).
OPTIMIZERS = {"sgd": EnsembleSGD, "nesterov": EnsembleNesterov, "rmsprop": EnsembleRMSprop, "adam": EnsembleAdam}
