"""Reading ``bptt reproduce remedies``' runs: tables, the Figure-7-style plot, comparisons.

:func:`analyze` turns the settled runs of the remedies sweep (see
:mod:`bptt.experiments.remedies`) into the :class:`~bptt.experiments.analysis.Analysis`
that :mod:`bptt.experiments.report` writes as Markdown and HTML:

* the learning-rate search: every candidate's successes and mean final error, and the
  rate chosen;
* the success rate per row × problem × length (median updates to success);
* the median updates and wall time to success, and the mean final error per cell;
* per row: the fraction of clipped updates, ρ at the end (median over its runs), the
  non-finite updates, and the Nottingham test NLL where Table 1's training can train
  the row;
* a Figure-7-style plot: the success rate against the length, one line per row.

The wall time of a run is its share of its ensemble's wall time (the ensemble's seconds
× the run's member-steps / all its members' member-steps): the runs of one ensemble
train together, so this is the time the run costs, comparable across rows whose
ensembles differ in size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bptt.experiments import paper
from bptt.experiments.analysis import Analysis, Comparison, Table, frac, pct, save_figure
from bptt.experiments.remedy_rows import ROWS
from bptt.store import Status


def _fmt_lr(v: float) -> str:
    return f"{v:g}"


def run_seconds(records: list[dict]) -> dict[int, float]:
    """Run id → its share of its ensemble's wall time (see the module docstring)."""
    packs: dict[str, list[dict]] = {}
    for r in records:
        if "pack" in r["metrics"]:
            packs.setdefault(r["metrics"]["pack"], []).append(r)
    out = {}
    for runs in packs.values():
        total = sum(float(r["metrics"].get("work", 0.0)) for r in runs)
        secs = float(runs[0]["metrics"].get("pack_seconds", 0.0))
        for r in runs:
            out[r["id"]] = secs * float(r["metrics"].get("work", 0.0)) / total if total > 0 else 0.0
    return out


def _cell_stats(runs: list[dict], seconds: dict[int, float]) -> dict:
    wins = [r for r in runs if r["status"] == Status.SUCCEEDED]
    return {"runs": len(runs), "succeeded": len(wins),
            "median_updates": float(np.median([r["metrics"]["updates"] for r in wins])) if wins else None,
            "median_seconds": float(np.median([seconds.get(r["id"], math.nan) for r in wins])) if wins else None,
            "mean_error": float(np.mean([final_error(r) for r in runs])) if runs else None}


def final_error(r: dict) -> float:
    """A run's final error; a run with none (diverged) counts as wrong everywhere."""
    e = r["metrics"].get("error")
    return float(e) if r["status"] != Status.DIVERGED and e is not None and math.isfinite(e) else 1.0


def _col(problem: str, length: int) -> str:
    short = {"temporal_order": "order", "adding": "adding", "memorization_5bit": "mem."}.get(problem, problem)
    return f"{short} {length}"


