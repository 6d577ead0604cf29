"""Reports: the claim checks and the comparisons with the paper, on recorded outcomes."""

import json

import pytest

from bptt.experiments import paper
from bptt.experiments.report import measured_rates, write_report
from bptt.experiments.registry import get
from bptt.store import Store


def record(store, experiment, budget, outcome, keep=lambda labels: True):
    """Record an outcome for every run of a reproduction without training anything."""
    exp = get(experiment)
    sweep = exp.sweep(budget)
    for key, config, spec in zip(sweep.keys, sweep.configs, sweep.specs):
        if not keep(spec.labels):
            continue
        rid = store.claim(key, config, sweep=sweep.name)
        status, metrics = outcome(spec)
        store.finish_run(rid, status, {"updates": 100, "error": 0.0, "pack": f"p{spec.labels.get('length')}",
                                       "pack_size": 3, "pack_seconds": 2.0, "work": 100 * 50.0, **metrics})
    return sweep


def figure7_outcome(spec):
    lab = spec.labels
    solved = {"msgd": 100, "msgd-c": 150, "msgd-cr": 250 if lab["init"] == "smart_tanh" else 200}
    ok = lab["length"] <= solved[lab["method"]]
    return ("succeeded" if ok else "failed"), {"updates": 1000 * lab["length"] if ok else 10_000}


def test_figure7_claims_hold_on_paper_like_outcomes(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    record(store, "figure7", "quick", figure7_outcome)
    paths = write_report(store, "figure7-quick", tmp_path / "out", echo=lambda s: None)
    data = json.loads(paths["json"].read_text())
    verdicts = {c["claim"]["key"]: c["verdict"] for c in data["analysis"]["claims"]}
    assert verdicts == {"ordering": "holds", "length": "holds", "smart_cr": "holds"}
    assert all(c["verdict"] == "matches" for c in data["analysis"]["comparisons"])
    md = paths["md"].read_text()
    assert "| basic_tanh | MSGD-CR | 2/2 (50,000) |" in md and "90 of 90 settled" in md
    html = paths["html"].read_text()
    assert 'class="v-holds"' in html and "figure7.svg" in html


def test_figure7_claims_can_fail(tmp_path):
    store = Store(tmp_path / "s.sqlite")

    def reversed_outcome(spec):
        ok = spec.labels["method"] == "msgd" or spec.labels["length"] == 50
        return ("succeeded" if ok else "failed"), {}

    record(store, "figure7", "quick", reversed_outcome, keep=lambda lab: lab["length"] <= 150)
    data = json.loads(write_report(store, "figure7-quick", tmp_path / "out", echo=lambda s: None)["json"].read_text())
    verdicts = {c["claim"]["key"]: c["verdict"] for c in data["analysis"]["claims"]}
    assert verdicts == {"ordering": "does not hold", "length": "does not hold", "smart_cr": "does not hold"}
    assert [c["verdict"] for c in data["analysis"]["comparisons"]][-2:] == ["pending", "pending"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "54 of 90 settled" in md and "incomplete" in md


def test_synthetic_matches_the_paper(tmp_path):
    store = Store(tmp_path / "s.sqlite")

    def outcome(spec):
        ok = spec.labels["problem"] != "permutation" or spec.labels["seed"] < 2
        ev = spec.evaluation
        errors = [0.0 if ok else 0.5] * len(ev["lengths"])
        return ("succeeded" if ok else "failed"), {"evaluation": {**ev, "errors": errors, "seconds": 1.0}}

    record(store, "synthetic", "full", outcome)
    data = json.loads(write_report(store, "synthetic-full", tmp_path / "out", echo=lambda s: None)["json"].read_text())
    assert data["analysis"]["claims"][0]["verdict"] == "holds"
    comps = {c["quantity"]: c for c in data["analysis"]["comparisons"]}
    assert comps["random permutation: success rate"]["ours"] == "40% (2/5)"
    assert all(c["verdict"] == "matches" for q, c in comps.items() if "success" in q)
    assert comps["adding: test error at 500 steps (mean over runs)"]["ours"] == "0.0%"
    rows = {(r["problem"], r["train_length"]): r for r in data["analysis"]["data"]["rows"]}
    assert rows[("memorization_23bit", "150")]["test_error"] == {"150": 0.0}
    assert rows[("permutation", "50-200")]["succeeded"] == 2


@pytest.mark.parametrize("bad_seed, verdict", [(None, "holds"), (3, "does not hold")])
def test_generalization_claim(tmp_path, bad_seed, verdict):
    store = Store(tmp_path / "s.sqlite")

    def outcome(spec):
        ev = spec.evaluation
        errors = [0.0] * len(ev["lengths"])
        if spec.labels["seed"] == bad_seed:
            errors[-1] = 0.02
        return "succeeded", {"evaluation": {**ev, "errors": errors, "seconds": 10.0}}

    record(store, "generalization", "full", outcome)
    data = json.loads(write_report(store, "generalization-full", tmp_path / "o", echo=lambda s: None)["json"]
                      .read_text())
    assert data["analysis"]["claims"][0]["verdict"] == verdict
    first = data["analysis"]["comparisons"][0]
    assert first["paper"] == "5/5" and first["ours"] == ("5/5" if bad_seed is None else "4/5")
    assert data["meta"]["rates"]["eval_rate"] == pytest.approx(10_000 * sum(paper.GENERALIZATION_TEST_LENGTHS) / 10)


def test_rates_and_cost_estimate():
    runs = [{"metrics": {"pack": "a", "pack_seconds": 10.0, "pack_size": 2, "work": 1000.0}},
            {"metrics": {"pack": "a", "pack_seconds": 10.0, "pack_size": 2, "work": 3000.0}},
            {"metrics": {"pack": "b", "pack_seconds": 30.0, "pack_size": 1, "work": 4000.0}},
            {"metrics": {}}]
    r = measured_rates(runs)
    assert r["train_rate"] == pytest.approx(8000 / 40) and r["packs"] == 2 and r["ensemble_sizes"] == [1, 2]


def test_report_of_an_unknown_sweep(tmp_path):
    with pytest.raises(ValueError, match="no runs"):
        write_report(Store(tmp_path / "s.sqlite"), "nothing", tmp_path / "o", echo=lambda s: None)
