"""The protocol of each reproduction as a table: every setting, its value and its source.

A row says where a setting comes from: the paper (its section), the paper's published
summary (``paper-summary-statwiki``), the authors' reference code (``RNN.py`` of
pascanur/trainingRNNs), or this library's choice where none of them speaks. The values
are read from the code that runs (the experiment's run specifications at a budget,
Table 1's :func:`bptt.experiments.table1.protocol`), so the table printed in a report
and the one in ``docs/`` cannot drift from what ran: ``tests/experiments/
test_protocol_table.py`` compares the documents' tables with these.

Run ``python -m bptt.experiments.protocol_table`` to print every table as it belongs
in the documents.
"""

from __future__ import annotations

from bptt.experiments import paper
from bptt.methods import Method
from bptt.training.screen import screen_rule

PAPER = "paper §4.1"
SUMMARY = "paper summary"
REF = "reference code (RNN.py)"
OURS = "our choice"
APPENDIX = "paper §4.2 and appendix (as reported)"

#: One row: (setting, value, source).
Row = tuple[str, str, str]


def _join(values) -> str:
    return ", ".join(str(v) for v in values)


def _check_rows(cfg: dict, eval_every: int) -> list[Row]:
    rule = screen_rule(cfg["check_sequences"], cfg["eval_sequences"], cfg["success_error"], strict=cfg["strict"])
    return [
        ("success criterion", f"fewer than {100 * cfg['success_error']:g}% of {cfg['eval_sequences']:,} fresh "
                              f"sequences wrong" + (" (strict: none wrong)" if cfg["strict"] else ""),
         f"{PAPER} (1%); {REF} (10,000 sequences; it stops only at 0 wrong: our `--strict`)"),
        ("success check", f"every {eval_every:,} updates: {rule.describe()}",
         f"{OURS} ({REF}: 10,000 sequences every 20 updates)"),
    ]


def _common_rows(cfg: dict, budget) -> list[Row]:
    seeds_source, cap_source = _budget_sources(budget)
    guard = {"clipping": "only the members that clip (MSGD-C, MSGD-CR)", "always": "every member",
             "never": "no member"}[cfg["guard"]]
    return [
        ("hidden units", str(cfg["hidden"]), f"{PAPER}; {SUMMARY}"),
        ("learning rate", f"{cfg['lr']:g}, constant", f"{PAPER}; {SUMMARY}"),
        ("clipping", f"rescale the gradient to norm {cfg['threshold']:g} when above it (Algorithm 1), MSGD-C "
                     f"and MSGD-CR", f"§3.2, {PAPER}; {SUMMARY}"),
        ("α (weight of Ω)", f"{cfg['alpha']:g}, constant (MSGD-CR)",
         f"{PAPER} (Figure 7); {SUMMARY}; {REF}'s default is 2"),
        ("Ω's form", f"{cfg['omega']} norms (the reference code's)", REF),
        ("minibatch", f"{cfg['batch_size']} sequences", REF),
        ("seeds", f"{budget.seeds} per configuration", seeds_source),
        ("update cap", f"{budget.max_updates:,} per run", cap_source),
        *_check_rows(cfg, budget.eval_every),
        ("non-finite guard", f"{guard}: a norm NaN, infinite or > 10¹⁰ skips the update and shrinks W_rec; an "
                             f"unguarded member that overflows ends `diverged`", REF),
        ("precision", cfg["dtype"], OURS),
    ]


def figure7_rows(budget) -> list[Row]:
    """The protocol of ``bptt reproduce figure7`` at ``budget``."""
    from bptt.experiments.registry import get

    specs = get("figure7").specs(budget)
    cfgs = [s.train_config() for s in specs]
    inits = list(dict.fromkeys(c["init"] for c in cfgs))
    methods = list(dict.fromkeys(Method(c["method"]).label for c in cfgs))
    lengths = sorted({c["min_length"] for c in cfgs})
    return [("task", "temporal order, one fixed length per run", PAPER),
            ("lengths", _join(lengths), f"{PAPER} (Figure 7)"),
            ("initializations", _join(inits) + " (sigmoid N(0, 0.01²); basic_tanh N(0, 0.1²); smart_tanh N(0, "
                                               "0.01²), 15 nonzero recurrent weights per unit, ρ = 0.95)",
             f"{PAPER}; {SUMMARY}; {REF} (the sparsity)"),
            ("methods", _join(methods), PAPER),
            *_common_rows(cfgs[0], budget)]


def synthetic_rows(budget) -> list[Row]:
    """The protocol of ``bptt reproduce synthetic`` at ``budget``."""
    from bptt.experiments.registry import get
    from bptt.experiments.synthetic import INIT, MEMORIZATION_LENGTHS_NOTE

    cfgs = [s.train_config() for s in get("synthetic").specs(budget)]
    lo, hi = paper.SYNTHETIC_TRAIN_LENGTHS
    return [("tasks", "adding, multiplication, 3-bit temporal order, random permutation, noiseless memorization "
                      "(5 bits, ~23 bits)", PAPER),
            ("lengths", f"drawn per minibatch from {lo}–{hi}; " + MEMORIZATION_LENGTHS_NOTE, PAPER),
            ("initialization", f"{INIT}", f"{OURS} (the paper: tanh units)"),
            ("method", "MSGD-CR", PAPER),
            *_common_rows(cfgs[0], budget),
            ("test after training", f"{budget.test_sequences:,} fresh sequences at 50, 100, 150, 200 steps; adding "
                                    f"and multiplication also at {paper.SYNTHETIC_GENERALIZATION_LENGTH}", PAPER)]


