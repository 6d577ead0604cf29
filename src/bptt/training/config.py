"""The configuration of a training run on the pathological tasks (§4.1), and its results."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from bptt import tasks as task_registry
from bptt.clip import check_threshold
from bptt.models import ElmanRNN
from bptt.models.init import check_init
from bptt.omega import check_omega

METHODS = ("msgd", "msgd-c", "msgd-cr")
#: Settings that may differ between the members of one ensemble (see :class:`TrainConfig`).
PER_MEMBER = ("method", "lr", "threshold", "alpha")


@dataclass
class TrainConfig:
    """Everything that defines a training run (all members share it but the seed).

    ``method`` picks the paper's variants: ``msgd`` (plain SGD), ``msgd-c`` (with
    gradient clipping, Algorithm 1), ``msgd-cr`` (clipping and Ω with weight α).

    ``method``, ``lr``, ``threshold`` and ``alpha`` may each also be a list with one
    entry per seed: runs that differ only in these then train in one ensemble, each
    member with its own values (``member(seed)`` gives each run's scalar settings).
    """

    task: str = "temporal_order"
    task_options: dict = field(default_factory=dict)
    min_length: int = 50
    max_length: int = 50
    hidden: int = 50
    init: str = "smart_tanh"
    unit: str | None = None
    method: str | list = "msgd-cr"
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

    def validate(self) -> "TrainConfig":
        if self.task not in task_registry.names():
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(task_registry.names())}")
        check_init(self.init)
        if len(self.seeds) == 0:
            raise ValueError("seeds must be distinct and non-empty, got []")
        for name in PER_MEMBER:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)) and len(value) != len(self.seeds):
                raise ValueError(f"{name} has {len(value)} entries for {len(self.seeds)} seeds; "
                                 f"give one value, or one per seed")
        members = list(zip(self.seeds, *(map(repr, self.values(n)) for n in PER_MEMBER)))
        if len(set(members)) != len(members):
            raise ValueError(f"seeds must be distinct and non-empty, got {self.seeds} "
                             f"(a seed may repeat only for members with different settings)")
        for method, lr, threshold, alpha in zip(*(self.values(n) for n in PER_MEMBER)):
            if method not in METHODS:
                raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
            if method != "msgd":
                check_threshold(threshold)
            if alpha < 0:
                raise ValueError(f"alpha must be >= 0, got {alpha}")
            if not (lr > 0 and math.isfinite(lr)):
                raise ValueError(f"learning rate must be > 0, got {lr}")
        if self.clip not in ("norm", "elementwise"):
            raise ValueError(f"unknown clipping {self.clip!r}; choose 'norm' or 'elementwise'")
        check_omega(self.omega)
        if not (1 <= self.min_length <= self.max_length):
            raise ValueError(f"need 1 <= min_length <= max_length, got {self.min_length}, {self.max_length}")
        for name in ("hidden", "batch_size", "max_updates", "eval_every", "check_sequences",
                     "eval_sequences", "record_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0 <= self.success_error < 1):
            raise ValueError(f"success_error must be in [0, 1), got {self.success_error}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        task = task_registry.get(self.task, seed=0, **self.task_options)
        if self.min_length < task.min_length:
            raise ValueError(f"task {self.task} needs length >= {task.min_length}, got {self.min_length}")
        return self

    def member(self, seed: int) -> dict:
        """The configuration of the run of one member, as stored."""
        return self.member_at(list(self.seeds).index(seed))

    def member_at(self, i: int) -> dict:
        """The configuration of the run of member ``i`` (the ``i``-th seed), as stored."""
        seed = self.seeds[i]
        d = dataclasses.asdict(self)
        d.pop("seeds")
        for name in PER_MEMBER:
            d[name] = self.values(name)[i]
        d["seed"] = int(seed)
        return d

    def values(self, name: str) -> list:
        """One value of the per-member setting ``name`` for each seed."""
        value = getattr(self, name)
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value] * len(self.seeds)

    @property
    def per_member(self) -> bool:
        """Whether any of ``method``, ``lr``, ``threshold``, ``alpha`` is given per member."""
        return any(isinstance(getattr(self, n), (list, tuple)) for n in PER_MEMBER)

    @property
    def clipping(self) -> bool:
        """Whether any member clips its gradient."""
        return any(m in ("msgd-c", "msgd-cr") for m in self.values("method"))

    @property
    def regularized(self) -> bool:
        """Whether any member adds Ω."""
        return any(m == "msgd-cr" for m in self.values("method"))


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
