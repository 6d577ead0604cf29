"""Long short-term memory with a forget gate, as an ensemble of E independent networks.

Hochreiter & Schmidhuber (1997), "Long short-term memory", with the forget gate of
Gers, Schmidhuber & Cummins (2000), "Learning to forget", in the form PyTorch's
``torch.nn.LSTM`` computes (no peepholes), row vectors:

    [i | f | g | o] = u_t W_in + h_{t−1} W_rec + b
    i, f, o = σ(i), σ(f), σ(o);   g = tanh(g)
    c_t = f ⊙ c_{t−1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)
    ŷ_t = h_t W_out + b_out   (then the output nonlinearity)

with h_0 = c_0 = 0 unless a state is given. The gates are laid side by side in the
last axis in PyTorch's order (input, forget, cell candidate, output), so that member
e maps onto ``torch.nn.LSTM(I, H)`` by ``weight_ih_l0 = W_in[e]ᵀ``,
``weight_hh_l0 = W_rec[e]ᵀ``, ``bias_ih_l0 = b[e]`` and ``bias_hh_l0 = 0`` (PyTorch's
two bias vectors only ever appear as their sum).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from bptt.engine.exact import StepResult, project_inputs
from bptt.models import lstm_bptt
from bptt.models.base import AutogradEnsemble, check_real
from bptt.models.init import orthogonal_matrix, spectral_radius


def _uniform(gen: torch.Generator, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * bound


def gate_weights(init: str, gen: torch.Generator, n_in: int, n_hidden: int, n_out: int,
                 gates: int, gain: float = 1.0) -> dict[str, torch.Tensor]:
    """Input, recurrent and output weights of a gated network, drawn in that order.

    ``"uniform"``: every weight U(−1/√H, 1/√H), PyTorch's default for ``nn.LSTM``,
    ``nn.GRU`` and ``nn.Linear(H, O)``. ``"orthogonal"``: the same input and output
    weights, and each of the ``gates`` H×H blocks of W_rec an independent random
    orthogonal matrix times ``gain`` (Saxe, McClelland & Ganguli 2014).

    Returns:
        ``W_in [I, gates·H]``, ``W_rec [H, gates·H]``, ``W_out [H, O]`` (float64).
    """
    H = n_hidden
    k = 1.0 / math.sqrt(H)
    W_in = _uniform(gen, (n_in, gates * H), k)
    if init == "uniform":
        W_rec = _uniform(gen, (H, gates * H), k)
    else:
        W_rec = torch.cat([orthogonal_matrix(gen, H) * gain for _ in range(gates)], dim=1)
    W_out = _uniform(gen, (H, n_out), k)
    return {"W_in": W_in, "W_rec": W_rec, "W_out": W_out}


class LSTM(AutogradEnsemble):
    """E independent LSTM networks (forget gate, no peepholes) of the same shape.

    ========  ============  ======================================================
    name      shape         role
    ========  ============  ======================================================
    W_in      [E, I, 4H]    input weights of the gates i, f, g, o (side by side)
    W_rec     [E, H, 4H]    recurrent weights of the gates
    b         [E, 4H]       gate biases (forget block starts at ``forget_bias``)
    W_out     [E, H, O]     output weights
    b_out     [E, O]        output bias
    ========  ============  ======================================================

    The state carried between windows (``h0``, ``h_last``) is [h | c], ``[E, B, 2H]``.
    :meth:`spectral_radius` is that of the cell-candidate block W_rec[:, :, 2H:3H].

    Args:
        n_in, n_hidden, n_out: I, H, O.
        ensemble: E (ignored when ``seeds`` is given).
        seed: member e is drawn from seed ``seed + e``.
        seeds: explicit per-member seeds.
        init: ``"uniform"`` (default; PyTorch's U(−1/√H, 1/√H)) or ``"orthogonal"``
            (each gate's recurrent block orthogonal × ``gain``); see :func:`gate_weights`.
        output: the output kind (:mod:`bptt.engine.outputs`).
        forget_bias: the forget gate's initial bias; 1.0 by default, as recommended by
            Jozefowicz, Zaremba & Sutskever (2015), "An empirical exploration of
            recurrent network architectures" (Gers et al. 2000 already start it
            positive). Every other bias starts at zero.
        gain: the orthogonal blocks' scale (``init="orthogonal"`` only).
        dtype: ``torch.float32`` or ``torch.float64``.
        device: where the parameters live.
    """

    KIND = "lstm"  # its name in bptt.models.MODELS
    PARAM_NAMES = ("W_in", "W_rec", "b", "W_out", "b_out")
    INITS = ("uniform", "orthogonal")
    DEFAULT_INIT = "uniform"
    GATES = 4

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, ensemble: int = 1, seed: int = 0,
                 seeds: Sequence[int] | None = None, init: str = "uniform", output: str = "last_softmax",
                 forget_bias: float = 1.0, gain: float = 1.0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(n_in, n_hidden, n_out, ensemble=ensemble, seed=seed, seeds=seeds, init=init,
                         output=output, dtype=dtype, device=device)
        self.forget_bias = check_real("forget_bias", forget_bias)
        self.gain = check_real("gain", gain, above=0.0)
        self._build()

    def _options(self) -> dict:
        return {"forget_bias": self.forget_bias, "gain": self.gain}

    def _draw(self, seed: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(int(seed))
        H = self.n_hidden
        w = gate_weights(self.init, gen, self.n_in, H, self.n_out, self.GATES, self.gain)
        b = torch.zeros(4 * H, dtype=torch.float64)
        b[H:2 * H] = self.forget_bias
        return {"W_in": w["W_in"], "W_rec": w["W_rec"], "b": b, "W_out": w["W_out"],
                "b_out": torch.zeros(self.n_out, dtype=torch.float64)}

    @property
    def state_size(self) -> int:
        return 2 * self.n_hidden

    def spectral_radius(self) -> torch.Tensor:
        """ρ of each member's cell-candidate recurrent block W_rec[:, :, 2H:3H], ``[E]``."""
        H = self.n_hidden
        return spectral_radius(self.W_rec.detach()[:, :, 2 * H:3 * H])

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, *, alpha: torch.Tensor | float = 0.0,
                         omega: str | None = "squared", h0: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None, cuda_graph: bool = False,
                         dropout: float = 0.0, generator: torch.Generator | None = None) -> StepResult:
        """Loss, exact gradients and the gradient norm of each member, by the hand-derived
        pass of :mod:`bptt.models.lstm_bptt` (no autograd graph; the same numbers as
        :meth:`AutogradEnsemble.forward_backward` up to rounding).

        See :meth:`bptt.models.base.EnsembleModel.forward_backward` for the arguments;
        ``h0`` and ``h_last`` are [h | c], ``[E, B, 2H]``. ``cuda_graph`` is ignored.

        Raises:
            ValueError: for badly shaped or typed inputs, targets, α, h0 or mask.

        With ``dropout`` > 0, or Ω weighed (α > 0 with ``omega`` set), the pass is
        autograd's (see :meth:`bptt.models.base.AutogradEnsemble.forward_backward`).
        """
        if dropout or self._omega_wanted(alpha, omega):
            return super().forward_backward(x, y, alpha=alpha, omega=omega, h0=h0, mask=mask,
                                            dropout=dropout, generator=generator)
        self._check_batch(x, y, h0, mask)
        self._refuse_omega(alpha, omega)
        params = {k: p.detach() for k, p in self.params.items()}
        loss, grads, state = lstm_bptt.forward_backward(params, x.to(self.dtype), y, output=self.output,
                                                        h0=h0, mask=mask)
        return self._result(loss, grads, state)

    def _run(self, params, x, state, keep):
        W_rec = params["W_rec"]
        E, H = W_rec.shape[0], self.n_hidden
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        xw = project_inputs(x, params["W_in"], params["b"])          # [E,T,B,4H]
        if state is None:
            h = torch.zeros(E, B, H, dtype=W_rec.dtype, device=W_rec.device)
            c = h
        else:
            h, c = state[..., :H], state[..., H:]
        outs = []
        for xw_t in xw.unbind(1):
            gates = torch.baddbmm(xw_t, h, W_rec)                    # [E,B,4H]
            ifo = torch.sigmoid(gates)
            g = torch.tanh(gates[..., 2 * H:3 * H])
            c = ifo[..., H:2 * H] * c + ifo[..., :H] * g
            h = ifo[..., 3 * H:] * torch.tanh(c)
            if keep:
                outs.append(h)
        return (torch.stack(outs) if keep else h), torch.cat([h, c], -1)
