"""The fast path of :class:`bptt.optim.curvature.GaussNewton` for the paper's RNN.

The same products, G v and G_S v, derived by hand for eq. 2 and run without autograd:
one forward sweep of the tangents (Pearlmutter's R-operator, the forward-mode product)
and one backward sweep (BPTT of the cotangent), each two batched products per step,
like the exact engine's gradient. With h_t = σ(a_t), a_t = h_{t−1} W_rec + u_t W_in + b
and a tangent (dW_rec, dW_in, db, dW_out, db_out):

    da_t = dh_{t−1} W_rec + h_{t−1} dW_rec + u_t dW_in + db,   dh_t = σ'(a_t) ⊙ da_t,
    dz_t = dh_t W_out + h_t dW_out + db_out;

the cotangents c_z = H_L dz / N at the outputs and c_a = w σ'(a) ⊙ da / N at the hidden
pre-activations (structural damping, weight w = μλ) are then pulled back by

    δ_t = σ'(a_t) ⊙ (c_z,t W_outᵀ + δ_{t+1} W_recᵀ) + c_a,t,
    ∂W_rec = Σ_t h_{t−1}ᵀ δ_t,  ∂W_in = Σ_t u_tᵀ δ_t,  ∂b = Σ_t δ_t,
    ∂W_out = Σ_t h_tᵀ c_z,t,  ∂b_out = Σ_t c_z,t

(for last-step outputs c_z lives at t = T only). Checked against the general
``torch.func`` path in float64 (``tests/optim/test_hf_elman.py``).
"""

from __future__ import annotations

import torch

from bptt.engine.outputs import PER_STEP
from bptt.engine.units import activate
from bptt.optim.curvature import Layout, loss_hessian_product, unit_derivative


