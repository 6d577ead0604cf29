"""Generalization of the temporal order problem from lengths 50–200 to 5000 steps (§4.1).

Each seed trains one 50-unit network (``basic_tanh``, MSGD-CR, learning rate 0.01,
threshold 1, α = 4) on temporal order sequences whose length is drawn from 50 to 200
per minibatch. Every trained network, whether or not it met the success criterion, is
then tested on fresh sequences at 50, 100, 150, 200, 250, 500, 1000, 2000, 3000 and
5000 steps (10,000 at the full budget, in chunks of 1,000: memory stays flat). The
paper: no error at any of these lengths, for all 5 seeds.
"""

from __future__ import annotations

from pathlib import Path

from bptt.experiments import paper
from bptt.experiments.analysis import Analysis, ClaimCheck, Comparison, Table, frac, pct, save_figure
from bptt.experiments.experiment import FULL_CHECK_EVERY, FULL_CHECK_SEQUENCES, Budget, Experiment
from bptt.experiments.sweep import RunSpec
from bptt.methods import Method
from bptt.store import Status

INIT = "basic_tanh"


class Generalization(Experiment):
    name = "generalization"
    title = "Generalization of the temporal order problem to 5000 steps"
    paper_ref = "§4.1 (generalization to longer sequences)"
    budgets = {
        "smoke": Budget("smoke", seeds=1, max_updates=8, eval_every=4, check_sequences=50, eval_sequences=200,
                        test_sequences=100, record_every=2, checkpoint_every=4,
                        note="A smoke test of the pipeline: 1 seed, 8 updates, 100 test sequences per length. "
                             "The numbers mean nothing."),
        "quick": Budget("quick", seeds=5, max_updates=50_000, eval_every=500, check_sequences=200,
                        eval_sequences=10_000, test_sequences=10_000, record_every=100, checkpoint_every=2000,
                        note="The quick budget keeps the paper's 5 seeds and 10,000 test sequences per length but "
                             "caps training at 50,000 updates (the full budget: 5,000,000), 1% of the full "
                             "budget. Networks that have not learnt the task by then are tested all the same."),
        "full": Budget("full", seeds=paper.GENERALIZATION_SEEDS, max_updates=paper.MAX_UPDATES,
                       eval_every=FULL_CHECK_EVERY, check_sequences=FULL_CHECK_SEQUENCES,
                       eval_sequences=paper.SUCCESS_SEQUENCES, test_sequences=10_000,
                       record_every=1000, checkpoint_every=10_000,
                       note="5 seeds, at most 5,000,000 updates (the cap of Figure 7), 10,000 test sequences per "
                            "length."),
    }

    def specs(self, budget: Budget) -> list[RunSpec]:
        lo, hi = paper.GENERALIZATION_TRAIN_LENGTHS
        return [RunSpec({"task": "temporal_order", "min_length": lo, "max_length": hi, "hidden": paper.HIDDEN,
                         "init": INIT, "method": Method.MSGD_CR.value, "lr": paper.LEARNING_RATE,
                         "threshold": paper.THRESHOLD, "alpha": paper.ALPHA, "batch_size": paper.BATCH_SIZE,
                         "success_error": paper.SUCCESS_ERROR,
                         "seed": seed, **budget.train_fields()},
                        self.labels(budget, seed=seed),
                        {"lengths": list(paper.GENERALIZATION_TEST_LENGTHS), "sequences": budget.test_sequences,
                         "seed": 2})
                for seed in range(budget.seeds)]

    def analyze(self, records: list[dict], budget: Budget, out_dir: Path) -> Analysis:
        lengths = paper.GENERALIZATION_TEST_LENGTHS
        runs = sorted(records, key=lambda r: r["labels"]["seed"])
        evaluated = [r for r in runs if r["metrics"].get("evaluation")]
        rows, per_seed = [], {}
        for r in runs:
            ev = r["metrics"].get("evaluation")
            errs = dict(zip(ev["lengths"], ev["errors"])) if ev else {}
            per_seed[r["labels"]["seed"]] = errs
            rows.append([str(r["labels"]["seed"]), r["status"], f"{r['metrics'].get('updates', 0):,}",
                         *[pct(errs.get(L), 2) if errs else "—" for L in lengths]])
        table = Table("Test error per seed and length (fraction of sequences wrong)",
                      ["seed", "training", "updates", *[f"L = {L}" for L in lengths]], rows,
                      note=f"Trained on lengths {paper.GENERALIZATION_TRAIN_LENGTHS[0]}–"
                           f"{paper.GENERALIZATION_TRAIN_LENGTHS[1]} for at most {budget.max_updates:,} updates; "
                           f"tested on {budget.test_sequences:,} fresh sequences per length.")
        perfect = [s for s, e in per_seed.items() if e and all(v == 0.0 for v in e.values())]
        n = len(evaluated)
        comparisons = [Comparison("seeds with no error at any length", frac(len(perfect), n) if n else "—",
                                  f"{paper.GENERALIZATION_SOLVED_SEEDS}/{paper.GENERALIZATION_SEEDS}",
                                  "pending" if not n else ("matches" if len(perfect) == n == paper.GENERALIZATION_SEEDS
                                                           else "differs"))]
        for L in lengths:
            vals = [e[L] for e in per_seed.values() if L in e]
            worst = max(vals) if vals else None
            comparisons.append(Comparison(f"largest error over seeds at L = {L}", pct(worst, 2), "0%",
                                          "pending" if worst is None else ("matches" if worst == 0 else "differs")))
        claim = paper.GENERALIZATION_CLAIMS[0]
        if not n:
            claims = [ClaimCheck(claim, "not tested", "no network has been tested yet")]
        else:
            verdict = "holds" if len(perfect) == n == paper.GENERALIZATION_SEEDS else "does not hold"
            worst = max(max(e.values()) for e in per_seed.values() if e)
            claims = [ClaimCheck(claim, verdict, f"{len(perfect)} of {n} seeds make no error at any length; "
                                                 f"the largest error is {pct(worst, 2)}")]
        fig = self.plot(per_seed, out_dir / "generalization", budget)
        trained = sum(r["status"] == Status.SUCCEEDED for r in runs)
        headline = (f"{trained} of {len(runs)} networks met the success criterion in training; "
                    f"{len(perfect)} of {n} make no error at any length up to {lengths[-1]} "
                    f"(budget `{budget.name}`: at most {budget.max_updates:,} updates, {budget.seeds} seed(s)).")
        notes = ["Every trained network is tested, whether or not it met the success criterion in training; the "
                 "paper's result concerns networks that solved the task."]
        return Analysis(headline, [fig], [table], comparisons, claims, notes,
                        {"errors": {str(s): {str(k): v for k, v in e.items()} for s, e in per_seed.items()}})

    def plot(self, per_seed: dict, stem: Path, budget: Budget) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        lengths = paper.GENERALIZATION_TEST_LENGTHS
        fig, ax = plt.subplots(figsize=(10, 4.4))
        ax.axvspan(*paper.GENERALIZATION_TRAIN_LENGTHS, color="#bbbbbb", alpha=0.3, lw=0, label="training lengths")
        ax.axhline(0, color="k", lw=1.2, ls="--", label="paper (all 5 seeds)")
        cmap = plt.get_cmap("viridis")
        for i, (seed, errs) in enumerate(sorted(per_seed.items())):
            if not errs:
                continue
            Ls = [L for L in lengths if L in errs]
            ax.plot(Ls, [100 * errs[L] for L in Ls], marker="o", ms=4, lw=1.4,
                    color=cmap(i / max(len(per_seed) - 1, 1)), label=f"seed {seed}")
        ax.set_xscale("log")
        ax.set_xticks(list(lengths), [str(L) for L in lengths], fontsize=8)
        ax.minorticks_off()
        ax.set(xlabel="test sequence length", ylabel="test error (%)", ylim=(-3, 100),
               title=f"Temporal order trained on lengths 50–200, tested up to 5000 "
                     f"(budget {budget.name}, ≤ {budget.max_updates:,} updates)")
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        return save_figure(fig, stem)