def analyze(exp, records: list[dict], budget, out_dir: Path, rho: dict, nottingham: dict) -> Analysis:
    """The report's content for the remedies sweep (see the module docstring).

    Args:
        exp: the :class:`bptt.experiments.remedies.Remedies` experiment (its problems,
            lengths, stages and learning-rate choice).
        records: the settled runs of the sweep (with ``labels``).
        budget: its budget.
        out_dir: where the figure goes.
        rho: run id → ρ of its final network.
        nottingham: Table 1 method → ``{"test", "measure", ...}`` of the quick Nottingham runs.
    """
    PROBLEMS, LONG_LENGTHS, SOLVE_AT, choose_lr = exp.PROBLEMS, exp.LONG_LENGTHS, exp.SOLVE_AT, exp.choose_lr
    rows, missing = exp.rows()
    stages = exp.by_stage(records)
    seconds = run_seconds(records)
    cells = exp.cells()
    grid: dict[tuple, list[dict]] = {}
    for r in stages["main"] + stages["long"]:
        lab = r["labels"]
        grid.setdefault((lab["row"], lab["problem"], int(lab["length"])), []).append(r)
    stats = {k: _cell_stats(v, seconds) for k, v in grid.items()}
    solving = exp.solving(stages["main"]) if stages["main"] else []

    # the learning-rate search
    search_rows, chosen = [], {}
    for row in rows:
        mine = [r for r in stages["search"] if r["labels"]["row"] == row.name]
        if not mine:
            search_rows.append([row.label, ", ".join(map(_fmt_lr, row.lr)), "not run yet", "—"])
            continue
        lr, scores = choose_lr(row.lr, mine)
        chosen[row.name] = lr
        search_rows.append([row.label, ", ".join(map(_fmt_lr, row.lr)),
                            "; ".join(f"{_fmt_lr(s['lr'])}: {frac(s['succeeded'], s['runs'])} solved, error "
                                      f"{pct(s['mean_error'], 1)}" for s in scores), _fmt_lr(lr)])
    for row in ROWS:
        if row.name in missing:
            search_rows.append([row.label, ", ".join(map(_fmt_lr, row.lr)), missing[row.name], "—"])
    search_table = Table(
        f"Learning-rate search (temporal order, T = 50, {budget.search_seeds} seed(s) × "
        f"{budget.search_updates:,} updates per candidate)",
        ["row", "candidates", "per candidate: runs solved, mean final error", "chosen"], search_rows,
        note="The chosen rate solved the most runs; among equals, it had the lowest mean final error, then the "
             "fewest updates to success, then came first (the recommended rate is listed first). It is frozen "
             "for every problem and length below.")

    def cell_text(row: str, problem: str, length: int, what: str) -> str:
        s = stats.get((row, problem, length))
        if s is None:
            if problem == "temporal_order" and length in LONG_LENGTHS and stages["main"]:
                return "not run" if row not in solving else "—"
            return "—"
        if what == "success":
            t = frac(s["succeeded"], s["runs"])
            return t + (f" ({s['median_updates']:,.0f})" if s["median_updates"] is not None else "")
        if what == "cost":
            if s["median_updates"] is None:
                return "—"
            return f"{s['median_updates']:,.0f} / {s['median_seconds']:.1f} s"
        return pct(s["mean_error"], 1)

    columns = ["row", *[_col(p, L) for p, L in cells]]

    def table_rows(what: str) -> list[list[str]]:
        out = [[row.label, *[cell_text(row.name, p, L, what) for p, L in cells]] for row in rows]
        out += [[row.label, missing[row.name], *[""] * (len(cells) - 1)] for row in ROWS if row.name in missing]
        return out

    success = Table("Successful runs per row, problem and length (median updates to success)", columns,
                    table_rows("success"),
                    note=f"A run succeeds when it gets fewer than {100 * paper.SUCCESS_ERROR:g}% of "
                         f"{budget.eval_sequences:,} fresh sequences wrong within {budget.max_updates:,} updates "
                         f"({budget.seeds} seed(s) per cell, the same seeds and cap for every row). Temporal order "
                         f"at {' and '.join(map(str, LONG_LENGTHS))} runs only for the rows that solve {SOLVE_AT} "
                         f"(at least half of their runs succeed there); \"not run\": the row did not.")
    cost = Table("Median updates and wall time to success", columns, table_rows("cost"),
                 note="Wall time: the run's share of its ensemble's wall time (its member-steps over the "
                      "ensemble's), so that rows trained in ensembles of different sizes compare.")
    errors = Table("Mean final error per row, problem and length (chance: temporal order 75%)", columns,
                   table_rows("error"),
                   note="The error on fresh sequences when the run stopped (success or update cap), averaged over "
                        "seeds; a diverged run counts as 100%.")

    # per row: clipping, ρ, non-finite updates, Nottingham
    row_rows = []
    for row in rows:
        mine = [r for k, v in grid.items() if k[0] == row.name for r in v]
        clipped = [float(r["metrics"].get("clipped_fraction", 0.0)) for r in mine]
        rhos = [rho[r["id"]] for r in mine if r["id"] in rho]
        bad = sum(int(r["metrics"].get("nonfinite", 0)) for r in mine)
        diverged = sum(r["status"] == Status.DIVERGED for r in mine)
        row_rows.append([row.label, _fmt_lr(chosen[row.name]) if row.name in chosen else "—", row.clipping,
                         pct(float(np.mean(clipped)), 1) if clipped else "—",
                         f"{np.median(rhos):.2f}" if rhos else "—", f"{bad} / {diverged}",
                         _nottingham(row, nottingham)])
    for row in ROWS:
        if row.name in missing:
            row_rows.append([row.label, "—", row.clipping, "—", "—", "—", missing[row.name]])
    per_row = Table("Per row: the rate chosen, clipping, ρ at the end, non-finite updates, Nottingham",
                    ["row", "learning rate", "clipping (normally used with)", "clipped updates", "ρ at the end",
                     "non-finite updates / diverged runs", "Nottingham test NLL (Table 1, quick)"], row_rows,
                    note="Clipped updates: the mean over the row's runs of the fraction of its updates whose "
                         "gradient was clipped. ρ at the end: median over the row's runs of the spectral radius of "
                         "the final network's W_rec (LSTM and GRU: the candidate block; skip: W_rec alone; the "
                         "echo-state network: its fixed reservoir). Nottingham: the test negative log-likelihood "
                         "per time step at the best validation epoch, one network (seed 0) each, read from the same "
                         "store: for MSGD, MSGD-C and MSGD-CR `bptt reproduce table1 --budget quick` (the paper's "
                         "sigmoid network, 300 units), for the other rows `… --remedies` (the row's network and "
                         "update rule at 300 units with Table 1's threshold, windows and 5 epochs, one run at each "
                         "of two rates: the figure of the run with the lower best validation figure, its rate, and "
                         "the other run's test figure; the protocol table lists the rates and their sources).")

    hf_cost = _second_order_cost(rows, grid)

    comparisons = []
    for L in PROBLEMS["temporal_order"][2]:
        s = stats.get(("msgd-cr", "temporal_order", L))
        rate = s["succeeded"] / s["runs"] if s and s["runs"] else None
        verdict = ("pending" if rate is None else "not comparable at this budget" if budget.name != "full"
                   else "matches" if rate == 1.0 else "differs")
        comparisons.append(Comparison(f"MSGD-CR (smart_tanh), temporal order T = {L}: success rate",
                                      f"{pct(rate)} ({frac(s['succeeded'], s['runs'])})" if s else "—", "100%",
                                      verdict))

    fig = plot(exp, rows, stats, out_dir / "remedies", budget)
    total = sum(s["runs"] for s in stats.values())
    wins = sum(s["succeeded"] for s in stats.values())
    best = sorted(((sum(s["succeeded"] for k, s in stats.items() if k[0] == row.name), row.label) for row in rows),
                  reverse=True)
    headline = (f"{wins} of {total} runs succeeded over {len(rows)} rows (budget `{budget.name}`: at most "
                f"{budget.max_updates:,} updates per run, {budget.seeds} seed(s) per cell)"
                + (f"; most successes: {best[0][1]} ({best[0][0]})" if best and best[0][0] else "") + "."
                + (f" Not available in this build: {', '.join(r.label for r in ROWS if r.name in missing)}."
                   if missing else ""))
    notes = ["Every row trains 50 units on minibatches of 20 with the paper's success criterion, the same seeds "
             "and the same update cap; what differs is the row's model, update rule, clipping and learning rate "
             "(see the protocol below and docs/remedies.md).",
             "The learning rate of each row is chosen once, on temporal order at T = 50, and frozen: a row whose "
             "best rate differs with the length or problem is at a disadvantage elsewhere, as it would be in use.",
             "The `full` estimate below covers the search and the main stage; each row that solves 250 adds "
             f"temporal order at {' and '.join(map(str, LONG_LENGTHS))}, about 6 times the member-steps of its "
             "runs at 250."]
    data = {"chosen": chosen, "missing": missing, "solving": solving,
            "cells": [{"row": k[0], "problem": k[1], "length": k[2], **v} for k, v in sorted(stats.items())],
            "nottingham": nottingham}
    tables = [success, search_table, cost, errors, per_row] + ([hf_cost] if hf_cost is not None else [])
    return Analysis(headline, [fig], tables, comparisons, [], notes, data)


