"""The three reproductions at the smoke budget: in-process, from the command line, through Ray."""

import json
import os

import pytest
from click.testing import CliRunner

from bptt.cli import main
from bptt.experiments import paper
from bptt.experiments.registry import experiments, get
from bptt.experiments.reproduce import reproduce
from bptt.store import OUTCOME_STATUSES, Store

PLANNED = {"figure7": 45, "synthetic": 12, "generalization": 1,
           # every row trained here: its learning-rate candidates (search), then 9 problem-lengths (main)
           "remedies": sum(len(r.lr) + 9 for r in get("remedies").rows()[0])}


def check_report(out, name, runs):
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["planned_runs"] == data["meta"]["settled_runs"] == runs
    assert data["meta"]["budget"]["name"] == "smoke" and data["meta"]["budget"]["max_updates"] == 8
    assert "data:image/png;base64," in html and "<table>" in html
    assert f"bptt reproduce {name} --budget smoke" in md and f"bptt report {name}-smoke" in md
    assert "would take at most" in md and "Machine:" in md
    assert (out / "summary.md").exists() and (out / f"{name}.png").exists() and (out / f"{name}.svg").exists()
    # at the smoke budget: a banner first, and no verdict that compares with the paper
    assert md.splitlines()[2].startswith("> **Smoke budget") and "class=\"banner\"" in html
    verdicts = [c["verdict"] for c in data["analysis"]["comparisons"] + data["analysis"]["claims"]]
    assert verdicts and set(verdicts) == {"not comparable at this budget"}
    for red in ("**does not hold**", "| differs |", "**holds**", "| matches |"):
        assert red not in md
    for red in ('class="v-does-not-hold"', 'class="v-differs"', 'class="v-holds"', 'class="v-matches"'):
        assert red not in html
    # the protocol as it ran, and what produced the report
    from bptt.experiments.protocol_table import markdown, rows
    assert markdown(rows(name, get(name).budget("smoke"))) in md
    manifest = json.loads((out / "sweep.json").read_text())
    made = manifest["invocations"][-1]["provenance"]
    assert made["command"] and (made["commit"] is None or len(made["commit"]) == 40)
    assert (f"commit `{made['commit'][:12]}`" if made["commit"] else f"bptt {made['version']}") in md
    settings = manifest["invocations"][-1]["settings"]
    assert len(settings) == runs and {s["seed"] for s in settings} == {0}
    return md, data


def test_the_budgets_and_grids():
    f7 = get("figure7")
    assert len(f7.specs(f7.budget("full"))) == 225
    full = f7.budget("full")
    assert (full.seeds, full.max_updates, full.eval_sequences) == (5, paper.MAX_UPDATES, 10_000)
    cfg = f7.specs(full)[0].train_config()
    assert (cfg["hidden"], cfg["batch_size"], cfg["lr"], cfg["threshold"], cfg["alpha"]) == (50, 20, 0.01, 1.0, 4.0)
    assert len(get("synthetic").specs(get("synthetic").budget("full"))) == 5 * (4 + 8)
    g = get("generalization")
    spec = g.specs(g.budget("full"))[0]
    assert spec.evaluation["lengths"][-1] == 5000 and spec.evaluation["sequences"] == 10_000
    for e in experiments().values():
        for b in ("smoke", "quick", "full"):
            assert e.budget(b).note
        assert len(e.specs(e.budget("smoke"))) == PLANNED[e.name]
    with pytest.raises(ValueError, match="budget"):
        f7.budget("huge")


def test_the_claims_budget_runs_smart_tanh_msgd_cr_at_every_length():
    f7 = get("figure7")
    b = f7.budget("claims")
    cfgs = [s.train_config() for s in f7.specs(b)]
    assert len(cfgs) == 5 * 5 and b.max_updates == 200_000
    assert {(c["init"], c["method"]) for c in cfgs} == {("smart_tanh", "msgd-cr")}
    assert sorted({c["min_length"] for c in cfgs}) == list(paper.FIGURE7_LENGTHS)
    assert {(c["alpha"], c["threshold"], c["lr"], c["batch_size"], c["hidden"]) for c in cfgs} == \
        {(4.0, 1.0, 0.01, 20, 50)}
    assert {c["seed"] for c in cfgs} == set(range(5))
    for name in ("synthetic", "generalization"):
        with pytest.raises(ValueError, match="budget"):
            get(name).budget("claims")


def test_the_full_budgets_check_often_enough():
    from bptt.training.screen import screen_rule

    for e in experiments().values():
        b = e.budget("full")
        rule = screen_rule(b.check_sequences, b.eval_sequences, paper.SUCCESS_ERROR)
        assert b.eval_every <= 100 and rule.miss <= 0.01


