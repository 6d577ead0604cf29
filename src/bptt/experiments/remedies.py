"""The rival remedies side by side on the paper's problems: ``bptt reproduce remedies``.

Every row of :mod:`bptt.experiments.remedy_rows` (the paper's MSGD, MSGD-C and MSGD-CR,
and the remedies proposed against exploding and vanishing gradients before and after
it) trains on the same problems with the same seeds, the same update budget and the
paper's success criterion (fewer than 1% of fresh sequences wrong, §4.1). The sweep has
three stages, each settled in the results store before the next is planned from it:

1. **search**: each row's learning-rate candidates on the temporal order problem at
   T = 50 (a few seeds, a short budget); the best candidate (:func:`choose_lr`) is
   frozen for the row;
2. **main**: every row at its frozen rate on temporal order at 50, 100, 150, 200, 250,
   and on the adding and 5-bit memorization problems at 50 and 100;
3. **long**: temporal order at 500 and 1000 for the rows that solve 250 (at least half
   of their runs succeed there).

Rerunning the command resumes whatever stage was interrupted; the plan of a stage is a
function of the settled runs of the stages before it, so it is the same every time.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bptt.experiments import paper
from bptt.experiments.analysis import Analysis
from bptt.experiments.experiment import FULL_CHECK_EVERY, FULL_CHECK_SEQUENCES, Budget, Experiment
from bptt.experiments.remedies_report import analyze, final_error
from bptt.experiments.remedy_rows import ROWS, Remedy
from bptt.experiments.sweep import RunSpec
from bptt.store import OUTCOME_STATUSES, Status

#: problem → (task, label, lengths of the main stage)
PROBLEMS = {
    "temporal_order": ("temporal_order", "temporal order", paper.FIGURE7_LENGTHS),
    "adding": ("adding", "adding", (50, 100)),
    "memorization_5bit": ("memorization_5bit", "5-bit memorization", (50, 100)),
}
#: The temporal order lengths of the third stage, and the length a row must solve first.
LONG_LENGTHS = (500, 1000)
SOLVE_AT = 250
#: The length of the learning-rate search.
SEARCH_LENGTH = 50
#: A row "solves" a length when at least this fraction of its runs there succeed.
SOLVES = 0.5


@dataclass(frozen=True)
class RemediesBudget(Budget):
    """A :class:`Budget` with the learning-rate search's own seeds and update cap."""

    search_seeds: int = 1
    search_updates: int = 1


def choose_lr(candidates: tuple, runs: list[dict]) -> tuple[float, list[dict]]:
    """The best learning rate of a row's search runs, and every candidate's score.

    A candidate is better when more of its runs succeed; among equals, when its mean
    final error is lower; then when its median number of updates to success is
    lower; then the earlier candidate (the recommended rate comes first).

    Args:
        candidates: the row's learning rates, recommended first.
        runs: the row's settled search runs (``labels["lr"]`` their rate).

    Returns:
        ``(lr, scores)``: ``scores`` one dict per candidate (``lr``, ``runs``,
        ``succeeded``, ``mean_error``, ``median_updates``).
    """
    scores = []
    for lr in candidates:
        mine = [r for r in runs if float(r["labels"]["lr"]) == float(lr)]
        wins = [r for r in mine if r["status"] == Status.SUCCEEDED]
        scores.append({"lr": float(lr), "runs": len(mine), "succeeded": len(wins),
                       "mean_error": float(np.mean([final_error(r) for r in mine])) if mine else 1.0,
                       "median_updates": float(np.median([r["metrics"]["updates"] for r in wins])) if wins
                       else math.inf})
    best = min(range(len(scores)), key=lambda i: (-scores[i]["succeeded"], scores[i]["mean_error"],
                                                  scores[i]["median_updates"], i))
    return scores[best]["lr"], scores


@functools.lru_cache(maxsize=8)
def _checked_rows(optimizers: tuple[str, ...]) -> tuple[tuple, tuple]:
    """:meth:`Remedies.rows` given the optimizers this build knows (checked once per process)."""
    run, missing = [], []
    for row in ROWS:
        why = row.unavailable()
        if why:
            missing.append((row.name, why))
        else:
            run.append(row.check())
    return tuple(run), tuple(missing)


