"""Table 1's protocol: the data sets, the paper's figures, and the configuration of one ensemble.

The paper's appendix gives, per data set, the network size, the learning rate, the
clipping threshold and Ω's weight; :data:`PROTOCOL` holds them (with this library's
choices where the appendix is silent, listed in ``docs/table1.md``), :data:`BUDGET_SETTINGS`
what each budget changes, and :func:`protocol` turns a data set and a budget into a
validated :class:`NaturalConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bptt.methods import METHODS, Method
from bptt.engine.units import UNITS
from bptt.models.init import INITS
from bptt.omega import OMEGA_VARIANTS
from bptt.optim.sgd import GUARDS
from bptt.store import config_key
from bptt.validation import NONE, Check, Interval, Options, check_params

__all__ = [
    "ALPHA_TIMES", "DATASETS", "BUDGETS", "DATASET_LABEL", "PAPER_TABLE1", "PROTOCOL", "BUDGET_SETTINGS",
    "NaturalConfig", "protocol",
]

DATASETS = ("piano_midi", "nottingham", "musedata", "jsb_chorales", "ptb_1step", "ptb_5step")
BUDGETS = ("smoke", "quick", "full")
DATASET_LABEL = {"piano_midi": "Piano-midi.de", "nottingham": "Nottingham", "musedata": "MuseData",
                 "jsb_chorales": "JSB Chorales", "ptb_1step": "PTB, 1 step",
                 "ptb_5step": "PTB, 5 steps"}

_M, _C, _CR = Method.MSGD, Method.MSGD_C, Method.MSGD_CR

#: The paper's Table 1, (train, test) per method; ``None`` where it gives no figure.
#: Music: negative log-likelihood per time step (nats); PTB: bits per character.
PAPER_TABLE1: dict[str, dict[Method, tuple[float, float] | None]] = {
    "piano_midi": {_M: (6.87, 7.56), _C: (6.81, 7.53), _CR: (7.01, 7.46)},
    "nottingham": {_M: (3.67, 3.80), _C: (3.21, 3.48), _CR: (2.95, 3.36)},
    "musedata": {_M: (8.25, 7.11), _C: (6.54, 7.00), _CR: (6.43, 6.97)},
    "jsb_chorales": {_M: None, _C: None, _CR: None},
    "ptb_1step": {_M: (1.46, 1.50), _C: (1.34, 1.42), _CR: (1.36, 1.41)},
    "ptb_5step": {_M: None, _C: (3.76, 3.89), _CR: (3.70, 3.74)},
}

_MUSIC = dict(unit="sigmoid", init="sigmoid", bias=True, window=200, threshold=8.0,
              alpha_schedule="inverse", summed_cost=False, batch_size=1, eval_window=1000)
_PTB = dict(unit="sigmoid", init="sigmoid", bias=False, window=200, threshold=45.0, hidden=500,
            lr={_M.value: 0.001, _C.value: 0.01, _CR.value: 0.05}, alpha0=0.5,
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


#: How t of α_t = alpha0 / t is counted: in epochs (from 1) or in updates (from 1).
ALPHA_TIMES = ("epochs", "updates")
#: What runs recorded before these settings existed did; a configuration with these
#: values hashes as theirs did (:attr:`NaturalConfig.group`), so their stores resume.
LEGACY_CHOICES = {"alpha_time": "updates", "guard": "always", "dropout": 0.0, "row": None}
#: The fields a rival remedy's row (:attr:`NaturalConfig.row`) may set: its network and
#: its update rule (``name`` labels it). Size, windows, epochs and evaluation stay Table 1's.
ROW_FIELDS = ("name", "model", "model_options", "init", "unit", "optimizer", "momentum", "l1", "l2")

_POSITIVE_INT = Interval(1, None, integer=True)
_RATE = Interval(0, None, closed="neither")
_FLAG = Check(lambda v: isinstance(v, bool), "True or False")
#: What each field of :class:`NaturalConfig` must be (see :mod:`bptt.validation`).
CONSTRAINTS = {
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
    "dropout": [Interval(0, 1, closed="left")],
    "device": [Check(lambda v: isinstance(v, str) and bool(v), "a device name such as 'cpu' or 'cuda'")],
    # -- the protocol's open choices --
    "alpha_time": [Options(ALPHA_TIMES)], "guard": [Options(GUARDS)],
    "row": [NONE, Check(lambda v: isinstance(v, dict) and bool(v.get("name")) and set(v) <= set(ROW_FIELDS),
                        f"a dict with a name and fields from {', '.join(ROW_FIELDS)}")],
}


@dataclass
class NaturalConfig:
    """Everything that defines the training of one data set's ensemble.

    ``lr`` is one float for all methods or a mapping method → float. ``threshold`` is
    the clipping threshold of the clipping methods; ``alpha0`` is Ω's weight of
    MSGD-CR, α_t = alpha0 / t (``"inverse"``) or alpha0 (``"constant"``), t counted
    in epochs (``alpha_time="epochs"``, the default: α falls from alpha0 in the first
    epoch to alpha0/100 in the hundredth) or in updates (``"updates"``: below 10⁻³ after
    the first epoch's ~1,000 updates); the paper does not say which.
    ``guard``: which members the non-finite guard protects (:func:`bptt.optim.guarded`;
    ``"clipping"``, the reference code's, protects MSGD-C and MSGD-CR only).
    ``eval_windows`` (smoke budget only) restricts evaluation to the first windows of
    each split; by default every step of every split is evaluated. ``methods`` may be
    given as names; they become :class:`bptt.methods.Method` on construction.
    ``dropout`` (0: none, the paper's setting) drops inputs and the states fed to the
    readout during training (Zaremba et al. 2014; :mod:`bptt.engine.dropout`); at 0 it
    is left out of :attr:`group`'s hash (:data:`LEGACY_CHOICES`), so the runs without it
    keep their keys.
    ``row`` (``None``: the paper's sigmoid network and SGD) trains a rival remedy
    instead, one network (``methods`` holds its one method): the
    :class:`bptt.training.config.TrainConfig` fields of :data:`ROW_FIELDS` (network,
    initialization, unit, optimizer, penalties; ``name`` labels it) with this
    configuration's size, learning rate, threshold, windows, epochs and evaluation
    (:meth:`train_config`). The music data sets only.
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
    # -- the protocol's open choices --
    alpha_time: str = "epochs"
    guard: str = "clipping"
    dropout: float = 0.0
    row: dict | None = None

    def __post_init__(self) -> None:
        self.methods = tuple(Method(m) if m in METHODS else m for m in self.methods)

    def validate(self) -> "NaturalConfig":
        """Check every field (see :data:`CONSTRAINTS`) and return ``self``; ``ValueError``
        naming the first bad one. Changes nothing."""
        check_params(dataclasses.asdict(self), CONSTRAINTS, {"lr": "learning rate",
                                                             "threshold": "clipping threshold"})
        if isinstance(self.lr, dict):
            for m in self.methods:
                if m not in self.lr:
                    raise ValueError(f"learning rate of {m} is missing from lr={self.lr}")
        if self.row is not None:
            who = f"remedy row {self.row['name']!r}"
            if self.is_text:
                raise ValueError(f"{who}: rival remedies train on the music data sets only, not {self.dataset}")
            if len(self.methods) != 1:
                raise ValueError(f"{who} trains one network: give one method, not {len(self.methods)}")
            if Method(self.methods[0]).regularizes:
                raise ValueError(f"{who}: Ω (msgd-cr) is Table 1's own third method; give msgd or msgd-c")
            try:
                tc = self.train_config()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{who} makes no sense: {exc}") from None
            if tc.l1 or tc.l2:
                from types import SimpleNamespace

                from bptt.training.build import build_model

                probe = build_model(dataclasses.replace(tc, hidden=2, device="cpu"),
                                    SimpleNamespace(n_in=1, n_out=1, output="sigmoid"))
                if not probe.recurrent_names:
                    raise ValueError(f"{who} makes no sense: an L1/L2 penalty on W_rec needs recurrent weights "
                                     f"that learn, and model {tc.model!r} learns none")
        return self

    def train_config(self):
        """The :class:`bptt.training.config.TrainConfig` that builds this row's network
        and update rule (:func:`bptt.training.build.build_model`, ``build_rule``); only
        for a configuration with a :attr:`row`."""
        from bptt.training.config import TrainConfig

        if self.row is None:
            raise ValueError("train_config: this configuration trains the paper's network, not a remedy row")
        method = Method(self.methods[0]).value
        fields = {k: v for k, v in self.row.items() if k != "name"}
        return TrainConfig(**fields, method=method, lr=self.method_lr(method),
                           threshold=float(self.threshold), alpha=0.0, hidden=self.hidden, seeds=[self.seed],
                           dtype=self.dtype, device=self.device, guard=self.guard).validate()

    @property
    def label(self) -> str:
        """How reports name the configuration's network: the row's name, or the paper's."""
        return self.row["name"] if self.row is not None else "paper"

    @property
    def is_text(self) -> bool:
        """Whether the data set is Penn Treebank characters (else piano rolls)."""
        return self.dataset.startswith("ptb")

    @property
    def measure(self) -> str:
        """The unit of the data set's figures."""
        return "bits per character" if self.is_text else "negative log-likelihood per time step (nats)"

    def method_lr(self, method: str) -> float:
        """The initial learning rate of ``method``."""
        return float(self.lr[method]) if isinstance(self.lr, dict) else float(self.lr)

    def method_threshold(self, method: str) -> float | None:
        """The clipping threshold of ``method``; ``None`` for a method that does not clip."""
        return float(self.threshold) if Method(method).clips else None

    def method_alpha0(self, method: str) -> float:
        """Ω's initial weight for ``method``; 0 for a method without Ω."""
        return float(self.alpha0) if Method(method).regularizes else 0.0

    def as_dict(self) -> dict:
        """The fields as plain values (methods as their names), as stored and hashed."""
        d = dataclasses.asdict(self)
        d["methods"] = [Method(m).value for m in self.methods]
        return d

    @property
    def group(self) -> str:
        """A hash of the configuration: the runs of one ensemble share it (settings at the
        values of :data:`LEGACY_CHOICES` are left out, as they were before they existed)."""
        d = self.as_dict()
        for k, v in LEGACY_CHOICES.items():
            if d.get(k) == v:
                d.pop(k)
        return config_key(d)

    def member(self, method: str) -> dict:
        """The configuration stored with the run of one member."""
        d = self.as_dict()
        d.update(task=self.dataset, method=Method(method).value, lr=self.method_lr(method),
                 threshold=self.method_threshold(method), alpha0=self.method_alpha0(method), group=self.group,
                 experiment="table1", measure=self.measure)
        return d


def protocol(dataset: str, budget: str = "full", **overrides) -> NaturalConfig:
    """The configuration of ``dataset`` under ``budget`` (see :data:`PROTOCOL`).

    Args:
        dataset: one of :data:`DATASETS`.
        budget: one of :data:`BUDGETS`.
        **overrides: fields of :class:`NaturalConfig` to set instead of the protocol's.

    Returns:
        A validated :class:`NaturalConfig`; ``ValueError`` for an unknown data set or
        budget, or an invalid override.
    """
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
