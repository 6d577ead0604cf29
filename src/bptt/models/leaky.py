"""Leaky-integrator units, as an ensemble of E independent networks.

Bengio, Boulanger-Lewandowski & Pascanu (2013), "Advances in optimizing recurrent
networks" (leaky integration): each unit keeps a fraction of its previous value,

    h_t = (1 − a) ⊙ h_{t−1} + a ⊙ σ(h_{t−1} W_rec + u_t W_in + b),   h_0 = 0,
    ŷ_t = h_t W_out + b_out   (then the output nonlinearity),

with per-unit rates a ∈ (0, 1]: a unit with rate a forgets on a time scale of about
1/a steps, so a spread of rates gives the network a spread of time scales. With every
rate 1 this is the Elman network of :class:`bptt.ElmanRNN` (the tests hold it to that).

The rates are either fixed, spread geometrically between two bounds (a deterministic
log-uniform grid, a_j = lo·(hi/lo)^{j/(H−1)}, the same for every member), or learned:
a = sigmoid(rate_logit) with ``rate_logit`` a parameter starting at the logit of that
same spread.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch

from bptt.engine.exact import project_inputs
from bptt.engine.units import activate, check_unit
from bptt.models.base import AutogradEnsemble, check_real
from bptt.models.init import DEFAULT_UNIT, INITS, check_init_options, member_init, spectral_radius


def rate_spread(n_hidden: int, low: float, high: float) -> torch.Tensor:
    """``[H]`` rates spread geometrically from ``low`` to ``high`` (float64)."""
    if n_hidden == 1:
        return torch.tensor([high], dtype=torch.float64)
    j = torch.arange(n_hidden, dtype=torch.float64) / (n_hidden - 1)
    return low * (high / low) ** j


class LeakyRNN(AutogradEnsemble):
    """E independent networks of leaky-integrator units of the same shape.

    ==========  ===========  ===============================================
    name        shape        role
    ==========  ===========  ===============================================
    W_rec       [E, H, H]    recurrent weights (row i: from unit i)
    W_in        [E, I, H]    input weights
    b           [E, H]       hidden bias
    W_out       [E, H, O]    output weights
    b_out       [E, O]       output bias
    rate_logit  [E, H]       logit of the rates (parameter, ``learn_rates``)
    rates       [E, H]       the rates (buffer, fixed rates)
    ==========  ===========  ===============================================

    W_rec, W_in, b, W_out and b_out are drawn as :class:`bptt.ElmanRNN` draws them
    (:mod:`bptt.models.init`). :meth:`spectral_radius` is ρ(W_rec).

    Args:
        n_in, n_hidden, n_out: I, H, O.
        ensemble: E (ignored when ``seeds`` is given).
        seed: member e is drawn from seed ``seed + e``.
        seeds: explicit per-member seeds.
        unit: σ; default: the unit the initialization was designed for.
        init: one of :data:`bptt.models.init.INITS` (default ``"smart_tanh"``;
            ``"orthogonal"`` for an orthogonal W_rec).
        output: the output kind (:mod:`bptt.engine.outputs`).
        rates: ``(low, high)``, the bounds of the rates' spread, 0 < low ≤ high ≤ 1
            (default (0.01, 0.99): time scales from about one to a hundred steps);
            a single float gives every unit that rate.
        learn_rates: learn the rates (through a sigmoid) instead of fixing them; the
            bounds must then lie strictly inside (0, 1).
        dtype: ``torch.float32`` or ``torch.float64``.
        device: where the parameters live.
        init_options: extra options of the initialization (see :mod:`bptt.models.init`).
    """

    KIND = "leaky"  # its name in bptt.models.MODELS
    PARAM_NAMES = ("W_rec", "W_in", "b", "W_out", "b_out")   # + ("rate_logit",) when learned
    INITS = INITS
    DEFAULT_INIT = "smart_tanh"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, ensemble: int = 1, seed: int = 0,
                 seeds: Sequence[int] | None = None, unit: str | None = None, init: str = "smart_tanh",
                 output: str = "last_softmax", rates: float | tuple[float, float] = (0.01, 0.99),
                 learn_rates: bool = False, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu", init_options: dict | None = None) -> None:
        super().__init__(n_in, n_hidden, n_out, ensemble=ensemble, seed=seed, seeds=seeds, init=init,
                         output=output, dtype=dtype, device=device)
        self.unit = check_unit(unit if unit is not None else DEFAULT_UNIT[self.init])
        pair = (rates, rates) if isinstance(rates, numbers.Real) else tuple(rates) if isinstance(
            rates, (tuple, list)) else ()
        if len(pair) != 2:
            raise ValueError(f"rates must be a number or a pair (low, high), got {rates!r}")
        low, high = (check_real("rates", r, above=0.0, at_most=1.0) for r in pair)
        if low > high:
            raise ValueError(f"rates must satisfy 0 < low <= high <= 1, got {rates!r}")
        if not isinstance(learn_rates, bool):
            raise ValueError(f"learn_rates must be True or False, got {learn_rates!r}")
        if learn_rates and high >= 1:
            raise ValueError(f"learned rates go through a sigmoid: their bounds must be < 1, got {rates!r}")
        self.rates_bounds, self.learn_rates = (low, high), learn_rates
        self.init_options = check_init_options(self.init, dict(init_options or {}))
        if learn_rates:
            self.PARAM_NAMES = LeakyRNN.PARAM_NAMES + ("rate_logit",)
        self._build()

    def _options(self) -> dict:
        return {"unit": self.unit, "rates": list(self.rates_bounds), "learn_rates": self.learn_rates,
                "init_options": dict(self.init_options)}

    def _draw(self, seed: int) -> dict[str, torch.Tensor]:
        out = member_init(self.init, self.n_in, self.n_hidden, self.n_out, seed, **self.init_options)
        a = rate_spread(self.n_hidden, *self.rates_bounds)
        if self.learn_rates:
            out["rate_logit"] = torch.log(a) - torch.log1p(-a)
        else:
            out["rates"] = a
        return out

    def spectral_radius(self) -> torch.Tensor:
        """ρ(W_rec) of each member, ``[E]``."""
        return spectral_radius(self.W_rec.detach())

    def leak_rates(self) -> torch.Tensor:
        """The rates a, ``[E, H]`` (detached)."""
        if self.learn_rates:
            return torch.sigmoid(self.rate_logit.detach())
        return self.rates

    def _run(self, params, x, state, keep):
        W_rec = params["W_rec"]
        E, H = W_rec.shape[0], self.n_hidden
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        a = torch.sigmoid(params["rate_logit"]) if self.learn_rates else params["rates"]
        a = a.unsqueeze(1)                                            # [E,1,H]
        xw = project_inputs(x, params["W_in"], params["b"])          # [E,T,B,H]
        h = torch.zeros(E, B, H, dtype=W_rec.dtype, device=W_rec.device) if state is None else state
        outs = []
        for xw_t in xw.unbind(1):
            s = activate(torch.baddbmm(xw_t, h, W_rec), self.unit)
            h = h + a * (s - h)
            if keep:
                outs.append(h)
        return (torch.stack(outs) if keep else h), h
