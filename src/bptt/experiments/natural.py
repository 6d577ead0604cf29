"""The natural problems of §4.2: polyphonic music and Penn Treebank characters (Table 1).

The paper trains the same sigmoid RNN with plain minibatch SGD (MSGD), with
gradient-norm clipping (MSGD+C) and with clipping and the regularizer Ω (MSGD+CR)
on four piano-roll data sets and on character-level Penn Treebank, and reports the
training and test figure at the best validation point. Here the three methods of one
data set are one ensemble of E = 3 members with identical initial weights, fed the
same windows; learning rate, clipping threshold and α are per-member ``[E]`` tensors
(MSGD's threshold lies above the non-finite guard's limit, so it never clips; α is 0
for the members without Ω).

The loop, for one data set::

    for epoch in 1..max_epochs:
        h ← 0
        for (x, y, mask, reset) in windows of the training split (200 steps):
            h[:, reset] ← 0                         # a lane starts a new sequence
            one exact engine pass from h (BPTT inside the window) → loss, grads, Ω, norm
            [PTB] b's gradient ← 0 (no biases); grads ← grads · steps per lane (summed cost)
            non-finite guard → clip (Algorithm 1) → SGD step, each member with its lr
            h ← last state of the window (carried forward, no gradient through it)
        evaluate every step of train, valid and test (forward only, state carried)
        per member: halve lr if the validation figure rose; remember the best epoch;
                    stop after ``patience`` epochs without improvement

Music windows come from :func:`bptt.tasks.music.iterate_windows` (sequences dealt to
lanes in a fresh random order each epoch; ``reset`` marks a lane starting a sequence);
PTB windows from :meth:`bptt.tasks.text.TextData.stream` (contiguous lanes, the state
carried through the whole split). PTB symbols enter one-hot (50 inputs).

**Minibatch.** One window of one sequence (or one lane of text) per update, as the
paper's per-window costs suggest; the windows of an epoch follow each other in one
lane, so the state flows from one window of a sequence into the next. ``batch_size``
runs several lanes side by side instead (averaging their gradients).

**Measures.** Music: negative log-likelihood per time step in nats (summed over the 88
keys, averaged over every predicted step of the split). PTB: bits per character over
every prediction of the split (``N − ahead`` of them). The store's curves call both
``*_nll``.

**Summed cost (PTB).** The engine averages the loss over steps × lanes. The paper's
PTB cost is summed over each 200-step window, so the gradient is multiplied by the
number of steps per lane of the window (T, or fewer in the last window); the
clipping threshold 45 and the learning rates apply to that summed-cost gradient. α
weighs Ω against the summed cost: the gradient is ∇(Σ_t cost_t) + α_t ∇Ω.

**Records.** One run per member in the results store, with key
``table1:<group>:<method>`` (``group``: a hash of the whole configuration). Curves with
``step`` = epoch: ``train_nll``, ``valid_nll``, ``test_nll``, ``train_running`` (the
mean training loss over the epoch, in the same unit), ``lr``, ``epoch_updates``,
``epoch_seconds`` (training), ``eval_seconds``, ``ms_per_update``, ``ensemble_size``,
``epoch_clipped`` (fraction of updates clipped), ``epoch_grad_norm_mean``,
``epoch_grad_norm_max``, ``epoch_nonfinite``, ``epoch_omega``. Curves with ``step`` =
update, averaged over blocks of ``record_every`` updates: ``loss`` (the engine's,
nats per step), ``grad_norm``
(block max), ``grad_norm_mean``, ``clipped``, ``omega``, ``nonfinite``. Events:
``nonfinite`` and ``lr_halved``. Checkpoints of the whole ensemble every
``checkpoint_every`` updates and at every epoch's end; a killed or interrupted run
resumes exactly where it stopped when the same command runs again; a finished one is
read back from the store instead of trained again.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from bptt.methods import Method
from bptt.models import ElmanRNN
from bptt.engine.units import UNITS
from bptt.models.init import INITS
from bptt.omega import OMEGA_VARIANTS, alpha_schedule
from bptt.optim import PaperSGD
from bptt.store import OUTCOME_STATUSES, Status, config_key
from bptt.training import checkpoint
from bptt.training import loop as core
from bptt.training.loop import Schedule, TrainingLoop
from bptt.validation import NONE, Check, Interval, Options, check_params

__all__ = [
    "DATASETS", "METHODS", "BUDGETS", "PAPER_TABLE1", "PROTOCOL", "METHOD_LABEL",
    "NaturalConfig", "NaturalTrainer", "DatasetResult", "MemberSummary",
    "Batch", "MusicSource", "TextSource", "load_source", "evaluate_split",
    "protocol", "train_natural", "run_table1", "write_report", "timing_summary", "table_markdown",
]

DATASETS = ("piano_midi", "nottingham", "musedata", "jsb_chorales", "ptb_1step", "ptb_5step")
METHODS = ("msgd", "msgd-c", "msgd-cr")
BUDGETS = ("smoke", "quick", "full")
METHOD_LABEL = {"msgd": "MSGD", "msgd-c": "MSGD+C", "msgd-cr": "MSGD+CR"}
METHOD_COLOR = {"msgd": "#d62728", "msgd-c": "#1f77b4", "msgd-cr": "#2ca02c"}
DATASET_LABEL = {"piano_midi": "Piano-midi.de", "nottingham": "Nottingham", "musedata": "MuseData",
                 "jsb_chorales": "JSB Chorales", "ptb_1step": "PTB, 1 step",
                 "ptb_5step": "PTB, 5 steps"}

#: The paper's Table 1, (train, test) per method; ``None`` where it gives no figure.
#: Music: negative log-likelihood per time step (nats); PTB: bits per character.
PAPER_TABLE1: dict[str, dict[str, tuple[float, float] | None]] = {
    "piano_midi": {"msgd": (6.87, 7.56), "msgd-c": (6.81, 7.53), "msgd-cr": (7.01, 7.46)},
    "nottingham": {"msgd": (3.67, 3.80), "msgd-c": (3.21, 3.48), "msgd-cr": (2.95, 3.36)},
    "musedata": {"msgd": (8.25, 7.11), "msgd-c": (6.54, 7.00), "msgd-cr": (6.43, 6.97)},
    "jsb_chorales": {"msgd": None, "msgd-c": None, "msgd-cr": None},
    "ptb_1step": {"msgd": (1.46, 1.50), "msgd-c": (1.34, 1.42), "msgd-cr": (1.36, 1.41)},
    "ptb_5step": {"msgd": None, "msgd-c": (3.76, 3.89), "msgd-cr": (3.70, 3.74)},
}

_MUSIC = dict(unit="sigmoid", init="sigmoid", bias=True, window=200, threshold=8.0,
              alpha_schedule="inverse", summed_cost=False, batch_size=1, eval_window=1000)
_PTB = dict(unit="sigmoid", init="sigmoid", bias=False, window=200, threshold=45.0, hidden=500,
            lr={"msgd": 0.001, "msgd-c": 0.01, "msgd-cr": 0.05}, alpha0=0.5,
            alpha_schedule="inverse", summed_cost=True, batch_size=1, eval_batch_size=128)

#: The paper's protocol (its appendix, as reported), per data set. JSB Chorales is not
#: in the paper; it takes Nottingham's settings. Where the appendix is silent (minibatch
#: size, α for PTB, learning-rate halving outside Piano-midi.de and Nottingham) the
#: values are this library's choices; docs/table1.md lists them.
PROTOCOL: dict[str, dict] = {
    "piano_midi": _MUSIC | dict(hidden=300, lr=1.0, alpha0=0.5),
    "nottingham": _MUSIC | dict(hidden=300, lr=1.0, alpha0=0.5),
    "jsb_chorales": _MUSIC | dict(hidden=300, lr=1.0, alpha0=0.5),
    "musedata": _MUSIC | dict(hidden=400, lr=0.5, alpha0=0.1),
    "ptb_1step": _PTB | dict(ahead=1),
    "ptb_5step": _PTB | dict(ahead=5),
}

#: What each budget changes. ``full`` is the protocol with early stopping; ``quick``
#: keeps the paper's sizes for music (fewer epochs) and shrinks PTB's network;
#: ``smoke`` exercises everything on a few windows in seconds.
BUDGET_SETTINGS: dict[str, dict[str, dict]] = {
    "full": {
        "music": dict(max_epochs=100, patience=10),
        "ptb": dict(max_epochs=20, patience=3),
    },
    "quick": {
        "piano_midi": dict(max_epochs=10, patience=3),
        "nottingham": dict(max_epochs=5, patience=3),
        "musedata": dict(max_epochs=3, patience=3),
        "jsb_chorales": dict(max_epochs=20, patience=3),
        "ptb": dict(hidden=128, max_epochs=1, patience=1),
    },
    "smoke": {
        "all": dict(hidden=16, window=25, batch_size=4, eval_batch_size=8, eval_window=50, max_epochs=2, patience=2,
                    max_updates_per_epoch=3, eval_windows=2, record_every=1, checkpoint_every=2),
    },
}


_POSITIVE_INT = Interval(1, None, integer=True)
_RATE = Interval(0, None, closed="neither")
_FLAG = Check(lambda v: isinstance(v, bool), "True or False")
#: What each field of :class:`NaturalConfig` must be (see :mod:`bptt.validation`).
NATURAL_CONSTRAINTS = {
    "dataset": [Options(DATASETS)], "budget": [Options(BUDGETS)],
    **{name: [_POSITIVE_INT] for name in ("hidden", "window", "batch_size", "eval_batch_size", "eval_window",
                                          "max_epochs", "patience", "record_every", "checkpoint_every", "ahead")},
    "unit": [Options(UNITS)], "init": [Options(INITS)],
    "lr": [_RATE, Check(lambda v: isinstance(v, dict) and all(k in METHODS and _RATE.holds(x) for k, x in v.items()),
                        "a mapping of method names to such numbers")],
    "threshold": [_RATE], "alpha0": [Interval(0, None)], "rel_tol": [Interval(0, None)],
    "alpha_schedule": [Options("constant", "inverse")], "omega": [Options(OMEGA_VARIANTS)],
    "bias": [_FLAG], "summed_cost": [_FLAG], "halve_lr_on_rise": [_FLAG], "eval_train": [_FLAG],
    "max_updates_per_epoch": [NONE, _POSITIVE_INT], "eval_windows": [NONE, _POSITIVE_INT],
    "methods": [Check(lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and len(set(v)) == len(v)
                      and all(m in METHODS for m in v), f"distinct names from {', '.join(METHODS)}")],
    "seed": [Interval(0, None, integer=True)], "dtype": [Options("float32", "float64")],
    "device": [Check(lambda v: isinstance(v, str) and bool(v), "a device name such as 'cpu' or 'cuda'")],
}


@dataclass
class NaturalConfig:
    """Everything that defines the training of one data set's ensemble.

    ``lr`` is one float for all methods or a mapping method → float. ``threshold`` is
    the clipping threshold of the clipping methods; ``alpha0`` is Ω's weight of
    MSGD+CR, α_t = alpha0 / t (``"inverse"``) or alpha0 (``"constant"``) at update t.
    ``eval_windows`` (smoke budget only) restricts evaluation to the first windows of
    each split; by default every step of every split is evaluated.
    """

    dataset: str
    budget: str = "full"
    hidden: int = 300
    unit: str = "sigmoid"
    init: str = "sigmoid"
    bias: bool = True
    window: int = 200
    batch_size: int = 1
    eval_batch_size: int = 32
    eval_window: int = 200
    lr: float | dict = 1.0
    threshold: float = 8.0
    alpha0: float = 0.5
    alpha_schedule: str = "inverse"
    omega: str = "squared"
    summed_cost: bool = False
    ahead: int = 1
    halve_lr_on_rise: bool = True
    max_epochs: int = 100
    patience: int = 10
    rel_tol: float = 1e-4
    max_updates_per_epoch: int | None = None
    eval_windows: int | None = None
    eval_train: bool = True
    methods: tuple = METHODS
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    record_every: int = 10
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        if isinstance(self.methods, list):
            self.methods = tuple(self.methods)

    def validate(self) -> "NaturalConfig":
        """Check every field (see :data:`NATURAL_CONSTRAINTS`); raise ``ValueError`` saying
        what is wrong. Changes nothing; returns ``self``."""
        check_params(dataclasses.asdict(self), NATURAL_CONSTRAINTS, {"lr": "learning rate",
                                                                     "threshold": "clipping threshold"})
        if isinstance(self.lr, dict):
            for m in self.methods:
                if m not in self.lr:
                    raise ValueError(f"learning rate of {m} is missing from lr={self.lr}")
        return self

    @property
    def is_text(self) -> bool:
        return self.dataset.startswith("ptb")

    @property
    def measure(self) -> str:
        return "bits per character" if self.is_text else "negative log-likelihood per time step (nats)"

    def method_lr(self, method: str) -> float:
        return float(self.lr[method]) if isinstance(self.lr, dict) else float(self.lr)

    def method_threshold(self, method: str) -> float | None:
        return None if method == "msgd" else float(self.threshold)

    def method_alpha0(self, method: str) -> float:
        return float(self.alpha0) if method == "msgd-cr" else 0.0

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["methods"] = list(self.methods)
        return d

    @property
    def group(self) -> str:
        """A hash of the configuration: the runs of one ensemble share it."""
        return config_key(self.as_dict())

    def member(self, method: str) -> dict:
        """The configuration stored with the run of one member."""
        d = self.as_dict()
        d.update(task=self.dataset, method=method, lr=self.method_lr(method), threshold=self.method_threshold(method),
                 alpha0=self.method_alpha0(method), group=self.group, experiment="table1",
                 measure=self.measure)
        return d


def protocol(dataset: str, budget: str = "full", **overrides) -> NaturalConfig:
    """The configuration of ``dataset`` under ``budget`` (see :data:`PROTOCOL`)."""
    if dataset not in PROTOCOL:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    if budget not in BUDGET_SETTINGS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    values = dict(PROTOCOL[dataset])
    family = "ptb" if dataset.startswith("ptb") else "music"
    for key in ("all", family, dataset):
        values.update(BUDGET_SETTINGS[budget].get(key, {}))
    values.update(overrides)
    return NaturalConfig(dataset=dataset, budget=budget, **values).validate()


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------

class Batch(NamedTuple):
    """One window: ``x [T,B,I]`` float, ``y`` (``[T,B,O]`` float or ``[T,B]`` int64),
    ``mask [T,B]``, ``reset [B]`` bool or ``None`` (lanes that start a new sequence)."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    reset: torch.Tensor | None


