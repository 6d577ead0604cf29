"""The configuration of a training run on the pathological tasks (§4.1), and its results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from bptt import tasks as task_registry
from bptt.engine import KERNELS
from bptt.engine.units import UNITS
from bptt.methods import Method
from bptt.models import ElmanRNN
from bptt.models.init import INITS
from bptt.omega import OMEGA_VARIANTS
from bptt.optim.sgd import GUARDS
from bptt.validation import NONE, Check, Interval, Options, PerMember, check_params
from bptt.models import MODELS
from bptt.optim import CLIPS, UPDATE_RULES
from bptt.optim.hf_rule import DEFAULT_GRADIENT_BATCH, default_curvature_batch
from bptt.training.build import ALL_INITS

METHODS = tuple(m.value for m in Method)
#: Settings that may differ between the members of one ensemble (see :class:`TrainConfig`).
PER_MEMBER = ("method", "lr", "threshold", "alpha")
#: Penalty weights on W_rec (:mod:`bptt.optim.penalties`), also settable per member; left
#: out of a run's stored configuration when 0, so that unpenalised runs keep their keys.
PENALTIES = ("l1", "l2")
#: Settings that may also differ between members with ``kernel="persistent"`` (one launch
#: runs members of different lengths, initializations and units).
PER_MEMBER_LENGTHS = ("min_length", "max_length")
PER_MEMBER_NETWORKS = ("init", "unit")


def per_member_fields(kernel: str = "exact") -> tuple[str, ...]:
    """The settings that may differ between the members of one ensemble under ``kernel``."""
    return PER_MEMBER + PER_MEMBER_LENGTHS + PER_MEMBER_NETWORKS if kernel == "persistent" else PER_MEMBER

_POSITIVE_INT = Interval(1, None, integer=True)
#: What each field of :class:`TrainConfig` must be (see :mod:`bptt.validation`).
CONSTRAINTS = {
    "task": [Options(task_registry.names())],
    "task_options": [Check(lambda v: isinstance(v, dict), "a dict of the task's options")],
    "min_length": [PerMember(_POSITIVE_INT)], "max_length": [PerMember(_POSITIVE_INT)],
    "hidden": [_POSITIVE_INT],
    "init": [PerMember(Options(INITS))],
    "unit": [NONE, PerMember(Options(None, *UNITS))],
    "method": [PerMember(Options(METHODS))],
    "lr": [PerMember(Interval(0, None, closed="neither"))],
    "threshold": [PerMember(Interval())],
    "clip": [Options("norm", "elementwise")],
    "alpha": [PerMember(Interval(0, None))],
    "alpha_schedule": [Options("constant", "inverse")],
    "omega": [Options(OMEGA_VARIANTS)],
    "batch_size": [_POSITIVE_INT], "max_updates": [_POSITIVE_INT], "eval_every": [_POSITIVE_INT],
    "check_sequences": [_POSITIVE_INT], "eval_sequences": [_POSITIVE_INT],
    "eval_length": [NONE, _POSITIVE_INT],
    "success_error": [Interval(0, 1, closed="left")],
    "strict": [Check(lambda v: isinstance(v, bool), "True or False")],
    "seeds": [Check(lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(
        Interval(0, None, integer=True).holds(s) for s in v), "a non-empty list of integers >= 0")],
    "data_seed": [NONE, Interval(None, None, integer=True)],
    "dtype": [Options("float32", "float64")],
    "device": [Check(lambda v: isinstance(v, str) and bool(v), "a device name such as 'cpu' or 'cuda'")],
    "record_every": [_POSITIVE_INT], "checkpoint_every": [_POSITIVE_INT],
    "l1": [PerMember(Interval(0, None))], "l2": [PerMember(Interval(0, None))],
    "kernel": [Options(KERNELS)],
    # -- the protocol's open choices --
    "guard": [Options(GUARDS)],
}
LABELS = {"lr": "learning rate (lr)", "threshold": "clipping threshold", "alpha": "alpha (the weight of Ω)",
          "seeds": "seeds (one per member)", "l1": "L1 penalty weight (l1)", "l2": "L2 penalty weight (l2)"}

# -- any model, any update rule: constraints of the fields of this group --------------------
#: Up to this many hidden units ``validate`` draws one member to check the model's options
#: (beyond, the names are checked here and the values when the model is built).
TRIAL_HIDDEN = 1024
_UNIT_OPEN = Interval(0, 1, closed="left")
CONSTRAINTS["init"] = [PerMember(Options(ALL_INITS))]
CONSTRAINTS["clip"] = [Options(CLIPS)]
CONSTRAINTS.update({
    "model": [Options(list(MODELS))],
    "model_options": [Check(lambda v: isinstance(v, dict), "a dict of the model's options")],
    "optimizer": [Options(list(UPDATE_RULES))],
    "momentum": [NONE, _UNIT_OPEN],
    "betas": [NONE, Check(lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(
        _UNIT_OPEN.holds(b) for b in v), "a pair (beta1, beta2) of finite numbers in [0, 1)")],
    "eps": [NONE, Interval(0, None, closed="neither")],
    "weight_decay": [NONE, Interval(0, None)],
    "smoothing": [NONE, _UNIT_OPEN],
    "clip_options": [Check(lambda v: isinstance(v, dict), "a dict of the clipper's options")],
})
LABELS.update({"momentum": "momentum", "betas": "betas", "eps": "eps", "weight_decay": "weight_decay",
               "smoothing": "smoothing (RMSprop's decay of the squared gradients)"})

# -- Hessian-free optimization (optimizer "hf", see bptt.optim.HFRule and docs/hf.md) -----------
#: The settings of optimizer ``"hf"`` (``None``: the default of docs/hf.md).
HF_FIELDS = ("damping", "structural_damping", "cg_max_iters", "cg_decay", "cg_tolerance", "gradient_batch",
             "curvature_batch")
CONSTRAINTS.update({
    "damping": [NONE, Interval(0, None)],
    "structural_damping": [NONE, Interval(0, None)],
    "cg_max_iters": [NONE, _POSITIVE_INT],
    "cg_decay": [NONE, Interval(0, 1)],
    "cg_tolerance": [NONE, Interval(0, None, closed="neither")],
    "gradient_batch": [NONE, _POSITIVE_INT],
    "curvature_batch": [NONE, _POSITIVE_INT],
})
LABELS.update({"damping": "damping (HF's initial λ)", "structural_damping": "structural_damping (HF's μ)",
               "cg_max_iters": "cg_max_iters (HF's CG cap)", "cg_decay": "cg_decay (HF's CG warm-start decay)",
               "cg_tolerance": "cg_tolerance (HF's CG stopping ε)",
               "gradient_batch": "gradient_batch (HF's sequences per iteration)",
               "curvature_batch": "curvature_batch (HF's sequences of the curvature products)"})


@dataclass
class TrainConfig:
    """Everything that defines a training run (all members share it but the seed).

    ``method`` picks the paper's variants: ``msgd`` (plain SGD), ``msgd-c`` (with
    gradient clipping, Algorithm 1), ``msgd-cr`` (clipping and Ω with weight α).

    ``guard`` says which members the non-finite guard protects (:func:`bptt.optim.guarded`):
    ``"clipping"`` (the reference code: only MSGD-C and MSGD-CR), ``"always"`` or
    ``"never"``; an unprotected member whose parameters or loss become non-finite ends
    as ``diverged``.

    ``model`` names the network (:data:`bptt.models.MODELS`; ``model_options`` its own
    constructor options); ``optimizer`` the update rule (``sgd``: the paper's;
    ``nesterov``, ``rmsprop``, ``adam`` with ``momentum``, ``betas``, ``eps``,
    ``weight_decay``, ``smoothing`` where they apply, ``None`` for their defaults);
    ``clip`` the clipping rule of the members whose method clips (``norm`` is Algorithm
    1 at ``threshold``; ``elementwise``; the adaptive ``average-norm``, ``autoclip``,
    ``agc``, ``zclip`` with ``clip_options``, which ignore ``threshold``; ``none`` only
    when no member clips). Ω (``msgd-cr`` with α > 0) needs the ``elman`` model.

    ``method``, ``lr``, ``threshold`` and ``alpha`` may each also be a list with one
    entry per seed: runs that differ only in these then train in one ensemble, each
    member with its own values (``member(seed)`` gives each run's scalar settings).

    ``optimizer="hf"`` trains by Hessian-free optimization with structural damping
    (:class:`bptt.optim.HFRule`; ``docs/hf.md``): each update is one HF iteration on
    ``gradient_batch`` fresh sequences per member (default 1000; ``batch_size`` is the
    other optimizers' and stays unset), its curvature products on the first
    ``curvature_batch`` of them (default a tenth), with ``damping`` (λ₀),
    ``structural_damping`` (μ), ``cg_max_iters``, ``cg_decay`` and ``cg_tolerance``
    (``None``: the defaults of docs/hf.md). HF neither clips nor adds Ω (``method``
    must be ``msgd``) and takes no ``lr``-based settings of the other optimizers.

    ``l1`` and ``l2`` weigh the L1 and L2 penalties on W_rec (§3.3's rival remedies,
    :mod:`bptt.optim.penalties`; 0: none), each a float or one per seed.

    ``kernel`` picks the engine's pass: ``"exact"`` (:func:`bptt.engine.forward_backward`,
    the default) or ``"persistent"`` (:mod:`bptt.engine.persistent`, one Triton kernel;
    CUDA, or the CPU under Triton's interpreter). With ``"persistent"``, ``min_length``
    and ``max_length`` may also be lists (one per seed): members of different lengths
    then train in one ensemble, each on its own data stream and checked at its own
    length (see :mod:`bptt.training.kernel_data`); so may ``init`` and ``unit``
    (:class:`bptt.models.mixed.MixedElmanRNN`).
    """

    task: str = "temporal_order"
    task_options: dict = field(default_factory=dict)
    min_length: int = 50
    max_length: int = 50
    hidden: int = 50
    init: str = "smart_tanh"
    unit: str | None = None
    method: str | list = Method.MSGD_CR.value
    lr: float | list = 0.01
    threshold: float | list = 1.0
    clip: str = "norm"
    alpha: float | list = 2.0
    alpha_schedule: str = "constant"
    omega: str = "squared"
    batch_size: int = 20
    max_updates: int = 100_000
    eval_every: int = 100
    check_sequences: int = 200
    eval_sequences: int = 10_000
    eval_length: int | None = None
    success_error: float = 0.01
    strict: bool = False
    seeds: list = field(default_factory=lambda: [0])
    data_seed: int | None = None
    dtype: str = "float32"
    device: str = "cpu"
    record_every: int = 10
    checkpoint_every: int = 2000
    l1: float | list = 0.0
    l2: float | list = 0.0
    kernel: str = "exact"
    # -- the protocol's open choices --
    guard: str = "clipping"
    # -- any model, any update rule (see :mod:`bptt.training.build`) --------------------------
    model: str = "elman"
    model_options: dict = field(default_factory=dict)
    optimizer: str = "sgd"
    momentum: float | None = None
    betas: list | None = None
    eps: float | None = None
    weight_decay: float | None = None
    smoothing: float | None = None
    clip_options: dict = field(default_factory=dict)
    # -- Hessian-free optimization (optimizer "hf") ---------------------------------------------
    damping: float | None = None
    structural_damping: float | None = None
    cg_max_iters: int | None = None
    cg_decay: float | None = None
    cg_tolerance: float | None = None
    gradient_batch: int | None = None
    curvature_batch: int | None = None

    def validate(self) -> "TrainConfig":
        """Check every field (see :data:`CONSTRAINTS`) and how they fit together; raise
        ``ValueError`` saying what is wrong. Changes nothing; returns ``self``."""
        check_params(dataclasses.asdict(self), CONSTRAINTS, LABELS)
        lists = [n for n in PER_MEMBER_LENGTHS + PER_MEMBER_NETWORKS if isinstance(getattr(self, n), (list, tuple))]
        if lists and self.kernel != "persistent":
            raise ValueError(f"{' and '.join(lists)} given per member need kernel='persistent' "
                             f"(the exact engine trains one length, init and unit per ensemble)")
        for name in per_member_fields(self.kernel) + PENALTIES:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)) and len(value) != len(self.seeds):
                raise ValueError(f"{name} has {len(value)} entries for {len(self.seeds)} seeds; "
                                 f"give one value, or one per seed")
        members = list(zip(self.seeds, *(map(repr, self.values(n))
                                         for n in per_member_fields(self.kernel) + PENALTIES)))
        if len(set(members)) != len(members):
            raise ValueError(f"seeds must be distinct and non-empty, got {self.seeds} "
                             f"(a seed may repeat only for members with different settings)")
        for method, threshold in zip(self.values("method"), self.values("threshold")):
            if Method(method).clips and not Interval(0, None, closed="neither").holds(threshold):
                raise ValueError(f"clipping threshold must be finite and > 0, got {threshold}")
        for lo, hi in zip(self.values("min_length"), self.values("max_length")):
            if not lo <= hi:
                raise ValueError(f"need 1 <= min_length <= max_length, got {lo}, {hi}")
        task = task_registry.get(self.task, seed=0, **self.task_options)
        shortest = min(self.values("min_length"))
        if shortest < task.min_length:
            raise ValueError(f"task {self.task} needs length >= {task.min_length}, got {shortest}")
        if self.kernel == "persistent":
            from bptt.engine.persistent import MAX_BLOCK
            big = {n: v for n, v in (("hidden", self.hidden), ("input size", task.n_in), ("output size", task.n_out))
                   if v > MAX_BLOCK}
            if big:
                raise ValueError(f"kernel='persistent' holds at most {MAX_BLOCK} hidden units, inputs and outputs; "
                                 f"got {big}: use kernel='exact'")
        self._check_hf()
        self._check_model_and_rule(task)
        return self

    def _check_hf(self) -> None:
        """The settings of optimizer ``"hf"`` go with it, and only with it."""
        given = [n for n in HF_FIELDS if getattr(self, n) is not None]
        if self.optimizer != "hf":
            if given:
                raise ValueError(f"{', '.join(given)}: settings of optimizer 'hf' (Hessian-free), not of "
                                 f"{self.optimizer!r}")
            return
        clipping = sorted({m for m in self.values("method") if Method(m) is not Method.MSGD})
        if clipping:
            raise ValueError(f"optimizer 'hf' neither clips nor adds Ω: use method msgd, not {', '.join(clipping)}")
        if self.batch_size != BATCH_SIZE_DEFAULT:
            raise ValueError("optimizer 'hf' draws gradient_batch sequences per update: set gradient_batch, "
                             "and leave batch_size (the other optimizers' minibatch) at its default")
        if self.kernel != "exact":
            raise ValueError("optimizer 'hf' runs its own passes: use kernel 'exact'")
        if any(v != 0 for v in self.values("l1") + self.values("l2")):
            raise ValueError("the L1/L2 penalties on W_rec (l1, l2) run with the paper's SGD only, not with 'hf'")
        if self.structural_damping and self.model != "elman":
            raise ValueError(f"structural_damping (μ) needs the hidden pre-activations, which only the elman "
                             f"model gives the optimizer; with model {self.model!r} leave it unset or 0")
        if self.curvature_batch is not None and self.curvature_batch > self.update_batch:
            raise ValueError(f"curvature_batch ({self.curvature_batch}) must not exceed gradient_batch "
                             f"({self.update_batch}): the curvature products use a part of the gradient batch")

    @property
    def update_batch(self) -> int:
        """Sequences drawn per member for each update: ``gradient_batch`` (default 1000)
        with optimizer ``"hf"``, ``batch_size`` otherwise."""
        if self.optimizer == "hf":
            return DEFAULT_GRADIENT_BATCH if self.gradient_batch is None else int(self.gradient_batch)
        return self.batch_size

    def hf_options(self) -> dict:
        """The keyword arguments of :class:`bptt.optim.HFRule` (unset ones left out)."""
        out = {n: getattr(self, n) for n in ("damping", "structural_damping", "cg_max_iters", "cg_decay",
                                             "cg_tolerance") if getattr(self, n) is not None}
        out["curvature_batch"] = (default_curvature_batch(self.update_batch) if self.curvature_batch is None
                                  else int(self.curvature_batch))
        return out

    def _check_model_and_rule(self, task) -> None:
        """The model, the update rule and the clipper fit together (built once, on the CPU)."""
        from bptt.training.build import build_model, build_rule, model_kwargs

        if not getattr(MODELS[self.model], "RECURRENT_NAMES", ("W_rec",)) and any(
                Method(m).regularizes and a > 0 for m, a in zip(self.values("method"), self.values("alpha"))):
            raise ValueError(f"method msgd-cr adds Ω, which acts on learned recurrent weights; model "
                             f"{self.model!r} keeps its recurrent weights fixed: choose method msgd-c or msgd "
                             f"(or alpha 0)")
        model_kwargs(self, task.output)                 # names: the model, its init, unit and options
        trial = None
        if self.hidden <= TRIAL_HIDDEN and not self.mixed_networks:   # their values: one member drawn on the CPU
            try:
                trial = build_model(dataclasses.replace(self, device="cpu"), task, seeds=self.seeds[:1], device="cpu")
            except TypeError as exc:
                raise ValueError(f"model {self.model!r} with model_options {self.model_options}: {exc}") from None
        if self.optimizer == "hf":                      # its settings against the model (μ needs states)
            if trial is not None:
                from bptt.optim import HFRule

                HFRule(trial, **self.hf_options())
            return
        build_rule(self, SimpleNamespace(recurrent_names=(), dtype=torch.float32, device="cpu"))

    def member(self, seed: int) -> dict:
        """The configuration of the run of one member, as stored."""
        return self.member_at(list(self.seeds).index(seed))

    def member_at(self, i: int) -> dict:
        """The configuration of the run of member ``i`` (the ``i``-th seed), as stored.

        The fields of the model and update-rule group are left out where they hold their
        defaults, so that a run of the paper's network and rule is stored (and keyed)
        as before those fields existed."""
        seed = self.seeds[i]
        d = dataclasses.asdict(self)
        d.pop("seeds")
        if d["kernel"] == "exact":          # the default: stored configurations (and run keys) as before
            d.pop("kernel")
        for name in per_member_fields(self.kernel):
            d[name] = self.values(name)[i]
        for name in PENALTIES:
            d[name] = self.values(name)[i]
            if d[name] == 0:
                d.pop(name)
        d["seed"] = int(seed)
        for name, default in ANY_MODEL_DEFAULTS.items():    # stored only when set: the keys of the
            if d[name] == default:                            # runs recorded before these fields stay
                d.pop(name)
        return d

    def values(self, name: str) -> list:
        """One value of the per-member setting ``name`` for each seed."""
        value = getattr(self, name)
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value] * len(self.seeds)

    @property
    def member_lengths(self) -> bool:
        """Whether ``min_length`` or ``max_length`` is given per member (``kernel="persistent"``)."""
        return any(isinstance(getattr(self, n), (list, tuple)) for n in PER_MEMBER_LENGTHS)

    @property
    def mixed_networks(self) -> bool:
        """Whether ``init`` or ``unit`` is given per member (``kernel="persistent"``)."""
        return any(isinstance(getattr(self, n), (list, tuple)) for n in PER_MEMBER_NETWORKS)

    @property
    def per_member(self) -> bool:
        """Whether any of ``method``, ``lr``, ``threshold``, ``alpha`` is given per member."""
        return any(isinstance(getattr(self, n), (list, tuple)) for n in PER_MEMBER)

    @property
    def clipping(self) -> bool:
        """Whether any member clips its gradient."""
        return any(Method(m).clips for m in self.values("method"))

    @property
    def regularized(self) -> bool:
        """Whether any member adds Ω."""
        return any(Method(m).regularizes for m in self.values("method"))


#: The fields of the model and update-rule group, with their defaults (see :meth:`TrainConfig.member_at`).
ANY_MODEL_DEFAULTS = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
                      for f in dataclasses.fields(TrainConfig)
                      if f.name in ("model", "model_options", "optimizer", "momentum", "betas", "eps",
                                    "weight_decay", "smoothing", "clip_options") + HF_FIELDS}
#: The default of ``batch_size`` (optimizer ``"hf"`` draws ``gradient_batch`` instead).
BATCH_SIZE_DEFAULT = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "batch_size")


@dataclass
class MemberResult:
    seed: int
    run_id: int | None
    status: str
    updates: int
    error: float
    nonfinite: int = 0
    clipped_fraction: float = 0.0


@dataclass
class TrainResult:
    members: list[MemberResult]
    updates: int
    seconds: float
    model: ElmanRNN | None

    def table(self) -> list[dict]:
        return [dataclasses.asdict(m) for m in self.members]
