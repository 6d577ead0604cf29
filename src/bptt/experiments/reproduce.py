"""Named reproductions of the paper's synthetic results, each a resumable sweep.

``figure7`` (:mod:`.figure7`), ``synthetic`` (:mod:`.synthetic`) and
``generalization`` (:mod:`.generalization`) each define the grid of runs of one
result of §4.1, at three budgets:

* ``smoke``: every part of the pipeline in a few seconds to minutes (the tests run it);
  the numbers mean nothing.
* ``quick``: under an hour on two cores, with fewer seeds and far lower update caps
  than the paper; the report says so.
* ``full``: the paper's protocol.

:func:`reproduce` runs (or resumes) the sweep, then writes the report
(:mod:`.report`); it records every invocation (budget, executor, machine, command,
runtime) in ``sweep.json`` beside the report.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from bptt.experiments.sweep import RunSpec, Sweep, SweepSummary, make_executor, run_sweep
from bptt.store import Store

BUDGETS = ("smoke", "quick", "full")


@dataclass(frozen=True)
class Budget:
    """How much of the paper's protocol a sweep runs.

    Attributes:
        name: ``smoke``, ``quick`` or ``full``.
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

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise ValueError(f"unknown budget {name!r}; choose one of {', '.join(self.budgets)}")
        return self.budgets[name]

    def specs(self, budget: Budget) -> list[RunSpec]:  # pragma: no cover - interface
        raise NotImplementedError

    def analyze(self, records: list[dict], budget: Budget, out_dir: Path):  # pragma: no cover - interface
        """Tables, figures, comparisons with the paper and claim checks (:class:`.report.Analysis`)."""
        raise NotImplementedError

    def labels(self, budget: Budget, **kw) -> dict:
        return {"experiment": self.name, "budget": budget.name, **kw}

    def sweep(self, budget: str | Budget, name: str | None = None) -> Sweep:
        b = budget if isinstance(budget, Budget) else self.budget(budget)
        return Sweep(name or default_sweep_name(self.name, b.name), self.specs(b),
                     meta={"experiment": self.name, "budget": asdict(b)})


def default_sweep_name(experiment: str, budget: str) -> str:
    return f"{experiment}-{budget}"


def experiments() -> dict[str, Experiment]:
    """The reproductions by name."""
    from bptt.experiments.figure7 import Figure7
    from bptt.experiments.generalization import Generalization
    from bptt.experiments.synthetic import Synthetic

    return {e.name: e for e in (Figure7(), Synthetic(), Generalization())}


def get(name: str) -> Experiment:
    table = experiments()
    if name not in table:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(table)}")
    return table[name]


def machine() -> dict:
    """The machine a sweep ran on, for the report."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        bptt_version = version("bptt")
    except Exception:  # noqa: BLE001
        bptt_version = "unknown"
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "bptt": bptt_version}


def rerun_command(experiment: str, budget: str, *, store: str | None, out: str | None, sweep: str | None,
                  executor: str = "inline", workers: int | None = None, address: str | None = None) -> str:
    parts = ["bptt", "reproduce", experiment, "--budget", budget]
    if sweep:
        parts += ["--sweep", sweep]
    if store:
        parts += ["--store", store]
    if out:
        parts += ["--out", out]
    if executor != "inline":
        parts += ["--executor", executor]
    if workers:
        parts += ["--workers", str(workers)]
    if address:
        parts += ["--address", address]
    return shlex.join(parts)


def manifest_path(out_dir: Path) -> Path:
    return Path(out_dir) / "sweep.json"


def read_manifest(out_dir: Path) -> dict:
    p = manifest_path(out_dir)
    if p.exists():
        try:
            return json.loads(p.read_text())
        except ValueError:
            return {}
    return {}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def reproduce(experiment: str, budget: str = "smoke", *, store: Store | str | os.PathLike,
              out_dir: str | os.PathLike | None = None, sweep_name: str | None = None,
              executor: str | object = "inline", workers: int | None = None, address: str | None = None,
              threads: int | None = 1, progress: bool = True, report: bool = True,
              echo: Callable[[str], None] = print) -> dict:
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

    Returns ``{"summary": SweepSummary, "report": {...paths}, "out_dir": Path}``.
    """
    exp = get(experiment)
    b = exp.budget(budget)
    sweep = exp.sweep(b, sweep_name)
    out = Path(out_dir) if out_dir is not None else Path("reproductions") / sweep.name
    out.mkdir(parents=True, exist_ok=True)
    if not isinstance(store, Store):
        store = Store(store)
    ex = make_executor(executor, workers=workers, address=address, threads=threads) \
        if isinstance(executor, str) else executor
    started = _now()
    echo(f"{exp.title}: sweep {sweep.name!r}, {len(sweep)} runs, budget {b.name} "
         f"(at most {b.max_updates:,} updates per run), executor {ex.name}")
    summary: SweepSummary = run_sweep(sweep, store, ex, progress=progress)
    invocation = {"started": started, "finished": _now(), "seconds": summary.seconds, "executor": ex.name,
                  "workers": getattr(ex, "workers", None) or workers or 1, "threads": threads,
                  "argv": " ".join(shlex.quote(a) for a in sys.argv), "machine": machine(),
                  "summary": {k: v for k, v in asdict(summary).items() if k != "reports"}}
    manifest = read_manifest(out)
    manifest.update({"sweep": sweep.name, "experiment": exp.name, "budget": asdict(b),
                     "store": str(store.path) if store.path is not None else ":memory:",
                     "command": rerun_command(exp.name, b.name, store=str(store.path) if store.path else None,
                                              out=str(out), sweep=sweep_name, executor=ex.name,
                                              workers=workers, address=address)})
    manifest.setdefault("invocations", []).append(invocation)
    manifest_path(out).write_text(json.dumps(manifest, indent=2, default=str))
    echo(f"{summary.settled}/{summary.runs} runs settled ({summary.succeeded} succeeded); "
         f"this pass trained {summary.trained} in {summary.seconds:.0f} s"
         + (f"; {summary.running_elsewhere} still running in another process" if summary.running_elsewhere else ""))
    paths = {}
    if report:
        from bptt.experiments.report import write_report

        paths = write_report(store, sweep.name, out, echo=echo)
    return {"summary": summary, "report": paths, "out_dir": out}
