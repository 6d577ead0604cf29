"""Resumable sweeps: a grid of runs, packed into ensembles, recorded in the results store.

A sweep is a named list of :class:`RunSpec`, one per run: the run's training
configuration (one seed), the labels that place it in its experiment, and, where the
experiment asks for it, an evaluation of the finished network at further lengths.
Every spec has a key (:meth:`Sweep.key`), and the results store settles each key at
most once:

* **Packing.** Runs whose configurations agree in everything but the seed, the method,
  the learning rate, the threshold and α share every tensor shape, so they train as
  members of one ensemble (:func:`pack`); different shapes (lengths, initializations,
  tasks) run side by side, one ensemble per executor slot, longest first.
* **Claiming.** A worker claims each run of its pack (:meth:`bptt.store.Store.claim`, one
  transaction) right before it trains; a key that already has an outcome, or a live run,
  is refused. Two processes on one store therefore never train the same configuration,
  and a finished run is never repeated.
* **Resuming.** Each ensemble checkpoints all its members in one transaction. A killed
  run stays ``running`` until its key is claimed again; the claim marks it ``stopped``
  and the new run continues from its last checkpoint (``resumed_from`` in its metrics).
  A run killed after training but before its evaluation is evaluated on the next pass.
* **Executors.** :class:`InlineExecutor` (in this process, the default),
  :class:`ProcessExecutor` (a pool of local processes, each writing to the store) and
  :class:`RayExecutor` (a Ray cluster; the workers hold no store: they train against an
  in-memory one and send the records back, and the driver writes them into the store,
  so the store never has to be on a shared file system).
* **Progress.** One display for the whole sweep: runs done, succeeded, running, and the
  time left estimated from the measured rate of member-steps (updates × sequence length).

The parts live in their own modules, all importable from here: what a sweep is and
its state in the store (:mod:`bptt.experiments.grid`), one pack's work: claiming,
resuming, evaluating (:mod:`bptt.experiments.execute`), and where the work runs, with
the progress display (:mod:`bptt.experiments.executors`). This module plans and drives.

Example::

    from bptt.experiments.sweep import RunSpec, Sweep, run_sweep
    specs = [RunSpec(train={"task": "adding", "min_length": 50, "max_length": 50, "seed": s,
                            "method": m, "max_updates": 2000}, labels={"method": m, "seed": s})
             for s in range(5) for m in ("msgd", "msgd-c")]
    summary = run_sweep(Sweep("adding-clip", specs), "runs.sqlite")
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

from bptt.experiments.execute import EVAL_CHUNK, Task, TaskReport, evaluate_model, execute, load_models
from bptt.experiments.executors import (
    InlineExecutor, ProcessExecutor, RayExecutor, SweepProgress, make_executor,
)
from bptt.experiments.grid import (
    STALE_AFTER, KeyState, Pack, RunSpec, Sweep, _needs_evaluation, pack, steps_per_update, sweep_state,
)
from bptt.store import Status, Store

__all__ = [
    "RunSpec", "Sweep", "Pack", "SweepSummary", "pack", "run_sweep", "sweep_state", "plan", "execute",
    "evaluate_model", "load_models", "InlineExecutor", "ProcessExecutor", "RayExecutor", "SweepProgress",
    "make_executor", "steps_per_update", "KeyState", "Task", "TaskReport", "STALE_AFTER", "EVAL_CHUNK",
]


# -- the driver ---------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    sweep: str
    runs: int
    settled: int
    succeeded: int
    running_elsewhere: int
    trained: int
    skipped: int
    evaluated: int
    seconds: float
    executor: str
    reports: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.settled == self.runs


def plan(sweep: Sweep, store: Store, stale_after: float | None = STALE_AFTER) -> list[Task]:
    """The tasks that remain: packs of unsettled runs, and evaluations left undone."""
    state = sweep_state(store, sweep)
    todo, evaluate = [], []
    for i, key in enumerate(sweep.keys):
        s = state.get(key)
        if s is None or s.outcome is None:
            todo.append(i)
        elif _needs_evaluation(sweep.configs[i], s.outcome):
            evaluate.append(i)
    tasks = [Task(sweep.name, [sweep.configs[i] for i in p.members], [sweep.keys[i] for i in p.members],
                  p.seed(sweep.keys), "train", stale_after) for p in pack(sweep, todo)]
    tasks += [Task(sweep.name, [sweep.configs[i] for i in p.members], [sweep.keys[i] for i in p.members],
                   p.seed(sweep.keys), "evaluate", stale_after) for p in pack(sweep, evaluate)]
    return tasks


def run_sweep(sweep: Sweep, store: Store | str | os.PathLike, executor=None, *, progress: bool = True,
              stale_after: float | None = STALE_AFTER) -> SweepSummary:
    """Run every unsettled run of ``sweep`` and record it in ``store``.

    Safe to call again at any time, from any number of processes: settled runs are
    never repeated, runs killed part-way continue from their checkpoints, and runs that
    another live process holds are left to it. ``executor`` is an executor object or a
    name (see :func:`make_executor`); the default trains in this process.
    """
    if not isinstance(store, Store):
        store = Store(store)
    if executor is None or isinstance(executor, str):
        executor = make_executor(executor or "inline")
    start = time.perf_counter()
    tasks = plan(sweep, store, stale_after)
    bar = SweepProgress(store, sweep, enabled=progress)
    try:
        reports = executor.run(tasks, store, bar) if tasks else []
    finally:
        bar.close()
    state = sweep_state(store, sweep)
    settled = [state[k].outcome for k in sweep.keys if k in state and state[k].outcome is not None]
    running = [k for k in sweep.keys if k in state and state[k].outcome is None and state[k].running is not None]
    return SweepSummary(
        sweep=sweep.name, runs=len(sweep), settled=len(settled),
        succeeded=sum(r["status"] == Status.SUCCEEDED for r in settled), running_elsewhere=len(running),
        trained=sum(r.trained for r in reports), skipped=sum(r.skipped for r in reports),
        evaluated=sum(r.evaluated for r in reports), seconds=time.perf_counter() - start,
        executor=executor.name, reports=[dataclasses.asdict(r) for r in reports])
