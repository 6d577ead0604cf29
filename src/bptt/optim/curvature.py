"""The model as a function of its parameters, and its Gauss–Newton products.

Hessian-free optimization (Martens 2010, §4.2) never forms a curvature matrix; it
needs only products of the generalized Gauss–Newton matrix (Schraudolph 2002) with a
vector. For a network with output pre-activations z(θ) and a loss L(z) that *matches*
the output nonlinearity,

    G v = Jᵀ H_L J v,        J = ∂z/∂θ,   H_L = ∂²L/∂z²,

and H_L is positive semi-definite, so G is too (Martens & Sutskever 2011, §3). J v is
a forward-mode product (``torch.func.jvp``), Jᵀ u a reverse-mode one
(``torch.func.vjp``), both over the model as a pure function of its parameters
(``torch.func.functional_call``). The matching losses of :mod:`bptt.engine.outputs`,
each averaged over the N rows of the loss (N = B sequences for last-step outputs,
T·B steps for per-step ones), give per row

=================  =====================================  ===============================
output             loss per row                           H_L per row (before the 1/N)
=================  =====================================  ===============================
softmax kinds      −log softmax(z)_y                      diag(p) − p pᵀ,  p = softmax(z)
``last_linear``    Σ_o (z_o − y_o)²                       2 I
``sigmoid``        Σ_o Bernoulli NLL of y_o at σ(z_o)      diag(p (1 − p)),  p = σ(z)
=================  =====================================  ===============================

**Structural damping** (Martens & Sutskever 2011, §4): a penalty μ·λ·S(δ) with
S(δ) = D(a(θ + δ), a(θ)) on the hidden units, D the matching loss of the hidden
nonlinearity σ (its gradient in the pre-activation a is σ(a) − σ(a*)), so that its
Gauss–Newton matrix is

    G_S v = J_aᵀ diag(σ'(a)) J_a v,      J_a = ∂a/∂θ,

with a the hidden pre-activations ``[T, E, B, H]`` (h_t = σ(a_t)). S is summed over
time steps and units and divided by the same N as the loss. Both products come out of
one forward-mode and one reverse-mode pass, since the model function returns z and a
together.

Parameters are handled per member as one flat vector: ``[E, P]`` (:class:`Layout`).
"""

from __future__ import annotations

from typing import Callable

import torch

from bptt.engine.outputs import PER_STEP
from bptt.engine.units import activate
from bptt.engine.reference import step_losses

#: A model as a pure function: (parameters by name, inputs) → (z, a or None).
ModelFunction = Callable[[dict, torch.Tensor], tuple]


