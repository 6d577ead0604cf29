"""``run_table1``: train the three methods on each data set and write the report."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from .protocol import DATASETS, protocol
from .report import table_markdown, write_report
from .sources import load_source
from .training import DatasetResult, train_natural

__all__ = ["run_table1"]


def run_table1(*, store, datasets: list[str] | tuple[str, ...] = DATASETS, budget: str = "quick",
               data_dir=None, out_dir: str | os.PathLike = "table1-output", seed: int = 0,
               device: str = "cpu", threads: int | None = 1, max_epochs: int | None = None,
               restart: bool = False, progress: bool = False,
               echo: Callable[[str], None] = print, alpha_time: str = "epochs",
               guard: str = "clipping") -> dict[str, DatasetResult]:
    """Train the three methods on each data set and write the report.

    ``max_epochs`` caps every data set's epochs below its budget's (it becomes part of
    the runs' configuration, so capped and uncapped runs never mix). ``alpha_time``
    counts t of α_t = alpha0 / t in ``"epochs"`` or ``"updates"``; ``guard`` says which
    members the non-finite guard protects (both stored with the runs). Writes ``table1.md`` (our table beside the paper's, the timings, the protocol),
    ``table1.json`` and the learning curves ``table1.png``/``.svg`` into ``out_dir``.
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
    choices = {"alpha_time": alpha_time, "guard": guard}
    for name in datasets:
        config = protocol(name, budget, seed=seed, device=device, **choices)
        if max_epochs is not None and max_epochs < config.max_epochs:
            config = protocol(name, budget, seed=seed, device=device, max_epochs=max_epochs, **choices)
        results[name] = train_natural(config, store, source=sources[name], progress=progress, echo=echo,
                                      threads=threads, restart=restart)
    paths = write_report(results, store, Path(out_dir), budget=budget,
                         seconds=time.perf_counter() - started)
    echo("")
    echo(table_markdown(results))
    echo("")
    echo("wrote " + ", ".join(str(p) for p in paths))
    return results