def generalization_rows(budget) -> list[Row]:
    """The protocol of ``bptt reproduce generalization`` at ``budget``."""
    from bptt.experiments.generalization import INIT
    from bptt.experiments.registry import get

    cfgs = [s.train_config() for s in get("generalization").specs(budget)]
    lo, hi = paper.GENERALIZATION_TRAIN_LENGTHS
    return [("task", "temporal order", PAPER),
            ("lengths", f"drawn per minibatch from {lo}–{hi}", PAPER),
            ("initialization", INIT, PAPER),
            ("method", "MSGD-CR", PAPER),
            *_common_rows(cfgs[0], budget),
            ("test after training", f"{budget.test_sequences:,} fresh sequences at "
                                    f"{_join(paper.GENERALIZATION_TEST_LENGTHS)} steps, every network", PAPER)]


def _budget_sources(budget) -> tuple[str, str]:
    """The sources of a budget's seeds and update cap: the paper's or the reference code's
    where the budget keeps them, "our choice" (with theirs) where it changes them."""
    seeds = PAPER if budget.seeds == paper.FIGURE7_SEEDS else f"{OURS} (the paper: {paper.FIGURE7_SEEDS})"
    cap = REF if budget.max_updates == paper.MAX_UPDATES else f"{OURS} ({REF}: {paper.MAX_UPDATES:,})"
    return seeds, cap


def remedies_rows(budget) -> list[Row]:
    """The protocol of ``bptt reproduce remedies`` at ``budget``: what every row shares,
    then each row's own settings (see :mod:`bptt.experiments.remedy_rows`)."""
    from bptt.experiments.registry import get
    from bptt.experiments.remedies import LONG_LENGTHS, PROBLEMS, SEARCH_LENGTH, SOLVE_AT
    from bptt.experiments.remedy_rows import ROWS

    exp = get("remedies")
    specs = exp.specs(budget)
    main = next(s.train_config() for s in specs if s.labels["stage"] == "main")
    seeds_source, cap_source = _budget_sources(budget)
    _, missing = exp.rows()
    out = [("problems", "; ".join(f"{label} at {_join(lengths)}" for _, label, lengths in PROBLEMS.values())
            + f"; temporal order also at {_join(LONG_LENGTHS)} for the rows that solve {SOLVE_AT} (at least half "
              f"of their runs succeed)", f"{PAPER} (the problems, temporal order's lengths); {OURS} (the others' "
                                          f"lengths, the long ones)"),
           ("hidden units", f"{main['hidden']}, every row", PAPER),
           ("minibatch", f"{main['batch_size']} sequences, every row", REF),
           ("seeds", f"{budget.seeds} per row and cell, the same for every row", seeds_source),
           ("update cap", f"{budget.max_updates:,} per run, every row", cap_source),
           *_check_rows(main, budget.eval_every),
           ("learning-rate search", f"each row's candidates on temporal order at T = {SEARCH_LENGTH}, "
                                    f"{budget.search_seeds} seed(s) × {budget.search_updates:,} updates each; the "
                                    f"rate solving most runs (then: lowest mean error, fewest updates, listed "
                                    f"first) is frozen for every problem", OURS),
           ("non-finite guard", "the members that clip: a norm NaN, infinite or > 10¹⁰ skips the update and shrinks "
                                "the learned recurrent weights; an unguarded member that overflows ends `diverged`",
            REF),
           ("precision", main["dtype"], OURS),
           ("Nottingham column", "MSGD, MSGD-C, MSGD-CR: Table 1's quick runs (300 sigmoid units, SGD; "
                                 "docs/table1.md); every other row with a rate below: its network and update rule "
                                 "at 300 units with Table 1's quick protocol (threshold 8, windows of 200 steps, "
                                 "at most 5 epochs, patience 3, the rate halved when the validation figure rises), "
                                 "seed 0, one run per rate (`bptt reproduce table1 --budget quick --dataset "
                                 "nottingham --remedies`)",
            f"{OURS}; Table 1's protocol: docs/table1.md")]
    for row in ROWS:
        if row.name in missing:
            out.append((f"{row.label}", missing[row.name], "this build"))
            continue
        out += [(f"{row.label}: {setting}", value, source) for setting, value, source in row.protocol]
        out.append((f"{row.label}: learning rates searched", _join(f"{v:g}" for v in row.lr),
                    f"the first as its update rule's source; the others: {OURS}"))
        if row.corpus_lr is not None:
            out.append((f"{row.label}: learning rates on Nottingham",
                        f"{_join(f'{v:g}' for v in row.corpus_lrs())}, one run each; the lower best validation "
                        f"figure is reported", f"{row.corpus_lr:g}: {row.corpus_lr_source}; a tenth of it: {OURS}"))
    return out


