"""``bptt reproduce remedies``: the rows, the staged plan, the learning-rate search, the
smoke budget end to end (interrupted and resumed), and the rows that make no sense."""

from __future__ import annotations

import json
import math

import pytest

from bptt.experiments.executors import InlineExecutor
from bptt.experiments.registry import get
from bptt.experiments.remedies import LONG_LENGTHS, PROBLEMS, Remedies, choose_lr
from bptt.experiments.remedy_rows import ROWS, Remedy
from bptt.experiments.reproduce import reproduce
from bptt.experiments.sweep import execute
from bptt.optim import UPDATE_RULES
from bptt.store import OUTCOME_STATUSES, Status, Store


def _run(lr, status, error, updates, row="r", i=0):
    return {"id": i, "status": status, "labels": {"row": row, "lr": lr},
            "metrics": {"error": error, "updates": updates}}


# -- the learning-rate search ------------------------------------------------------------------------
def test_the_search_picks_the_candidate_that_solves_most_then_lowest_error_then_fastest():
    S, F, D = Status.SUCCEEDED, Status.FAILED, Status.DIVERGED
    runs = [_run(0.1, F, 0.5, 100), _run(0.1, S, 0.0, 90),            # 1 of 2
            _run(0.3, S, 0.0, 400), _run(0.3, S, 0.005, 300),          # 2 of 2: the most successes
            _run(1.0, D, None, 5), _run(1.0, F, 0.1, 100)]
    lr, scores = choose_lr((0.1, 0.3, 1.0), runs)
    assert lr == 0.3 and [s["succeeded"] for s in scores] == [1, 2, 0]
    assert scores[2]["mean_error"] == pytest.approx((1.0 + 0.1) / 2)       # a diverged run counts as 100%
    # no success anywhere: the lowest mean final error wins, whatever the order
    runs = [_run(0.1, F, 0.7, 10), _run(0.3, F, 0.2, 10), _run(1.0, F, 0.5, 10)]
    assert choose_lr((0.1, 0.3, 1.0), runs)[0] == 0.3
    # equal successes and errors: fewer updates to success; then the first (recommended) candidate
    runs = [_run(0.1, S, 0.0, 500), _run(0.3, S, 0.0, 200)]
    assert choose_lr((0.1, 0.3), runs)[0] == 0.3
    runs = [_run(0.1, F, 0.5, 10), _run(0.3, F, 0.5, 10)]
    assert choose_lr((0.3, 0.1), runs)[0] == 0.3 and choose_lr((0.1, 0.3), runs)[0] == 0.1


# -- the staged plan ---------------------------------------------------------------------------------
def _settle(specs, status=Status.FAILED, error=0.75, wins=lambda labels: False):
    out = []
    for i, s in enumerate(specs):
        ok = wins(s.labels)
        out.append({"id": i, "labels": dict(s.labels), "status": Status.SUCCEEDED if ok else status,
                    "metrics": {"error": 0.0 if ok else error, "updates": 3}})
    return out


