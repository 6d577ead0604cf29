"""The paper's recurrent network (eq. 2) as an ensemble of E independent networks."""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch

from bptt.engine import check_kernel, exact, get_pass, reference
from bptt.engine.dropout import check_dropout
from bptt.engine.graphs import GraphCache
from bptt.engine.outputs import PER_STEP, check_output
from bptt.engine.units import check_unit
from bptt.models import checks
from bptt.models.init import DEFAULT_UNIT, check_init, check_init_options, ensemble_init, spectral_radius
from bptt.omega.terms import check_omega


def _is_int(value) -> bool:
    """An integer (Python or NumPy, not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(name: str, value) -> int:
    """``value`` as an int >= 1 (integral floats such as ``4.0`` accepted); ``ValueError`` otherwise."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or int(value) != value or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ElmanRNN(torch.nn.Module):
    """E independent Elman networks of the same shape, trained as one.

    The paper writes the network (eq. 2) with column vectors as

        x_t = W_rec σ(x_{t−1}) + W_in u_t + b,

    where x_t is the pre-activation. This class stores row-vector weights, as
    ``torch.nn.RNN`` and the paper's reference code do, and iterates the hidden state
    h_t = σ(x_t):

        h_t = σ(h_{t−1} W_rec + u_t W_in + b),   h_0 = 0,
        ŷ_t = h_t W_out + b_out   (then the output nonlinearity),

    so the parameters map onto eq. 2 by transposition: ``params["W_rec"][e]`` is
    W_recᵀ of member e, ``params["W_in"][e]`` is W_inᵀ, ``params["b"][e]`` is b.
    Shapes carry a leading ensemble axis E:

    ========  ===========  ========================================
    name      shape        role
    ========  ===========  ========================================
    W_rec     [E, H, H]    recurrent weights (row i: from unit i)
    W_in      [E, I, H]    input weights
    b         [E, H]       hidden bias
    W_out     [E, H, O]    output weights
    b_out     [E, O]       output bias
    ========  ===========  ========================================

    Args:
        n_in: input size I.
        n_hidden: hidden units H.
        n_out: output size O.
        ensemble: E, the number of members (ignored when ``seeds`` is given).
        unit: ``"tanh"``, ``"sigmoid"``, ``"relu"`` or ``"linear"``; default: the unit
            the initialization was designed for.
        init: ``"sigmoid"``, ``"basic_tanh"``, ``"smart_tanh"``, ``"orthogonal"``,
            ``"identity"`` (see :mod:`bptt.models.init`).
        output: ``"last_softmax"``, ``"softmax"``, ``"last_linear"`` or ``"sigmoid"``.
        seed: member e is drawn from seed ``seed + e``.
        seeds: explicit per-member seeds (overrides ``seed`` and ``ensemble``).
        dtype: ``torch.float32`` (default) or ``torch.float64``.
        device: ``"cpu"``, ``"cuda"``, ...
        init_options: extra options of the initialization (``radius``, ``gain``,
            ``scale``, ``nonzero``).
    """

    KIND = "elman"  # its name in bptt.models.MODELS

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *, ensemble: int = 1,
                 unit: str | None = None, init: str = "smart_tanh", output: str = "last_softmax",
                 seed: int = 0, seeds: Sequence[int] | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                 init_options: dict | None = None) -> None:
        super().__init__()
        sizes = [_positive_int(name, value) for name, value in
                 (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out))]
        check_init(init)
        self.unit = check_unit(unit if unit is not None else DEFAULT_UNIT[init])
        self.output = check_output(output)
        if seeds is None:
            if not _is_int(seed):
                raise ValueError(f"seed must be an integer, got {seed!r}")
            seeds = [seed + e for e in range(_positive_int("ensemble", ensemble))]
        seeds = list(seeds)
        if len(seeds) == 0:
            raise ValueError("seeds must not be empty")
        if not all(_is_int(s) for s in seeds):
            raise ValueError(f"seeds must be integers, got {seeds!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.n_in, self.n_hidden, self.n_out = sizes
        self.init = init
        self.init_options = check_init_options(init, dict(init_options or {}))
        self.seeds = [int(s) for s in seeds]
        self._graphs: GraphCache | None = None     # CUDA graphs of forward_backward, by shape
        self._persistent_graphs: GraphCache | None = None   # the same for kernel="persistent"
        tensors = ensemble_init(init, *sizes, self.seeds, dtype=dtype,
                                device=device, **self.init_options)
        for name in exact.PARAM_NAMES:
            self.register_parameter(name, torch.nn.Parameter(tensors[name]))

    # -- structure -------------------------------------------------------------------
    @property
    def params(self) -> dict[str, torch.nn.Parameter]:
        """The parameters by name: ``W_rec``, ``W_in``, ``b``, ``W_out``, ``b_out``."""
        return {name: getattr(self, name) for name in exact.PARAM_NAMES}

    @property
    def recurrent_names(self) -> tuple[str, ...]:
        """The learned recurrent weights, which the non-finite guard shrinks: ``("W_rec",)``."""
        return ("W_rec",)

    @property
    def state_size(self) -> int:
        """Width of the state carried between windows (``h0``, ``h_last``): H."""
        return self.n_hidden

    @property
    def ensemble(self) -> int:
        return self.W_rec.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.W_rec.dtype

    @property
    def device(self) -> torch.device:
        return self.W_rec.device

    def config(self) -> dict:
        """The constructor arguments that rebuild this model (with its state dict)."""
        return {"n_in": self.n_in, "n_hidden": self.n_hidden, "n_out": self.n_out,
                "unit": self.unit, "init": self.init, "output": self.output,
                "seeds": list(self.seeds), "dtype": str(self.dtype).replace("torch.", ""),
                "init_options": dict(self.init_options)}

    @classmethod
    def from_config(cls, config: dict, device: torch.device | str = "cpu") -> "ElmanRNN":
        cfg = dict(config)
        cfg["dtype"] = getattr(torch, cfg.get("dtype", "float32"))
        return cls(device=device, **cfg)

    def save(self, path) -> None:
        """Write this model (configuration and weights, every member) to the file ``path``,
        in the library's checkpoint format (:mod:`bptt.models.persist`); read it back
        with :func:`bptt.load`. ``FileNotFoundError`` when the directory is missing."""
        from bptt.models.persist import save_model

        save_model(self, path)

    def select(self, members: Sequence[int]) -> "ElmanRNN":
        """A new model holding copies of the given members only."""
        idx = torch.as_tensor(list(members), dtype=torch.long, device=self.device)
        cfg = self.config()
        cfg["seeds"] = [self.seeds[i] for i in members]
        new = ElmanRNN.from_config(cfg, device=self.device)
        with torch.no_grad():
            for name, p in new.params.items():
                p.copy_(getattr(self, name).index_select(0, idx))
        return new

    def extra_repr(self) -> str:
        return (f"n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
                f"ensemble={self.ensemble}, unit={self.unit!r}, init={self.init!r}, "
                f"output={self.output!r}")

    def spectral_radius(self) -> torch.Tensor:
        """ρ(W_rec) of each member, ``[E]`` (float64)."""
        return spectral_radius(self.W_rec.detach())

    # -- computation -----------------------------------------------------------------
    def _check_inputs(self, x: torch.Tensor) -> None:
        checks.check_inputs(x, self.n_in, self.ensemble, self.device)

    def _check_batch(self, x, y, h0, mask) -> None:
        self._check_inputs(x)
        checks.check_targets(y, x, self.output, self.n_out, self.ensemble, self.device)
        B = x.shape[1] if x.dim() == 3 else x.shape[2]
        if h0 is not None:
            checks.check_state(h0, self.ensemble, B, self.n_hidden, self.device)
        if mask is not None:
            checks.check_mask(mask, x.shape[0], B, self.output, self.device)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """Output pre-activations by plain, differentiable PyTorch (the general path).

        Returns ``[E, B, O]`` for last-step outputs and ``[T, E, B, O]`` for per-step
        outputs: logits for softmax and sigmoid outputs, values for linear outputs.
        """
        self._check_inputs(x)
        hs = reference.run_states(self.params, x, self.unit, h0)
        return reference.readout(self.params, hs, self.output)

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor, *, alpha: torch.Tensor | float = 0.0,
                         omega: str | None = "squared", h0: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None, cuda_graph: bool = False,
                         kernel: str = "exact", lengths: Sequence[int] | None = None,
                         dropout: float = 0.0, generator: torch.Generator | None = None) -> exact.StepResult:
        """Loss, exact gradients, Ω and the gradient norm in one pass (no autograd graph).

        Args:
            x: ``[T, B, I]`` shared by all members, or ``[T, E, B, I]``.
            y: targets, shared or with an ensemble axis (see :mod:`bptt.engine.outputs`).
            alpha: Ω's weight α, a float or ``[E]``; the gradient returned for W_rec is
                that of E + α·Ω.
            omega: ``"squared"`` (the reference code's Ω, default), ``"plain"`` (eq. 9),
                or ``None`` (Ω neither computed nor added).
            h0: ``[E, B, H]`` initial state (zeros by default).
            mask: ``[T, B]`` for per-step outputs over padded batches.
            cuda_graph: on a CUDA device, replay the pass as one CUDA graph, captured
                on the first call of each shape (see :mod:`bptt.engine.graphs`): several
                times faster for small ensembles, the same numbers. The parameters
                must then be updated in place. Ignored on the CPU and with ``h0`` or
                ``mask``.
            kernel: ``"exact"`` (the default: :func:`bptt.engine.forward_backward`) or
                ``"persistent"`` (:mod:`bptt.engine.persistent`: the time loops in one
                Triton kernel, for CUDA devices; the same numbers up to rounding).
            lengths: ``[E]`` per-member sequence lengths, with ``kernel="persistent"``
                only: member e trains on ``x[:lengths[e]]`` (see
                :func:`bptt.engine.persistent.persistent_forward_backward`).
            dropout: probability of dropping each input and each state fed to the
                readout (Zaremba et al. 2014; never the recurrent path; see
                :mod:`bptt.engine.dropout`), with the exact kernel; 0: none.
            generator: the random stream of the dropout masks.

        Returns:
            :class:`bptt.engine.StepResult` with ``loss``, ``omega``, ``omega_fraction``,
            ``grad_norm``, ``finite`` (each ``[E]``), ``grads`` (before clipping) and
            ``h_last``.

        Raises:
            ValueError: for inputs, targets, α, h0 or mask of the wrong shape, type or
                device, class indices out of range, or α negative or not finite (see
                :mod:`bptt.models.checks`).
        """
        self._check_batch(x, y, h0, mask)
        checks.check_alpha(alpha, self.ensemble)
        check_omega(omega)
        params = {k: p.detach() for k, p in self.params.items()}
        if check_dropout(dropout):
            if kernel != "exact" or lengths is not None:
                raise ValueError("dropout runs on the exact kernel only (kernel='exact', no lengths)")
            with torch.no_grad():
                return exact.forward_backward(params, x, y, unit=self.unit, output=self.output, alpha=alpha,
                                              omega=omega, h0=h0, mask=mask, dropout=dropout, generator=generator)
        if check_kernel(kernel) == "persistent":
            return self._persistent(params, x, y, alpha=alpha, omega=omega, h0=h0, mask=mask,
                                    cuda_graph=cuda_graph, lengths=lengths)
        if lengths is not None:
            raise ValueError("per-member lengths need kernel='persistent'")
        if cuda_graph and self.device.type == "cuda" and h0 is None and mask is None:
            if self._graphs is None:
                self._graphs = GraphCache()
            return self._graphs.run(params, x, y, alpha, unit=self.unit, output=self.output, omega=omega)
        with torch.no_grad():
            return exact.forward_backward(params, x, y, unit=self.unit, output=self.output,
                                          alpha=alpha, omega=omega, h0=h0, mask=mask)

    def _persistent(self, params, x, y, *, alpha, omega, h0, mask, cuda_graph, lengths) -> exact.StepResult:
        fn = get_pass("persistent")
        if lengths is not None:
            lengths = tuple(lengths.tolist() if torch.is_tensor(lengths) else lengths)
        options = {"unit": self.unit, "output": self.output, "omega": omega, "lengths": lengths}
        if cuda_graph and self.device.type == "cuda" and h0 is None and mask is None:
            if self._persistent_graphs is None:
                self._persistent_graphs = GraphCache(fn)
            return self._persistent_graphs.run(params, x, y, alpha, **options)
        return fn(params, x, y, alpha=alpha, h0=h0, mask=mask, **options)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, tolerance: float | None = None,
                 h0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                 chunk: int = 64, kernel: str = "exact",
                 lengths: Sequence[int] | None = None) -> exact.Evaluation:
        """Loss ``[E]`` and wrong sequences ``[E, B]``, forward only, in flat memory.

        ``kernel="persistent"`` runs :func:`bptt.engine.persistent.persistent_evaluate`
        (one launch, members at their own ``lengths``); ``chunk`` is then unused.
        """
        self._check_batch(x, y, h0, mask)
        if check_kernel(kernel) == "persistent":
            get_pass("persistent")                                   # Triton is there
            from bptt.engine.persistent import persistent_evaluate
            if torch.is_tensor(lengths):
                lengths = lengths.tolist()
            return persistent_evaluate({k: p.detach() for k, p in self.params.items()}, x, y,
                                       unit=self.unit, output=self.output, tolerance=tolerance,
                                       h0=h0, mask=mask, lengths=lengths)
        if lengths is not None:
            raise ValueError("per-member lengths need kernel='persistent'")
        return exact.evaluate({k: p.detach() for k, p in self.params.items()}, x, y,
                              unit=self.unit, output=self.output, tolerance=tolerance,
                              h0=h0, mask=mask, chunk=chunk)

    @property
    def per_step(self) -> bool:
        return self.output in PER_STEP