class MusicSource:
    """Piano rolls as windows of next-frame prediction (88 sigmoid outputs)."""

    output = "sigmoid"

    def __init__(self, data) -> None:
        self.data = data
        self.n_in = self.n_out = 88

    def batches(self, split: str, batch_size: int, window: int, rng: int | None = None,
                device: str | torch.device = "cpu", by_length: bool = False) -> Iterator[Batch]:
        """Windows of ``split``: sequences in a random order drawn from ``rng``, in their
        stored order, or (``by_length``, for evaluation) longest first, which packs
        sequences of similar length side by side and so wastes fewer padded steps."""
        from bptt.tasks.music import iterate_windows

        seqs = self.data.split(split)
        gen = None if rng is None else np.random.default_rng(rng)
        if by_length:
            seqs = sorted(seqs, key=lambda s: -s.shape[0])
        for w in iterate_windows(seqs, batch_size, window, rng=gen):
            yield Batch(w.x.to(device), w.y.to(device), w.mask.to(device), w.reset.to(device))

    def n_windows(self, split: str, batch_size: int, window: int, rng: int | None = None) -> int:
        from bptt.tasks.music import _plan_lanes, sequence_steps

        seqs = self.data.split(split)
        order = np.arange(len(seqs)) if rng is None else np.random.default_rng(rng).permutation(len(seqs))
        lanes = _plan_lanes([sequence_steps(s) for s in seqs], batch_size, window, order.tolist())
        return max((len(lane) for lane in lanes), default=0)

    def n_steps(self, split: str) -> int:
        return self.data.n_steps(split)

    @staticmethod
    def to_measure(nats: float, count: float) -> float:
        """Nats per predicted step."""
        return nats / count if count > 0 else float("nan")