#: Per-run totals a second-order rule records (Hessian-free: ``optim.HFRule.TOTALS``).
_HF_TOTALS = (("hf_iterations", "iterations"), ("hf_gradient_evaluations", "gradient evaluations"),
              ("hf_curvature_products", "curvature products"), ("hf_cg_iterations", "CG iterations"),
              ("hf_wall_time", "seconds"))


def _second_order_cost(rows, grid: dict) -> Table | None:
    """The cost of the rows whose runs record Hessian-free totals, per problem: the
    median over runs of each total, so that an iteration's price can be set beside a
    minibatch update's (one gradient evaluation on ``batch_size`` sequences)."""
    body = []
    for row in rows:
        for (name, problem, length), runs in sorted(grid.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
            if name != row.name:
                continue
            mine = [r for r in runs if "hf_iterations" in r["metrics"]]
            if not mine:
                continue
            wins = sum(r["status"] == Status.SUCCEEDED for r in mine)
            body.append([row.label, _col(problem, length), frac(wins, len(mine)),
                         *[f"{np.median([float(r['metrics'].get(key, 0.0)) for r in mine]):,.0f}"
                           for key, _ in _HF_TOTALS]])
    if not body:
        return None
    return Table("Second-order cost per run (median over runs)",
                 ["row", "problem", "succeeded", *[label for _, label in _HF_TOTALS]], body,
                 note="One iteration of Hessian-free evaluates the gradient on its whole batch and runs conjugate "
                      "gradient, each CG iteration one Gauss-Newton product on the curvature batch (about 1–1.7 "
                      "gradient evaluations each: benchmarks/hf.py); the other rows' updates are one gradient on "
                      "20 sequences each.")


def _nottingham(row, nottingham: dict) -> str:
    if row.table1_method is None and row.corpus_lr is None:
        return f"not run: {row.corpus_note}"
    found = nottingham.get(row.table1_method if row.table1_method is not None else f"row:{row.name}")
    if not found:
        extra = "" if row.table1_method is not None else " --remedies"
        return (f"not run: no Nottingham run of `bptt reproduce table1 --budget quick --dataset nottingham{extra}` "
                "in this store")
    test = found.get("test")
    if test is None or not math.isfinite(test):
        return f"— ({found.get('status')})"
    if row.table1_method is not None or found.get("lr") is None:
        return f"{test:.3f}"
    others = [f"{lr:g}: {_fmt_figure(e.get('test'))}" for lr, e in sorted(found.get("rates", {}).items(),
                                                                        key=lambda kv: -kv[0])
              if lr != found["lr"]]
    return f"{test:.3f} (rate {found['lr']:g}" + (f"; at {', '.join(others)}" if others else "") + ")"


def _fmt_figure(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "—"
    return f"{v:.3f}" if math.isfinite(v) else "—"


def plot(exp, rows, stats: dict, stem: Path, budget) -> Path:
    """Success rate against the temporal order length (left) and on adding and
    memorization (right), one line per row; writes ``stem``.png and .svg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PROBLEMS, LONG_LENGTHS = exp.PROBLEMS, exp.LONG_LENGTHS
    lengths = [*PROBLEMS["temporal_order"][2], *LONG_LENGTHS]
    others = [(p, L) for p in ("adding", "memorization_5bit") for L in PROBLEMS[p][2]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13.5, 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    cmap = plt.get_cmap("tab20")
    markers = "osD^v<>pPhX*d8H"
    for k, row in enumerate(rows):
        style = {"color": cmap(k % 20), "marker": markers[k % len(markers)], "lw": 1.4, "ms": 5, "alpha": 0.9}
        xs, ys = [], []
        for i, L in enumerate(lengths):
            s = stats.get((row.name, "temporal_order", L))
            if s and s["runs"]:
                xs.append(i + 0.06 * (k - len(rows) / 2) / 2)           # dodge coinciding points
                ys.append(100 * s["succeeded"] / s["runs"])
        a.plot(xs, ys, label=row.label, **style)
        xs, ys = [], []
        for i, cell in enumerate(others):
            s = stats.get((row.name, *cell))
            if s and s["runs"]:
                xs.append(i + 0.06 * (k - len(rows) / 2) / 2)
                ys.append(100 * s["succeeded"] / s["runs"])
        b.plot(xs, ys, **style)
    a.set_xticks(range(len(lengths)), [str(L) for L in lengths])
    a.set(xlabel="temporal order: sequence length", ylabel="rate of success (%)", ylim=(-5, 105),
          title="temporal order")
    b.set_xticks(range(len(others)), [f"{PROBLEMS[p][1].replace('memorization', 'mem.')}\nT = {L}"
                                      for p, L in others], fontsize=8)
    b.set(ylim=(-5, 105), title="adding and 5-bit memorization")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.legend(*a.get_legend_handles_labels(), loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"The remedies side by side (budget {budget.name}: {budget.seeds} seed(s) per cell, "
                 f"≤ {budget.max_updates:,} updates per run)", fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 0.84, 0.96))
    return save_figure(fig, stem)