@pytest.mark.parametrize("name", ["figure7", "synthetic", "generalization"])
def test_smoke(tmp_path, name):
    store = Store(tmp_path / "s.sqlite")
    result = reproduce(name, "smoke", store=store, out_dir=tmp_path / "out", progress=False, echo=lambda s: None)
    assert result["summary"].complete
    runs = store.list_runs(sweep=f"{name}-smoke")
    assert len(runs) == PLANNED[name] and all(r["status"] in OUTCOME_STATUSES for r in runs)
    assert all(r["config"]["max_updates"] == 8 and r["config"]["labels"]["budget"] == "smoke" for r in runs)
    md, data = check_report(tmp_path / "out", name, PLANNED[name])
    if name == "figure7":
        assert "MSGD-CR" in md and "smart_tanh" in md and len(data["analysis"]["claims"]) == 3
    if name == "synthetic":
        assert "2/5" in md and all("evaluation" in r["metrics"] for r in runs)
    if name == "generalization":
        assert runs[0]["metrics"]["evaluation"]["lengths"][-1] == 5000


def test_command_line(tmp_path):
    store = str(tmp_path / "s.sqlite")
    out = tmp_path / "gen"
    runner = CliRunner()
    res = runner.invoke(main, ["reproduce", "generalization", "--budget", "smoke", "--store", store,
                               "--out", str(out), "--no-progress", "--executor", "processes", "--workers", "2"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "1/1 runs settled" in res.output and "executor processes" in res.output
    run = Store(store).list_runs()[0]
    assert run["pid"] != os.getpid() and run["metrics"]["evaluation"]["lengths"][-1] == 5000
    again = runner.invoke(main, ["reproduce", "generalization", "--budget", "smoke", "--store", store,
                                 "--out", str(out), "--no-progress", "--no-report"], catch_exceptions=False)
    assert again.exit_code == 0 and "trained 0" in again.output
    manifest = json.loads((out / "sweep.json").read_text())
    assert len(manifest["invocations"]) == 2 and manifest["budget"]["name"] == "smoke"
    other = tmp_path / "again"
    res = runner.invoke(main, ["report", "generalization-smoke", "--store", store, "--out", str(other)])
    assert res.exit_code == 0, res.output
    assert (other / "report.html").exists() and "no record of the invocations" in (other / "report.md").read_text()
    res = runner.invoke(main, ["report", "nope", "--store", store])
    assert res.exit_code != 0 and "generalization-smoke" in res.output
    res = runner.invoke(main, ["reproduce", "figure7", "--address", "x:1", "--store", store])
    assert res.exit_code != 0 and "--executor ray" in res.output


def test_smoke_through_ray(tmp_path):
    """The three smoke sweeps on a local Ray instance, results landing in the store."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        store = Store(tmp_path / "s.sqlite")
        for name in ("generalization", "synthetic", "figure7"):
            result = reproduce(name, "smoke", store=store, out_dir=tmp_path / name, executor="ray",
                               progress=False, report=name == "figure7", echo=lambda s: None)
            assert result["summary"].complete and result["summary"].executor == "ray"
            runs = store.list_runs(sweep=f"{name}-smoke")
            assert len(runs) == PLANNED[name] and all(r["status"] in OUTCOME_STATUSES for r in runs)
            for r in runs:
                assert store.load_checkpoint(r["id"]) is not None and "loss" in store.get_curve(r["id"])
                assert r["metrics"]["updates"] == 8 and r["pid"] == os.getpid()     # written by the driver
        check_report(tmp_path / "figure7", "figure7", PLANNED["figure7"])
        again = reproduce("generalization", "smoke", store=store, out_dir=tmp_path / "generalization",
                          executor="ray", progress=False, report=False, echo=lambda s: None)
        assert again["summary"].trained == 0
    finally:
        ray.shutdown()


def test_a_git_archive_of_the_package_names_its_commit(tmp_path, monkeypatch):
    """Run from ``git archive`` output (no checkout), the provenance still names the
    commit: the package's COMMIT file is substituted by the archive (export-subst)."""
    import shutil
    import subprocess
    from pathlib import Path

    from bptt.experiments import manifest

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = Path(manifest.__file__).resolve().parents[3]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    tar = subprocess.run(["git", "archive", "HEAD", "src/bptt/COMMIT"], cwd=root, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=tar.stdout, check=True)
    assert manifest.archived_commit(tmp_path / "src/bptt/COMMIT") == head
    # the file as committed (unsubstituted) and a missing file name no commit
    assert manifest.archived_commit(root / "src/bptt/COMMIT") is None
    assert manifest.archived_commit(tmp_path / "missing") is None
    # outside a checkout, provenance falls back on it
    monkeypatch.setattr(manifest.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("no git")))
    monkeypatch.setattr(manifest, "archived_commit", lambda path: head if path.name == "COMMIT" else None)
    p = manifest.provenance()
    assert p["commit"] == head and p["source"] == "git archive"
    assert "(an archive of it)" in manifest.provenance_line(p)
