"""The paper's update rule: plain SGD with the reference code's non-finite guard.

The guard: a gradient whose norm is NaN, infinite or above :data:`NORM_LIMIT` is not
trusted; the update is dropped and the recurrent weights shrink instead
(W_rec ← W_rec − lr · :data:`SHRINK` · W_rec), as in the authors' code. The authors'
code (RNN.py) applies it only inside its clipping branch, so by default only the
members that clip are guarded (:data:`GUARDS`, :func:`guarded`); an unguarded member
applies whatever its gradient is, and the training loop ends it as ``diverged`` once
its parameters or loss are no longer finite.
"""

from __future__ import annotations

import math

import torch

from bptt.clip import clip_by_global_norm, clip_elementwise, global_norm
from bptt.optim.penalties import add_penalties, l1, l2

#: A gradient norm above this is not trusted (the reference code's float32 guard).
NORM_LIMIT = 1e10
#: On an untrusted norm W_rec is shrunk by lr · SHRINK · W_rec.
SHRINK = 0.02
#: Which members the guard protects: those that clip (the reference code), all, none.
GUARDS = ("clipping", "always", "never")


def guarded(guard: str, clips: bool) -> bool:
    """Whether a member that clips (``clips``) is protected by the guard under ``guard``.

    ``"clipping"`` (the default): only members that clip, as in the reference code,
    where the guard sits inside the clipping branch; ``"always"``: every member;
    ``"never"``: none.
    """
    if guard not in GUARDS:
        raise ValueError(f"unknown guard {guard!r}; choose one of {', '.join(GUARDS)}")
    return guard == "always" or (guard == "clipping" and bool(clips))


def _per_member(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1).expand(like.shape[0])


def _check_lr(lr) -> None:
    if isinstance(lr, torch.Tensor):
        if lr.device.type == "cpu" and not bool((torch.isfinite(lr) & (lr > 0)).all()):
            raise ValueError(f"learning rates must be finite and > 0, got {lr.tolist()}")
    elif not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"learning rate must be finite and > 0, got {lr}")


def nonfinite(norm: torch.Tensor, limit: float = NORM_LIMIT) -> torch.Tensor:
    """Members whose gradient norm is NaN, infinite, negative or above ``limit``, ``[E]``."""
    return ~torch.isfinite(norm) | (norm < 0) | (norm > limit)


@torch.no_grad()
def sgd_update(params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
               lr: torch.Tensor | float, bad: torch.Tensor | None = None,
               recurrent: tuple[str, ...] | list[str] = ("W_rec",), frozen: tuple[str, ...] | list[str] = (),
               *, check: bool = True) -> None:
    """θ ← θ − lr · g in place, per member; members in ``bad`` take the guard step.

    The guard step (the reference code's answer to an untrusted gradient) drops the
    update and shrinks the recurrent weights instead: W ← W − lr · 0.02 · W for every
    name in ``recurrent`` (the model's ``recurrent_names``; ``W_rec`` for the paper's
    network). Parameters named in ``frozen`` are left alone.

    ``check``: refuse learning rates that are not finite and > 0 (``ValueError``) when
    ``lr`` is a float or a tensor in host memory; :class:`PaperSGD`, which checked its
    rates when it was built, passes ``False``.
    """
    if check:
        _check_lr(lr)
    first = next(iter(params.values()))
    lr_e = _per_member(lr, first)
    for k, p in params.items():
        if k in frozen:
            continue
        shape = (-1, *([1] * (p.dim() - 1)))
        step = grads[k] * lr_e.reshape(shape)
        if bad is not None:                       # no host sync: the guard is a select
            keep = (~bad).reshape(shape)
            step = torch.where(keep, step, torch.zeros_like(step))
            if k in recurrent:
                step = torch.where(keep, step, (lr_e * SHRINK).reshape(shape) * p)
        p.sub_(step)


