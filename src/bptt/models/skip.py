"""An Elman network with a second recurrent path reaching d steps back, as an ensemble.

    h_t = σ(h_{t−1} W_rec + h_{t−d} W_skip + u_t W_in + b),   h_t = 0 for t ≤ 0,
    ŷ_t = h_t W_out + b_out   (then the output nonlinearity).

The delayed connection gives the error signal a path that crosses d steps through a
single Jacobian, so it decays d times more slowly in the number of products taken:
the idea of the time-delay connections of Lin, Horne, Tiňo & Giles (1996), "Learning
long-term dependencies in NARX recurrent neural networks", and of El Hihi & Bengio
(1996), "Hierarchical recurrent neural networks for long-term dependencies". With
W_skip = 0 it is the Elman network of :class:`bptt.ElmanRNN` (the tests hold it to
that); d = 1 is allowed (then W_rec + W_skip acts as one matrix).

The state carried between windows holds the last d hidden states,
[h_t | h_{t−1} | … | h_{t−d+1}], ``[E, B, d·H]``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from bptt.engine.exact import project_inputs
from bptt.engine.units import activate, check_unit
from bptt.models.base import AutogradEnsemble, check_real, derived_seed, is_int
from bptt.models.init import DEFAULT_UNIT, INITS, check_init_options, member_init, spectral_radius


class SkipRNN(AutogradEnsemble):
    """E independent Elman networks with a delay-d recurrent path.

    ========  ===========  ========================================
    name      shape        role
    ========  ===========  ========================================
    W_rec     [E, H, H]    recurrent weights from h_{t−1}
    W_skip    [E, H, H]    recurrent weights from h_{t−d}
    W_in      [E, I, H]    input weights
    b         [E, H]       hidden bias
    W_out     [E, H, O]    output weights
    b_out     [E, O]       output bias
    ========  ===========  ========================================

    W_rec, W_in, b, W_out and b_out are drawn as :class:`bptt.ElmanRNN` draws them;
    W_skip is drawn as W_rec is (same initialization, an independent stream of the
    member's seed) and multiplied by ``skip_scale``. :meth:`spectral_radius` is
    ρ(W_rec).

    Args:
        n_in, n_hidden, n_out: I, H, O.
        ensemble: E (ignored when ``seeds`` is given).
        seed: member e is drawn from seed ``seed + e``.
        seeds: explicit per-member seeds.
        unit: σ; default: the unit the initialization was designed for.
        init: one of :data:`bptt.models.init.INITS` (default ``"smart_tanh"``).
        output: the output kind.
        delay: d ≥ 1, how far back the second path reaches (default 5; no
            canonical value exists, it is the problem's time scale to match).
        skip_scale: factor on the drawn W_skip (default 1; 0 starts from an Elman
            network).
        dtype: ``torch.float32`` or ``torch.float64``.
        device: where the parameters live.
        init_options: extra options of the initialization.
    """

    KIND = "skip"  # its name in bptt.models.MODELS
    PARAM_NAMES = ("W_rec", "W_skip", "W_in", "b", "W_out", "b_out")
    RECURRENT_NAMES = ("W_rec", "W_skip")
    INITS = INITS
    DEFAULT_INIT = "smart_tanh"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, ensemble: int = 1, seed: int = 0,
                 seeds: Sequence[int] | None = None, unit: str | None = None, init: str = "smart_tanh",
                 output: str = "last_softmax", delay: int = 5, skip_scale: float = 1.0,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                 init_options: dict | None = None) -> None:
        super().__init__(n_in, n_hidden, n_out, ensemble=ensemble, seed=seed, seeds=seeds, init=init,
                         output=output, dtype=dtype, device=device)
        self.unit = check_unit(unit if unit is not None else DEFAULT_UNIT[self.init])
        if not is_int(delay) or delay < 1:
            raise ValueError(f"delay must be an integer d >= 1, got {delay!r}")
        self.delay, self.skip_scale = int(delay), check_real("skip_scale", skip_scale)
        self.init_options = check_init_options(self.init, dict(init_options or {}))
        self._build()

    def _options(self) -> dict:
        return {"unit": self.unit, "delay": self.delay, "skip_scale": self.skip_scale,
                "init_options": dict(self.init_options)}

    def _draw(self, seed: int) -> dict[str, torch.Tensor]:
        out = member_init(self.init, self.n_in, self.n_hidden, self.n_out, seed, **self.init_options)
        second = member_init(self.init, 1, self.n_hidden, 1, derived_seed(seed, 1), **self.init_options)
        out["W_skip"] = second["W_rec"] * self.skip_scale
        return out

    @property
    def state_size(self) -> int:
        return self.delay * self.n_hidden

    def spectral_radius(self) -> torch.Tensor:
        """ρ(W_rec) of each member, ``[E]``."""
        return spectral_radius(self.W_rec.detach())

    def _run(self, params, x, state, keep):
        W_rec, W_skip = params["W_rec"], params["W_skip"]
        E, H, d = W_rec.shape[0], self.n_hidden, self.delay
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        xw = project_inputs(x, params["W_in"], params["b"])          # [E,T,B,H]
        if state is None:
            zero = torch.zeros(E, B, H, dtype=W_rec.dtype, device=W_rec.device)
            past = [zero] * d                                        # h_{t−d}, …, h_{t−1}
        else:
            past = [state[..., k * H:(k + 1) * H] for k in range(d - 1, -1, -1)]
        outs = []
        for xw_t in xw.unbind(1):
            a = torch.baddbmm(xw_t, past[-1], W_rec)
            h = activate(torch.baddbmm(a, past[-d], W_skip), self.unit)
            past = past[1:] + [h]
            if keep:
                outs.append(h)
        state_T = torch.cat(past[::-1], -1)                          # [h_t | h_{t−1} | …]
        return (torch.stack(outs) if keep else past[-1]), state_T
