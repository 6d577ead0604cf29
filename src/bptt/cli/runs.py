"""``bptt runs``: the runs recorded in the results store."""

from __future__ import annotations

import json

import click

from bptt.cli.common import open_store, store_option
from bptt.store import Status


@click.command()
@store_option
@click.option("--status", type=click.Choice([s.value for s in Status]), help="Only runs with this status.")
@click.option("--sweep", help="Only the runs of this sweep (e.g. figure7-quick).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def runs(store_path, status, sweep, limit, as_json) -> None:
    """List the recorded runs, newest first."""
    store = open_store(store_path)
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