class Remedies(Experiment):
    name = "remedies"
    title = "The rival remedies side by side"
    paper_ref = "§3.3 and §4.1 (the remedies the paper sets clipping and Ω against)"
    staged = True
    PROBLEMS, LONG_LENGTHS, SOLVE_AT = PROBLEMS, LONG_LENGTHS, SOLVE_AT
    choose_lr = staticmethod(choose_lr)
    budgets = {
        "smoke": RemediesBudget(
            "smoke", seeds=1, max_updates=8, eval_every=4, check_sequences=50, eval_sequences=200,
            test_sequences=0, record_every=2, checkpoint_every=4, search_seeds=1, search_updates=4,
            note="A smoke test of the pipeline: 1 seed, 8 updates per run (4 per search run), success tested on "
                 "200 sequences. No network learns anything in 8 updates; the numbers mean nothing."),
        "quick": RemediesBudget(
            "quick", seeds=2, max_updates=3000, eval_every=250, check_sequences=200, eval_sequences=1000,
            test_sequences=0, record_every=50, checkpoint_every=1000, search_seeds=2, search_updates=1000,
            note="The quick budget runs 2 seeds per row and cell (the paper: 5), caps every run at 3,000 updates "
                 "(the paper: 5,000,000) and confirms success on 1,000 fresh sequences instead of 10,000 (a screen "
                 "of 200 every 250 updates). The learning-rate search: 2 seeds × each candidate × 1,000 updates at "
                 "T = 50. Runs that would succeed later count as failures: every success rate is a lower bound. "
                 "Sized with `benchmarks/remedies_sizing.py` on the development machine (2 shared cores, load "
                 "average 5.6 from other jobs): 1.1–5.8 ms per network update at T = 50 and 2.9–23.6 ms at T = 250 "
                 "(echo-state 1.1/2.9, Elman rows 1.4–2.3/5.4–6.7, IRNN 3.0/7.7, skip 3.5/13.1, leaky 3.9/14.5, "
                 "GRU 5.6/23.6, LSTM 5.8/23.3); the search and main stages take at most 0.6 h with two workers "
                 "(`--executor processes --workers 2`) if every run spends its cap, and each row that solves 250 "
                 "adds 1–7 min."),
        "full": RemediesBudget(
            "full", seeds=paper.FIGURE7_SEEDS, max_updates=paper.MAX_UPDATES, eval_every=FULL_CHECK_EVERY,
            check_sequences=FULL_CHECK_SEQUENCES, eval_sequences=paper.SUCCESS_SEQUENCES, test_sequences=0,
            record_every=1000, checkpoint_every=10_000, search_seeds=3, search_updates=50_000,
            note="The paper's scale: 5 seeds, at most 5,000,000 updates per run, success on 10,000 fresh "
                 "sequences; the learning-rate search runs 3 seeds × each candidate × 50,000 updates at T = 50."),
    }

    # -- the rows ----------------------------------------------------------------------------------
    @staticmethod
    def rows() -> tuple[list[Remedy], dict[str, str]]:
        """The rows this build trains (each checked), and the others with the reason."""
        from bptt.optim import UPDATE_RULES

        run, missing = _checked_rows(tuple(UPDATE_RULES))
        return list(run), dict(missing)

    # -- the grid ----------------------------------------------------------------------------------
    @staticmethod
    def _fields(budget: Budget, updates: int, *, capped: bool = False) -> dict:
        """The budget's training fields for runs of ``updates`` updates; a row with its
        own cap (``capped``) checks for success eight times per run."""
        f = budget.train_fields()
        every = max(1, updates // 8) if capped else updates
        f.update(max_updates=updates, eval_every=min(budget.eval_every, every),
                 record_every=min(budget.record_every, updates),
                 checkpoint_every=min(budget.checkpoint_every, updates), success_error=paper.SUCCESS_ERROR)
        return f

    def _spec(self, row: Remedy, budget: Budget, stage: str, problem: str, length: int, seed: int, lr: float,
              updates: int) -> RunSpec:
        capped = row.cap(budget.name, updates)
        train = row.config(lr, task=PROBLEMS[problem][0], min_length=length, max_length=length, seed=seed,
                           **self._fields(budget, capped, capped=capped < updates))
        return RunSpec(train, self.labels(budget, stage=stage, row=row.name, problem=problem, length=length,
                                          seed=seed, lr=float(lr)))

    def search_specs(self, budget: RemediesBudget) -> list[RunSpec]:
        """The learning-rate search: every candidate of every row at T = 50."""
        rows, _ = self.rows()
        return [self._spec(row, budget, "search", "temporal_order", SEARCH_LENGTH, seed, lr, budget.search_updates)
                for row in rows for lr in row.lr for seed in range(budget.search_seeds)]

    def main_specs(self, budget: Budget, chosen: dict[str, float]) -> list[RunSpec]:
        """Every row at its chosen rate on every problem and length of the main stage."""
        rows, _ = self.rows()
        return [self._spec(row, budget, "main", problem, length, seed, chosen[row.name], budget.max_updates)
                for row in rows for problem, (_, _, lengths) in PROBLEMS.items() for length in lengths
                for seed in range(budget.seeds)]

    def long_specs(self, budget: Budget, chosen: dict[str, float], solving: list[str]) -> list[RunSpec]:
        """Temporal order at 500 and 1000 for the rows in ``solving``."""
        rows, _ = self.rows()
        return [self._spec(row, budget, "long", "temporal_order", length, seed, chosen[row.name],
                           budget.max_updates)
                for row in rows if row.name in solving for length in LONG_LENGTHS for seed in range(budget.seeds)]

    def specs(self, budget: RemediesBudget, records: list[dict] | None = None) -> list[RunSpec]:
        """The runs of the sweep so far.

        Args:
            budget: the budget.
            records: the settled runs of the sweep (``None``: the plan, with every row
                at its recommended learning rate and no long lengths, for counting and
                costing).

        Returns:
            The search runs; with the search settled, the main stage at the chosen
            rates; with the main stage settled, the long lengths for the rows that
            solve 250.
        """
        search = self.search_specs(budget)
        rows, _ = self.rows()
        if records is None:
            return search + self.main_specs(budget, {r.name: float(r.lr[0]) for r in rows})
        by_stage = self.by_stage(records)
        if len(by_stage["search"]) < len(search):
            return search
        chosen = self.chosen(by_stage["search"])
        main = self.main_specs(budget, chosen)
        if len(by_stage["main"]) < len(main):
            return search + main
        return search + main + self.long_specs(budget, chosen, self.solving(by_stage["main"]))

    def chosen(self, search: list[dict]) -> dict[str, float]:
        """Row → the learning rate its search chose (see :func:`choose_lr`)."""
        rows, _ = self.rows()
        return {row.name: choose_lr(row.lr, [r for r in search if r["labels"]["row"] == row.name])[0]
                for row in rows}

    @staticmethod
    def solving(main: list[dict]) -> list[str]:
        """The rows whose runs at temporal order 250 succeed at least half the time."""
        at: dict[str, list[bool]] = {}
        for r in main:
            lab = r["labels"]
            if lab["problem"] == "temporal_order" and int(lab["length"]) == SOLVE_AT:
                at.setdefault(lab["row"], []).append(r["status"] == Status.SUCCEEDED)
        return [row for row, wins in at.items() if wins and sum(wins) / len(wins) >= SOLVES]

    # -- what the report reads from the store besides the sweep's runs ----------------------------
    def context(self, store, records: list[dict], budget: Budget) -> dict:
        """ρ at the end of every settled run (from its final network), and the Nottingham
        runs at Table 1's quick budget in the same store: the paper's three methods
        (keyed by method) and the rival remedies' (``bptt reproduce table1 --remedies``,
        keyed ``row:NAME``)."""
        from bptt.training import checkpoint

        rho = {}
        for r in records:
            ck = store.load_checkpoint(r["id"]) if r["status"] != Status.DIVERGED else None
            if ck is None:
                continue
            try:
                rho[r["id"]] = float(checkpoint.load_model(ck[1]).spectral_radius()[0])
            except (ValueError, KeyError):
                continue
        notts = {}
        runs = store.list_runs(sweep="table1-quick") + store.list_runs(sweep="table1-quick-remedies")
        row_rates: dict[str, dict] = {}                                   # row → rate → its run
        for r in sorted(runs, key=lambda r: r["id"]):                   # oldest first: the newest wins
            c = r["config"]
            if c.get("experiment") == "table1" and c.get("dataset") == "nottingham" \
                    and r["status"] in OUTCOME_STATUSES:
                entry = {"test": r["metrics"].get("test"), "valid": r["metrics"].get("valid"),
                         "measure": r["metrics"].get("measure"), "run": r["id"], "status": r["status"],
                         "lr": c.get("lr")}
                if c.get("row"):
                    row_rates.setdefault(c["row"]["name"], {})[c.get("lr")] = entry
                else:
                    notts[c.get("method")] = entry
        for name, rates in row_rates.items():           # one run per rate: the lower best validation figure
            notts[f"row:{name}"] = min(rates.values(), key=lambda e: _finite_or_inf(e["valid"])) | {"rates": rates}
        return {"rho": rho, "nottingham": notts}

    # -- the report ------------------------------------------------------------------------------
    def analyze(self, records: list[dict], budget: Budget, out_dir: Path, rho: dict | None = None,
                nottingham: dict | None = None) -> Analysis:
        return analyze(self, records, budget, out_dir, rho or {}, nottingham or {})

    @staticmethod
    def by_stage(records: list[dict]) -> dict[str, list[dict]]:
        """The settled runs by stage: ``search``, ``main``, ``long``."""
        out: dict[str, list[dict]] = {"search": [], "main": [], "long": []}
        for r in records:
            out.setdefault(r["labels"].get("stage", "main"), []).append(r)
        return out

    @staticmethod
    def cells() -> list[tuple[str, int]]:
        """Every (problem, length) column of the report, the long lengths included."""
        out = [("temporal_order", L) for L in (*PROBLEMS["temporal_order"][2], *LONG_LENGTHS)]
        return out + [(p, L) for p in ("adding", "memorization_5bit") for L in PROBLEMS[p][2]]


def _finite_or_inf(v) -> float:
    """``v`` where it is a finite number, else infinity (so that it loses a minimum)."""
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.inf


__all__ = ["LONG_LENGTHS", "PROBLEMS", "Remedies", "RemediesBudget", "choose_lr"]
