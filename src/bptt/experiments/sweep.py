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

Example::

    from bptt.experiments.sweep import RunSpec, Sweep, run_sweep
    specs = [RunSpec(train={"task": "adding", "min_length": 50, "max_length": 50, "seed": s,
                            "method": m, "max_updates": 2000}, labels={"method": m, "seed": s})
             for s in range(5) for m in ("msgd", "msgd-c")]
    summary = run_sweep(Sweep("adding-clip", specs), "runs.sqlite")
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bptt import tasks as task_registry
from bptt.models import ElmanRNN
from bptt.store import OUTCOME_STATUSES, Status, Store, config_json, config_key
from bptt.training import checkpoint
from bptt.training.trainer import PER_MEMBER, TrainConfig, Trainer

__all__ = [
    "RunSpec", "Sweep", "Pack", "SweepSummary", "pack", "run_sweep", "sweep_state",
    "evaluate_model", "load_models", "InlineExecutor", "ProcessExecutor", "RayExecutor",
    "make_executor", "steps_per_update",
]

#: A run not updated for this long (seconds) may be claimed again, even from another host.
STALE_AFTER = 3600.0
#: Sequences per evaluation chunk: memory stays flat at any length.
EVAL_CHUNK = 1000


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
        self.keys = [config_key({"sweep": name, **c}) for c in self.configs]
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"sweep {name!r} lists the same run configuration more than once")

    def __len__(self) -> int:
        return len(self.specs)

    def key(self, i: int) -> str:
        return self.keys[i]


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
    shared = {k: v for k, v in config.items() if k not in ("seed", "labels", *PER_MEMBER)}
    return config_json(shared)


