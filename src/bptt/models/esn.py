"""Echo-state networks: a fixed random reservoir and a learned readout, as an ensemble.

Jaeger (2001), "The 'echo state' approach to analysing and training recurrent neural
networks" (GMD Report 148); the choices and defaults follow Lukoševičius (2012), "A
practical guide to applying echo state networks" (in *Neural Networks: Tricks of the
Trade*, 2nd ed.), cited below by its section titles. The reservoir (the leaky-integrator
form of Lukoševičius' basic model, in row vectors):

    h_t = (1 − a) h_{t−1} + a tanh(h_{t−1} W_rec + u_t W_in + b),   h_0 = 0,
    ŷ_t = h_t W_out + b_out   (then the output nonlinearity).

Only W_out and b_out learn. W_rec, W_in and b are drawn once and never change:

* W_rec: sparse, ``nonzero`` entries per row (default 10: a small fixed number of
  connections per unit, "Sparsity of the reservoir"), values U(−1, 1) ("Distribution
  of nonzero elements"), then rescaled to spectral radius ``radius`` (default 0.95:
  ρ < 1 as the rule of thumb, closer to 1 for tasks needing longer memory,
  "Spectral radius");
* W_in: dense U(−s, s) with s = ``input_scaling`` (default 1.0, "Input scaling");
* b: U(−s_b, s_b) with s_b = ``bias_scaling`` (default 1.0: the bias as a constant
  input scaled like the others, "Input scaling");
* a = ``leak`` ∈ (0, 1] (default 1.0, Jaeger's original non-leaky ESN; "Leaking rate").

The readout is fitted in closed form by ridge regression, :meth:`ESN.fit_readout`
(Lukoševičius, "Ridge regression"), or trained by SGD through
:meth:`ESN.forward_backward`, which returns gradients for the readout and zeros for
the reservoir.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from bptt.engine.exact import StepResult, project_inputs
from bptt.engine.outputs import PER_STEP
from bptt.models import checks
from bptt.models.base import AutogradEnsemble, any_positive, check_positive_int, check_real, mean_loss
from bptt.models.init import spectral_radius
from bptt.omega.terms import check_omega


class ESN(AutogradEnsemble):
    """E independent echo-state networks of the same shape.

    ========  ===========  ========================================
    name      shape        role
    ========  ===========  ========================================
    W_rec     [E, H, H]    reservoir (fixed; ρ = ``radius``)
    W_in      [E, I, H]    input weights (fixed)
    b         [E, H]       reservoir bias (fixed)
    W_out     [E, H, O]    readout weights (learned)
    b_out     [E, O]       readout bias (learned)
    ========  ===========  ========================================

    All five are in :attr:`params` (with ``requires_grad`` off for the reservoir), so
    the update rules treat an ESN like any other model; :meth:`forward_backward`'s
    gradients of the reservoir are zero and :attr:`recurrent_names` is empty (the
    non-finite guard has no learned recurrent weights to shrink). :meth:`spectral_radius`
    is ρ(W_rec). The readout starts at zero.

    Args:
        n_in, n_hidden, n_out: I, H (the reservoir size), O.
        ensemble: E (ignored when ``seeds`` is given).
        seed: member e is drawn from seed ``seed + e``.
        seeds: explicit per-member seeds.
        init: ``"reservoir"`` (the only one; kept for the common constructor shape).
        output: the output kind.
        radius: ρ(W_rec) > 0.
        nonzero: nonzero entries per row of W_rec (≥ 1; capped at H).
        input_scaling: s > 0, the input weights' range.
        bias_scaling: s_b ≥ 0, the bias' range.
        leak: the leak rate a ∈ (0, 1].
        dtype: ``torch.float32`` or ``torch.float64``.
        device: where the parameters live.
    """

    KIND = "esn"  # its name in bptt.models.MODELS
    PARAM_NAMES = ("W_rec", "W_in", "b", "W_out", "b_out")
    RECURRENT_NAMES = ()
    INITS = ("reservoir",)
    DEFAULT_INIT = "reservoir"
    FIXED = ("W_rec", "W_in", "b")

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, ensemble: int = 1, seed: int = 0,
                 seeds: Sequence[int] | None = None, init: str = "reservoir", output: str = "last_softmax",
                 radius: float = 0.95, nonzero: int = 10, input_scaling: float = 1.0,
                 bias_scaling: float = 1.0, leak: float = 1.0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(n_in, n_hidden, n_out, ensemble=ensemble, seed=seed, seeds=seeds, init=init,
                         output=output, dtype=dtype, device=device)
        self.radius = check_real("radius (the reservoir's spectral radius ρ)", radius, above=0.0)
        self.nonzero = check_positive_int("nonzero", nonzero)
        self.input_scaling = check_real("input_scaling", input_scaling, above=0.0)
        self.bias_scaling = check_real("bias_scaling", bias_scaling, at_least=0.0)
        self.leak = check_real("leak", leak, above=0.0, at_most=1.0)
        self._build()
        for name in self.FIXED:
            getattr(self, name).requires_grad_(False)

    def _options(self) -> dict:
        return {"radius": self.radius, "nonzero": self.nonzero, "input_scaling": self.input_scaling,
                "bias_scaling": self.bias_scaling, "leak": self.leak}

    def _draw(self, seed: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(int(seed))
        H, I = self.n_hidden, self.n_in

        def uniform(shape, s):
            return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * s

        W = uniform((H, H), 1.0)
        keep = min(self.nonzero, H)
        if keep < H:
            order = torch.argsort(torch.rand(H, H, generator=gen, dtype=torch.float64), dim=1)
            W.scatter_(1, order[:, keep:], 0.0)
        rho = float(spectral_radius(W))
        if rho == 0.0:                       # a nilpotent draw (possible for tiny H): redraw densely
            W = uniform((H, H), 1.0)
            rho = float(spectral_radius(W))
        W = W * (self.radius / rho)
        return {"W_rec": W, "W_in": uniform((I, H), self.input_scaling), "b": uniform((H,), self.bias_scaling),
                "W_out": torch.zeros(H, self.n_out, dtype=torch.float64),
                "b_out": torch.zeros(self.n_out, dtype=torch.float64)}

    def spectral_radius(self) -> torch.Tensor:
        """ρ(W_rec) of each member, ``[E]`` (``radius`` by construction)."""
        return spectral_radius(self.W_rec.detach())

    def _run(self, params, x, state, keep):
        W_rec = params["W_rec"]
        E, H = W_rec.shape[0], self.n_hidden
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        xw = project_inputs(x, params["W_in"], params["b"])          # [E,T,B,H]
        h = torch.zeros(E, B, H, dtype=W_rec.dtype, device=W_rec.device) if state is None else state
        outs = []
        for xw_t in xw.unbind(1):
            s = torch.tanh(torch.baddbmm(xw_t, h, W_rec))
            h = s if self.leak == 1.0 else h + self.leak * (s - h)
            if keep:
                outs.append(h)
        return (torch.stack(outs) if keep else h), h

    @torch.no_grad()
    def states(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The reservoir's states: ``([T, E, B, H] or last [E, B, H], h_T [E, B, H])``
        (every step for per-step outputs, the last one otherwise)."""
        checks.check_inputs(x, self.n_in, self.ensemble, self.device)
        return self._run(self._tensors(), x.to(self.dtype), h0, self.per_step)

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, *, alpha: torch.Tensor | float = 0.0,
                         omega: str | None = "squared", h0: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None, cuda_graph: bool = False,
                         dropout: float = 0.0, generator: torch.Generator | None = None) -> StepResult:
        """Loss and gradients of the readout (the reservoir's gradients are zero).

        Args: as :meth:`bptt.models.base.EnsembleModel.forward_backward`; ``dropout``
        drops inputs and the states fed to the readout (Zaremba et al. 2014).

        Raises:
            ValueError: for α > 0 with ``omega`` set: Ω regularizes recurrent weights
                that learn, and an ESN's do not; also for badly shaped inputs,
                targets, α, h0 or mask.
        """
        self._check_batch(x, y, h0, mask)
        checks.check_alpha(alpha, self.ensemble)
        check_omega(omega)
        if omega is not None and any_positive(alpha):
            raise ValueError("Ω is meaningless on an echo-state network: its recurrent weights do not learn. "
                             "Pass alpha=0 or omega=None.")
        checks.check_inputs(x, self.n_in, self.ensemble, self.device)
        x, readout_mask = self._dropout(x.to(self.dtype), dropout, generator)
        h, state = self.states(x, h0)
        if readout_mask is not None:
            h = h * readout_mask
        W_out = self.W_out.detach().requires_grad_(True)
        b_out = self.b_out.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = mean_loss(self._readout({"W_out": W_out, "b_out": b_out}, h), y, self.output, mask)
            g_W, g_b = torch.autograd.grad(loss.sum(), [W_out, b_out])
        grads = {k: torch.zeros_like(getattr(self, k)) for k in self.FIXED}
        grads.update({"W_out": g_W, "b_out": g_b})
        grads = {k: grads[k] for k in self.PARAM_NAMES}
        return self._result(loss.detach(), grads, state)

    @torch.no_grad()
    def fit_readout(self, x: torch.Tensor, y: torch.Tensor, *, ridge: float = 1e-6,
                    h0: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> "ESN":
        """Fit each member's readout in closed form by ridge regression (Lukoševičius, "Ridge regression").

        With X the reservoir states read by the output (the last state of each
        sequence, or every unmasked step) augmented by a column of ones, and Y the
        targets (the targets themselves for linear and sigmoid outputs, one-hot rows
        for class outputs: least squares on one-hot targets), each member solves

            [W_out; b_out] = (XᵀX + λ D)⁻¹ XᵀY,   D = diag(1, …, 1, 0),

        so the bias is not shrunk. Sets ``W_out`` and ``b_out`` in place.

        Args:
            x: ``[T, B, I]`` or ``[T, E, B, I]``.
            y: targets of the output kind, shared or per member.
            ridge: λ ≥ 0.
            h0: ``[E, B, H]`` initial state.
            mask: ``[T, B]`` real steps, for per-step outputs.

        Returns:
            ``self``.
        """
        self._check_batch(x, y, h0, mask)
        ridge = check_real("ridge", ridge, at_least=0.0)
        h, _ = self.states(x, h0)
        E, H, O = self.ensemble, self.n_hidden, self.n_out
        classes = self.output in ("last_softmax", "softmax")
        if classes:
            Y = F.one_hot(y, O).to(self.dtype)
        else:
            Y = y.to(self.dtype)
        if self.output in PER_STEP:                                   # [T,E,B,H] → [E, T·B, H]
            T, _, B, _ = h.shape
            X = h.permute(1, 0, 2, 3).reshape(E, T * B, H)
            per_member = y.dim() == (3 if self.output == "softmax" else 4)
            Y = (Y.transpose(0, 1) if per_member else Y.unsqueeze(1).expand(T, E, B, O)).reshape(E, T * B, O)
            w = None if mask is None else mask.to(self.dtype).reshape(1, T * B, 1)
        else:
            X = h
            Y = Y.expand(E, *Y.shape[-2:])
            w = None
        X = torch.cat([X, torch.ones_like(X[..., :1])], -1)          # [E, N, H+1]
        Xw = X if w is None else X * w
        A = Xw.transpose(1, 2) @ X
        reg = torch.ones(H + 1, dtype=self.dtype, device=self.device)
        reg[-1] = 0.0
        A = A + float(ridge) * torch.diag(reg)
        rhs = Xw.transpose(1, 2) @ Y
        # λ = 0 may leave A singular (fewer rows than states): least squares then
        beta = torch.linalg.solve(A, rhs) if ridge > 0 else torch.linalg.lstsq(A, rhs).solution
        self.W_out.copy_(beta[:, :H])
        self.b_out.copy_(beta[:, H])
        return self
