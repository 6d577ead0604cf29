"""The ``bptt`` command."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from bptt import tasks as task_registry


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → [0, 1, 2, 3, 4]; ``"1,5,9"`` → [1, 5, 9]; ranges and lists combine."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise ValueError
                seeds.extend(range(lo_i, hi_i + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of seeds like '0-4' or '0,3,7'") from None
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise click.BadParameter(f"seeds must be distinct and >= 0, got {text!r}")
    return seeds


def _open_store(path: str | None):
    from bptt.store import Store, default_store_path

    p = Path(path) if path else default_store_path()
    try:
        return Store(p)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _sigterm_as_interrupt() -> None:
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="bptt")
def main() -> None:
    """Train recurrent networks across long time lags, and see why that is hard.

    The system of Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent
    neural networks" (ICML 2013): exact BPTT, gradient-norm clipping, the regularizer Ω,
    and the pathological long-term-dependency tasks.
    """


@main.command("tasks")
def tasks_cmd() -> None:
    """List the tasks with their input size, output and error measure."""
    rows = []
    for name in task_registry.names():
        t = task_registry.get(name, seed=0)
        rows.append((name, str(t.n_in), str(t.n_out), t.output, t.error_measure))
    widths = [max(len(r[i]) for r in rows + [("task", "in", "out", "output", "error")]) for i in range(4)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(("task", "in", "out", "output"), widths)) + "  error")
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r[:4], widths)) + "  " + r[4])


@main.command()
@click.option("--task", default="temporal_order", show_default=True,
              type=click.Choice(task_registry.names()), help="The task to train on.")
@click.option("--length", type=click.IntRange(min=1), help="Fixed sequence length L.")
@click.option("--min-length", type=click.IntRange(min=1), help="Draw L per minibatch from [min, max].")
@click.option("--max-length", type=click.IntRange(min=1))
@click.option("--init", default="smart_tanh", show_default=True,
              type=click.Choice(["sigmoid", "basic_tanh", "smart_tanh", "orthogonal", "identity"]))
@click.option("--unit", type=click.Choice(["tanh", "sigmoid", "relu", "linear"]),
              help="Recurrent unit (default: the one the init was made for).")
@click.option("--method", default="msgd-cr", show_default=True,
              type=click.Choice(["msgd", "msgd-c", "msgd-cr"]),
              help="SGD; with clipping; with clipping and Ω.")
@click.option("--hidden", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=0.01, show_default=True, type=float, help="Learning rate.")
@click.option("--threshold", default=1.0, show_default=True, type=float, help="Clipping threshold (> 0).")
@click.option("--clip", default="norm", show_default=True, type=click.Choice(["norm", "elementwise"]))
@click.option("--alpha", default=2.0, show_default=True, type=float, help="Weight of Ω (msgd-cr).")
@click.option("--alpha-schedule", default="constant", show_default=True, type=click.Choice(["constant", "inverse"]))
@click.option("--omega", default="squared", show_default=True, type=click.Choice(["squared", "plain"]))
@click.option("--batch-size", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--max-updates", default=100_000, show_default=True, type=click.IntRange(min=1))
@click.option("--eval-every", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--eval-sequences", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--success-error", default=0.01, show_default=True, type=float)
@click.option("--strict", is_flag=True, help="Success only with no error at all.")
@click.option("--seeds", default="0", show_default=True, help="One member per seed: '0-4' or '0,3,7'.")
@click.option("--record-every", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--checkpoint-every", default=2000, show_default=True, type=click.IntRange(min=1))
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "float64"]))
@click.option("--device", default="cpu", show_default=True)
@click.option("--store", "store_path", help="Results store (default $BPTT_STORE or ./bptt-results.sqlite).")
@click.option("--resume", type=int, help="Resume the stopped training that run RUN_ID belongs to.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def train(**o) -> None:
    """Train an ensemble, one member per seed, and record every run in the store."""
    from bptt.store import Status
    from bptt.training.trainer import TrainConfig, Trainer

    _sigterm_as_interrupt()
    store = _open_store(o["store_path"])
    if o["resume"] is not None:
        trainer = _resumed(store, o["resume"], o["progress"])
    else:
        if o["length"] is not None and (o["min_length"] or o["max_length"]):
            raise click.UsageError("give either --length or --min-length/--max-length, not both")
        lo = o["length"] or o["min_length"] or o["max_length"] or 50
        hi = o["length"] or o["max_length"] or lo
        config = TrainConfig(
            task=o["task"], min_length=lo, max_length=hi, hidden=o["hidden"], init=o["init"],
            unit=o["unit"], method=o["method"], lr=o["lr"], threshold=o["threshold"], clip=o["clip"],
            alpha=o["alpha"], alpha_schedule=o["alpha_schedule"], omega=o["omega"],
            batch_size=o["batch_size"], max_updates=o["max_updates"], eval_every=o["eval_every"],
            eval_sequences=o["eval_sequences"], success_error=o["success_error"], strict=o["strict"],
            seeds=parse_seeds(o["seeds"]), dtype=o["dtype"], device=o["device"],
            record_every=o["record_every"], checkpoint_every=o["checkpoint_every"])
        try:
            trainer = Trainer(config, store, progress=o["progress"])
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        ids = [trainer.run_ids[m] for m in range(len(trainer.run_ids)) if trainer.status[m] == Status.STOPPED]
        click.echo(f"\nstopped at update {trainer.update}; checkpoint saved. "
                   f"Resume with: bptt train --resume {ids[0] if ids else trainer.run_ids[0]}"
                   + (f" --store {o['store_path']}" if o["store_path"] else ""), err=True)
        sys.exit(130)
    click.echo(f"{result.updates} updates in {result.seconds:.1f} s")
    click.echo(f"{'run':>5}  {'seed':>4}  {'status':<10}  {'updates':>8}  {'error':>7}  {'clipped':>7}  nonfinite")
    for m in result.members:
        click.echo(f"{m.run_id or '-':>5}  {m.seed:>4}  {m.status:<10}  {m.updates:>8}  {m.error:>7.4f}  "
                   f"{m.clipped_fraction:>7.3f}  {m.nonfinite}")


def _resumed(store, run_id: int, progress: bool):
    from bptt.training.synthetic import resume

    try:
        trainer = resume(store, run_id, progress=progress)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"resuming group {trainer.group} at update {trainer.update} with {len(trainer.active)} active members",
               err=True)
    return trainer


@main.command()
@click.option("--store", "store_path", help="Results store (default $BPTT_STORE or ./bptt-results.sqlite).")
@click.option("--status", type=click.Choice(["running", "succeeded", "failed", "diverged", "stopped"]))
@click.option("--sweep")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def runs(store_path, status, sweep, limit, as_json) -> None:
    """List the recorded runs, newest first."""
    store = _open_store(store_path)
    rows = store.list_runs(sweep=sweep, status=status, limit=limit)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, default=str))
        return
    if not rows:
        click.echo("no runs recorded in " + str(store.path))
        return
    click.echo(f"{'id':>5}  {'status':<10}  {'task':<20}  {'L':>9}  {'init':<11}  {'method':<8}  "
               f"{'seed':>4}  {'updates':>8}  {'error':>7}  created")
    for r in rows:
        c, m = r["config"], r["metrics"]
        L = f"{c.get('min_length')}" + (f"-{c.get('max_length')}" if c.get("max_length") != c.get("min_length") else "")
        err = m.get("error")
        click.echo(f"{r['id']:>5}  {r['status']:<10}  {str(c.get('task')):<20}  {L:>9}  {str(c.get('init')):<11}  "
                   f"{str(c.get('method')):<8}  {str(c.get('seed')):>4}  {str(m.get('updates', '')):>8}  "
                   f"{(f'{err:.4f}' if isinstance(err, (int, float)) else ''):>7}  {r['created'][:19]}")


@main.command()
@click.option("--updates", default=12_000, show_default=True, type=click.IntRange(min=100),
              help="Update budget per method.")
@click.option("--seeds", default="0-4", show_default=True)
@click.option("--length", default=50, show_default=True, type=click.IntRange(min=10))
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False))
@click.option("--store", "store_path", help="Results store (default $BPTT_STORE or ./bptt-results.sqlite).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def demo(updates, seeds, length, out_dir, store_path, progress) -> None:
    """The paper's central effect in a few minutes: MSGD vs MSGD-C vs MSGD-CR."""
    from bptt.experiments.demo import run_demo

    _sigterm_as_interrupt()
    store = _open_store(store_path)
    run_demo(store=store, updates=updates, seeds=parse_seeds(seeds), length=length,
             out_dir=Path(out_dir), progress=progress, echo=click.echo)




from bptt.cli_data import data  # noqa: E402
from bptt.cli_plot import plot  # noqa: E402
from bptt.cli_reproduce import report, reproduce  # noqa: E402
from bptt.cli_table1 import table1_command  # noqa: E402

reproduce.add_command(table1_command, name="table1")
main.add_command(reproduce)
main.add_command(report)
main.add_command(plot)
main.add_command(data)


if __name__ == "__main__":  # pragma: no cover
    main()