def pack(sweep: Sweep, indices: Iterable[int] | None = None) -> list[Pack]:
    """Group runs whose shapes agree into ensembles of at most ``sweep.max_ensemble``.

    Runs agree when their stored configurations are equal but for the seed, the
    method, the learning rate, the threshold, α and the labels. Packs come out most
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
            member = (c["seed"], *(repr(c[n]) for n in PER_MEMBER))
            for chunk, seen in chunks:
                if len(chunk) < sweep.max_ensemble and member not in seen:
                    chunk.append(i)
                    seen.add(member)
                    break
            else:
                chunks.append(([i], {member}))
        for chunk, _ in chunks:
            c = sweep.configs[chunk[0]]
            packs.append(Pack(chunk, c["max_updates"] * steps_per_update(c) * len(chunk)))
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
        elif r["status"] == "running":
            s.running = r
        else:
            s.stopped.append(r)
    return state


def _needs_evaluation(config: dict, run: dict) -> bool:
    ev = config.get("evaluation") or {}
    return bool(ev.get("lengths")) and "evaluation" not in run["metrics"]


# -- evaluation -------------------------------------------------------------------------------
def load_models(payloads: Sequence[bytes], device: str = "cpu") -> ElmanRNN:
    """One ensemble holding the networks saved in final checkpoints (same shapes)."""
    return checkpoint.load_models(payloads, device=device)


def evaluate_model(model: ElmanRNN, task: str, task_options: dict, lengths: Sequence[int],
                   sequences: int, seed: int = 0) -> np.ndarray:
    """Fraction of ``sequences`` fresh sequences each member gets wrong at each length.

    The test sequences at length ``L`` come from the task seeded by ``(seed, L)``, so
    every network is tested on the same sequences. Returns ``[E, len(lengths)]``.
    """
    out = np.zeros((model.ensemble, len(lengths)))
    for li, length in enumerate(lengths):
        t = task_registry.get(task, seed=int(seed) * 100_003 + int(length), **task_options)
        wrong = torch.zeros(model.ensemble, dtype=torch.float64)
        done = 0
        while done < sequences:
            n = min(EVAL_CHUNK, sequences - done)
            x, y = t.sample(n, int(length))
            ev = model.evaluate(x.to(model.device), y.to(model.device), tolerance=t.tolerance)
            wrong += ev.wrong.to("cpu", torch.float64).sum(1)
            done += n
        out[:, li] = (wrong / sequences).numpy()
    return out


def _evaluate_runs(store: Store, runs: Sequence[tuple[dict, int]]) -> None:
    """Evaluate finished runs ``(stored config, run id)`` that share shapes and record it."""
    if not runs:
        return
    config = runs[0][0]
    device = config.get("device", "cpu")
    ev = config["evaluation"]
    start = time.perf_counter()
    payloads = []
    for _, rid in runs:
        ck = store.load_checkpoint(rid)
        if ck is None:
            raise ValueError(f"run {rid} finished without a saved network; it cannot be evaluated")
        payloads.append(ck[1])
    model = load_models(payloads, device=device)
    errors = evaluate_model(model, config["task"], config.get("task_options", {}), ev["lengths"],
                            ev["sequences"], ev.get("seed", 0))
    seconds = time.perf_counter() - start
    for (_, rid), row in zip(runs, errors):
        store.update_run(rid, {"evaluation": {"lengths": list(ev["lengths"]), "errors": [float(e) for e in row],
                                              "sequences": ev["sequences"], "seconds": seconds / len(runs)}})


# -- one unit of work: train (or evaluate) one pack ------------------------------------------------
@dataclass
class Task:
    """A pack of runs for a worker: train them (``kind="train"``) or only evaluate them."""

    sweep: str
    configs: list[dict]
    keys: list[str]
    data_seed: int
    kind: str = "train"
    stale_after: float | None = STALE_AFTER
    claimed: list[int] | None = None       # run ids claimed by the driver (Ray)


@dataclass
class TaskReport:
    trained: int = 0          # runs this task trained to an outcome
    skipped: int = 0          # runs another process had settled or was running
    evaluated: int = 0
    seconds: float = 0.0


def _train_config(configs: Sequence[dict], data_seed: int) -> TrainConfig:
    first = {k: v for k, v in configs[0].items() if k not in ("seed", "labels", "evaluation", "group")}
    per = {n: [c[n] for c in configs] for n in PER_MEMBER}
    for n, values in per.items():
        first[n] = values[0] if all(v == values[0] for v in values) else values
    if first.get("data_seed") is None:
        first["data_seed"] = data_seed
    return TrainConfig(**first, seeds=[c["seed"] for c in configs])


def _heartbeat(store: Store, every: float, tick: Callable[[], None] | None) -> Callable[[Trainer], None]:
    last = [time.monotonic()]

    def callback(trainer: Trainer) -> None:
        if tick is not None:
            tick()
        now = time.monotonic()
        if now - last[0] < every:
            return
        last[0] = now
        for m in trainer.active:
            store.update_run(trainer.run_ids[m], {"progress": {"updates": trainer.update}})
    return callback


def _resumable(store: Store, key: str, new_id: int) -> tuple[int, dict] | None:
    """The newest stopped run of ``key`` with an ensemble checkpoint: (run id, checkpoint)."""
    for r in store.list_runs(key=key):
        if r["id"] == new_id or r["status"] != Status.STOPPED:
            continue
        found = checkpoint.latest_training(store, [r["id"]])
        if found is None:
            continue                      # a final network, not a training state
        state = found[1]
        if r["id"] not in [m["run_id"] for m in state["loop"]["members"]]:
            continue
        return r["id"], state
    return None


def _trainers(task: Task, store: Store, ids: list[int], callback) -> list[tuple[Trainer, dict[int, int]]]:
    """Trainers for the claimed runs: resumed from checkpoints where there are any.

    Returns ``(trainer, {member index: position in the task})`` pairs.
    """
    out = []
    by_group: dict[tuple, tuple[dict, dict[int, int]]] = {}
    fresh = []
    for pos, (key, rid) in enumerate(zip(task.keys, ids)):
        found = _resumable(store, key, rid)
        if found is None:
            fresh.append(pos)
            continue
        old, state = found
        g = (state["schedule"]["group"], state["loop"]["update"])
        by_group.setdefault(g, (state, {}))[1][old] = pos
    for (group, update), (state, old_to_pos) in by_group.items():
        trainer = Trainer.from_state(state, store, callback=callback)
        members = {}
        for m in list(trainer.active):
            old = trainer.run_ids[m]
            if old in old_to_pos:
                pos = old_to_pos[old]
                members[m] = pos
                trainer.set_run_id(m, ids[pos])
                store.update_run(ids[pos], {"resumed_from": old, "resumed_at": update})
        trainer.drop([m for m in trainer.active if m not in members])
        stray = [pos for old, pos in old_to_pos.items() if pos not in members.values()]
        fresh.extend(stray)                # checkpointed but no longer active there: start over
        if trainer.active:
            out.append((trainer, members))
    if fresh:
        fresh.sort()
        config = _train_config([task.configs[p] for p in fresh], task.data_seed)
        trainer = Trainer(config, store, group=f"{task.sweep}/{task.data_seed:08x}/{time.time_ns():x}",
                          sweep=task.sweep, run_ids=[ids[p] for p in fresh], callback=callback)
        out.append((trainer, {m: p for m, p in enumerate(fresh)}))
    return out


def execute(task: Task, store: Store, *, tick: Callable[[], None] | None = None,
            heartbeat: float = 10.0) -> TaskReport:
    """Do one task against ``store``: claim, train (resuming where possible), evaluate."""
    start = time.perf_counter()
    report = TaskReport()
    if task.kind == "evaluate":
        runs = []
        for key, config in zip(task.keys, task.configs):
            st = [r for r in store.list_runs(key=key) if r["status"] in OUTCOME_STATUSES]
            if st and _needs_evaluation(config, st[0]):
                runs.append((config, st[0]["id"]))
        _evaluate_runs(store, runs)
        report.evaluated = len(runs)
        report.seconds = time.perf_counter() - start
        return report

    if task.claimed is not None:
        ids = list(task.claimed)
    else:
        ids = [store.claim(k, c, sweep=task.sweep, stale_after=task.stale_after)
               for k, c in zip(task.keys, task.configs)]
    mine = [p for p, rid in enumerate(ids) if rid is not None]
    report.skipped = len(ids) - len(mine)
    if not mine:
        return report
    sub = Task(task.sweep, [task.configs[p] for p in mine], [task.keys[p] for p in mine], task.data_seed,
               task.kind, task.stale_after)
    sub_ids = [ids[p] for p in mine]
    try:
        callback = _heartbeat(store, heartbeat, tick)
        for trainer, members in _trainers(sub, store, sub_ids, callback):
            resumed_at = trainer.update
            size = len(trainer.active)
            t0 = time.perf_counter()
            trainer.run()
            seconds = time.perf_counter() - t0
            group = trainer.group
            for m, pos in members.items():
                cfg = sub.configs[pos]
                store.update_run(sub_ids[pos], {
                    "pack": group, "pack_size": size, "pack_seconds": seconds, "data_seed": trainer.config.data_seed,
                    "work": (trainer.finished_at[m] - resumed_at) * steps_per_update(cfg)})
                report.trained += 1
            done = [(sub.configs[pos], sub_ids[pos]) for pos in members.values()
                    if (sub.configs[pos].get("evaluation") or {}).get("lengths")]
            _evaluate_runs(store, done)
            report.evaluated += len(done)
    except BaseException:
        for rid in sub_ids:                   # claimed but not trained: give the key back
            try:
                if store.get_run(rid)["status"] == "running":
                    store.finish_run(rid, "stopped")
            except Exception:  # noqa: BLE001 - the store may be gone with the process
                pass
        raise
    report.seconds = time.perf_counter() - start
    return report


# -- executors ----------------------------------------------------------------------------------
class InlineExecutor:
    """Runs every task in this process, one after the other."""

    name = "inline"

    def __init__(self, threads: int | None = 1) -> None:
        self.threads = threads

    def run(self, tasks: list[Task], store: Store, progress: "SweepProgress") -> list[TaskReport]:
        saved = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            reports = []
            for t in tasks:
                reports.append(execute(t, store, tick=progress.refresh))
                progress.refresh(force=True)
            return reports
        finally:
            torch.set_num_threads(saved)


_WORKER_STORE: dict[str, Store] = {}
_WORKER_STOPPING: list[bool] = []


def _worker_init(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):      # stop (with a checkpoint) when the driver dies
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG
        except OSError:
            pass

    def stop(signum, frame):  # noqa: ARG001
        _WORKER_STOPPING.append(True)                      # take no further task
        signal.signal(signal.SIGTERM, signal.SIG_IGN)      # one interrupt: let the checkpoint be written
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _process_entry(store_path: str, task: Task) -> TaskReport:
    if _WORKER_STOPPING:
        raise KeyboardInterrupt
    store = _WORKER_STORE.get(store_path)
    if store is None:
        store = _WORKER_STORE[store_path] = Store(store_path)
    return execute(task, store)


class ProcessExecutor:
    """A pool of local worker processes, each training one ensemble at a time and writing
    to the store directly (SQLite serializes the writes)."""

    name = "processes"

    def __init__(self, workers: int | None = None, threads: int | None = 1) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.threads = threads

    def run(self, tasks: list[Task], store: Store, progress: "SweepProgress") -> list[TaskReport]:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        if store.path is None:
            raise ValueError("a pool of processes needs a store file, not ':memory:'")
        ctx = mp.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_worker_init,
                                   initargs=(self.threads,))
        reports = []
        try:
            pending = {pool.submit(_process_entry, str(store.path), t) for t in tasks}
            while pending:
                done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for f in done:
                    reports.append(f.result())
                progress.refresh(force=bool(done))
        except BaseException:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.terminate()                      # SIGTERM: checkpoint, mark stopped, exit
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return reports


def _ray_train(task: Task, threads: int | None) -> list[dict]:
    """Train one pack on a Ray worker against an in-memory store; return the records."""
    if threads:
        torch.set_num_threads(threads)
    mem = Store(":memory:")
    local = Task(task.sweep, task.configs, task.keys, task.data_seed, task.kind, None)
    local_ids = [mem.claim(k, c, sweep=task.sweep) for k, c in zip(local.keys, local.configs)]
    local.claimed = local_ids
    execute(local, mem, heartbeat=math.inf)
    records = []
    for rid in local_ids:
        run = mem.get_run(rid)
        curves = mem.get_curve(rid)
        rows: dict[int, dict] = {}
        for name, (steps, values) in curves.items():
            for s, v in zip(steps.tolist(), values.tolist()):
                rows.setdefault(s, {"step": s})[name] = v
        records.append({"status": run["status"], "metrics": run["metrics"],
                        "curves": [rows[s] for s in sorted(rows)],
                        "events": [(e["step"], e["kind"], e["detail"]) for e in mem.events(rid)],
                        "checkpoint": mem.load_checkpoint(rid)})
    return records


class RayExecutor:
    """Runs the packs as Ray tasks (``--executor ray [--address ...]``).

    The driver claims the runs of a pack, sends the pack to a Ray worker, and writes
    what comes back (status, metrics, curves, events, the trained network) into the
    store; the workers need no access to the store file. A Ray instance already
    initialized in this process is used as it is; otherwise ``ray.init(address)`` is
    called (``address=None`` starts a local instance) and shut down at the end.
    Runs that were in flight when the driver died start again from the beginning.
    """

    name = "ray"

    def __init__(self, address: str | None = None, threads: int | None = 1, num_cpus: int | None = None) -> None:
        self.address = address
        self.threads = threads
        self.num_cpus = num_cpus

    def run(self, tasks: list[Task], store: Store, progress: "SweepProgress") -> list[TaskReport]:
        try:
            import ray
        except ImportError:
            raise ValueError("the Ray executor needs Ray: pip install 'bptt[ray]'") from None
        own = not ray.is_initialized()
        if own:
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kw["address"] = self.address
            elif self.num_cpus:
                kw["num_cpus"] = self.num_cpus
            ray.init(**kw)
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_train)
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        reports: list[TaskReport] = []
        in_flight: dict[Any, tuple[Task, list[int]]] = {}
        queue = [t for t in tasks if t.kind == "train"]
        try:
            for t in tasks:
                if t.kind == "evaluate":
                    reports.append(execute(t, store))
            last_beat = time.monotonic()
            while queue or in_flight:
                while queue and len(in_flight) < slots:      # claim a pack only when a slot is free
                    t = queue.pop(0)
                    ids = [store.claim(k, c, sweep=t.sweep, stale_after=t.stale_after)
                           for k, c in zip(t.keys, t.configs)]
                    mine = [p for p, rid in enumerate(ids) if rid is not None]
                    if not mine:
                        reports.append(TaskReport(skipped=len(ids)))
                        continue
                    sub = Task(t.sweep, [t.configs[p] for p in mine], [t.keys[p] for p in mine], t.data_seed,
                               t.kind, t.stale_after, claimed=[ids[p] for p in mine])
                    in_flight[remote.remote(sub, self.threads)] = (sub, sub.claimed)
                    progress.refresh()
                if not in_flight:
                    continue
                done, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                for ref in done:
                    records = ray.get(ref)
                    sub, ids = in_flight.pop(ref)
                    for rid, rec in zip(ids, records):
                        _write_record(store, rid, rec)
                    reports.append(TaskReport(trained=len(ids)))
                if time.monotonic() - last_beat > 30:
                    for _, ids in in_flight.values():
                        for rid in ids:
                            store.update_run(rid)
                    last_beat = time.monotonic()
                progress.refresh(force=bool(done))
        except BaseException:
            for ref, (_, ids) in in_flight.items():
                ray.cancel(ref, force=True)
                for rid in ids:
                    store.finish_run(rid, "stopped")
            raise
        finally:
            if own:
                ray.shutdown()
        return reports


def _write_record(store: Store, rid: int, rec: dict) -> None:
    if rec["curves"]:
        store.log_curve(rid, rec["curves"])
    for step, kind, detail in rec["events"]:
        store.log_event(rid, step, kind, detail)
    if rec["checkpoint"] is not None:
        store.save_checkpoint(rid, *rec["checkpoint"])
    status = rec["status"] if rec["status"] != "running" else "stopped"
    store.finish_run(rid, status, rec["metrics"])


def make_executor(name: str = "inline", *, workers: int | None = None, address: str | None = None,
                  threads: int | None = 1):
    """An executor by name: ``inline``, ``processes`` or ``ray``."""
    if name == "inline":
        return InlineExecutor(threads)
    if name == "processes":
        return ProcessExecutor(workers, threads)
    if name == "ray":
        return RayExecutor(address, threads, num_cpus=workers)
    raise ValueError(f"unknown executor {name!r}; choose inline, processes or ray")


# -- progress -------------------------------------------------------------------------------------
def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


class SweepProgress:
    """One progress bar for a whole sweep, fed from the store.

    Shows runs settled out of all, how many succeeded, how many are running, and the
    time left: the member-steps still to do at the observed rate, scaled by the share
    of their update budgets that the runs settled so far needed (and, in brackets, the
    worst case in which every remaining run spends its whole budget).
    """

    def __init__(self, store: Store, sweep: Sweep, enabled: bool = True, every: float = 1.0) -> None:
        from tqdm.auto import tqdm

        self.store, self.sweep, self.every = store, sweep, every
        self.index = {k: i for i, k in enumerate(sweep.keys)}
        self.cost = [steps_per_update(c) for c in sweep.configs]
        self.cap = [c["max_updates"] for c in sweep.configs]
        self.started = time.monotonic()
        self.last = 0.0
        self.base_work: float | None = None
        self.counts = {"settled": 0, "succeeded": 0, "running": 0}
        self.bar = tqdm(total=len(sweep), disable=not enabled, unit="run", dynamic_ncols=True, desc=sweep.name,
                        bar_format="{desc}: {n}/{total} runs |{bar}| {elapsed}{postfix}")
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        state = sweep_state(self.store, self.sweep)
        settled = succeeded = running = 0
        work = left_worst = 0.0
        used = []
        for key, i in self.index.items():
            s = state.get(key)
            done_updates = 0
            if s is not None and s.outcome is not None:
                settled += 1
                succeeded += s.outcome["status"] == "succeeded"
                done_updates = s.outcome["metrics"].get("updates", self.cap[i])
                used.append(done_updates / self.cap[i])
                work += done_updates * self.cost[i]
                continue
            if s is not None and s.running is not None:
                running += 1
                done_updates = s.running["metrics"].get("progress", {}).get("updates", 0)
            work += done_updates * self.cost[i]
            left_worst += (self.cap[i] - done_updates) * self.cost[i]
        if self.base_work is None:
            self.base_work = work
        self.counts = {"settled": settled, "succeeded": succeeded, "running": running}
        elapsed = now - self.started
        rate = (work - self.base_work) / elapsed if elapsed > 0 else 0.0
        post = f" succeeded {succeeded}, running {running}"
        if settled < len(self.sweep):
            if rate > 0:
                share = float(np.mean(used)) if len(used) >= 3 else 1.0
                worst = _fmt_seconds(left_worst / rate)
                post += (f", left ≈ {_fmt_seconds(left_worst * share / rate)} (≤ {worst})" if share < 0.99
                         else f", left ≤ {worst}")
            else:
                post += ", left: measuring"
        self.bar.n = settled
        self.bar.set_postfix_str(post, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.refresh(force=True)
        self.bar.close()


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
        succeeded=sum(r["status"] == "succeeded" for r in settled), running_elsewhere=len(running),
        trained=sum(r.trained for r in reports), skipped=sum(r.skipped for r in reports),
        evaluated=sum(r.evaluated for r in reports), seconds=time.perf_counter() - start,
        executor=executor.name, reports=[dataclasses.asdict(r) for r in reports])