class TextSource:
    """PTB characters as contiguous lanes of next (or ``ahead``-th next) symbol prediction."""

    output = "softmax"

    def __init__(self, data, ahead: int = 1) -> None:
        self.data = data
        self.ahead = int(ahead)
        self.n_in = self.n_out = data.vocab_size

    def batches(self, split: str, batch_size: int, window: int, rng: int | None = None,
                device: str | torch.device = "cpu", by_length: bool = False) -> Iterator[Batch]:
        """Windows of ``split`` in contiguous lanes (``rng`` and ``by_length`` do not apply)."""
        for w in self.data.stream(split, batch_size, window, ahead=self.ahead):
            x = F.one_hot(w.x, self.n_in).to(torch.float32)            # [T,B,V]
            yield Batch(x.to(device), w.y.to(device), w.mask.to(device), None)

    def n_windows(self, split: str, batch_size: int, window: int, rng: int | None = None) -> int:
        longest = -(-self.data.n_predictions(split, self.ahead) // batch_size)
        return -(-longest // window)

    def n_steps(self, split: str) -> int:
        return self.data.n_predictions(split, self.ahead)

    @staticmethod
    def to_measure(nats: float, count: float) -> float:
        """Bits per character."""
        return nats / (count * math.log(2)) if count > 0 else float("nan")


def load_source(dataset: str, data_dir: str | os.PathLike | None = None, *, cache: dict | None = None):
    """The data of one of :data:`DATASETS` as a :class:`MusicSource` or :class:`TextSource`.

    ``cache`` (a dict) shares the loaded PTB text between its two variants.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset.startswith("ptb"):
        from bptt.tasks.text import load_ptb_chars

        key = ("ptb", str(data_dir))
        if cache is not None and key in cache:
            text = cache[key]
        else:
            text = load_ptb_chars(data_dir)
            if cache is not None:
                cache[key] = text
        return TextSource(text, ahead=PROTOCOL[dataset]["ahead"])
    from bptt.tasks.music import load_music

    return MusicSource(load_music(dataset, data_dir))


@torch.no_grad()
def evaluate_split(model: ElmanRNN, source, split: str, *, batch_size: int = 32, window: int = 200,
                   max_windows: int | None = None) -> tuple[np.ndarray, int]:
    """Total loss in nats of every member over a split, forward only.

    The state is carried from window to window of a lane (zeroed where a new sequence
    starts), exactly as in training, so every step sees its whole past.

    Returns:
        ``(nats [E] float64, count)``: the summed loss and the number of predicted
        steps it covers (all of the split's unless ``max_windows`` stops early).
    """
    E, H = model.ensemble, model.n_hidden
    total = torch.zeros(E, dtype=torch.float64)
    count = 0
    h = None
    for k, b in enumerate(source.batches(split, batch_size, window, device=model.device, by_length=True)):
        if max_windows is not None and k >= max_windows:
            break
        if h is None:
            h = torch.zeros(E, b.x.shape[1], H, dtype=model.dtype, device=model.device)
        elif b.reset is not None and bool(b.reset.any()):
            h[:, b.reset] = 0.0
        ev = model.evaluate(b.x, b.y, h0=h, mask=b.mask)
        n = int(b.mask.sum().item())
        total += ev.loss.to("cpu", torch.float64) * n
        count += n
        h = ev.h_last
    return total.numpy(), count


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------

@dataclass
class _Member:
    """What Table 1 keeps about one member (one method) beyond the loop's bookkeeping."""

    method: str
    lr: float
    threshold: float | None
    alpha0: float
    stop_reason: str = ""
    best_epoch: int = 0
    best: dict = field(default_factory=lambda: {"train": math.nan, "valid": math.inf, "test": math.nan})
    prev_valid: float = math.nan
    bad_epochs: int = 0
    halvings: int = 0
    epochs: int = 0

    @classmethod
    def from_state(cls, d: dict) -> "_Member":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class MemberSummary:
    """One method's result on one data set, read from its run."""

    method: str
    run_id: int
    status: str
    best_epoch: int
    train: float
    valid: float
    test: float
    epochs: int
    updates: int
    clipped_fraction: float
    nonfinite: int
    lr_final: float
    stop_reason: str


@dataclass
class DatasetResult:
    """The three methods on one data set, with the ensemble's timings."""

    dataset: str
    config: dict
    members: list[MemberSummary]
    timing: dict
    reused: bool = False

    def member(self, method: str) -> MemberSummary | None:
        return next((m for m in self.members if m.method == method), None)


class _EpochStats:
    """Per-member sums over one epoch's updates."""

    ARRAYS = ("loss_nats", "norm_sum", "norm_max", "clipped", "nonfinite", "omega_sum")

    def __init__(self, E: int) -> None:
        self.loss_nats = np.zeros(E)
        self.count = 0.0
        self.updates = 0
        self.norm_sum = np.zeros(E)
        self.norm_max = np.zeros(E)
        self.clipped = np.zeros(E)
        self.nonfinite = np.zeros(E)
        self.omega_sum = np.zeros(E)
        self.seconds = 0.0

    def add(self, block: dict[str, np.ndarray], counts: list[float]) -> None:
        """Add a block of per-update records (``[n, E]``), update by update."""
        for i, count in enumerate(counts):
            loss, norm = block["loss"][i], block["grad_norm"][i]
            self.loss_nats += loss * count
            self.count += count
            self.updates += 1
            finite_norm = np.where(np.isfinite(norm), norm, 0.0)
            self.norm_sum += finite_norm
            self.norm_max = np.maximum(self.norm_max, finite_norm)
            self.clipped += block["clipped"][i]
            self.nonfinite += block["nonfinite"][i]
            self.omega_sum += block["omega"][i]

    def state(self) -> dict:
        return {k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v for k, v in vars(self).items()}

    @classmethod
    def from_state(cls, state: dict) -> "_EpochStats":
        self = cls(0)
        for k, v in state.items():
            setattr(self, k, v.numpy().astype(np.float64) if isinstance(v, torch.Tensor) else v)
        return self


@contextmanager
def _num_threads(n: int | None):
    if n is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


class NaturalTrainer(Schedule):
    """The schedule of one data set's ensemble on the training loop (see the module
    docstring): epochs of windows with the state carried, evaluation at each epoch's
    end, learning-rate halving, patience, and the best parameters of each member.

    Args:
        config: a validated :class:`NaturalConfig` (see :func:`protocol`).
        source: the data (:func:`load_source`).
        store: a :class:`bptt.store.Store`; one run per member is recorded in it.
        progress: show a progress bar per epoch.
        echo: called with one line per epoch.
    """

    problem = "table1"

    def __init__(self, config: NaturalConfig, source, store, *, progress: bool = False,
                 echo: Callable[[str], None] | None = None) -> None:
        self.config = c = config.validate()
        self.source = source
        self.store = store
        self.progress = progress
        self.echo = echo or (lambda s: None)
        E = len(c.methods)
        model = ElmanRNN(source.n_in, c.hidden, source.n_out, unit=c.unit, init=c.init,
                         output=source.output, seeds=[c.seed] * E, dtype=getattr(torch, c.dtype), device=c.device)
        self.members = [_Member(m, c.method_lr(m), c.method_threshold(m), c.method_alpha0(m)) for m in c.methods]
        self.loop = TrainingLoop(
            model, self._rule(model, self.members), alpha=[alpha_schedule(c.alpha_schedule, m.alpha0)
                                                          for m in self.members],
            omega=c.omega, omega_when_unweighted=False, frozen=() if c.bias else ("b",), store=store,
            record_every=c.record_every, checkpoint_every=c.checkpoint_every)
        self.epoch = 0               # completed epochs
        self.position = 0            # windows done in the current epoch
        self.h: torch.Tensor | None = None
        self.stats = _EpochStats(E)
        self.best_params: dict[int, dict[str, torch.Tensor]] = {}
        self._windows: Iterator[Batch] | None = None
        self._n_windows = 0
        self._bar = None
        self._started = 0.0

    @staticmethod
    def _rule(model: ElmanRNN, members: list[_Member]) -> PaperSGD:
        return PaperSGD([m.lr for m in members], threshold=[m.threshold or 1.0 for m in members],
                        clip=[Method(m.method).clips for m in members], kind="norm",
                        dtype=model.dtype, device=model.device)

    @property
    def model(self) -> ElmanRNN:
        return self.loop.model

    @property
    def active(self) -> list[int]:
        return self.loop.active

    @property
    def update(self) -> int:
        return self.loop.update

    def run_key(self, method: str) -> str:
        return f"table1:{self.config.group}:{method}"

    # -- the windows of an epoch -----------------------------------------------------------------
    def _epoch_seed(self) -> int:
        return int(np.random.SeedSequence([self.config.seed, 7919, self.epoch]).generate_state(1)[0])

    def _open_epoch(self) -> None:
        from tqdm.auto import tqdm

        c = self.config
        seed = self._epoch_seed()
        n = self.source.n_windows("train", c.batch_size, c.window, rng=seed)
        self._n_windows = n if c.max_updates_per_epoch is None else min(n, c.max_updates_per_epoch)
        if self.position == 0:
            self.h = None
        windows = self.source.batches("train", c.batch_size, c.window, rng=seed, device=self.model.device)
        for _ in range(self.position):                 # a resumed epoch
            next(windows)
        self._windows = windows
        self._bar = tqdm(total=self._n_windows, initial=self.position, disable=not self.progress, unit="upd",
                         dynamic_ncols=True, leave=False, desc=f"{c.dataset} epoch {self.epoch + 1}")

    def next_batch(self, loop: TrainingLoop) -> core.Batch:
        if self._windows is None:
            self._open_epoch()
        self._started = time.perf_counter()
        x, y, mask, reset = next(self._windows)
        B = x.shape[1]
        if self.h is None or self.h.shape[1] != B:
            self.h = torch.zeros(len(loop.active), B, self.config.hidden, dtype=self.model.dtype,
                                 device=self.model.device)
        elif reset is not None and bool(reset.any()):
            self.h[:, reset] = 0.0                            # lanes that start a new sequence
        count = float(mask.sum())
        scale = count / B if self.config.summed_cost else 1.0     # steps per lane: the summed cost
        return core.Batch(x, y, h0=self.h, mask=mask, scale=scale, count=count)

    def after_update(self, loop: TrainingLoop, out) -> None:
        self.h = out.h_last
        self.position += 1
        self.stats.seconds += time.perf_counter() - self._started
        if self._bar is not None:
            self._bar.update(1)
        if self.position < self._n_windows:
            return
        self._close_epoch()
        loop.flush(self)
        self.end_epoch()
        if loop.active:
            loop.save_checkpoint(self)

    def _close_epoch(self) -> None:
        self._windows = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_block(self, loop: TrainingLoop, block: dict[str, np.ndarray], counts: list[float]) -> None:
        self.stats.add(block, counts)

    # -- the end of an epoch ------------------------------------------------------------------------
    def evaluate(self, split: str) -> np.ndarray:
        """The data set's measure for every active member over ``split``."""
        c = self.config
        nats, count = evaluate_split(self.model, self.source, split, batch_size=c.eval_batch_size,
                                     window=c.eval_window, max_windows=c.eval_windows)
        if c.eval_windows is None and count != self.source.n_steps(split):
            raise RuntimeError(f"evaluation of {split} covered {count} steps, expected "
                               f"{self.source.n_steps(split)}")
        return np.array([self.source.to_measure(v, count) for v in nats])

    def end_epoch(self) -> None:
        """Evaluate, record, halve learning rates, remember the best, retire members."""
        c, loop = self.config, self.loop
        t0 = time.perf_counter()
        figures = {split: self.evaluate(split) for split in (["train"] if c.eval_train else []) + ["valid", "test"]}
        eval_seconds = time.perf_counter() - t0
        self.epoch += 1
        s = self.stats
        E = len(self.active)
        running = s.loss_nats / max(s.count, 1.0)
        retire: list[int] = []
        lines = []
        for j, m in enumerate(self.active):
            mem, run_id = self.members[m], loop.members[m].run_id
            mem.epochs = self.epoch
            valid = float(figures["valid"][j])
            train = float(figures["train"][j]) if c.eval_train else self.source.to_measure(running[j], 1.0)
            test = float(figures["test"][j])
            self.store.log_curve(run_id, [{
                "step": self.epoch, "train_nll": train, "valid_nll": valid, "test_nll": test,
                "train_running": self.source.to_measure(running[j], 1.0), "lr": mem.lr,
                "epoch_updates": s.updates, "epoch_seconds": s.seconds, "eval_seconds": eval_seconds,
                "ms_per_update": 1000.0 * s.seconds / max(s.updates, 1), "ensemble_size": E,
                "epoch_clipped": s.clipped[j] / max(s.updates, 1),
                "epoch_grad_norm_mean": s.norm_sum[j] / max(s.updates, 1),
                "epoch_grad_norm_max": s.norm_max[j], "epoch_nonfinite": s.nonfinite[j],
                "epoch_omega": s.omega_sum[j] / max(s.updates, 1)}])
            if math.isfinite(valid) and valid < mem.best["valid"]:
                if valid < mem.best["valid"] - c.rel_tol * abs(mem.best["valid"]) or not math.isfinite(mem.best["valid"]):
                    mem.bad_epochs = 0
                else:
                    mem.bad_epochs += 1
                mem.best = {"train": train, "valid": valid, "test": test}
                mem.best_epoch = self.epoch
                self.best_params[m] = {k: v[j:j + 1].detach().clone() for k, v in self.model.params.items()}
            else:
                mem.bad_epochs += 1
            rose = not math.isfinite(valid) or (math.isfinite(mem.prev_valid) and valid > mem.prev_valid)
            if c.halve_lr_on_rise and rose:
                mem.lr /= 2.0
                mem.halvings += 1
                loop.rule.lr[j] = mem.lr
                self.store.log_event(run_id, self.update, "lr_halved",
                                     f"epoch {self.epoch}: validation {valid:.4f} after {mem.prev_valid:.4f}; "
                                     f"learning rate now {mem.lr:g}")
            mem.prev_valid = valid
            if mem.bad_epochs >= c.patience:
                mem.stop_reason = (f"no improvement of the validation figure by more than {c.rel_tol:g} "
                                   f"(relative) for {c.patience} epochs")
                retire.append(j)
            elif self.epoch >= c.max_epochs:
                mem.stop_reason = f"epoch budget ({c.max_epochs}) spent"
                retire.append(j)
            lines.append(f"{METHOD_LABEL[mem.method]} {train:.3f}/{valid:.3f}/{test:.3f}")
        self.echo(f"{c.dataset} epoch {self.epoch}: train/valid/test  " + "   ".join(lines)
                  + f"   [{s.updates} updates, {s.seconds:.1f} s + eval {eval_seconds:.1f} s]")
        for j in retire:
            self._finish(self.active[j])
        loop.retire(retire, self)
        self.stats = _EpochStats(len(self.active))
        self.position = 0
        self.h = None

    def _finish(self, m: int) -> None:
        mem = self.members[m]
        status = Status.SUCCEEDED if math.isfinite(mem.best["valid"]) else Status.DIVERGED
        params = self.best_params.get(m)
        network = None
        if params is not None:
            network = ElmanRNN.from_config(self.model.config() | {"seeds": [self.config.seed]},
                                           device=self.model.device)
            with torch.no_grad():
                for k, p in network.params.items():
                    p.copy_(params[k])
        self.loop.finish(m, status, self.metrics(self.loop, m), network=network, epoch=mem.best_epoch)

    def metrics(self, loop: TrainingLoop, m: int) -> dict:
        mem, core_mem = self.members[m], loop.members[m]
        return {"best_epoch": mem.best_epoch, "train": mem.best["train"], "valid": mem.best["valid"],
                "test": mem.best["test"], "epochs": mem.epochs, "updates": core_mem.updates,
                "clipped_fraction": core_mem.clipped / max(core_mem.updates, 1), "nonfinite": core_mem.nonfinite,
                "lr_final": mem.lr, "lr_halvings": mem.halvings, "stop_reason": mem.stop_reason,
                "measure": self.config.measure}

    # -- checkpoints --------------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return self.config.as_dict()

    def schedule_state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position,
                "h": None if self.h is None else self.h.detach().cpu().clone(),
                "stats": self.stats.state(), "members": [dataclasses.asdict(m) for m in self.members],
                "best_params": {m: {k: v.detach().cpu().clone() for k, v in p.items()}
                                for m, p in self.best_params.items()}}

    @classmethod
    def from_state(cls, state: dict, source, store, *, progress: bool = False,
                   echo: Callable[[str], None] | None = None) -> "NaturalTrainer":
        """Rebuild a trainer exactly as it was when the checkpoint ``state`` was taken."""
        if state.get("kind") != "training" or state.get("problem") != cls.problem:
            raise ValueError(f"not a training checkpoint of Table 1 (kind {state.get('kind')!r}, "
                             f"problem {state.get('problem')!r})")
        self = cls(NaturalConfig(**state["config"]), source, store, progress=progress, echo=echo)
        sched, loop = state["schedule"], self.loop
        device = self.config.device
        self.epoch, self.position = int(sched["epoch"]), int(sched["position"])
        self.members = [_Member.from_state(d) for d in sched["members"]]
        loop.model = ElmanRNN.from_config(state["model_config"], device=device)
        loop.model.load_state_dict(state["model"])
        loop.load_loop_state(state["loop"])
        if state["rule"] is None:                    # version 1: the rule follows from the members
            loop.rule = cls._rule(loop.model, self.members)
            loop.rule.select(loop.active)
        else:
            loop.rule.load_state_dict(state["rule"])
        self.h = None if sched["h"] is None else sched["h"].to(device)
        self.stats = _EpochStats.from_state(sched["stats"])
        self.best_params = {int(m): {k: v.to(device) for k, v in p.items()} for m, p in sched["best_params"].items()}
        return self

    # -- the run -------------------------------------------------------------------------------------
    def run(self, threads: int | None = None) -> None:
        """Train until every member stopped.

        An interrupt (SIGINT, SIGTERM, ``KeyboardInterrupt``) stops after the update in
        progress, saves a checkpoint, marks the unfinished runs ``stopped`` and is
        re-raised; training the same configuration again resumes from there.
        """
        c = self.config
        self.loop.start_runs([c.member(m.method) for m in self.members], sweep="table1",
                             keys=[self.run_key(m.method) for m in self.members])
        with _num_threads(threads):
            try:
                self.loop.run(self)
            finally:
                self._close_epoch()


# ---------------------------------------------------------------------------------------
# one data set, resumable
# ---------------------------------------------------------------------------------------

def _pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _live_elsewhere(run: dict) -> bool:
    """Whether a ``running`` run is owned by another process that is still alive."""
    if run["pid"] == os.getpid() and run["host"] == socket.gethostname():
        return False
    if run["host"] == socket.gethostname():
        return _pid_alive(run["pid"])
    updated = datetime.datetime.fromisoformat(run["updated"])
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=datetime.timezone.utc)
    age = datetime.datetime.now(datetime.timezone.utc) - updated
    return age.total_seconds() < 1800


def _summaries(store, config: NaturalConfig, runs: dict[str, dict]) -> list[MemberSummary]:
    out = []
    for method in config.methods:
        r = store.get_run(runs[method]["id"])
        mt = r["metrics"]
        out.append(MemberSummary(
            method=method, run_id=r["id"], status=r["status"], best_epoch=int(mt.get("best_epoch", 0)),
            train=float(mt.get("train", math.nan)), valid=float(mt.get("valid", math.nan)),
            test=float(mt.get("test", math.nan)), epochs=int(mt.get("epochs", 0)),
            updates=int(mt.get("updates", 0)), clipped_fraction=float(mt.get("clipped_fraction", 0.0)),
            nonfinite=int(mt.get("nonfinite", 0)), lr_final=float(mt.get("lr_final", math.nan)),
            stop_reason=str(mt.get("stop_reason", ""))))
    return out


def timing_summary(store, run_ids: list[int]) -> dict:
    """Time per epoch of an ensemble, from the epoch curves of its longest-lived run.

    Returns the mean over the epochs trained with the whole ensemble (all three
    members) of the training time, the evaluation time and ms per update, the
    updates per epoch, the number of epochs and the total wall time of the ensemble.
    """
    names = ["epoch_seconds", "eval_seconds", "ms_per_update", "epoch_updates", "ensemble_size"]
    curves = [store.get_curve(r, names) for r in run_ids]
    longest = max(curves, key=lambda c: len(c["epoch_seconds"][0]))
    if len(longest["epoch_seconds"][0]) == 0:
        return {}
    size = longest["ensemble_size"][1]
    full = size == size.max()
    return {"epochs": int(len(size)),
            "ensemble_size": int(size.max()),
            "train_seconds_per_epoch": float(longest["epoch_seconds"][1][full].mean()),
            "eval_seconds_per_epoch": float(longest["eval_seconds"][1][full].mean()),
            "ms_per_update": float(longest["ms_per_update"][1][full].mean()),
            "updates_per_epoch": float(longest["epoch_updates"][1][full].mean()),
            "total_seconds": float(longest["epoch_seconds"][1].sum() + longest["eval_seconds"][1].sum())}


def train_natural(config: NaturalConfig, store, *, source=None, data_dir=None, progress: bool = False,
                  echo: Callable[[str], None] | None = None, threads: int | None = None,
                  restart: bool = False, cache: dict | None = None) -> DatasetResult:
    """Train (or resume, or read back) the ensemble of one data set.

    When every member of ``config`` already has a finished run in ``store``, its
    results are read back and nothing is trained (unless ``restart``). When runs of
    it were stopped or their process died, training resumes from the newest
    checkpoint (:func:`bptt.training.checkpoint.latest_training`). Otherwise it starts
    afresh.
    """
    echo = echo or (lambda s: None)
    config = config.validate()
    group = config.group
    latest: dict[str, dict] = {}
    if not restart:
        for method in config.methods:
            runs = store.list_runs(key=f"table1:{group}:{method}", limit=1)
            if runs:
                latest[method] = runs[0]
    if len(latest) == len(config.methods) and all(r["status"] in OUTCOME_STATUSES for r in latest.values()):
        ids = [r["id"] for r in latest.values()]
        echo(f"{config.dataset}: finished runs {', '.join(map(str, ids))} found in the store; not trained again")
        return DatasetResult(config.dataset, config.as_dict(), _summaries(store, config, latest),
                             timing_summary(store, ids), reused=True)
    for r in latest.values():
        if r["status"] == Status.RUNNING and _live_elsewhere(r):
            raise RuntimeError(f"run {r['id']} of {config.dataset} is being trained by process {r['pid']} "
                               f"on {r['host']}; wait for it or use another store")
    if source is None:
        source = load_source(config.dataset, data_dir, cache=cache)
    trainer = None
    unfinished = [r for r in latest.values() if r["status"] in (Status.RUNNING, Status.STOPPED)]
    found = checkpoint.latest_training(store, [r["id"] for r in unfinished])
    if found is not None and found[1]["problem"] == NaturalTrainer.problem:
        trainer = NaturalTrainer.from_state(found[1], source, store, progress=progress, echo=echo)
        for m in trainer.active:
            store.update_run(trainer.loop.members[m].run_id, status=Status.RUNNING)
        echo(f"{config.dataset}: resuming at epoch {trainer.epoch + 1}, update {trainer.update}")
    if trainer is None:
        for r in unfinished:
            if r["status"] == Status.RUNNING:
                store.finish_run(r["id"], Status.STOPPED, {"stop_reason": "abandoned before its first checkpoint"})
        trainer = NaturalTrainer(config, source, store, progress=progress, echo=echo)
    trainer.run(threads=threads)
    runs = {mem.method: {"id": core_mem.run_id} for mem, core_mem in zip(trainer.members, trainer.loop.members)}
    ids = [core_mem.run_id for core_mem in trainer.loop.members]
    return DatasetResult(config.dataset, config.as_dict(), _summaries(store, config, runs),
                         timing_summary(store, ids))


# ---------------------------------------------------------------------------------------
# Table 1
# ---------------------------------------------------------------------------------------

def run_table1(*, store, datasets: list[str] | tuple[str, ...] = DATASETS, budget: str = "quick",
               data_dir=None, out_dir: str | os.PathLike = "table1-output", seed: int = 0,
               device: str = "cpu", threads: int | None = 1, max_epochs: int | None = None,
               restart: bool = False, progress: bool = False,
               echo: Callable[[str], None] = print) -> dict[str, DatasetResult]:
    """Train the three methods on each data set and write the report.

    ``max_epochs`` caps every data set's epochs below its budget's (it becomes part of
    the runs' configuration, so capped and uncapped runs never mix). Writes ``table1.md`` (our table beside the paper's, the timings, the protocol),
    ``table1.json`` and the learning curves ``table1.png``/``.svg`` into ``out_dir``.
    """
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise ValueError(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    cache: dict = {}
    results: dict[str, DatasetResult] = {}
    started = time.perf_counter()
    # Load (and verify) every data set first, so that a missing file stops the command
    # before hours of training rather than after.
    sources = {name: load_source(name, data_dir, cache=cache) for name in datasets}
    for name in datasets:
        config = protocol(name, budget, seed=seed, device=device)
        if max_epochs is not None and max_epochs < config.max_epochs:
            config = protocol(name, budget, seed=seed, device=device, max_epochs=max_epochs)
        results[name] = train_natural(config, store, source=sources[name], progress=progress, echo=echo,
                                      threads=threads, restart=restart)
    paths = write_report(results, store, Path(out_dir), budget=budget,
                         seconds=time.perf_counter() - started)
    echo("")
    echo(table_markdown(results))
    echo("")
    echo("wrote " + ", ".join(str(p) for p in paths))
    return results


def _fmt(pair: tuple[float, float] | None) -> str:
    if pair is None:
        return "—"
    a, b = pair
    return f"{a:.2f} / {b:.2f}" if math.isfinite(a) and math.isfinite(b) else "n/a"


def table_markdown(results: dict[str, DatasetResult]) -> str:
    """Our train / test figures beside the paper's, one row per data set."""
    head = "| data set (measure) | " + " | ".join(
        f"{METHOD_LABEL[m]} ours | {METHOD_LABEL[m]} paper" for m in METHODS) + " |"
    lines = [head, "|" + " --- |" * (1 + 2 * len(METHODS))]
    for name, res in results.items():
        unit = "bits/char" if name.startswith("ptb") else "NLL"
        cells = []
        for m in METHODS:
            mem = res.member(m)
            ours = None if mem is None else (mem.train, mem.test)
            cells += [_fmt(ours), _fmt(PAPER_TABLE1[name][m])]
        lines.append(f"| {DATASET_LABEL[name]} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing_markdown(results: dict[str, DatasetResult]) -> str:
    lines = ["| data set | hidden | minibatch | updates / epoch | ms / update (3 members) | "
             "training s / epoch | evaluation s / epoch | epochs | total |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        t, c = res.timing, res.config
        if not t:
            continue
        lines.append(f"| {DATASET_LABEL[name]} | {c['hidden']} | {c['batch_size']} | {t['updates_per_epoch']:.0f} | "
                     f"{t['ms_per_update']:.0f} | {t['train_seconds_per_epoch']:.1f} | "
                     f"{t['eval_seconds_per_epoch']:.1f} | {t['epochs']} | {t['total_seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def _details_markdown(results: dict[str, DatasetResult]) -> str:
    lines = ["| data set | method | run | status | best epoch / epochs | valid at best | "
             "updates clipped | non-finite | final lr | stopped because |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        for mem in res.members:
            lines.append(f"| {DATASET_LABEL[name]} | {METHOD_LABEL[mem.method]} | {mem.run_id} | {mem.status} | "
                         f"{mem.best_epoch} / {mem.epochs} | {mem.valid:.3f} | "
                         f"{100 * mem.clipped_fraction:.1f}% | {mem.nonfinite} | {mem.lr_final:g} | "
                         f"{mem.stop_reason} |")
    return "\n".join(lines)


def write_report(results: dict[str, DatasetResult], store, out_dir: Path, *, budget: str,
                 seconds: float | None = None) -> list[Path]:
    """Write ``table1.md``, ``table1.json`` and ``table1.png``/``.svg`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    caps = sorted({res.config["max_epochs"] for name, res in results.items()
                   if res.config["max_epochs"] < protocol(name, budget).max_epochs})
    label = f"{budget} budget" + (f", at most {'/'.join(map(str, caps))} epochs" if caps else "")
    protocol_lines = []
    for name, res in results.items():
        c = res.config
        lr = c["lr"] if not isinstance(c["lr"], dict) else ", ".join(f"{METHOD_LABEL[k]} {v:g}" for k, v in c["lr"].items())
        protocol_lines.append(
            f"* **{DATASET_LABEL[name]}**: {c['hidden']} {c['unit']} units{'' if c['bias'] else ' without biases'}, "
            f"'{c['init']}' initialization (seed {c['seed']}, the same for the three methods), windows of "
            f"{c['window']} steps, minibatch {c['batch_size']}, lr {lr}"
            f"{' (halved when the validation figure rises)' if c['halve_lr_on_rise'] else ''}, threshold "
            f"{c['threshold']:g}, α_t = {c['alpha0']:g}/t for MSGD+CR"
            f"{', cost summed over each window' if c['summed_cost'] else ''}; at most {c['max_epochs']} epochs, "
            f"patience {c['patience']}"
            + (f", at most {c['max_updates_per_epoch']} updates per epoch" if c['max_updates_per_epoch'] else "")
            + (f"; evaluated on the first {c['eval_windows']} windows of each split only"
               if c['eval_windows'] else "; evaluated on every step of every split") + ".")
    reused = [DATASET_LABEL[n] for n, r in results.items() if r.reused]
    text = [
        f"# Table 1: natural problems ({label})",
        "",
        "Train / test figure of each method at its best validation epoch, beside the paper's "
        "(Pascanu, Mikolov & Bengio 2013, Table 1). Music: negative log-likelihood per time step "
        "(nats, summed over the 88 keys, averaged over every predicted step of the split). PTB: bits "
        "per character over every symbol of the split (spaces dropped, `_` and line ends kept). The "
        "paper does not report JSB Chorales, nor MSGD on PTB 5 steps.",
        "",
        table_markdown(results),
        "",
        "![learning curves](table1.png)",
        "",
        "## Time",
        "",
        timing_markdown(results) if any(r.timing for r in results.values()) else "(no timings recorded)",
        "",
        (f"Wall time of this command: {seconds / 60:.1f} min." if seconds is not None else "")
        + (f" Read back from the store without training: {', '.join(reused)}." if reused else ""),
        "",
        "## Runs",
        "",
        _details_markdown(results),
        "",
        "## Protocol",
        "",
        *protocol_lines,
        "",
    ]
    paths = [out_dir / "table1.md", out_dir / "table1.json"]
    paths[0].write_text("\n".join(text))
    payload = {"budget": budget, "seconds": seconds,
               "datasets": {n: {"config": r.config, "timing": r.timing, "reused": r.reused,
                                "members": [dataclasses.asdict(m) for m in r.members],
                                "paper": PAPER_TABLE1[n]} for n, r in results.items()}}
    paths[1].write_text(json.dumps(payload, indent=2, default=lambda o: None if o is None else str(o)))
    paths += plot_curves(results, store, out_dir / "table1", title=f"Table 1 learning curves ({label})")
    return paths


def plot_curves(results: dict[str, DatasetResult], store, stem: Path, title: str = "") -> list[Path]:
    """Train (dotted), validation (solid) and test (dashed) figure per epoch, one panel per
    data set, with the paper's test figures as thin horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    n = max(len(results), 1)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows + 0.9), squeeze=False)
    for ax, (name, res) in zip(axes.flat, results.items()):
        for mem in res.members:
            color = METHOD_COLOR[mem.method]
            curve = store.get_curve(mem.run_id, ["train_nll", "valid_nll", "test_nll"])
            for key, style in (("train_nll", ":"), ("valid_nll", "-"), ("test_nll", "--")):
                s, v = curve[key]
                if len(s):
                    ax.plot(s, v, style, color=color, lw=1.3, marker="o" if len(s) < 4 else None, ms=3)
            paper = PAPER_TABLE1[name][mem.method]
            if paper is not None:
                ax.axhline(paper[1], color=color, lw=0.7, alpha=0.6)
        unit = "bits per character" if name.startswith("ptb") else "NLL per step (nats)"
        ax.set_title(DATASET_LABEL[name], fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel(unit, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(results):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=METHOD_COLOR[m], lw=2, label=METHOD_LABEL[m]) for m in METHODS]
    handles += [Line2D([], [], color="0.3", ls=ls, label=lab) for ls, lab in
                ((":", "train"), ("-", "validation"), ("--", "test"))]
    handles.append(Line2D([], [], color="0.3", lw=0.7, alpha=0.6, label="paper's test figure"))
    ncol = len(handles) if cols > 1 else 4                  # one narrow panel: the legend wraps
    legend_rows = -(-len(handles) // ncol)
    if legend_rows > 1:
        fig.set_figheight(fig.get_figheight() + 0.2 * (legend_rows - 1))
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    top = 1.0 - 0.45 / fig.get_figheight()
    fig.subplots_adjust(left=0.07 if cols > 1 else 0.15, right=0.98,
                        bottom=(0.75 + 0.2 * (legend_rows - 1)) / fig.get_figheight() + 0.06 / rows,
                        top=top - 0.25 / fig.get_figheight(), wspace=0.28, hspace=0.45)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
