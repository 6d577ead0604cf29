"""``run_table1``: train the three methods on each data set and write the report;
``report_table1``: the report again, from the runs in the store."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable

from bptt.store import OUTCOME_STATUSES

from .html import write_html_report
from .protocol import BUDGETS, DATASETS, protocol
from .report import table_markdown, write_report
from .sources import load_source
from .results import DatasetResult
from .training import train_natural

__all__ = ["run_table1", "report_table1", "sweep_name", "train_remedy_rows", "remedy_row_config"]


def sweep_name(budget: str) -> str:
    """The name Table 1's runs of ``budget`` are recorded under (``table1-smoke`` ...)."""
    return f"table1-{budget}"


def run_table1(*, store, datasets: list[str] | tuple[str, ...] = DATASETS, budget: str = "quick",
               data_dir=None, out_dir: str | os.PathLike | None = None, seed: int = 0,
               device: str = "cpu", threads: int | None = 1, max_epochs: int | None = None,
               restart: bool = False, progress: bool = False,
               echo: Callable[[str], None] = print, alpha_time: str = "epochs",
               guard: str = "clipping", dropout: float = 0.0, remedies: bool = False,
               time_budget: float | None = None) -> dict[str, DatasetResult]:
    """Train the three methods on each data set and write the report.

    ``max_epochs`` caps every data set's epochs below its budget's (it becomes part of
    the runs' configuration, so capped and uncapped runs never mix). ``alpha_time``
    counts t of α_t = alpha0 / t in ``"epochs"`` or ``"updates"``; ``guard`` says which
    members the non-finite guard protects (both stored with the runs). Writes
    ``table1.md`` (our table beside the paper's, the timings, the protocol),
    ``table1.json`` and the learning curves ``table1.png``/``.svg`` into ``out_dir``
    (default ``reproductions/table1-BUDGET``), and the same as ``report.md`` and
    ``report.html`` (:func:`.html.write_html_report`). ``dropout`` trains with dropout on
    the non-recurrent connections (Zaremba et al. 2014; 0: the paper's training).
    ``time_budget`` (seconds per data set, not part of the configuration) ends a data
    set's members once another epoch would not fit in it (:func:`train_natural`).
    ``remedies`` also trains, on each music data set, one network per rival remedy of
    ``bptt reproduce remedies`` that has a rate for it (:func:`train_remedy_rows`); the
    remedies report reads their figures from the store.
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
    choices = {"alpha_time": alpha_time, "guard": guard, "dropout": dropout}
    for name in datasets:
        config = protocol(name, budget, seed=seed, device=device, **choices)
        if max_epochs is not None and max_epochs < config.max_epochs:
            config = protocol(name, budget, seed=seed, device=device, max_epochs=max_epochs, **choices)
        results[name] = train_natural(config, store, source=sources[name], progress=progress, echo=echo,
                                      threads=threads, restart=restart, time_budget=time_budget)
    if remedies:
        for name in (d for d in datasets if not d.startswith("ptb")):
            train_remedy_rows(name, budget, store, source=sources[name], seed=seed, device=device,
                              max_epochs=max_epochs, threads=threads, restart=restart, progress=progress,
                              echo=echo, alpha_time=alpha_time, guard=guard)
    out = Path(out_dir) if out_dir is not None else Path("reproductions") / sweep_name(budget)
    paths = write_report(results, store, out, budget=budget,
                         seconds=time.perf_counter() - started)
    paths += write_html_report(out)
    echo("")
    echo(table_markdown(results))
    echo("")
    echo("wrote " + ", ".join(str(p) for p in paths))
    return results


def report_table1(store, sweep: str, out_dir: str | os.PathLike | None = None, *,
                  echo: Callable[[str], None] = print) -> list[Path]:
    """Write Table 1's report (``bptt report table1-BUDGET``) from the finished runs in ``store``.

    For each data set the newest ensemble of the budget whose three runs all finished is
    read back (nothing is trained).

    Args:
        store: the results store.
        sweep: ``table1-smoke``, ``table1-quick`` or ``table1-full``.
        out_dir: where the report goes (default ``reproductions/SWEEP``).

    Returns:
        The paths written.

    Raises:
        ValueError: ``sweep`` names no budget, or no data set has finished runs in it.
    """
    budget = sweep.removeprefix("table1-")
    if budget not in BUDGETS:
        raise ValueError(f"{sweep!r} is not a Table 1 sweep; use table1-{'|'.join(BUDGETS)}")
    runs = [r for r in store.list_runs(sweep=sweep)] + [
        r for r in store.list_runs(sweep="table1") if r["config"].get("budget") == budget]   # older stores
    groups: dict[str, dict[str, dict]] = {}
    for r in runs:                                                     # newest first
        groups.setdefault(r["config"].get("group"), {}).setdefault(r["config"]["method"], r)
    results: dict[str, DatasetResult] = {}
    for name in DATASETS:
        for members in groups.values():
            first = next(iter(members.values()))
            c = first["config"]
            if c.get("dataset") != name or name in results:
                continue
            config = protocol(name, budget, seed=c["seed"], device=c["device"])
            if c["max_epochs"] < config.max_epochs:
                config = protocol(name, budget, seed=c["seed"], device=c["device"], max_epochs=c["max_epochs"])
            if c.get("dropout"):
                config = dataclasses.replace(config, dropout=c["dropout"]).validate()
            finished = all(members.get(m.value, {}).get("status") in OUTCOME_STATUSES for m in config.methods)
            if config.group != c.get("group") or not finished:
                continue
            results[name] = train_natural(config, store, echo=echo)
    if not results:
        raise ValueError(f"no finished Table 1 runs of the {budget} budget in {store.path}; "
                         f"run `bptt reproduce table1 --budget {budget}` first")
    out = Path(out_dir) if out_dir is not None else Path("reproductions") / sweep
    paths = write_report(results, store, out, budget=budget) + write_html_report(out)
    echo("wrote " + ", ".join(str(p) for p in paths))
    return paths


def remedy_row_config(dataset: str, budget: str, row, *, lr: float | None = None, seed: int = 0,
                      device: str = "cpu", max_epochs: int | None = None, **choices):
    """The Table 1 configuration that trains remedy ``row`` (a
    :class:`bptt.experiments.remedy_rows.Remedy` with a ``corpus_lr``) on ``dataset``:
    the row's network, method and update rule at ``lr`` (default its ``corpus_lr``), with
    Table 1's size, threshold, windows, epochs and evaluation at ``budget``."""
    fields = row.corpus_row()
    if fields is None:
        raise ValueError(f"remedy row {row.name!r} has no run on the music data sets: {row.corpus_note}")
    over = dict(seed=seed, device=device, row=fields, methods=(row.method,),
                lr=float(row.corpus_lr if lr is None else lr), alpha0=0.0, **choices)
    config = protocol(dataset, budget, **over)
    if max_epochs is not None and max_epochs < config.max_epochs:
        config = protocol(dataset, budget, max_epochs=max_epochs, **over)
    return config


