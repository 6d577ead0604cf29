"""``bptt runs`` and ``bptt sweeps``: the runs and sweeps recorded in the results store.

Both only read the store (opened read-only) unless asked to settle stranded runs
(``bptt runs --settle``)."""

from __future__ import annotations

import json

import click

from bptt.cli.common import open_store, store_option
from bptt.store import OUTCOME_STATUSES, Status


@click.command()
@store_option
@click.option("--status", type=click.Choice([s.value for s in Status]), help="Only runs with this status.")
@click.option("--sweep", help="Only the runs of this sweep (e.g. figure7-quick; `bptt sweeps` lists them).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.option("--settle", is_flag=True,
              help="First mark 'stopped' every run still 'running' whose process on this machine is gone "
                   "(killed without a chance to say so); resume or rerun them afterwards.")
def runs(store_path, status, sweep, limit, as_json, settle) -> None:
    """List the recorded runs, newest first."""
    if settle:
        store = open_store(store_path, must_exist=True)
        settled = store.settle_abandoned()
        click.echo(f"marked {len(settled)} stranded run(s) stopped"
                   + (f": {', '.join(map(str, settled))}" if settled else ""), err=True)
    else:
        store = open_store(store_path, read_only=True)
    if sweep is not None and sweep not in store.sweeps():
        known = ", ".join(store.sweeps()) or "none"
        raise click.BadParameter(f"no sweep {sweep!r} in {store.path} (recorded sweeps: {known})",
                                 param_hint="--sweep")
    rows = store.list_runs(sweep=sweep, status=status, limit=limit)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, default=str))
        return
    if not rows:
        click.echo("no runs recorded in " + str(store.path))
        return
    click.echo(f"{'id':>5}  {'status':<10}  {'task':<20}  {'L/epochs':>9}  {'init/meas':<11}  {'method':<8}  "
               f"{'seed':>4}  {'updates':>8}  {'error':>7}  created")
    for r in rows:
        c, m = r["config"], r["metrics"]
        if c.get("experiment") == "table1":      # a natural problem: epochs, measure and test score
            L = f"{m['epochs']} ep" if "epochs" in m else "-"
            init = "bits/char" if "bit" in str(c.get("measure")).lower() else "NLL/step"
            err = m.get("test")
        else:
            L = f"{c.get('min_length')}" + (f"-{c.get('max_length')}"
                                            if c.get("max_length") != c.get("min_length") else "")
            init, err = c.get("init"), m.get("error")
        click.echo(f"{r['id']:>5}  {r['status']:<10}  {str(c.get('task')):<20}  {L:>9}  {str(init):<11}  "
                   f"{str(c.get('method')):<8}  {str(c.get('seed', '-')):>4}  {str(m.get('updates', '')):>8}  "
                   f"{(f'{err:.4f}' if isinstance(err, (int, float)) else ''):>7}  {r['created'][:19]}")


@click.command()
@store_option
def sweeps(store_path) -> None:
    """List the sweeps in the store with their progress.

    planned: the runs of the sweep's grid (known for the reproductions' own sweep names,
    e.g. figure7-quick; otherwise '?'); settled: runs with an outcome (succeeded, failed,
    diverged); running: runs whose process is still alive; stranded: runs still marked
    running whose process is gone (`bptt runs --settle` marks them stopped; rerunning the
    sweep takes them over).
    """
    store = open_store(store_path, read_only=True)
    names = store.sweeps()
    if not names:
        click.echo("no sweeps recorded in " + str(store.path))
        return
    click.echo(f"{'sweep':<28}  {'planned':>7}  {'settled':>7}  {'succeeded':>9}  {'running':>7}  {'stranded':>8}")
    for name in names:
        rows = store.list_runs(sweep=name)
        outcomes: dict[str, str] = {}
        for r in rows:
            if r["status"] in OUTCOME_STATUSES:
                outcomes.setdefault(r["key"], r["status"])
        running = sum(store.is_live(r) for r in rows)
        stranded = sum(r["status"] == Status.RUNNING and not store.is_live(r) for r in rows)
        planned = _planned(name)
        click.echo(f"{name:<28}  {planned if planned is not None else '?':>7}  {len(outcomes):>7}  "
                   f"{sum(s == Status.SUCCEEDED for s in outcomes.values()):>9}  {running:>7}  {stranded:>8}")


def _planned(name: str) -> int | None:
    """The number of runs of the reproduction sweep called ``name`` (EXPERIMENT-BUDGET), if it is one."""
    from bptt.experiments.registry import experiments

    experiment, _, budget = name.rpartition("-")
    exp = experiments().get(experiment)
    if exp is None:
        return None
    try:
        return len(exp.sweep(exp.budget(budget), name))
    except (ValueError, KeyError):
        return None