def test_the_plan_goes_search_then_main_at_the_chosen_rates_then_long_lengths_for_rows_that_solve_250():
    exp = get("remedies")
    b = exp.budget("smoke")
    rows, missing = exp.rows()
    search = exp.specs(b, [])
    assert {s.labels["stage"] for s in search} == {"search"}
    assert len(search) == sum(len(r.lr) for r in rows) * b.search_seeds
    assert {(s.train["min_length"], s.train["max_updates"]) for s in search} \
        == {(50, r.cap(b.name, b.search_updates)) for r in rows}
    # half the search settled: still the search only
    assert len(exp.specs(b, _settle(search[: len(search) // 2]))) == len(search)
    # the search settled, with one candidate per row solving: the main stage trains at that rate
    pick = {r.name: r.lr[-1] for r in rows}
    settled = _settle(search, wins=lambda lab: lab["lr"] == pick[lab["row"]])
    plan = exp.specs(b, settled)
    main = [s for s in plan if s.labels["stage"] == "main"]
    cells = {(p, L) for p, (_, _, lengths) in PROBLEMS.items() for L in lengths}
    assert len(main) == len(rows) * len(cells) * b.seeds
    assert {(s.labels["problem"], s.labels["length"]) for s in main} == cells
    by_name = {r.name: r for r in rows}
    assert all(s.train["lr"] == pick[s.labels["row"]]
               and s.train["max_updates"] == by_name[s.labels["row"]].cap(b.name, b.max_updates) for s in main)
    assert {s.train["seed"] for s in main} == set(range(b.seeds))
    # the main stage settled, one row solving temporal order at 250: only it goes on to 500 and 1000
    solver = rows[3].name
    done = settled + _settle(main, wins=lambda lab: lab["row"] == solver and lab["length"] == 250
                             and lab["problem"] == "temporal_order")
    long = [s for s in exp.specs(b, done) if s.labels["stage"] == "long"]
    assert {(s.labels["row"], s.labels["length"]) for s in long} == {(solver, L) for L in LONG_LENGTHS}
    assert all(s.train["lr"] == pick[solver] for s in long)
    # the plan without records (counting, costing): search and main at the recommended rates
    assert len(exp.specs(b)) == len(search) + len(main)


# -- rows that make no sense ---------------------------------------------------------------------------
def test_rows_that_make_no_sense_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"'esn-omega' makes no sense: .*msgd-cr adds Ω"):
        Remedy("esn-omega", "ESN + Ω", {"model": "esn", "method": "msgd-cr", "alpha": 2.0}, (0.1,), "norm").check()
    Remedy("lstm-omega", "LSTM + Ω", {"model": "lstm", "method": "msgd-cr", "alpha": 2.0}, (0.1,), "norm").check()
    with pytest.raises(ValueError, match=r"L1/L2 penalty on W_rec .* 'esn' learns none"):
        Remedy("esn-l2", "ESN + L2", {"model": "esn", "method": "msgd", "l2": 1e-3}, (0.01,), "none").check()
    with pytest.raises(ValueError, match="finite and > 0"):
        Remedy("bad-lr", "bad", {"method": "msgd"}, (0.01, -1.0), "none").check()
    with pytest.raises(ValueError, match="repeat"):
        Remedy("twice", "twice", {"method": "msgd"}, (0.01, 0.01), "none").check()
    with pytest.raises(ValueError, match="sets seed, task, which the experiment sets alike for every row"):
        Remedy("own-task", "own", {"method": "msgd", "task": "adding", "seed": 3}, (0.01,), "none").check()
    with pytest.raises(ValueError, match="makes no sense: .*model"):
        Remedy("nomodel", "no", {"model": "transformer", "method": "msgd"}, (0.01,), "none").check()


def test_a_row_whose_optimizer_this_build_lacks_is_listed_not_available(monkeypatch):
    row = Remedy("future", "future", {"method": "msgd", "optimizer": "not-yet"}, (1.0,), "none", optional=True)
    why = row.unavailable()
    assert why.startswith("not available in this build") and "'not-yet'" in why and "sgd" in why
    hf = next(r for r in ROWS if r.train.get("optimizer") == "hf")
    assert hf.optional
    rows, missing = Remedies.rows()
    assert ("hf" in missing) == (hf.unavailable() is not None)
    if "hf" not in UPDATE_RULES:
        assert "hf" in missing and hf.name not in [r.name for r in rows]
    else:
        assert "hf" not in missing and hf.name in [r.name for r in rows]
    # every other row of the registry checks and is trained
    assert {r.name for r in rows} | set(missing) == {r.name for r in ROWS}
    assert set(missing) <= {r.name for r in ROWS if r.optional}


# -- the smoke budget end to end, interrupted and resumed ----------------------------------------------
class _StopAfter(InlineExecutor):
    """Runs ``n`` tasks, then raises ``KeyboardInterrupt`` as a Ctrl-C would."""

    def __init__(self, n: int) -> None:
        super().__init__(threads=1)
        self.n = n

    def run(self, tasks, store, progress):
        reports = []
        for t in tasks:
            if self.n == 0:
                raise KeyboardInterrupt
            self.n -= 1
            reports.append(execute(t, store))
        return reports


def test_smoke_end_to_end_resumes_after_an_interruption_and_reports_every_row_and_problem(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    out = tmp_path / "out"
    exp = get("remedies")
    searched = len(exp.specs(exp.budget("smoke"), []))
    packs_of_search = len({r.name for r in exp.rows()[0] if not r.table1_method}) + 1
    with pytest.raises(KeyboardInterrupt):                  # the search settles, the main stage is cut short
        reproduce("remedies", "smoke", store=store, out_dir=out, progress=False, echo=lambda s: None,
                  executor=_StopAfter(packs_of_search + 4))
    before = {r["id"]: r for r in store.list_runs(sweep="remedies-smoke") if r["status"] in OUTCOME_STATUSES}
    assert len(before) > searched
    result = reproduce("remedies", "smoke", store=store, out_dir=out, progress=False, echo=lambda s: None)
    assert result["summary"].complete
    runs = store.list_runs(sweep="remedies-smoke")
    settled = [r for r in runs if r["status"] in OUTCOME_STATUSES]
    for rid, r in before.items():                           # finished runs kept, not trained again
        again = store.get_run(rid)
        assert again["status"] == r["status"] and again["metrics"] == r["metrics"]
    assert len({r["key"] for r in settled}) == len(settled) == result["summary"].runs
    caps = {r.name: r for r in ROWS}
    assert all(r["config"]["max_updates"]
               == caps[r["config"]["labels"]["row"]].cap("smoke", 4 if r["config"]["labels"]["stage"] == "search"
                                                         else 8)
               for r in settled)

    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    data = json.loads((out / "results.json").read_text())
    assert md.splitlines()[2].startswith("> **Smoke budget") and "class=\"banner\"" in html
    assert (out / "remedies.png").exists() and (out / "remedies.svg").exists() and "data:image/png;base64," in html
    verdicts = {c["verdict"] for c in data["analysis"]["comparisons"]}
    assert verdicts == {"not comparable at this budget"}
    # every row and (problem, length) that the store holds is in the report, with its counts
    rows, missing = exp.rows()
    labels = {r.name: r.label for r in ROWS}
    rows_by_name = {r.name: r for r in ROWS}
    main = [r for r in settled if r["config"]["labels"]["stage"] == "main"]
    stored = {(r["config"]["labels"]["row"], r["config"]["labels"]["problem"], r["config"]["labels"]["length"])
              for r in main}
    assert {r for r, _, _ in stored} == {r.name for r in rows}
    reported = {(c["row"], c["problem"], c["length"]): c for c in data["analysis"]["data"]["cells"]}
    assert set(reported) == stored
    for key, cell in reported.items():
        mine = [r for r in main if (r["config"]["labels"]["row"], r["config"]["labels"]["problem"],
                                    r["config"]["labels"]["length"]) == key]
        assert cell["runs"] == len(mine)
        assert cell["succeeded"] == sum(r["status"] == Status.SUCCEEDED for r in mine)
        errors = [r["metrics"]["error"] if r["status"] != Status.DIVERGED else 1.0 for r in mine]
        assert math.isclose(cell["mean_error"], sum(errors) / len(errors))
    for name in {r for r, _, _ in stored} | set(missing):
        assert f"| {labels[name]} |" in md and labels[name] in html
    for problem, length in {(p, L) for _, p, L in stored}:
        short = {"temporal_order": "order", "adding": "adding", "memorization_5bit": "mem."}[problem]
        assert f" {short} {length} |" in md
    # the second-order rows' cost is read back from their runs' totals
    hf_runs = [r for r in main if r["config"]["labels"]["row"] == "hf"]
    if hf_runs:
        assert "Second-order cost per run" in md
        its = sorted(int(r["metrics"]["hf_iterations"]) for r in hf_runs)
        assert its[0] >= 1 and its[-1] <= dict(rows_by_name["hf"].caps)["smoke"]
    else:
        assert "Second-order cost per run" not in md
    # the chosen rates are those the stored search runs give
    search = [dict(r, labels=r["config"]["labels"]) for r in settled if r["config"]["labels"]["stage"] == "search"]
    for row in rows:
        lr, _ = choose_lr(row.lr, [r for r in search if r["labels"]["row"] == row.name])
        assert data["analysis"]["data"]["chosen"][row.name] == lr
        assert all(r["config"]["lr"] == lr for r in main if r["config"]["labels"]["row"] == row.name)
    for name, why in missing.items():
        assert why in md
    # ρ at the end is read from the final networks; Nottingham says why it did not run
    assert "ρ at the end" in md and "not run:" in md
    from bptt.experiments.protocol_table import markdown, rows as protocol_rows
    assert markdown(protocol_rows("remedies", exp.budget("smoke"))) in md


def test_the_report_reads_nottingham_from_table1_quick_runs_and_rho_from_the_final_networks(tmp_path):
    from bptt.models import LSTM
    from bptt.training import checkpoint

    store = Store(tmp_path / "s.sqlite")
    exp = get("remedies")
    b = exp.budget("quick")
    # two Table 1 runs of Nottingham (the newer one wins), one of another data set, one of another budget
    for dataset, sweep, method, test in (("nottingham", "table1-quick", "msgd-c", 9.0),
                                         ("nottingham", "table1-quick", "msgd-c", 3.25),
                                         ("piano_midi", "table1-quick", "msgd", 7.5),
                                         ("nottingham", "table1-smoke", "msgd", 8.5)):
        rid = store.start_run({"experiment": "table1", "dataset": dataset, "method": method, "test": test},
                              sweep=sweep)
        store.finish_run(rid, Status.SUCCEEDED, {"test": test, "measure": "nll"})
    # a remedies run with a final LSTM network: its ρ is that network's
    net = LSTM(1, 6, 4, seed=3)
    rid = store.start_run({"labels": {}}, sweep="remedies-quick")
    store.finish_run(rid, Status.FAILED, {"error": 0.5})
    store.save_checkpoint(rid, 10, checkpoint.dumps(checkpoint.member(net)))
    ctx = exp.context(store, [{"id": rid, "status": Status.FAILED}], b)
    assert ctx["rho"][rid] == pytest.approx(float(net.spectral_radius()[0]))
    assert set(ctx["nottingham"]) == {"msgd-c"} and ctx["nottingham"]["msgd-c"]["test"] == 3.25
    from bptt.experiments.remedies_report import _nottingham
    rows = {r.name: r for r in ROWS}
    assert _nottingham(rows["msgd-c"], ctx["nottingham"]) == "3.250"
    assert _nottingham(rows["msgd"], ctx["nottingham"]).startswith("not run: no Nottingham run")
    assert "--remedies" in _nottingham(rows["lstm"], ctx["nottingham"])       # runs, through Table 1's rows
    assert _nottingham(rows["hf"], ctx["nottingham"]) == f"not run: {rows['hf'].corpus_note}"


def test_a_row_with_its_own_cap_counts_its_updates_and_checks_within_them():
    """Hessian-free's row counts iterations under its own cap, below the budget's, and
    checks for success within that cap; the other rows keep the budget's."""
    from bptt.experiments.remedies import Remedies
    from bptt.experiments.remedy_rows import HF_CAPS, rows

    exp = Remedies()
    hf = rows()["hf"]
    if hf.unavailable():
        pytest.skip(hf.unavailable())
    for name, budget in exp.budgets.items():
        specs = exp.specs(budget)
        own = dict(HF_CAPS)[name]
        for spec in specs:
            t = spec.train
            if spec.labels["row"] == "hf":
                assert t["max_updates"] == min(own, t["max_updates"]) <= own
                assert t["eval_every"] <= t["max_updates"] and t["max_updates"] % t["eval_every"] < t["eval_every"]
                assert t["optimizer"] == "hf" and t["method"] == "msgd"
            elif spec.labels["stage"] == "main":
                assert t["max_updates"] == budget.max_updates


def test_below_the_full_budget_the_comparison_with_the_paper_is_not_a_verdict(tmp_path):
    """The paper's success rates come from 5,000,000 updates per run: a smaller budget's
    rates are lower bounds, and its report says so instead of "differs"."""
    exp = get("remedies")
    verdicts = {}
    for name in ("quick", "full"):
        b = exp.budget(name)
        search = exp.specs(b, [])
        settled = _settle(search)
        main = [s for s in exp.specs(b, settled) if s.labels["stage"] == "main"]
        records = settled + _settle(main)
        for i, r in enumerate(records):
            r["id"] = i
            r["metrics"].update(work=1.0, pack_seconds=1.0, pack_size=1, clipped_fraction=0.0, nonfinite=0)
        (tmp_path / name).mkdir()
        a = exp.analyze(records, b, tmp_path / name)
        verdicts[name] = {c.verdict for c in a.comparisons}
    assert verdicts["quick"] == {"not comparable at this budget"}
    assert verdicts["full"] == {"differs"}              # every run failed: the paper's 100% is not reached