def rows(experiment: str, budget) -> list[Row]:
    """The protocol table of reproduction ``experiment`` at ``budget`` (a :class:`Budget`)."""
    return {"figure7": figure7_rows, "synthetic": synthetic_rows,
            "generalization": generalization_rows, "remedies": remedies_rows}[experiment](budget)


def _by_dataset(configs: dict, value) -> str:
    """``value(config)`` per data set, data sets with equal values grouped."""
    from bptt.experiments.table1.protocol import DATASET_LABEL

    groups: dict[str, list[str]] = {}
    for name, c in configs.items():
        groups.setdefault(value(c), []).append(DATASET_LABEL[name])
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{' / '.join(names)}: {v}" for v, names in groups.items())


def table1_rows(budget: str = "full", configs: dict | None = None, **choices) -> list[Row]:
    """The protocol of ``bptt reproduce table1`` at ``budget`` (``choices``: overrides such as
    ``alpha_time``, ``guard``, ``max_epochs``), or of the data sets' ``configs`` (name →
    :class:`bptt.experiments.table1.NaturalConfig`) that ran."""
    from bptt.experiments.table1.protocol import DATASETS, protocol

    cs = configs if configs is not None else {name: protocol(name, budget, **choices) for name in DATASETS}

    def lr(c) -> str:
        return (", ".join(f"{Method(k).label} {v:g}" for k, v in c.lr.items()) if isinstance(c.lr, dict)
                else f"{c.lr:g}")

    guard = {"clipping": "MSGD-C and MSGD-CR (not MSGD)", "always": "all three methods", "never": "no method"}
    return [
        ("hidden units", _by_dataset(cs, lambda c: f"{c.hidden} {c.unit}" + ("" if c.bias else ", no hidden biases")),
         f"{APPENDIX}; JSB Chorales (not in the paper) takes Nottingham's"),
        ("initialization", _by_dataset(cs, lambda c: f"{c.init}: every weight N(0, 0.01²), biases 0"),
         f"{SUMMARY}; {REF}"),
        ("learning rate", _by_dataset(cs, lr), APPENDIX),
        ("learning-rate halving", _by_dataset(cs, lambda c: "halved after an epoch whose validation figure rose"
                                              if c.halve_lr_on_rise else "none"),
         f"{APPENDIX} for Piano-midi.de and Nottingham; {OURS} for the others"),
        ("clipping threshold", _by_dataset(cs, lambda c: f"{c.threshold:g}"), APPENDIX),
        ("α (weight of Ω, MSGD-CR)", _by_dataset(cs, lambda c: f"{c.alpha0:g}/t"), f"{APPENDIX}; PTB's: {OURS}"),
        ("how t of α_t counts", _by_dataset(cs, lambda c: f"{c.alpha_time}, from 1"), f"{OURS} (the paper is silent)"),
        ("Ω's form", _by_dataset(cs, lambda c: f"{c.omega} norms"), REF),
        ("cost", _by_dataset(cs, lambda c: "summed over each window" if c.summed_cost else "mean per step"),
         APPENDIX),
        ("window (truncation of BPTT)", _by_dataset(cs, lambda c: f"{c.window} steps, state carried"), APPENDIX),
        ("minibatch", _by_dataset(cs, lambda c: f"{c.batch_size} lane(s), one window each"), OURS),
        ("epochs and early stopping", _by_dataset(cs, lambda c: f"at most {c.max_epochs} epochs, stop after "
                                                  f"{c.patience} without improvement"), OURS),
        ("evaluation", _by_dataset(cs, lambda c: "every step of every split" if c.eval_windows is None
                                   else f"the first {c.eval_windows} windows of each split"), OURS),
        ("non-finite guard", _by_dataset(cs, lambda c: guard[c.guard]), REF),
        ("seed", _by_dataset(cs, lambda c: f"{c.seed}, the same initial weights for the three methods"), OURS),
    ]


def markdown(table: list[Row]) -> str:
    """The rows as a Markdown table (setting | value | source)."""
    lines = ["| setting | value | source |", "| --- | --- | --- |"]
    lines += [f"| {s} | {v} | {src} |" for s, v, src in table]
    return "\n".join(lines)


def documented() -> dict[str, str]:
    """Every table of ``docs/``: marker name → Markdown (see ``tests/experiments/test_protocol_table.py``)."""
    from bptt.experiments.registry import get

    out = {}
    for name in ("figure7", "synthetic", "generalization", "remedies"):
        exp = get(name)
        out[f"{name}:full"] = markdown(rows(name, exp.budget("full")))
    out["figure7:claims"] = markdown(rows("figure7", get("figure7").budget("claims")))
    out["table1:full"] = markdown(table1_rows("full"))
    return out


if __name__ == "__main__":  # pragma: no cover - prints the documents' tables
    for key, text in documented().items():
        print(f"<!-- protocol {key} -->\n{text}\n<!-- /protocol -->\n")
