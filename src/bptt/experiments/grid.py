"""What a sweep is: a named grid of runs (:class:`RunSpec`), packed into ensembles of
runs that share every tensor shape (:func:`pack`), and its state in the results store
(:func:`sweep_state`). See :mod:`bptt.experiments.sweep` for how a sweep runs."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bptt import tasks as task_registry
from bptt.store import OUTCOME_STATUSES, Status, Store, config_json, config_key
from bptt.training.config import per_member_fields
from bptt.training.trainer import TrainConfig

#: A run not updated for this long (seconds) may be claimed again, even from another host.
STALE_AFTER = 3600.0


# -- what a sweep is -------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Args:
        train: :class:`TrainConfig` fields of the run, with ``seed`` (one int) instead
            of ``seeds``; fields left out take TrainConfig's defaults.
        labels: where the run sits in its experiment (e.g. ``init``, ``method``,
            ``length``); stored with the run and used by the reports.
        evaluation: after training, the error of the network on ``sequences`` fresh
            sequences at each of ``lengths`` (``{"lengths": [...], "sequences": n,
            "seed": s}``), or ``None``.
    """

    train: dict
    labels: dict = field(default_factory=dict)
    evaluation: dict | None = None

    def train_config(self) -> dict:
        """The complete training configuration (TrainConfig's defaults filled in)."""
        t = dict(self.train)
        seed = t.pop("seed")
        return TrainConfig(**t, seeds=[int(seed)]).member_at(0)

    def stored_config(self) -> dict:
        """The configuration recorded with the run: training, labels, evaluation."""
        return {**self.train_config(), "labels": dict(self.labels), "evaluation": self.evaluation or {}}


class Sweep:
    """A named grid of runs (see :class:`RunSpec`) and what to record about it.

    Args:
        name: the sweep's name in the results store.
        specs: the runs.
        meta: anything to keep with the sweep's results (budget, caps, commands).
        max_ensemble: at most this many runs train in one ensemble.

    Raises ``ValueError`` for an invalid run configuration or two runs with the same
    configuration.
    """

    def __init__(self, name: str, specs: Sequence[RunSpec], meta: dict | None = None,
                 max_ensemble: int = 32) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a sweep needs a non-empty name")
        if max_ensemble < 1:
            raise ValueError(f"max_ensemble must be >= 1, got {max_ensemble}")
        self.name = name
        self.specs = list(specs)
        self.meta = dict(meta or {})
        self.max_ensemble = int(max_ensemble)
        self.configs = []
        for spec in self.specs:
            if "seed" not in spec.train:
                raise ValueError(f"run spec without a 'seed': {spec.train}")
            t = dict(spec.train)
            seed = t.pop("seed")
            TrainConfig(**t, seeds=[int(seed)]).validate()
            self.configs.append(spec.stored_config())
        self.keys = [config_key({"sweep": name, **keyed(c)}) for c in self.configs]
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"sweep {name!r} lists the same run configuration more than once")

    def __len__(self) -> int:
        return len(self.specs)

    def key(self, i: int) -> str:
        return self.keys[i]


#: Settings added to :class:`TrainConfig` after sweeps were first recorded: at these
#: values they are left out of a run's key (and so of its pack's data seed), which
#: stay what they were before the setting existed.
KEY_DEFAULTS = {"guard": "clipping"}


def keyed(config: dict) -> dict:
    """``config`` as it enters a run's key: :data:`KEY_DEFAULTS` left out at their values."""
    return {k: v for k, v in config.items() if not (k in KEY_DEFAULTS and v == KEY_DEFAULTS[k])}


def steps_per_update(config: dict) -> float:
    """Mean number of time steps per sequence of a run: its cost per member-update."""
    return _steps_per_update(config["task"], config_json(config.get("task_options", {})),
                             config["min_length"], config["max_length"])


@functools.lru_cache(maxsize=256)
def _steps_per_update(task: str, options: str, lo: int, hi: int) -> float:
    t = task_registry.get(task, seed=0, **json.loads(options))
    extra = 2 * t.n_pos if isinstance(t, task_registry.Memorization) else 0
    return (lo + hi) / 2 + extra


@dataclass
class Pack:
    """Runs (indices into the sweep) that train as one ensemble."""

    members: list[int]
    cost: float

    def seed(self, keys: Sequence[str]) -> int:
        """The data seed of the ensemble: fixed by which runs it holds."""
        text = "|".join(sorted(keys[i] for i in self.members))
        return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % (2 ** 31)


def _signature(config: dict) -> str:
    fields = per_member_fields(config.get("kernel", "exact"))
    shared = {k: v for k, v in config.items() if k not in ("seed", "labels", *fields)}
    return config_json(shared)


def pack(sweep: Sweep, indices: Iterable[int] | None = None) -> list[Pack]:
    """Group runs whose shapes agree into ensembles of at most ``sweep.max_ensemble``.

    Runs agree when their stored configurations are equal but for the seed, the
    method, the learning rate, the threshold, α and the labels (and, for runs with
    ``kernel="persistent"``, the lengths: one launch trains members of different
    lengths, see :func:`bptt.training.config.per_member_fields`). Packs come out most
    expensive first (updates × steps per update × members), so that a pool of workers
    finishes together.
    """
    groups: dict[str, list[int]] = {}
    for i in (range(len(sweep)) if indices is None else indices):
        groups.setdefault(_signature(sweep.configs[i]), []).append(i)
    packs = []
    for members in groups.values():
        chunks: list[tuple[list[int], set]] = []
        for i in members:                  # an ensemble holds each (seed, settings) once
            c = sweep.configs[i]
            member = (c["seed"], *(repr(c[n]) for n in per_member_fields(c.get("kernel", "exact"))))
            for chunk, seen in chunks:
                if len(chunk) < sweep.max_ensemble and member not in seen:
                    chunk.append(i)
                    seen.add(member)
                    break
            else:
                chunks.append(([i], {member}))
        for chunk, _ in chunks:
            c = sweep.configs[chunk[0]]
            packs.append(Pack(chunk, c["max_updates"] * sum(steps_per_update(sweep.configs[i]) for i in chunk)))
    packs.sort(key=lambda p: -p.cost)
    return packs


# -- the state of a sweep in the store ---------------------------------------------------------
@dataclass
class KeyState:
    outcome: dict | None = None          # the run that settled the key
    running: dict | None = None          # the newest running run
    stopped: list = field(default_factory=list)


def sweep_state(store: Store, sweep: Sweep | str) -> dict[str, KeyState]:
    """Key → its runs in the store (outcome, running, stopped), for one sweep."""
    name = sweep if isinstance(sweep, str) else sweep.name
    state: dict[str, KeyState] = {}
    for r in reversed(store.list_runs(sweep=name)):          # oldest first
        s = state.setdefault(r["key"], KeyState())
        if r["status"] in OUTCOME_STATUSES:
            s.outcome = s.outcome or r
        elif r["status"] == Status.RUNNING:
            s.running = r
        else:
            s.stopped.append(r)
    return state


def _needs_evaluation(config: dict, run: dict) -> bool:
    ev = config.get("evaluation") or {}
    return bool(ev.get("lengths")) and "evaluation" not in run["metrics"]
