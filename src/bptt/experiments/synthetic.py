"""The other pathological problems of §4.1, trained with MSGD-CR.

Adding, multiplication, the 3-bit temporal order problem and the random permutation
problem are each learnt by one model trained on lengths drawn from 50 to 200 per
minibatch; the noiseless memorization problem (5-bit and ~23-bit patterns) by one model
per length (50, 100, 150, 200). Each problem is run with 5 seeds at the full budget,
with 50 tanh units, minibatches of 20, learning rate 0.01, threshold 1 and α = 4.
After training, every network is tested on fresh sequences at 50, 100, 150 and 200
steps (its own length for memorization), and the adding and multiplication networks
also at 500 steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bptt.experiments import paper
from bptt.experiments.analysis import Analysis, ClaimCheck, Comparison, Table, frac, pct, save_figure
from bptt.experiments.experiment import FULL_CHECK_EVERY, FULL_CHECK_SEQUENCES, Budget, Experiment
from bptt.experiments.sweep import RunSpec
from bptt.methods import Method
from bptt.store import Status

#: problem → (task, task options, label)
PROBLEMS = {
    "adding": ("adding", {}, "adding"),
    "multiplication": ("multiplication", {}, "multiplication"),
    "temporal_order_3bit": ("temporal_order_3bit", {}, "3-bit temporal order"),
    "permutation": ("permutation", {}, "random permutation"),
    "memorization_5bit": ("memorization_5bit", {}, "memorization, 5 bits"),
    "memorization_23bit": ("memorization", {"n_values": 5, "n_pos": 10}, "memorization, 23 bits"),
}
RANGE_PROBLEMS = ("adding", "multiplication", "temporal_order_3bit", "permutation")
MEMORIZATION = ("memorization_5bit", "memorization_23bit")
INIT = "smart_tanh"
TEST_LENGTHS = (50, 100, 150, 200)
MEMORIZATION_LENGTHS_NOTE = ("memorization: one model per length, "
                             + ", ".join(map(str, paper.MEMORIZATION_LENGTHS)))
COLORS = {"adding": "#1f77b4", "multiplication": "#ff7f0e", "temporal_order_3bit": "#2ca02c",
          "permutation": "#d62728", "memorization_5bit": "#9467bd", "memorization_23bit": "#8c564b"}


class Synthetic(Experiment):
    name = "synthetic"
    title = "The other pathological problems (MSGD-CR)"
    paper_ref = "§4.1 (the synthetic problems beyond Figure 7)"
    budgets = {
        "smoke": Budget("smoke", seeds=1, max_updates=8, eval_every=4, check_sequences=50, eval_sequences=200,
                        test_sequences=100, record_every=2, checkpoint_every=4,
                        note="A smoke test of the pipeline: 1 seed, 8 updates per run, success tested on 200 "
                             "sequences and 100 test sequences per length. The numbers mean nothing."),
        "quick": Budget("quick", seeds=3, max_updates=10_000, eval_every=250, check_sequences=200,
                        eval_sequences=10_000, test_sequences=10_000, record_every=50, checkpoint_every=1000,
                        note="The quick budget runs 3 seeds per problem (the paper: 5) and caps every run at "
                             "10,000 updates (the full budget: 5,000,000). Runs that would succeed later count as "
                             "failures here: the success rates are lower bounds."),
        "full": Budget("full", seeds=paper.SYNTHETIC_RUNS, max_updates=paper.MAX_UPDATES,
                       eval_every=FULL_CHECK_EVERY, check_sequences=FULL_CHECK_SEQUENCES,
                       eval_sequences=paper.SUCCESS_SEQUENCES, test_sequences=10_000,
                       record_every=1000, checkpoint_every=10_000,
                       note="5 runs per problem, at most 5,000,000 updates each (the cap of Figure 7), success on "
                            "10,000 fresh sequences, 10,000 test sequences per length."),
    }

    def specs(self, budget: Budget) -> list[RunSpec]:
        out = []
        common = {"hidden": paper.HIDDEN, "init": INIT, "method": Method.MSGD_CR.value, "lr": paper.LEARNING_RATE,
                  "threshold": paper.THRESHOLD, "alpha": paper.ALPHA, "batch_size": paper.BATCH_SIZE,
                  "success_error": paper.SUCCESS_ERROR, **budget.train_fields()}
        lo, hi = paper.SYNTHETIC_TRAIN_LENGTHS
        for problem in RANGE_PROBLEMS:
            task, options, _ = PROBLEMS[problem]
            lengths = list(TEST_LENGTHS)
            if problem in ("adding", "multiplication"):
                lengths.append(paper.SYNTHETIC_GENERALIZATION_LENGTH)
            for seed in range(budget.seeds):
                out.append(RunSpec({"task": task, "task_options": options, "min_length": lo, "max_length": hi,
                                    "seed": seed, **common},
                                   self.labels(budget, problem=problem, length=f"{lo}-{hi}", seed=seed),
                                   {"lengths": lengths, "sequences": budget.test_sequences, "seed": 1}))
        for problem in MEMORIZATION:
            task, options, _ = PROBLEMS[problem]
            for length in paper.MEMORIZATION_LENGTHS:
                for seed in range(budget.seeds):
                    out.append(RunSpec({"task": task, "task_options": options, "min_length": length,
                                        "max_length": length, "seed": seed, **common},
                                       self.labels(budget, problem=problem, length=length, seed=seed),
                                       {"lengths": [length], "sequences": budget.test_sequences, "seed": 1}))
        return out

    def analyze(self, records: list[dict], budget: Budget, out_dir: Path) -> Analysis:
        by_row: dict[tuple, list[dict]] = {}
        for r in records:
            lab = r["labels"]
            by_row.setdefault((lab["problem"], str(lab["length"])), []).append(r)
        row_keys = [(p, f"{paper.SYNTHETIC_TRAIN_LENGTHS[0]}-{paper.SYNTHETIC_TRAIN_LENGTHS[1]}")
                    for p in RANGE_PROBLEMS] + [(p, str(L)) for p in MEMORIZATION for L in paper.MEMORIZATION_LENGTHS]
        all_lengths = [*TEST_LENGTHS, paper.SYNTHETIC_GENERALIZATION_LENGTH]
        rows, comparisons, data = [], [], []
        for problem, length in row_keys:
            runs = by_row.get((problem, length), [])
            wins = sum(r["status"] == Status.SUCCEEDED for r in runs)
            errs = _errors(runs)
            paper_rate = paper.SYNTHETIC_SUCCESS[problem] / paper.SYNTHETIC_RUNS
            rows.append([PROBLEMS[problem][2], length, frac(wins, len(runs)), pct(paper_rate),
                         *[pct(errs.get(L), 1) if L in errs else "" for L in all_lengths]])
            data.append({"problem": problem, "train_length": length, "runs": len(runs), "succeeded": wins,
                         "paper_success_rate": paper_rate, "test_error": {str(k): v for k, v in errs.items()}})
        per_problem = {}
        for problem in PROBLEMS:
            runs = [r for (p, _), rs in by_row.items() if p == problem for r in rs]
            wins = sum(r["status"] == Status.SUCCEEDED for r in runs)
            per_problem[problem] = (wins, len(runs))
            paper_rate = paper.SYNTHETIC_SUCCESS[problem] / paper.SYNTHETIC_RUNS
            ours = wins / len(runs) if runs else None
            comparisons.append(Comparison(
                f"{PROBLEMS[problem][2]}: success rate", f"{pct(ours)} ({frac(wins, len(runs))})" if runs else "—",
                f"{pct(paper_rate)} ({paper.SYNTHETIC_SUCCESS[problem]}/{paper.SYNTHETIC_RUNS}"
                + (" per length" if problem in MEMORIZATION else "") + ")",
                "pending" if ours is None else ("matches" if ours == paper_rate else "differs")))
        for problem in ("adding", "multiplication"):
            runs = by_row.get((problem, row_keys[0][1]), [])
            errs = _errors(runs)
            e = errs.get(paper.SYNTHETIC_GENERALIZATION_LENGTH)
            comparisons.append(Comparison(f"{PROBLEMS[problem][2]}: test error at "
                                          f"{paper.SYNTHETIC_GENERALIZATION_LENGTH} steps (mean over runs)",
                                          pct(e, 1), "not given as a number",
                                          "pending" if e is None else "not comparable"))
        claim = paper.SYNTHETIC_CLAIMS[0]
        finished = [p for p, (_, n) in per_problem.items() if n]
        if not finished:
            claims = [ClaimCheck(claim, "not tested", "no run has finished")]
        else:
            mism = [f"{PROBLEMS[p][2]} {frac(*per_problem[p])}" for p in finished
                    if per_problem[p][0] / per_problem[p][1] != paper.SYNTHETIC_SUCCESS[p] / paper.SYNTHETIC_RUNS]
            claims = [ClaimCheck(claim, "holds" if not mism and len(finished) == len(PROBLEMS) else "does not hold",
                                 "; ".join(f"{PROBLEMS[p][2]} {frac(*per_problem[p])}" for p in finished)
                                 + (f". Differs: {'; '.join(mism)}" if mism else ""))]
        table = Table("Success and test error per problem (error: fraction of test sequences wrong, mean over runs)",
                      ["problem", "trained on", "succeeded", "paper", *[f"error at {L}" for L in all_lengths]], rows,
                      note=f"Success: fewer than 1% of {budget.eval_sequences:,} fresh sequences wrong within "
                           f"{budget.max_updates:,} updates. Test errors on {budget.test_sequences:,} sequences per "
                           f"length; a regression output is wrong when its squared error exceeds 0.04, a memorization "
                           f"sequence when any step is wrong.")
        fig = self.plot(by_row, row_keys, out_dir / "synthetic", budget)
        wins = sum(w for w, _ in per_problem.values())
        total = sum(n for _, n in per_problem.values())
        headline = (f"{wins} of {total} runs succeeded: " + ", ".join(
            f"{PROBLEMS[p][2]} {frac(*per_problem[p])}" for p in PROBLEMS) +
            f" (budget `{budget.name}`: at most {budget.max_updates:,} updates per run, {budget.seeds} seed(s)).")
        notes = [f"Every network has {paper.HIDDEN} tanh units, initialized with `{INIT}` (the paper says tanh; of its "
                 f"initializations this is the one with which MSGD-CR solved every length of Figure 7), learning "
                 f"rate {paper.LEARNING_RATE}, threshold {paper.THRESHOLD:g}, α = {paper.ALPHA:g}, minibatches of "
                 f"{paper.BATCH_SIZE}, for every problem.",
                 "The ~23-bit memorization problem is a pattern of 10 symbols out of 5 (10·log2 5 ≈ 23.2 bits); the "
                 "5-bit one 5 binary symbols."]
        return Analysis(headline, [fig], [table], comparisons, claims, notes, {"rows": data})

    def plot(self, by_row: dict, row_keys: list, stem: Path, budget: Budget) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(13.5, 4.4), gridspec_kw={"width_ratios": [1.25, 1]})
        names, ours, theirs, colors = [], [], [], []
        for problem, length in row_keys:
            runs = by_row.get((problem, length), [])
            short = PROBLEMS[problem][2].replace("memorization, ", "mem. ")
            names.append(short + ("" if problem in RANGE_PROBLEMS else f"\nL={length}"))
            ours.append(100 * sum(r["status"] == Status.SUCCEEDED for r in runs) / len(runs) if runs else np.nan)
            theirs.append(100 * paper.SYNTHETIC_SUCCESS[problem] / paper.SYNTHETIC_RUNS)
            colors.append(COLORS[problem])
        x = np.arange(len(names))
        a.bar(x, np.nan_to_num(ours), color=colors, alpha=0.8, label="ours")
        a.scatter(x, theirs, marker="_", s=300, color="k", zorder=3, label="paper")
        a.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
        a.set(ylabel="rate of success (%)", ylim=(0, 105))
        a.set_title("success rate (MSGD-CR)", pad=16)
        a.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)
        a.grid(axis="y", alpha=0.3)
        for problem in RANGE_PROBLEMS:
            runs = by_row.get((problem, row_keys[0][1]), [])
            errs = _errors(runs)
            if errs:
                Ls = sorted(errs)
                b.plot(Ls, [100 * errs[L] for L in Ls], marker="o", color=COLORS[problem], label=PROBLEMS[problem][2])
        b.axvspan(*paper.SYNTHETIC_TRAIN_LENGTHS, color="#bbbbbb", alpha=0.25, lw=0, label="training lengths")
        b.set(xlabel="test sequence length", ylabel="test error (%)", title="test error against length",
              xticks=[*TEST_LENGTHS, paper.SYNTHETIC_GENERALIZATION_LENGTH])
        b.grid(alpha=0.3)
        b.legend(fontsize=8)
        fig.suptitle(f"The other pathological problems (budget {budget.name}: {budget.seeds} seed(s), "
                     f"≤ {budget.max_updates:,} updates per run)", fontsize=10)
        fig.tight_layout()
        return save_figure(fig, stem)


def _errors(runs: list[dict]) -> dict[int, float]:
    """Length → mean test error over the runs that were evaluated."""
    acc: dict[int, list[float]] = {}
    for r in runs:
        ev = r["metrics"].get("evaluation")
        if not ev:
            continue
        for L, e in zip(ev["lengths"], ev["errors"]):
            acc.setdefault(int(L), []).append(e)
    return {L: float(np.mean(v)) for L, v in acc.items()}
