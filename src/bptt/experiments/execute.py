"""One unit of a sweep's work (:class:`Task`): claim a pack of runs, train it as one
ensemble (resuming from the newest checkpoint where a run was stopped), and evaluate the
finished networks at further lengths; :func:`execute` does it against a store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bptt import tasks as task_registry
from bptt.experiments.grid import STALE_AFTER, _needs_evaluation, steps_per_update
from bptt.models import ElmanRNN
from bptt.store import OUTCOME_STATUSES, Status, Store
from bptt.training import checkpoint
from bptt.training.config import per_member_fields
from bptt.training.trainer import TrainConfig, Trainer

#: Sequences per evaluation chunk: memory stays flat at any length.
EVAL_CHUNK = 1000


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
            ev = model.evaluate(x.to(model.device), y.to(model.device), tolerance=t.tolerance,
                                **({"kernel": "persistent"} if getattr(model, "mixed_units", False) else {}))
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
    per = {n: [c[n] for c in configs] for n in per_member_fields(configs[0].get("kernel", "exact"))}
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
                if store.get_run(rid)["status"] == Status.RUNNING:
                    store.finish_run(rid, Status.STOPPED)
            except Exception:  # noqa: BLE001 - the store may be gone with the process
                pass
        raise
    report.seconds = time.perf_counter() - start
    return report
