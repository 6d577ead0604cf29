"""``bptt reproduce`` and ``bptt report``: the paper's synthetic results as resumable sweeps."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bptt.cli.common import (
    library_errors,
    open_store,
    out_option,
    progress_option,
    sigterm_as_interrupt,
    store_option,
)
from bptt.experiments.experiment import BUDGETS
from bptt.experiments.registry import EXPERIMENTS


@click.group()
def reproduce() -> None:
    """Reproduce one of the paper's results: run (or resume) its sweep, then report.

    \b
    figure7         temporal order: 3 initializations x 3 methods x lengths 50-250
    synthetic       adding, multiplication, 3-bit order, permutation, memorization (MSGD-CR)
    generalization  temporal order trained on 50-200, tested up to 5000 steps
    table1          the natural problems: polyphonic music and Penn Treebank characters
    remedies        every remedy (LSTM, GRU, IRNN, Adam, ...) beside MSGD, MSGD-C, MSGD-CR

    Every run is recorded in the results store. Killing the command at any moment and
    running it again finishes the sweep without repeating finished runs; several
    commands may work on one store at once.
    """


def _sweep_options(f, budgets=BUDGETS):
    extra = "".join(f"; {b}: see docs/reproductions.md" for b in budgets if b not in BUDGETS)
    options = [
        click.option("--budget", default="smoke", show_default=True, type=click.Choice(list(budgets)),
                     help="smoke: minutes, checks the pipeline; quick: under an hour on 2 cores, fewer seeds and "
                          "lower update caps; full: the paper's protocol" + extra + "."),
        store_option,
        out_option(None, "Where the report goes (default reproductions/SWEEP)."),
        click.option("--sweep", "sweep_name", help="Name of the sweep in the store (default EXPERIMENT-BUDGET)."),
        click.option("--executor", default="inline", show_default=True,
                     type=click.Choice(["inline", "processes", "ray"]),
                     help="inline: in this process; processes: a pool of local processes; ray: a Ray cluster."),
        click.option("--workers", type=click.IntRange(min=1),
                     help="Worker processes (processes; default: one per core) or CPUs of a local Ray instance."),
        click.option("--address", help="Address of a running Ray cluster (with --executor ray)."),
        click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
                     help="Torch threads per worker (small ensembles run fastest on one thread each)."),
        click.option("--device", default="cpu", show_default=True,
                     help="Where the runs train: cpu (the reference engine) or cuda."),
        click.option("--kernel", type=click.Choice(["exact", "persistent"]),
                     help="The engine's pass (default: persistent on cuda when Triton imports, else exact); "
                          "persistent packs runs of different lengths into one ensemble."),
        click.option("--report/--no-report", default=True, show_default=True, help="Write the report at the end."),
        progress_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


_EXPERIMENT_HELP = {
    "figure7": "Figure 7: temporal order, 3 initializations x 3 methods x lengths 50-250.",
    "synthetic": "The other pathological tasks with MSGD-CR, and generalization of adding/multiplication.",
    "generalization": "Temporal order trained on lengths 50-200, tested at 50 to 5000 steps.",
    "remedies": "The rival remedies beside MSGD, MSGD-C and MSGD-CR: a learning-rate search per row, then "
                "temporal order 50-250 (500, 1000 for rows that solve 250), adding and 5-bit memorization.",
}


def _experiment_command(experiment: str, title: str, budgets=BUDGETS) -> click.Command:
    @library_errors
    def command(**options) -> None:
        _run_sweep(experiment, **options)
    return click.command(experiment, help=_EXPERIMENT_HELP.get(experiment, title))(_sweep_options(command, budgets))


def _run_sweep(experiment, budget, store_path, out_dir, sweep_name, executor, workers, address, threads, report,
               progress, device="cpu", kernel=None) -> None:
    from bptt.experiments.reproduce import reproduce as run

    if address and executor != "ray":
        raise click.UsageError("--address needs --executor ray")
    sigterm_as_interrupt()
    store = open_store(store_path)
    try:
        result = run(experiment, budget, store=store, out_dir=out_dir, sweep_name=sweep_name, executor=executor,
                     workers=workers, address=address, threads=threads, progress=progress, report=report,
                     echo=click.echo, device=device, kernel=kernel)
    except KeyboardInterrupt:
        click.echo("\ninterrupted. Run the same command again to continue the sweep (runs go on from their "
                   "last checkpoints).", err=True)
        sys.exit(130)
    s = result["summary"]
    if not s.complete:
        click.echo(f"{s.runs - s.settled} runs are not settled yet; run the same command again to finish them.",
                   err=True)


for _experiment in EXPERIMENTS:
    reproduce.add_command(_experiment_command(_experiment.name, _experiment.title, tuple(_experiment.budgets)))


@click.command()
@click.argument("sweep")
@store_option
@out_option(None, "Where the report goes (default reproductions/SWEEP).")
@library_errors
def report(sweep, store_path, out_dir) -> None:
    """Write the Markdown and HTML report of a reproduction sweep (e.g. figure7-quick, table1-smoke)."""
    from bptt.experiments.report import write_report

    store = open_store(store_path, must_exist=True)
    out = Path(out_dir) if out_dir else Path("reproductions") / sweep
    if sweep.startswith("table1-"):
        from bptt.experiments.table1.run import report_table1

        report_table1(store, sweep, out, echo=click.echo)
        return
    write_report(store, sweep, out, echo=click.echo)