def train_remedy_rows(dataset: str, budget: str, store, *, source=None, data_dir=None, rows=None,
                      echo: Callable[[str], None] = print, threads: int | None = 1, restart: bool = False,
                      progress: bool = False, **options) -> dict[tuple[str, float], DatasetResult]:
    """Train every rival remedy with rates for the music data sets (``rows``: names, default
    all of them) on ``dataset``, one network per rate (:meth:`Remedy.corpus_lrs`), recorded
    under ``table1-BUDGET-remedies``; finished runs are read back. Returns
    (row name, rate) → result."""
    from bptt.experiments.remedy_rows import CORPUS_LR_FACTORS, rows as all_rows

    chosen = [r for r in all_rows().values() if r.corpus_lr is not None and (rows is None or r.name in rows)]
    if rows is not None:
        unknown = sorted(set(rows) - {r.name for r in chosen})
        if unknown:
            raise ValueError(f"no remedy row with a run on the music data sets named {', '.join(unknown)}; "
                             f"choose from {', '.join(r.name for r in all_rows().values() if r.corpus_lr)}")
    out = {}
    for k in range(len(CORPUS_LR_FACTORS)):       # every row's first rate, then every row's second, ...
        for row in chosen:
            lr = row.corpus_lrs()[k]
            config = remedy_row_config(dataset, budget, row, lr=lr, **options)
            res = train_natural(config, store, source=source, data_dir=data_dir, threads=threads, restart=restart,
                                progress=progress,
                                echo=lambda line, name=row.name, lr=lr: echo(f"[{name}, {lr:g}] {line}"))
            m = res.members[0]
            echo(f"{dataset}, {row.label}, rate {lr:g}: train / valid / test {m.train:.3f} / {m.valid:.3f} / "
                 f"{m.test:.3f} (best epoch {m.best_epoch}, {m.status})")
            out[row.name, lr] = res
    return out