class Layout:
    """How a mapping of ``[E, ...]`` tensors maps onto one ``[E, P]`` matrix.

    Args:
        params: name → tensor, each with the ensemble axis E first.
    """

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        self.names = list(params)
        self.shapes = [tuple(params[k].shape) for k in self.names]
        self.ensemble = self.shapes[0][0]
        self.sizes = [int(torch.Size(s[1:]).numel()) for s in self.shapes]
        self.size = sum(self.sizes)

    def flat(self, tree: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[E, P]``: the tensors of ``tree`` side by side, per member."""
        return torch.cat([tree[k].reshape(self.ensemble, -1) for k in self.names], dim=1)

    def tree(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inverse of :meth:`flat` (views of ``flat``)."""
        parts = torch.split(flat, self.sizes, dim=1)
        return {k: part.reshape(shape) for k, part, shape in zip(self.names, parts, self.shapes)}


# -- the model as a function ----------------------------------------------------------------

def elman_function(unit: str, output: str) -> ModelFunction:
    """The fast path for :class:`bptt.ElmanRNN`: z and the hidden pre-activations.

    Returns a function ``(params, x) → (z, a)`` with z as ``ElmanRNN.forward`` returns
    it (``[E, B, O]`` or ``[T, E, B, O]``) and a ``[T, E, B, H]``, the pre-activations
    of eq. 2 (h_t = σ(a_t), h_0 = 0), all differentiable by ``torch.func``.
    """
    def run(params: dict, x: torch.Tensor):
        W_rec, W_in, b = params["W_rec"], params["W_in"], params["b"]
        W_out, b_out = params["W_out"], params["b_out"]
        E, H, _ = W_rec.shape
        u = x.to(W_rec.dtype)
        # input projection of every step at once: [T, E, B, H]
        inp = torch.matmul(u[:, None] if x.dim() == 3 else u, W_in) + b[None, :, None, :]
        a_steps, h_steps = [], []
        h = None
        for t in range(x.shape[0]):
            a = inp[t] if h is None else inp[t] + torch.bmm(h, W_rec)
            h = activate(a, unit)
            a_steps.append(a)
            h_steps.append(h)
        a = torch.stack(a_steps)
        if output in PER_STEP:
            z = torch.matmul(torch.stack(h_steps), W_out) + b_out[None, :, None, :]
        else:
            z = torch.bmm(h, W_out) + b_out[:, None, :]
        return z, a
    return run


def module_function(model: torch.nn.Module) -> ModelFunction:
    """Any model of the call convention ``model(x) → z``, without hidden states."""
    def run(params: dict, x: torch.Tensor):
        return torch.func.functional_call(model, params, (x,)), None
    return run


# -- losses and their Hessians -------------------------------------------------------------

def row_count(z: torch.Tensor, output: str) -> int:
    """N, the number of rows the loss is averaged over: B, or T·B for per-step outputs."""
    return z.shape[0] * z.shape[2] if output in PER_STEP else z.shape[1]


def case_losses(z: torch.Tensor, y: torch.Tensor, output: str) -> torch.Tensor:
    """The loss of each sequence, ``[E, B]``; their mean over B is the loss of
    :func:`bptt.engine.reference.loss_of` (for per-step outputs each sequence's loss
    is the mean over its T steps)."""
    per = step_losses(z, y, output)
    return per.mean(0) if output in PER_STEP else per


def loss_hessian_product(z: torch.Tensor, u: torch.Tensor, output: str) -> torch.Tensor:
    """H_L u per row (without the 1/N of the average), same shape as ``z``.

    Args:
        z: output pre-activations, ``[..., O]``.
        u: a tangent of z (J v), same shape.
    """
    if output in ("last_softmax", "softmax"):
        p = torch.softmax(z, -1)
        return p * u - p * (p * u).sum(-1, keepdim=True)
    if output == "last_linear":
        return 2.0 * u
    p = torch.sigmoid(z)
    return p * (1.0 - p) * u


def unit_derivative(a: torch.Tensor, unit: str) -> torch.Tensor:
    """σ'(a) of the hidden unit at its pre-activation: the Hessian of its matching loss."""
    if unit == "tanh":
        return 1.0 - torch.tanh(a) ** 2
    if unit == "sigmoid":
        s = torch.sigmoid(a)
        return s * (1.0 - s)
    if unit == "relu":
        return (a > 0).to(a.dtype)
    if unit == "linear":
        return torch.ones_like(a)
    raise ValueError(f"unknown hidden unit {unit!r}; choose one of tanh, sigmoid, relu, linear")


# -- the curvature at one point --------------------------------------------------------------

class GaussNewton:
    """Products with the Gauss–Newton matrix G and the structural matrix G_S at θ.

    The reverse-mode pass is recorded once (at construction) and reused by every
    product; each product adds one forward-mode pass (``torch.func.jvp``).

    Args:
        fn: the model as a function (:func:`elman_function`, :func:`module_function`).
        params: θ by name, each ``[E, ...]`` (detached).
        x: the curvature batch's inputs ``[T, B, I]`` or ``[T, E, B, I]``.
        output: the output kind.
        unit: the hidden units' nonlinearity, for G_S; ``None`` when ``fn`` gives no
            hidden pre-activations (then G_S is not available).
        structural: whether G_S products are wanted.
    """

    def __init__(self, fn: ModelFunction, params: dict[str, torch.Tensor], x: torch.Tensor, output: str,
                 unit: str | None = None, structural: bool = False) -> None:
        self.fn, self.params, self.x, self.output = fn, params, x, output
        self.structural = bool(structural)
        self.layout = Layout(params)
        out, self._vjp = torch.func.vjp(self._outputs, params)
        self.z, self.a = out if len(out) == 2 else (out[0], None)
        self.count = row_count(self.z, output)
        if self.structural:
            if self.a is None or unit is None:
                raise ValueError("structural damping needs the hidden pre-activations: pass a model "
                                 "function that returns them, or set structural_damping=0")
            self.unit_slope = unit_derivative(self.a.detach(), unit)
        self.z = self.z.detach()

    def _outputs(self, params: dict) -> tuple:
        """(z, a), or (z,) for a model function without hidden states."""
        z, a = self.fn(params, self.x)
        return (z,) if a is None else (z, a)

    def _tangents(self, v: torch.Tensor) -> tuple:
        """(J v, J_a v or None) for ``v`` ``[E, P]``."""
        _, out = torch.func.jvp(self._outputs, (self.params,), (self.layout.tree(v),))
        return out if len(out) == 2 else (out[0], None)

    def _pull(self, ct_z: torch.Tensor, ct_a: torch.Tensor | None) -> torch.Tensor:
        """J_zᵀ ct_z + J_aᵀ ct_a, ``[E, P]``."""
        cot = (ct_z,) if self.a is None else (ct_z, torch.zeros_like(self.a) if ct_a is None else ct_a)
        return self.layout.flat(self._vjp(cot)[0])

    def _apply(self, v: torch.Tensor, structural_weight: torch.Tensor | None) -> torch.Tensor:
        """``G v + w · G_S v`` for ``v`` ``[E, P]`` and per-member weights w ``[E]`` (or none)."""
        Jz, Ja = self._tangents(v)
        ct_z = loss_hessian_product(self.z, Jz, self.output) / self.count
        ct_a = None
        if structural_weight is not None:
            w = structural_weight.to(Ja.dtype).reshape(1, -1, *([1] * (Ja.dim() - 2)))
            ct_a = w * self.unit_slope * Ja / self.count
        return self._pull(ct_z, ct_a)

    def gv(self, v: torch.Tensor) -> torch.Tensor:
        """G v, ``[E, P]``."""
        return self._apply(v, None)

    def sv(self, v: torch.Tensor) -> torch.Tensor:
        """G_S v, ``[E, P]`` (only with ``structural=True``)."""
        if not self.structural:
            raise ValueError("this GaussNewton was built with structural=False")
        _, Ja = self._tangents(v)
        return self._pull(torch.zeros_like(self.z), self.unit_slope * Ja / self.count)

    def damped(self, v: torch.Tensor, damping: torch.Tensor, mu: float) -> torch.Tensor:
        """(G + λ I + μ λ G_S) v per member, ``[E, P]``; ``damping`` is λ ``[E]``.

        One forward-mode and one reverse-mode pass, whatever μ.
        """
        lam = damping.to(v.dtype)
        weight = lam * mu if (self.structural and mu > 0) else None
        return self._apply(v, weight) + lam[:, None] * v
