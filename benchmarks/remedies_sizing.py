"""Size the budgets of ``bptt reproduce remedies`` from training rates measured here.

For every row this build trains (:mod:`bptt.experiments.remedy_rows`), one ensemble
shaped as the sweep packs it (the row's seeds of the budget; the paper's three methods
share one ensemble) trains for ``--updates`` updates at T = 50 and at T = 250 (no
success checks in the timed part). The time per network update is taken as linear in
T between the two, and the budget's worst case (every run spends its update cap) is
the sum over its runs, divided by the workers. Checks and confirmations are left out
(a screen of 200 sequences every 250 updates costs about 1% of the training).

    python benchmarks/remedies_sizing.py [--budget quick] [--updates 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from bptt.experiments.registry import get
from bptt.training.trainer import TrainConfig, Trainer


def time_row(length: int, updates: int, members: list[tuple]) -> float:
    """Seconds per network update of one ensemble of ``members`` ``(row, lr, seed)`` at ``length``."""
    cfgs = [row.config(lr, task="temporal_order", min_length=length, max_length=length, seed=s)
            for (row, lr, s) in members]
    first = dict(cfgs[0])
    first.pop("seed")
    per = {k: [c[k] for c in cfgs] for k in ("method", "lr", "threshold", "alpha") if k in cfgs[0]}
    first.update({k: (v[0] if len(set(map(repr, v))) == 1 else v) for k, v in per.items()})
    config = TrainConfig(**first, seeds=[c["seed"] for c in cfgs], max_updates=updates, eval_every=updates * 10,
                         record_every=updates, checkpoint_every=updates * 10, eval_sequences=20, check_sequences=20)
    trainer = Trainer(config)
    t0 = time.perf_counter()
    trainer.run()
    return (time.perf_counter() - t0) / updates / len(cfgs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    exp = get("remedies")
    budget = exp.budget(args.budget)
    rows, missing = exp.rows()
    paper_rows = [r for r in rows if r.table1_method]
    groups = [paper_rows] + [[r] for r in rows if not r.table1_method]
    per_update: dict[str, tuple[float, float]] = {}
    print(f"budget {budget.name}: {budget.seeds} seed(s), {budget.max_updates:,} updates per run; "
          f"search {budget.search_seeds} seed(s) x {budget.search_updates:,} updates")
    print(f"{'row':28s} {'ms/update T=50':>15s} {'ms/update T=250':>16s} {'member-steps/s':>15s}")
    for group in groups:
        members = [(r, float(r.lr[0]), s) for r in group for s in range(budget.seeds)]
        a = time_row(50, args.updates, members)
        b = time_row(250, args.updates, members)
        for r in group:
            per_update[r.name] = (a, b)
            print(f"{r.label:28s} {1e3 * a:15.2f} {1e3 * b:16.2f} {250 / b:15,.0f}")
    total = 0.0
    for spec in exp.specs(budget):
        lab, cfg = spec.labels, spec.train
        a, b = per_update[lab["row"]]
        T = cfg["min_length"]
        total += cfg["max_updates"] * (a + (b - a) * (T - 50) / 200)
    long_extra = {r.name: budget.seeds * budget.max_updates * sum(
        per_update[r.name][0] + (per_update[r.name][1] - per_update[r.name][0]) * (T - 50) / 200
        for T in (500, 1000)) for r in rows}
    print(f"worst case, search + main stage: {total / 3600:.2f} h of one worker, "
          f"{total / args.workers / 3600:.2f} h with {args.workers} workers")
    print(f"each row that solves 250 adds at most {min(long_extra.values()) / args.workers / 60:.0f}-"
          f"{max(long_extra.values()) / args.workers / 60:.0f} min with {args.workers} workers (T = 500, 1000)")
    if missing:
        print("not available:", "; ".join(f"{k}: {v}" for k, v in missing.items()))


if __name__ == "__main__":
    main()
