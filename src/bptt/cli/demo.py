"""``bptt demo``: the paper's central effect in a few minutes."""

from __future__ import annotations

from pathlib import Path

import click

from bptt.cli.common import (
    open_store,
    out_option,
    parse_seeds,
    progress_option,
    seeds_option,
    sigterm_as_interrupt,
    store_option,
)


@click.command()
@click.option("--updates", default=12_000, show_default=True, type=click.IntRange(min=100),
              help="Update budget per method.")
@seeds_option("0-4", "One network per seed, the same ones for each method.")
@click.option("--length", default=50, show_default=True, type=click.IntRange(min=10),
              help="Sequence length of the temporal order problem.")
@out_option("demo-output", "Where demo.md, demo.json and demo.png/.svg go.")
@store_option
@progress_option
def demo(updates, seeds, length, out_dir, store_path, progress) -> None:
    """The paper's central effect in a few minutes: MSGD vs MSGD-C vs MSGD-CR."""
    from bptt.experiments.demo import run_demo

    sigterm_as_interrupt()
    store = open_store(store_path)
    run_demo(store=store, updates=updates, seeds=parse_seeds(seeds), length=length,
             out_dir=Path(out_dir), progress=progress, echo=click.echo)
