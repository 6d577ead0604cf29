"""The bptt command: train, runs, resume, and clear errors on bad input."""

import json

import click
import pytest
from click.testing import CliRunner

from bptt.cli import main
from bptt.cli.common import parse_seeds
from bptt.store import Status, Store

SMALL = ["--length", "20", "--hidden", "8", "--max-updates", "60", "--eval-every", "20",
         "--eval-sequences", "100", "--no-progress"]


def run(args, **kw):
    result = CliRunner().invoke(main, args, catch_exceptions=False, **kw)
    return result


def decided_status(run, *, max_updates, eval_every, success_error=0.01, since=0):
    """The status a run's recorded numbers decide: success when its final error on fresh
    sequences is below ``success_error`` (at an evaluation, every ``eval_every`` updates),
    failure otherwise, after the whole budget."""
    m = run["metrics"]
    if m["error"] < success_error:
        assert m["updates"] % eval_every == 0 and since < m["updates"] <= max_updates, m
        return Status.SUCCEEDED
    assert m["updates"] == max_updates, m
    return Status.FAILED


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("0-1,7") == [0, 1, 7]


def test_tasks_lists_all():
    out = run(["tasks"]).output
    for name in ("temporal_order", "temporal_order_3bit", "adding", "multiplication", "permutation",
                 "memorization"):
        assert name in out


@pytest.mark.parametrize("success_error", [0.01, 0.9])
def test_train_records_runs_and_lists_them(tmp_path, success_error):
    store = str(tmp_path / "r.sqlite")
    res = run(["train", "--seeds", "0-1", "--store", store, "--success-error", str(success_error), *SMALL])
    assert res.exit_code == 0, res.output
    runs = Store(store).list_runs()
    assert len(runs) == 2 and {r["config"]["seed"] for r in runs} == {0, 1}
    for r in runs:
        assert r["config"]["success_error"] == success_error
        assert r["status"] == decided_status(r, max_updates=60, eval_every=20, success_error=success_error)
        assert f"{r['status']:<10}  {r['metrics']['updates']:>8}" in res.output
    assert f"{max(r['metrics']['updates'] for r in runs)} updates" in res.output
    listed = run(["runs", "--store", store]).output
    assert "temporal_order" in listed and "msgd-cr" in listed
    lines = run(["runs", "--store", store, "--json"]).output.strip().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["config"]["task"] == "temporal_order"


def test_resume_from_a_stopped_run(tmp_path):
    store_path = str(tmp_path / "r.sqlite")
    from bptt.training.trainer import TrainConfig, Trainer
    cfg = TrainConfig(min_length=20, max_length=20, hidden=8, seeds=[0], max_updates=60, eval_every=20,
                      check_sequences=20, eval_sequences=100)
    store = Store(store_path)
    def stop(trainer):
        if trainer.update == 20:
            raise KeyboardInterrupt

    t = Trainer(cfg, store, callback=stop)
    with pytest.raises(KeyboardInterrupt):
        t.run()
    assert store.get_run(t.run_ids[0])["status"] == "stopped"
    res = run(["train", "--resume", str(t.run_ids[0]), "--store", store_path, "--no-progress"])
    assert res.exit_code == 0, res.output
    resumed = Store(store_path).get_run(t.run_ids[0])
    assert resumed["status"] == decided_status(resumed, max_updates=60, eval_every=20, since=20)
    assert f"{resumed['metrics']['updates']} updates" in res.output


def test_a_resumed_trainer_checkpoints_what_weights_only_loading_reads(tmp_path):
    import io

    import torch

    from bptt.cli.train import _resumed
    from bptt.training import checkpoint
    from bptt.training.trainer import TrainConfig, Trainer

    def stop(trainer):
        raise KeyboardInterrupt

    store = Store(tmp_path / "r.sqlite")
    t = Trainer(TrainConfig(min_length=20, max_length=20, hidden=8, seeds=[0, 1], max_updates=60, eval_every=20,
                            check_sequences=20, eval_sequences=100, record_every=5), store, callback=stop)
    with pytest.raises(KeyboardInterrupt):
        t.run()
    assert [store.get_run(rid)["status"] for rid in t.run_ids] == [Status.STOPPED] * 2
    resumed = _resumed(store, t.run_ids[0], progress=False)
    assert resumed.update == 5 and resumed.status == [Status.RUNNING] * 2
    assert [store.get_run(rid)["status"] for rid in resumed.run_ids] == [Status.RUNNING] * 2
    state = torch.load(io.BytesIO(checkpoint.dumps(resumed.state())), weights_only=True)
    assert [m["status"] for m in state["loop"]["members"]] == ["running", "running"]
    assert all(type(m["status"]) is str for m in state["loop"]["members"])


