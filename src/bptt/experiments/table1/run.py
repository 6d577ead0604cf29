"""``run_table1``: train the three methods on each data set and write the report;
``report_table1``: the report again, from the runs in the store."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from bptt.store import OUTCOME_STATUSES

from .html import write_html_report
from .protocol import BUDGETS, DATASETS, protocol
from .report import table_markdown, write_report
from .sources import load_source
from .training import DatasetResult, train_natural

__all__ = ["run_table1", "report_table1", "sweep_name"]


def sweep_name(budget: str) -> str:
    """The name Table 1's runs of ``budget`` are recorded under (``table1-smoke`` ...)."""
    return f"table1-{budget}"


def run_table1(*, store, datasets: list[str] | tuple[str, ...] = DATASETS, budget: str = "quick",
               data_dir=None, out_dir: str | os.PathLike | None = None, seed: int = 0,
               device: str = "cpu", threads: int | None = 1, max_epochs: int | None = None,
               restart: bool = False, progress: bool = False,
               echo: Callable[[str], None] = print) -> dict[str, DatasetResult]:
    """Train the three methods on each data set and write the report.

    ``max_epochs`` caps every data set's epochs below its budget's (it becomes part of
    the runs' configuration, so capped and uncapped runs never mix). Writes ``table1.md`` (our table beside the paper's, the timings, the protocol),
    ``table1.json`` and the learning curves ``table1.png``/``.svg`` into ``out_dir``
    (default ``reproductions/table1-BUDGET``), and the same as ``report.md`` and
    ``report.html`` (:func:`.html.write_html_report`).
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
    for name in datasets:
        config = protocol(name, budget, seed=seed, device=device)
        if max_epochs is not None and max_epochs < config.max_epochs:
            config = protocol(name, budget, seed=seed, device=device, max_epochs=max_epochs)
        results[name] = train_natural(config, store, source=sources[name], progress=progress, echo=echo,
                                      threads=threads, restart=restart)
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
