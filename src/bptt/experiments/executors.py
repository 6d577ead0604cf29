"""Where a sweep's tasks run: in this process (:class:`InlineExecutor`), in a pool of
local processes each writing to the store (:class:`ProcessExecutor`), or on a Ray
cluster whose workers hold no store (:class:`RayExecutor`); and the one progress display
of a whole sweep, fed from the store (:class:`SweepProgress`)."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from typing import Any

import numpy as np
import torch

from bptt.experiments.execute import Task, TaskReport, execute
from bptt.experiments.grid import Sweep, steps_per_update, sweep_state
from bptt.store import Status, Store


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
_WORKER_BUSY: list[bool] = []
#: Seconds between a worker's checks that its driver is still alive.
PARENT_POLL_S = 0.5
#: Seconds a worker whose driver died gives the task in progress to save its checkpoint.
ORPHAN_GRACE_S = 60.0


def _worker_init(threads: int | None, driver: int | None = None) -> None:
    """Set up a pool worker: its threads, and its end when the driver ends.

    A worker stops on SIGTERM or SIGINT (the task in progress saves its checkpoint and
    marks its runs ``stopped``) and then exits instead of waiting for further tasks. When
    the driver dies, even by ``kill -9``, the worker is told so by the kernel
    (``PR_SET_PDEATHSIG`` on Linux) or, everywhere, by a thread that watches its parent
    process id, and stops the same way.
    """
    if threads:
        torch.set_num_threads(threads)
    parent = os.getppid() if driver is None else driver    # the driver's pid, known before this worker started

    def stop(signum, frame):  # noqa: ARG001
        _WORKER_STOPPING.append(True)                      # take no further task
        signal.signal(signal.SIGTERM, signal.SIG_IGN)      # one interrupt: let the checkpoint be written
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if not _WORKER_BUSY:                               # idle: nothing to save
            os._exit(128 + signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if sys.platform.startswith("linux"):      # the kernel's word when the driver dies
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent:                # the driver died while this worker was starting
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="bptt-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """End this worker once its parent process ``parent`` is gone (then it has a new parent)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    if not _WORKER_STOPPING:
        os.kill(os.getpid(), signal.SIGTERM)    # the handler stops the task, which saves its checkpoint
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while _WORKER_BUSY and time.monotonic() < deadline:
        time.sleep(PARENT_POLL_S)               # a task in progress may save its checkpoint
    os._exit(1)                                 # idle, done, or not stopping in time: end


def _process_entry(store_path: str, task: Task) -> TaskReport:
    if _WORKER_STOPPING:
        raise KeyboardInterrupt
    _WORKER_BUSY.append(True)
    try:
        store = _WORKER_STORE.get(store_path)
        if store is None:
            store = _WORKER_STORE[store_path] = Store(store_path)
        return execute(task, store)
    finally:
        _WORKER_BUSY.clear()
        if _WORKER_STOPPING:                    # stopped: the task is recorded; end instead of waiting
            os._exit(1)


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
                                   initargs=(self.threads, os.getpid()))
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
                _probe_address(self.address)
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
                    store.finish_run(rid, Status.STOPPED)
            raise
        finally:
            if own:
                ray.shutdown()
        return reports


def _probe_address(address: str, timeout: float = 5.0) -> None:
    """Check that something listens at a Ray cluster's ``address`` before ``ray.init``,
    which would otherwise retry for minutes.

    ``host:port`` and ``ray://host:port`` are probed with one TCP connection; ``auto``,
    ``local`` and addresses without a port are left to Ray.

    Raises:
        ValueError: nothing accepts a connection there within ``timeout`` seconds.
    """
    import socket

    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ValueError(f"no Ray cluster answers at {address} ({reason} after trying for at most {timeout:.0f} s); "
                         f"start one with 'ray start --head' or check --address") from None


def _write_record(store: Store, rid: int, rec: dict) -> None:
    if rec["curves"]:
        store.log_curve(rid, rec["curves"])
    for step, kind, detail in rec["events"]:
        store.log_event(rid, step, kind, detail)
    if rec["checkpoint"] is not None:
        store.save_checkpoint(rid, *rec["checkpoint"])
    status = rec["status"] if rec["status"] != Status.RUNNING else Status.STOPPED
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
        from bptt.progress import progress_bar

        self.store, self.sweep, self.every = store, sweep, every
        self.index = {k: i for i, k in enumerate(sweep.keys)}
        self.cost = [steps_per_update(c) for c in sweep.configs]
        self.cap = [c["max_updates"] for c in sweep.configs]
        self.started = time.monotonic()
        self.last = 0.0
        self.base_work: float | None = None
        self.counts = {"settled": 0, "succeeded": 0, "running": 0}
        self.bar = progress_bar(total=len(sweep), disable=not enabled, unit="run", dynamic_ncols=True,
                                desc=sweep.name, bar_format="{desc}: {n}/{total} runs |{bar}| {elapsed}{postfix}")
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
                succeeded += s.outcome["status"] == Status.SUCCEEDED
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
