"""What a reproduction is: a result of the paper as a sweep of runs at a budget.

An :class:`Experiment` names a result of §4.1, builds its grid of runs
(:meth:`Experiment.specs`) at a :class:`Budget` and reads the settled runs back into
tables, figures and claim checks (:meth:`Experiment.analyze`). The reproductions
themselves are listed in :mod:`bptt.experiments.registry`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from bptt.experiments.sweep import RunSpec, Sweep

BUDGETS = ("smoke", "quick", "full")
#: The success check at the full budget (our choice; the reference code checks 10,000
#: sequences every 20 updates): a screen of FULL_CHECK_SEQUENCES fresh sequences every
#: FULL_CHECK_EVERY updates, confirmed on 10,000 (see :mod:`bptt.training.screen`).
FULL_CHECK_EVERY = 100
FULL_CHECK_SEQUENCES = 500


@dataclass(frozen=True)
class Budget:
    """How much of the paper's protocol a sweep runs.

    Attributes:
        name: ``smoke``, ``quick``, ``full`` (or an experiment's own, e.g. figure7's ``claims``).
        seeds: runs per configuration (seeds 0..seeds-1).
        max_updates: the update cap of every run.
        eval_every: updates between the cheap checks on ``check_sequences`` sequences.
        check_sequences: sequences of the cheap check.
        eval_sequences: fresh sequences of the success test (the paper: 10,000).
        test_sequences: sequences per length of the evaluation after training.
        record_every: updates per recorded point of the training curves.
        checkpoint_every: updates between checkpoints.
        note: what this budget leaves out of the paper's protocol, in words.
    """

    name: str
    seeds: int
    max_updates: int
    eval_every: int
    check_sequences: int
    eval_sequences: int
    test_sequences: int
    record_every: int
    checkpoint_every: int
    note: str = ""

    def train_fields(self) -> dict:
        return {"max_updates": self.max_updates, "eval_every": self.eval_every,
                "check_sequences": self.check_sequences, "eval_sequences": self.eval_sequences,
                "record_every": self.record_every, "checkpoint_every": self.checkpoint_every}


class Experiment:
    """A result of the paper as a sweep: its grid of runs and how to read the results.

    Subclasses set ``name``, ``title``, ``paper_ref``, ``budgets`` and implement
    :meth:`specs` and :meth:`analyze`.
    """

    name = ""
    title = ""
    paper_ref = ""
    budgets: dict[str, Budget] = {}
    #: Whether later runs of the sweep depend on settled earlier ones (e.g. a learning-rate
    #: search, then runs at the rates it chose): :meth:`specs` then takes the settled runs.
    staged = False

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise ValueError(f"unknown budget {name!r}; choose one of {', '.join(self.budgets)}")
        return self.budgets[name]

    def specs(self, budget: Budget) -> list[RunSpec]:  # pragma: no cover - interface
        raise NotImplementedError

    def analyze(self, records: list[dict], budget: Budget, out_dir: Path):  # pragma: no cover - interface
        """Tables, figures, comparisons with the paper and claim checks (:class:`.report.Analysis`)."""
        raise NotImplementedError

    def context(self, store, records: list[dict], budget: Budget) -> dict:
        """What the report reads from ``store`` besides the sweep's settled ``records``:
        keyword arguments for :meth:`analyze` (none by default)."""
        return {}

    def plan(self, budget: Budget, records: list[dict] | None = None) -> list[RunSpec]:
        """The runs of the sweep: :meth:`specs`, given the settled ``records`` when the
        experiment is :attr:`staged` (``None``: the whole plan, for counting and costing)."""
        return self.specs(budget, records) if self.staged else self.specs(budget)

    def labels(self, budget: Budget, **kw) -> dict:
        return {"experiment": self.name, "budget": budget.name, **kw}

    def sweep(self, budget: str | Budget, name: str | None = None, *, device: str = "cpu",
              kernel: str = "exact", records: list[dict] | None = None) -> Sweep:
        """The sweep at ``budget``; ``device`` and ``kernel`` (see
        :mod:`bptt.experiments.engines`) are set in every run's training configuration
        where they are not the defaults. With ``kernel="persistent"`` runs of different
        lengths share ensembles of up to :data:`~bptt.experiments.engines.PERSISTENT_ENSEMBLE`.
        ``records``: the settled runs so far, for a :attr:`staged` experiment (see :meth:`plan`)."""
        from bptt.experiments.engines import PERSISTENT_ENSEMBLE, engine_fields

        b = budget if isinstance(budget, Budget) else self.budget(budget)
        specs = self.plan(b, records)
        engine = engine_fields(device, kernel)
        if engine:
            specs = [RunSpec({**s.train, **engine}, s.labels, s.evaluation) for s in specs]
        meta = {"experiment": self.name, "budget": asdict(b)} | ({"engine": engine} if engine else {})
        return Sweep(name or default_sweep_name(self.name, b.name, device, kernel), specs, meta=meta,
                     **({"max_ensemble": PERSISTENT_ENSEMBLE} if kernel == "persistent" else {}))


def default_sweep_name(experiment: str, budget: str, device: str = "cpu", kernel: str = "exact") -> str:
    """``EXPERIMENT-BUDGET``, with the device type and a non-default kernel appended
    (``figure7-full-cuda-persistent``): runs on other engines are other runs of the store."""
    import torch

    suffix = "" if torch.device(device).type == "cpu" else f"-{torch.device(device).type}"
    return f"{experiment}-{budget}{suffix}" + (f"-{kernel}" if kernel != "exact" else "")