@pytest.mark.parametrize("args, message", [
    (["train", "--threshold", "-1"], "threshold"),
    (["train", "--threshold", "0"], "threshold"),
    (["train", "--seeds", "a-b"], "seeds"),
    (["train", "--task", "nope"], "nope"),
    (["train", "--length", "5"], "length"),
    (["train", "--length", "50", "--min-length", "20"], "either --length"),
    (["train", "--lr", "-0.1"], "learning rate"),
    (["train", "--lr", "nan"], "learning rate"),
    (["train", "--alpha", "inf"], "alpha"),
    (["train", "--threshold", "nan"], "threshold"),
    (["train", "--resume", "999"], "no run"),
])
def test_bad_flags_are_clear_errors(tmp_path, args, message):
    res = CliRunner().invoke(main, args + ["--store", str(tmp_path / "s.sqlite"), "--no-progress"])
    assert res.exit_code != 0
    assert message in res.output


def test_a_file_that_is_not_a_store_is_refused_and_kept(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_bytes(b"my precious notes")
    res = CliRunner().invoke(main, ["runs", "--store", str(bad)])
    assert res.exit_code != 0 and "notes.sqlite" in res.output
    assert bad.read_bytes() == b"my precious notes"


def test_resume_unknown_run(tmp_path):
    res = CliRunner().invoke(main, ["train", "--resume", "99", "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code != 0 and "99" in res.output


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, path + (name,))


def test_every_option_of_every_command_has_help():
    missing = [(" ".join(path), p.name) for path, command in _commands(main)
               for p in command.params if isinstance(p, click.Option) and not p.help]
    assert not missing, missing


def test_every_command_group_is_reachable():
    names = {" ".join(path) for path, _ in _commands(main)}
    for name in ("train", "tasks", "runs", "demo", "report", "reproduce figure7", "reproduce table1",
                 "plot run", "plot cliff"):
        assert name in names


def test_plot_refuses_a_missing_store_and_does_not_create_it(tmp_path):
    missing = tmp_path / "none.sqlite"
    res = CliRunner().invoke(main, ["plot", "run", "1", "--store", str(missing)])
    assert res.exit_code != 0 and "no results store" in res.output and "Traceback" not in res.output
    assert not missing.exists()


def test_a_store_that_cannot_be_created_is_a_clean_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(main, ["runs", "--store", str(blocker / "sub" / "r.sqlite")])
    assert res.exit_code != 0 and "r.sqlite" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


@pytest.mark.parametrize("guard, status", [("clipping", Status.DIVERGED), ("always", None)])
def test_train_guard_decides_whether_an_overflowing_msgd_run_diverges(tmp_path, guard, status):
    store = tmp_path / "s.sqlite"
    args = ["train", "--task", "temporal_order", "--length", "10", "--method", "msgd", "--lr", "10",
            "--init", "identity", "--unit", "linear", "--hidden", "16", "--max-updates", "40", "--eval-every", "20",
            "--eval-sequences", "100", "--guard", guard, "--store", str(store), "--no-progress"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = Store(store).list_runs()[0]
    assert run["config"]["guard"] == guard
    if status is not None:
        assert run["status"] == status and "diverged_at" in run["metrics"]
    else:
        assert run["status"] != Status.DIVERGED and run["metrics"]["nonfinite"] > 0


@pytest.mark.parametrize("args", [["train", "--guard", "sometimes"], ["reproduce", "table1", "--alpha-time", "hours"],
                                  ["reproduce", "table1", "--guard", "sometimes"],
                                  ["reproduce", "synthetic", "--budget", "claims"]])
def test_protocol_choices_are_checked(args):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "Invalid value" in res.output and "Traceback" not in res.output
