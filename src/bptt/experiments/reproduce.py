"""Named reproductions of the paper's synthetic results, each a resumable sweep.

``figure7`` (:mod:`.figure7`), ``synthetic`` (:mod:`.synthetic`) and
``generalization`` (:mod:`.generalization`) each define the grid of runs of one
result of §4.1, at three budgets:

* ``smoke``: every part of the pipeline in a few seconds to minutes (the tests run it);
  the numbers mean nothing.
* ``quick``: under an hour on two cores, with fewer seeds and far lower update caps
  than the paper; the report says so.
* ``full``: the paper's grid and seeds with the reference code's update cap (the
  success check is ours: see ``docs/reproductions.md``).

:func:`reproduce` runs (or resumes) the sweep, then writes the report
(:mod:`.report`); it records every invocation (budget, executor, machine, command,
runtime) in ``sweep.json`` beside the report.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from bptt.experiments.engines import check_device, choose_kernel, engine_fields
from bptt.experiments.manifest import machine, manifest_path, provenance, read_manifest, rerun_command, utc_now
from bptt.experiments.registry import get
from bptt.experiments.report import write_report
from bptt.experiments.sweep import SweepSummary, make_executor, run_sweep
from bptt.store import Store


def reproduce(experiment: str, budget: str = "smoke", *, store: Store | str | os.PathLike,
              out_dir: str | os.PathLike | None = None, sweep_name: str | None = None,
              executor: str | object = "inline", workers: int | None = None, address: str | None = None,
              threads: int | None = 1, progress: bool = True, report: bool = True,
              echo: Callable[[str], None] = print, device: str = "cpu", kernel: str | None = None) -> dict:
    """Run (or resume) one reproduction and write its report.

    Args:
        experiment: ``figure7``, ``synthetic`` or ``generalization``.
        budget: ``smoke``, ``quick`` or ``full``.
        store: the results store (path or :class:`Store`).
        out_dir: where the report goes (default ``reproductions/<sweep>``).
        sweep_name: the sweep's name in the store (default ``<experiment>-<budget>``).
        executor: ``inline``, ``processes`` or ``ray`` (or an executor object).
        workers: processes of the pool (``processes``), CPUs of a local Ray instance.
        address: address of a running Ray cluster.
        threads: torch threads per worker.
        device: where the runs train (``cpu``, the reference, or ``cuda``).
        kernel: ``exact``, ``persistent``, or ``None``: the persistent kernel on CUDA when
            Triton imports, else the exact engine (see :mod:`bptt.experiments.engines`).

    Returns ``{"summary": SweepSummary, "report": {...paths}, "out_dir": Path}``.
    """
    exp = get(experiment)
    b = exp.budget(budget)
    device = check_device(device)
    kernel, note = choose_kernel(device, kernel)
    if note:
        echo(note)
    if not isinstance(store, Store):
        store = Store(store)
    sweep = _current_sweep(exp, b, sweep_name, store, device, kernel)
    out = Path(out_dir) if out_dir is not None else Path("reproductions") / sweep.name
    out.mkdir(parents=True, exist_ok=True)
    ex = make_executor(executor, workers=workers, address=address, threads=threads) \
        if isinstance(executor, str) else executor
    started = utc_now()
    echo(f"{exp.title}: sweep {sweep.name!r}, {len(sweep)} runs, budget {b.name} "
         f"(at most {b.max_updates:,} updates per run), executor {ex.name}"
         + (f", device {device}, kernel {kernel}" if (device, kernel) != ("cpu", "exact") else ""))
    summary: SweepSummary = run_sweep(sweep, store, ex, progress=progress)
    while exp.staged and summary.complete:        # a stage settled: plan the next from its results
        following = _current_sweep(exp, b, sweep_name, store, device, kernel)
        if following.keys == sweep.keys:
            break
        sweep = following
        echo(f"next stage: {len(sweep)} runs in all")
        before = summary
        summary = run_sweep(sweep, store, ex, progress=progress)
        for field in ("trained", "skipped", "evaluated", "seconds"):
            setattr(summary, field, getattr(summary, field) + getattr(before, field))
        summary.reports = before.reports + summary.reports
    invocation = {"started": started, "finished": utc_now(), "seconds": summary.seconds, "executor": ex.name,
                  "workers": getattr(ex, "workers", None) or workers or 1, "threads": threads,
                  "argv": " ".join(shlex.quote(a) for a in sys.argv), "machine": machine(),
                  "provenance": provenance(), "settings": [s.train_config() for s in sweep.specs],
                  "device": device, "kernel": kernel,
                  "summary": {k: v for k, v in asdict(summary).items() if k != "reports"}}
    manifest = read_manifest(out)
    manifest.update({"sweep": sweep.name, "experiment": exp.name, "budget": asdict(b),
                     "store": str(store.path) if store.path is not None else ":memory:",
                     "command": rerun_command(exp.name, b.name, store=str(store.path) if store.path else None,
                                              out=str(out), sweep=sweep_name, executor=ex.name,
                                              workers=workers, address=address,
                                              **engine_fields(device, kernel))})
    manifest.setdefault("invocations", []).append(invocation)
    manifest_path(out).write_text(json.dumps(manifest, indent=2, default=str))
    echo(f"{summary.settled}/{summary.runs} runs settled ({summary.succeeded} succeeded); "
         f"this pass trained {summary.trained} in {summary.seconds:.0f} s"
         + (f"; {summary.running_elsewhere} still running in another process" if summary.running_elsewhere else ""))
    paths = {}
    if report:
        paths = write_report(store, sweep.name, out, echo=echo)
    return {"summary": summary, "report": paths, "out_dir": out}


def _current_sweep(exp, budget, sweep_name, store: Store, device: str, kernel: str):
    """The sweep of ``exp`` as far as its settled runs in ``store`` plan it (all of it
    for an experiment that is not staged)."""
    from bptt.experiments.experiment import default_sweep_name
    from bptt.experiments.report import records

    if not exp.staged:
        return exp.sweep(budget, sweep_name, device=device, kernel=kernel)
    name = sweep_name or default_sweep_name(exp.name, budget.name, device, kernel)
    return exp.sweep(budget, sweep_name, device=device, kernel=kernel, records=records(store, name)[0])