class ElmanGaussNewton:
    """G v and G_S v for :class:`bptt.ElmanRNN` parameters, without autograd.

    Same constructor arguments (less ``fn``) and methods as
    :class:`bptt.optim.curvature.GaussNewton`.
    """

    def __init__(self, params: dict[str, torch.Tensor], x: torch.Tensor, output: str, unit: str,
                 structural: bool = False) -> None:
        self.params = {k: v.detach() for k, v in params.items()}
        self.output, self.unit, self.structural = output, unit, bool(structural)
        self.layout = Layout(self.params)
        W_rec, W_in, b = self.params["W_rec"], self.params["W_in"], self.params["b"]
        W_out, b_out = self.params["W_out"], self.params["b_out"]
        with torch.no_grad():
            self.u = x.to(W_rec.dtype)
            self.u = self.u[:, None].expand(-1, W_rec.shape[0], -1, -1) if x.dim() == 3 else self.u  # [T,E,B,I]
            T, E, B, _ = self.u.shape
            inp = torch.matmul(self.u, W_in) + b[None, :, None, :]
            hs = [torch.zeros(E, B, W_rec.shape[1], dtype=W_rec.dtype, device=W_rec.device)]
            a_steps = []
            for t in range(T):
                a = inp[t] if t == 0 else torch.baddbmm(inp[t], hs[-1], W_rec)
                a_steps.append(a)
                hs.append(activate(a, unit))
            self.h = torch.stack(hs)                       # [T+1, E, B, H], h_0 = 0
            self.slope = unit_derivative(torch.stack(a_steps), unit)   # σ'(a_t), [T, E, B, H]
            per_step = output in PER_STEP
            self.z = (torch.matmul(self.h[1:], W_out) + b_out[None, :, None, :] if per_step
                      else torch.baddbmm(b_out[:, None, :], self.h[-1], W_out))
        self.count = T * B if output in PER_STEP else B

    @torch.no_grad()
    def _apply(self, v: torch.Tensor, weight: torch.Tensor | None, outputs: bool = True) -> torch.Tensor:
        """Jᵀ H_L J v / N (when ``outputs``) + Σ_e w_e J_aᵀ diag(σ') J_a v / N."""
        p, d = self.params, self.layout.tree(v)
        T, E, B, _ = self.u.shape
        per_step = self.output in PER_STEP
        # forward sweep of the tangents
        dinp = torch.matmul(self.u, d["W_in"]) + d["b"][None, :, None, :]
        dinp = dinp + torch.matmul(self.h[:-1], d["W_rec"])          # h_{t-1} dW_rec, all steps at once
        da = torch.empty_like(dinp)
        dh = None
        for t in range(T):
            da[t] = dinp[t] if dh is None else torch.baddbmm(dinp[t], dh, p["W_rec"])
            dh = self.slope[t] * da[t]
        # cotangents at the outputs and at the hidden pre-activations
        if outputs:
            if per_step:
                dz = torch.matmul(self.slope * da, p["W_out"]) + torch.matmul(self.h[1:], d["W_out"]) \
                    + d["b_out"][None, :, None, :]
            else:
                dz = torch.bmm(dh, p["W_out"]) + torch.bmm(self.h[-1], d["W_out"]) + d["b_out"][:, None, :]
            cz = loss_hessian_product(self.z, dz, self.output) / self.count
        else:
            cz = torch.zeros_like(self.z)
        ca = None
        if weight is not None:
            ca = weight.to(da.dtype).reshape(1, -1, 1, 1) * self.slope * da / self.count
        delta = self._backward(cz, ca)
        flat_delta = delta.transpose(0, 1).reshape(E, T * B, -1)
        grads = {
            "W_rec": torch.bmm(self.h[:-1].transpose(0, 1).reshape(E, T * B, -1).transpose(1, 2), flat_delta),
            "W_in": torch.bmm(self.u.transpose(0, 1).reshape(E, T * B, -1).transpose(1, 2), flat_delta),
            "b": flat_delta.sum(1),
        }
        if per_step:
            flat_cz = cz.transpose(0, 1).reshape(E, T * B, -1)
            grads["W_out"] = torch.bmm(self.h[1:].transpose(0, 1).reshape(E, T * B, -1).transpose(1, 2), flat_cz)
            grads["b_out"] = flat_cz.sum(1)
        else:
            grads["W_out"] = torch.bmm(self.h[-1].transpose(1, 2), cz)
            grads["b_out"] = cz.sum(1)
        return self.layout.flat(grads)

    def _backward(self, cz: torch.Tensor, ca: torch.Tensor | None) -> torch.Tensor:
        """δ_t ``[T, E, B, H]`` for output cotangents ``cz`` and pre-activation cotangents ``ca``."""
        p = self.params
        T = self.slope.shape[0]
        per_step = self.output in PER_STEP
        W_rec_T = p["W_rec"].transpose(1, 2)
        gh_out = torch.matmul(cz, p["W_out"].transpose(1, 2))          # [T,E,B,H] or [E,B,H]
        delta = torch.empty_like(self.slope)
        carry = None
        for t in range(T - 1, -1, -1):
            g = gh_out[t] if per_step else (gh_out if t == T - 1 else torch.zeros_like(gh_out))
            if carry is not None:
                g = torch.baddbmm(g, carry, W_rec_T)
            dt = self.slope[t] * g
            if ca is not None:
                dt = dt + ca[t]
            delta[t] = dt
            carry = dt
        return delta

    @torch.no_grad()
    def squared_case_gradients(self, y: torch.Tensor, chunk: int = 128) -> torch.Tensor:
        """The mean over sequences of the squared per-sequence gradients, ``[E, P]``.

        The diagonal F of Martens' preconditioner (2010, §4.7), for the batch this
        object was built on: each sequence's loss (for per-step outputs the mean over
        its steps) is differentiated on its own by one backward sweep for all
        sequences, and the per-sequence weight gradients are formed as outer products.

        Args:
            y: the batch's targets, shared or per member (as the tasks give them).
            chunk: sequences whose outer products are formed at once (bounds memory).
        """
        per_step = self.output in PER_STEP
        z = self.z
        classes = self.output in ("last_softmax", "softmax")
        if y.dim() < z.dim() - (1 if classes else 0):                  # shared targets: add E
            y = y.unsqueeze(1 if per_step else 0)
        if classes:
            cz = torch.softmax(z, -1)
            cz = cz - torch.nn.functional.one_hot(y.expand(z.shape[:-1]), z.shape[-1]).to(z.dtype)
        elif self.output == "last_linear":
            cz = 2.0 * (z - y)
        else:
            cz = torch.sigmoid(z) - y
        if per_step:
            cz = cz / z.shape[0]
        delta = self._backward(cz, None)                                # [T,E,B,H]
        B = delta.shape[2]
        total = None
        for s in range(0, B, chunk):                                    # [E, n, ...] per chunk of sequences
            d, c = delta[:, :, s:s + chunk], (cz[:, :, s:s + chunk] if per_step else cz[:, s:s + chunk])
            grads = {
                "W_rec": torch.einsum("tebi,tebj->ebij", self.h[:-1, :, s:s + chunk], d),
                "W_in": torch.einsum("tebi,tebj->ebij", self.u[:, :, s:s + chunk], d),
                "b": d.sum(0),
                "W_out": (torch.einsum("tebi,tebo->ebio", self.h[1:, :, s:s + chunk], c) if per_step
                          else torch.einsum("ebi,ebo->ebio", self.h[-1, :, s:s + chunk], c)),
                "b_out": c.sum(0) if per_step else c,
            }
            part = self.layout.flat({k: (g * g).sum(1) for k, g in grads.items()})
            total = part if total is None else total + part
        return total / B

    def gv(self, v: torch.Tensor) -> torch.Tensor:
        """G v, ``[E, P]``."""
        return self._apply(v, None)

    def sv(self, v: torch.Tensor) -> torch.Tensor:
        """G_S v, ``[E, P]`` (only with ``structural=True``)."""
        if not self.structural:
            raise ValueError("this ElmanGaussNewton was built with structural=False")
        return self._apply(v, torch.ones(v.shape[0], dtype=v.dtype, device=v.device), outputs=False)

    def damped(self, v: torch.Tensor, damping: torch.Tensor, mu: float) -> torch.Tensor:
        """(G + λ I + μ λ G_S) v per member, ``[E, P]``; ``damping`` is λ ``[E]``."""
        lam = damping.to(v.dtype)
        weight = lam * mu if (self.structural and mu > 0) else None
        return self._apply(v, weight) + lam[:, None] * v