class PaperSGD:
    """The paper's update rule for an ensemble: non-finite guard → clipping → SGD (§3.2, §4).

    Every setting is per member (shape ``[E]``), so one ensemble can hold a whole row of a
    sweep; the uniform case is the per-member case with equal values. One :meth:`step`
    runs without waiting for the device: which members clip is known on the host, the
    rest are selections on the device.

    Args:
        lr: learning rates, one per member (a float is shared). Mutable: ``rule.lr[j] = v``
            (Table 1 halves them).
        threshold: clipping thresholds, one per member (ignored where ``clip`` is false).
        clip: which members clip their gradient (a bool is shared).
        kind: ``"norm"``: Algorithm 1, g ← threshold · g / ‖g‖ when ‖g‖ ≥ threshold
            (:func:`bptt.clip.clip_by_global_norm`); ``"elementwise"``: every component
            clamped to [−threshold, threshold] (:func:`bptt.clip.clip_elementwise`).
        guard: which members the non-finite guard protects, one bool per member (a
            bool is shared); ``None`` (the default): the members that clip, as in the
            reference code (see :func:`guarded`).
        dtype, device: of the per-member tensors (those of the parameters).
        recurrent: the names the guard shrinks (the model's ``recurrent_names``).
        frozen: names never stepped (an echo-state network's fixed reservoir).
        l1, l2: weights λ₁, λ₂ of the L1 and L2 penalties on the parameters ``penalised``
            (:mod:`bptt.optim.penalties`), one per member (a float is shared; 0: none).
        penalised: the parameters the penalties apply to (default: ``recurrent``).

    With a penalty the order is: guard (on the data gradient: a non-finite gradient is
    refused whatever the penalty) → penalty gradients added → clipping → SGD. The
    penalty is part of the cost, so its gradient is clipped with the data gradient, as
    Ω's is (Algorithm 1 bounds the step of the whole cost); adding it after clipping
    would let the step exceed the threshold. Without penalties nothing is added and no
    extra work is done.

    Another rule (a ``torch.optim`` optimizer, Hessian-free) plugs into the training
    loop by offering the same four methods: :meth:`step`, :meth:`select`,
    :meth:`state_dict` and :meth:`load_state_dict`.
    """

    name = "paper-sgd"
    KINDS = ("norm", "elementwise")

    def __init__(self, lr, *, threshold=1.0, clip=False, kind: str = "norm", ensemble: int | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", guard=None,
                 recurrent: tuple[str, ...] | list[str] = ("W_rec",), frozen: tuple[str, ...] | list[str] = (),
                 l1=0.0, l2=0.0, penalised: tuple[str, ...] | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown clipping {kind!r}; choose 'norm' or 'elementwise'")
        E = ensemble if ensemble is not None else next(
            (len(v) for v in (lr, threshold, clip, l1, l2) if isinstance(v, (list, tuple))), 1)
        lr_l, thr_l, clip_l = (_listed(v, E, name) for v, name in
                               ((lr, "lr"), (threshold, "threshold"), (clip, "clip")))
        for v in lr_l:
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"learning rate must be finite and > 0, got {v}")
        for t, c in zip(thr_l, clip_l):
            if c and not (t > 0 and math.isfinite(t)):
                raise ValueError(f"clipping threshold must be finite and > 0, got {t}")
        l1_l, l2_l = _listed(l1, E, "l1"), _listed(l2, E, "l2")
        for v in l1_l + l2_l:
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"penalty weights l1, l2 must be finite and >= 0, got {v}")
        self.penalised = tuple(recurrent if penalised is None else penalised)
        self.l1 = torch.tensor(l1_l, dtype=dtype, device=device)
        self.l2 = torch.tensor(l2_l, dtype=dtype, device=device)
        self._penalties = (any(v > 0 for v in l1_l), any(v > 0 for v in l2_l))   # on the host
        self.kind = kind
        self.recurrent, self.frozen = tuple(recurrent), tuple(frozen)
        self.clip = [bool(c) for c in clip_l]                 # on the host: no sync to decide
        self.lr = torch.tensor(lr_l, dtype=dtype, device=device)
        self.threshold = torch.tensor([t if c else 1.0 for t, c in zip(thr_l, clip_l)], dtype=dtype, device=device)
        self._clip_mask = torch.tensor(self.clip, dtype=torch.bool, device=device)
        self.guard = list(self.clip) if guard is None else [bool(g) for g in _listed(guard, E, "guard")]
        self._guard_mask = torch.tensor(self.guard, dtype=torch.bool, device=device)

    @property
    def ensemble(self) -> int:
        return len(self.clip)

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor],
             norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Update ``params`` in place from ``grads`` (name → ``[E, ...]``) of norms ``norm [E]``.

        Returns:
            ``(bad, clipped)``, each ``[E]`` bool on the parameters' device: guarded
            members whose norm the guard refused (:func:`nonfinite`; they took the guard
            step instead), and members whose gradient was clipped (never a refused one).
            An unguarded member with a non-finite norm is updated all the same.
        """
        bad = nonfinite(norm)
        if not all(self.guard):
            bad = bad & self._guard_mask
        if any(self._penalties):
            grads = add_penalties(grads, *self._penalty_grads(params))
            norm = global_norm(grads)
        clipped = torch.zeros_like(bad)
        if any(self.clip):
            if self.kind == "norm":
                cg, clipped = clip_by_global_norm(grads, self.threshold, norm)
            else:
                cg, clipped = clip_elementwise(grads, self.threshold)
            if all(self.clip):
                grads = cg
            else:
                mask = self._clip_mask
                grads = {k: torch.where(mask.reshape(-1, *([1] * (g.dim() - 1))), cg[k], g)
                         for k, g in grads.items()}
                clipped = clipped & mask
        sgd_update(params, grads, self.lr, bad, self.recurrent, self.frozen, check=False)
        return bad, clipped & ~bad

    def _penalty_grads(self, params: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        if self._penalties[0]:
            out.append(l1(params, self.penalised, self.l1))
        if self._penalties[1]:
            out.append(l2(params, self.penalised, self.l2))
        return out

    def select(self, keep: list[int], params: dict[str, torch.Tensor] | None = None) -> None:
        """Keep only the members at positions ``keep`` (those still training).

        ``params`` are the parameters of the ensemble that remains (a rule holding
        references to the parameters, such as a ``torch.optim`` optimizer, rebinds to
        them; this one holds none).
        """
        idx = torch.as_tensor(keep, dtype=torch.long, device=self.lr.device)
        self.lr = self.lr[idx].clone()
        self.threshold = self.threshold[idx].clone()
        self.clip = [self.clip[j] for j in keep]
        self._clip_mask = self._clip_mask[idx].clone()
        self.guard = [self.guard[j] for j in keep]
        self._guard_mask = self._guard_mask[idx].clone()
        self.l1 = self.l1[idx].clone()
        self.l2 = self.l2[idx].clone()

    def state_dict(self) -> dict:
        """Tensors, lists and strings only (see :mod:`bptt.training.checkpoint`)."""
        return {"name": self.name, "kind": self.kind, "clip": list(self.clip), "guard": list(self.guard),
                "lr": self.lr.detach().cpu().clone(), "threshold": self.threshold.detach().cpu().clone(),
                "l1": self.l1.detach().cpu().clone(), "l2": self.l2.detach().cpu().clone(),
                "penalised": list(self.penalised)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name", self.name) != self.name:
            raise ValueError(f"a checkpoint of update rule {state['name']!r} cannot load into {self.name!r}")
        dev = self.lr.device
        self.kind = state["kind"]
        self.clip = [bool(c) for c in state["clip"]]
        self.lr = state["lr"].to(device=dev, dtype=self.lr.dtype).clone()
        self.threshold = state["threshold"].to(device=dev, dtype=self.threshold.dtype).clone()
        self._clip_mask = torch.tensor(self.clip, dtype=torch.bool, device=dev)
        # checkpoints written before the guard was a setting guarded every member
        self.guard = [bool(g) for g in state.get("guard", [True] * len(self.clip))]
        self._guard_mask = torch.tensor(self.guard, dtype=torch.bool, device=dev)
        zeros = torch.zeros(len(self.clip))                    # checkpoints from before the penalties
        self.l1 = state.get("l1", zeros).to(device=dev, dtype=self.lr.dtype).clone()
        self.l2 = state.get("l2", zeros).to(device=dev, dtype=self.lr.dtype).clone()
        self.penalised = tuple(state.get("penalised", self.penalised))
        self._penalties = (bool((self.l1 > 0).any()), bool((self.l2 > 0).any()))


def _listed(value, n: int, name: str) -> list:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} entries for an ensemble of {n}")
        return [v.item() if isinstance(v, torch.Tensor) else v for v in value]
    return [value] * n
