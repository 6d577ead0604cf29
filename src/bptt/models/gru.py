"""Gated recurrent units, as an ensemble of E independent networks.

Cho et al. (2014), "Learning phrase representations using RNN encoder-decoder for
statistical machine translation" (its "hidden unit that adaptively remembers and
forgets"), in row-vector form:

    r = σ(u_t W_in^r + h_{t−1} W_rec^r + b^r)                 (reset gate)
    z = σ(u_t W_in^z + h_{t−1} W_rec^z + b^z)                 (update gate)
    n = tanh(u_t W_in^n + b^n + r ⊙ (h_{t−1} W_rec^n + b_rec))   (reset_after=True)
    n = tanh(u_t W_in^n + b^n + (r ⊙ h_{t−1}) W_rec^n + b_rec)   (reset_after=False)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
    ŷ_t = h_t W_out + b_out   (then the output nonlinearity)

``reset_after=False`` is Cho et al.'s equation (the reset gate acts on h_{t−1} before
the product); ``reset_after=True`` (default) applies it after the product, as
``torch.nn.GRU`` and cuDNN do, which is why the candidate has its own recurrent bias
b_rec. Member e maps onto ``torch.nn.GRU(I, H)`` (gate order r, z, n) by
``weight_ih_l0 = W_in[e]ᵀ``, ``weight_hh_l0 = W_rec[e]ᵀ``, ``bias_ih_l0 = b[e]`` and
``bias_hh_l0 = [0 | 0 | b_rec[e]]``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from bptt.engine.exact import StepResult, project_inputs
from bptt.models import gru_bptt
from bptt.models.base import AutogradEnsemble, check_real
from bptt.models.init import spectral_radius
from bptt.models.lstm import gate_weights


class GRU(AutogradEnsemble):
    """E independent GRU networks of the same shape.

    ========  ============  ======================================================
    name      shape         role
    ========  ============  ======================================================
    W_in      [E, I, 3H]    input weights of r, z, n (side by side)
    W_rec     [E, H, 3H]    recurrent weights of r, z, n
    b         [E, 3H]       gate biases (input side)
    b_rec     [E, H]        the candidate's recurrent bias (inside r ⊙ ·)
    W_out     [E, H, O]     output weights
    b_out     [E, O]        output bias
    ========  ============  ======================================================

    :meth:`spectral_radius` is that of the candidate block W_rec[:, :, 2H:3H]. Biases
    start at zero.

    Args:
        n_in, n_hidden, n_out: I, H, O.
        ensemble: E (ignored when ``seeds`` is given).
        seed: member e is drawn from seed ``seed + e``.
        seeds: explicit per-member seeds.
        init: ``"uniform"`` (default; PyTorch's U(−1/√H, 1/√H)) or ``"orthogonal"``
            (each gate's recurrent block orthogonal × ``gain``).
        output: the output kind (:mod:`bptt.engine.outputs`).
        reset_after: where the reset gate acts (see the module docstring).
        gain: the orthogonal blocks' scale (``init="orthogonal"`` only).
        dtype: ``torch.float32`` or ``torch.float64``.
        device: where the parameters live.
    """

    KIND = "gru"  # its name in bptt.models.MODELS
    PARAM_NAMES = ("W_in", "W_rec", "b", "b_rec", "W_out", "b_out")
    INITS = ("uniform", "orthogonal")
    DEFAULT_INIT = "uniform"
    GATES = 3

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, ensemble: int = 1, seed: int = 0,
                 seeds: Sequence[int] | None = None, init: str = "uniform", output: str = "last_softmax",
                 reset_after: bool = True, gain: float = 1.0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(n_in, n_hidden, n_out, ensemble=ensemble, seed=seed, seeds=seeds, init=init,
                         output=output, dtype=dtype, device=device)
        if not isinstance(reset_after, bool):
            raise ValueError(f"reset_after must be True or False, got {reset_after!r}")
        self.reset_after, self.gain = reset_after, check_real("gain", gain, above=0.0)
        self._build()

    def _options(self) -> dict:
        return {"reset_after": self.reset_after, "gain": self.gain}

    def _draw(self, seed: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(int(seed))
        H = self.n_hidden
        w = gate_weights(self.init, gen, self.n_in, H, self.n_out, self.GATES, self.gain)
        return {"W_in": w["W_in"], "W_rec": w["W_rec"], "b": torch.zeros(3 * H, dtype=torch.float64),
                "b_rec": torch.zeros(H, dtype=torch.float64), "W_out": w["W_out"],
                "b_out": torch.zeros(self.n_out, dtype=torch.float64)}

    def spectral_radius(self) -> torch.Tensor:
        """ρ of each member's candidate recurrent block W_rec[:, :, 2H:3H], ``[E]``."""
        H = self.n_hidden
        return spectral_radius(self.W_rec.detach()[:, :, 2 * H:])

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, *, alpha: torch.Tensor | float = 0.0,
                         omega: str | None = "squared", h0: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None, cuda_graph: bool = False,
                         dropout: float = 0.0, generator: torch.Generator | None = None) -> StepResult:
        """Loss, exact gradients and the gradient norm of each member.

        With ``reset_after=True`` by the hand-derived pass of :mod:`bptt.models.gru_bptt`
        (no autograd graph; the same numbers as :meth:`AutogradEnsemble.forward_backward`
        up to rounding), otherwise by ``torch.autograd``. See
        :meth:`bptt.models.base.EnsembleModel.forward_backward` for the arguments;
        ``cuda_graph`` is ignored.

        Raises:
            ValueError: for badly shaped or typed inputs, targets, α, h0 or mask.

        With ``dropout`` > 0, or Ω weighed (α > 0 with ``omega`` set), the pass is
        autograd's (see :meth:`bptt.models.base.AutogradEnsemble.forward_backward`).
        """
        if not self.reset_after or dropout or self._omega_wanted(alpha, omega):
            return super().forward_backward(x, y, alpha=alpha, omega=omega, h0=h0, mask=mask,
                                            dropout=dropout, generator=generator)
        self._check_batch(x, y, h0, mask)
        self._refuse_omega(alpha, omega)
        params = {k: p.detach() for k, p in self.params.items()}
        loss, grads, state = gru_bptt.forward_backward(params, x.to(self.dtype), y, output=self.output,
                                                       h0=h0, mask=mask)
        return self._result(loss, grads, state)

    def _run(self, params, x, state, keep):
        W_rec, b_rec = params["W_rec"], params["b_rec"]
        E, H = W_rec.shape[0], self.n_hidden
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        xw = project_inputs(x, params["W_in"], params["b"])          # [E,T,B,3H]
        h = torch.zeros(E, B, H, dtype=W_rec.dtype, device=W_rec.device) if state is None else state
        W_rz, W_n = W_rec[..., :2 * H], W_rec[..., 2 * H:]
        b_n = b_rec.unsqueeze(1)
        outs = []
        for xw_t in xw.unbind(1):
            rz = torch.sigmoid(torch.baddbmm(xw_t[..., :2 * H], h, W_rz))
            r, z = rz[..., :H], rz[..., H:]
            if self.reset_after:
                n = torch.tanh(xw_t[..., 2 * H:] + r * torch.baddbmm(b_n, h, W_n))
            else:
                n = torch.tanh(torch.baddbmm(xw_t[..., 2 * H:] + b_n, r * h, W_n))
            h = n + z * (h - n)
            if keep:
                outs.append(h)
        return (torch.stack(outs) if keep else h), h
