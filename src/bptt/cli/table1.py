"""``table1``: the natural problems of §4.2 (the paper's Table 1), as a click command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bptt.cli.common import check_device, open_store, out_option, progress_option, sigterm_as_interrupt, store_option
from bptt.experiments.table1.protocol import ALPHA_TIMES, BUDGETS, DATASETS
from bptt.optim.sgd import GUARDS


def _datasets(values: tuple[str, ...]) -> list[str]:
    chosen: list[str] = []
    for v in values or ("all",):
        for name in (DATASETS if v == "all" else (v,)):
            if name not in chosen:
                chosen.append(name)
    return chosen


@click.command("table1")
@click.option("--dataset", "datasets", multiple=True, type=click.Choice(DATASETS + ("all",)),
              help="A data set (repeat the option for several); default: all six.")
@click.option("--budget", default="smoke", show_default=True, type=click.Choice(BUDGETS),
              help="smoke: seconds, checks the machinery; quick: a few epochs; full: the paper's protocol.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Folder holding music/*.mat and ptb/ptb.char.*.txt "
                   "(default: $BPTT_DATA, or the nearest shared/data).")
@out_option(None, "Where report.md/.html, table1.md/.json and table1.png/.svg go "
                  "(default reproductions/table1-BUDGET).")
@store_option
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the initial weights (shared by the three methods) and of the window order.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="CPU threads for PyTorch. One window per update makes every product a small "
                   "matrix-vector one, which more threads slow down rather than speed up.")
@click.option("--device", default="cpu", show_default=True, callback=check_device,
              help="Torch device, e.g. cpu or cuda.")
@click.option("--max-epochs", type=click.IntRange(min=1),
              help="Cap the epochs of every data set below the budget's own (recorded with the runs "
                   "and stated in the report).")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="Minutes of training and evaluation per data set (summed over its epochs, resumed ones "
                   "included): its networks stop once another epoch would not fit, each with its best epoch's "
                   "figures. Not part of the runs' configuration: a rerun with a budget resumes the same runs.")
@click.option("--restart", is_flag=True, help="Train again even where finished runs are in the store.")
@click.option("--dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Dropout on the inputs and the readout, never the recurrence (Zaremba et al. 2014); "
                   "0: the paper's training.")
@click.option("--remedies", is_flag=True,
              help="Also train, on each music data set, each rival remedy of `bptt reproduce remedies` (LSTM, "
                   "GRU, leaky, IRNN, skip, ESN, orthogonal, Nesterov, RMSprop, Adam, L1, L2) at two learning "
                   "rates, with Table 1's size, threshold, windows and epochs; the remedies report reads their "
                   "figures.")
@progress_option
# -- the protocol's open choices --
@click.option("--alpha-time", default="epochs", show_default=True, type=click.Choice(ALPHA_TIMES),
              help="Count t of MSGD-CR's α_t = α₀/t in epochs or in updates (the paper does not say).")
@click.option("--guard", default="clipping", show_default=True, type=click.Choice(GUARDS),
              help="Which members the non-finite guard protects: those that clip (the reference code), "
                   "always, or never.")
def table1_command(datasets, budget, data_dir, out_dir, store_path, seed, threads, device, max_epochs,
                   restart, progress, alpha_time, guard, dropout, remedies, time_budget) -> None:
    """The paper's Table 1: MSGD, MSGD-C and MSGD-CR on the natural problems.

    Trains the three methods on each data set (Piano-midi.de, Nottingham, MuseData,
    JSB Chorales, Penn Treebank characters 1 and 5 steps ahead) as one ensemble,
    records one run per method in the results store, and writes our table beside the
    paper's with learning curves and the time per epoch. Interrupted (Ctrl-C) or
    killed, the same command resumes where it stopped; finished data sets are read
    back from the store.
    """
    from bptt.experiments.table1 import run_table1

    chosen = _datasets(datasets)
    if remedies and all(d.startswith("ptb") for d in chosen):
        raise click.UsageError("--remedies trains on the music data sets; add one with --dataset "
                               "(e.g. --dataset nottingham)")
    sigterm_as_interrupt()
    store = open_store(store_path)
    try:
        run_table1(store=store, datasets=chosen, budget=budget, data_dir=data_dir,
                   out_dir=Path(out_dir) if out_dir else None, seed=seed, device=device, threads=threads,
                   max_epochs=max_epochs,
                   restart=restart,
                   progress=progress, echo=click.echo, alpha_time=alpha_time, guard=guard, dropout=dropout,
                   remedies=remedies, time_budget=None if time_budget is None else 60.0 * time_budget)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("\nstopped. Run the same command again to resume from the last checkpoint "
                   "(a data set stopped before its first one starts again).", err=True)
        sys.exit(130)
