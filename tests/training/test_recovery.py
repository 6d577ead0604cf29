"""Drills: trainings killed before their first checkpoint, and two processes resuming one.

Each drill runs ``bptt train`` in a child process and kills it (``kill -9`` leaves no
chance to record anything), then checks what the store says and what ``--resume`` does.
"""

import json
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from bptt.cli import main
from bptt.store import Status, Store

# about 10 s of training on one core; never checkpointed on its own
LONG = ["--length", "10", "--hidden", "8", "--max-updates", "4000", "--eval-every", "1000",
        "--eval-sequences", "100", "--seeds", "0-1", "--no-progress"]


def _spawn(args):
    return subprocess.Popen([sys.executable, "-m", "bptt.cli", *args], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _runs(path):
    if not os.path.exists(path):
        return []
    try:
        with Store(path, read_only=True) as s:
            return s.list_runs()
    except ValueError:          # the schema is being created
        return []


def _cli(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_killed_before_first_checkpoint_restarts_from_scratch(tmp_path):
    path = str(tmp_path / "s.sqlite")
    proc = _spawn(["train", "--store", path, "--checkpoint-every", "1000000", *LONG])
    runs = _wait_for(lambda: len(_runs(path)) == 2 and _runs(path))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    with Store(path) as s:
        stranded = s.list_runs()
        assert all(r["status"] == Status.RUNNING and s.load_checkpoint(r["id"]) is None for r in stranded)
        assert not any(s.is_live(r) for r in stranded)
    res = _cli(["train", "--store", path, "--resume", str(runs[0]["id"])])
    assert res.exit_code == 0, res.output
    assert "restarting group" in res.output and "from scratch" in res.output
    with Store(path) as s:
        after = {r["id"]: r for r in s.list_runs()}
    assert set(after) == {r["id"] for r in runs}                       # the same runs, no new ones
    assert all(r["status"] in (Status.SUCCEEDED, Status.FAILED) for r in after.values())
    # the restart is the uninterrupted training: the same numbers
    fresh = str(tmp_path / "fresh.sqlite")
    assert _cli(["train", "--store", fresh, "--checkpoint-every", "1000000", *LONG]).exit_code == 0
    with Store(fresh) as s:
        expected = {r["config"]["seed"]: r["metrics"] for r in s.list_runs()}
    for r in after.values():
        got, want = r["metrics"], expected[r["config"]["seed"]]
        assert (got["updates"], got["error"], got["clipped_fraction"]) == \
            (want["updates"], want["error"], want["clipped_fraction"])


def test_settle_marks_dead_runs_stopped(tmp_path):
    path = str(tmp_path / "s.sqlite")
    proc = _spawn(["train", "--store", path, "--checkpoint-every", "1000000", *LONG])
    _wait_for(lambda: len(_runs(path)) == 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    listed = _cli(["runs", "--store", path, "--json"])
    assert {json.loads(line)["status"] for line in listed.output.splitlines()} == {"running"}
    res = _cli(["runs", "--store", path, "--settle"])
    assert res.exit_code == 0 and "marked 2 stranded run(s) stopped" in res.output
    with Store(path) as s:
        settled = s.list_runs()
        assert {r["status"] for r in settled} == {Status.STOPPED}
        assert all(s.count_events(r["id"], "settled") == 1 for r in settled)
    again = _cli(["runs", "--store", path, "--settle"])
    assert "marked 0 stranded run(s) stopped" in again.output


def test_resume_refused_while_another_process_trains(tmp_path):
    path = str(tmp_path / "s.sqlite")
    proc = _spawn(["train", "--store", path, "--checkpoint-every", "100", *LONG])
    try:
        def checkpointed():
            runs = _runs(path)
            if len(runs) < 2:
                return None
            with Store(path, read_only=True) as s:
                return runs if s.load_checkpoint(runs[0]["id"]) is not None else None
        runs = _wait_for(checkpointed)
        res = _cli(["train", "--store", path, "--resume", str(runs[0]["id"])])
        assert res.exit_code != 0
        assert f"process {proc.pid}" in res.output and "still being trained" in res.output
        assert "Traceback" not in res.output
        with Store(path) as s:                      # the refusal took nothing over
            assert all(r["pid"] == proc.pid and r["status"] == Status.RUNNING for r in s.list_runs())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    with Store(path) as s:
        assert {r["status"] for r in s.list_runs()} == {Status.STOPPED}
    res = _cli(["train", "--store", path, "--resume", str(runs[0]["id"])])
    assert res.exit_code == 0, res.output
    assert "resuming group" in res.output
    with Store(path) as s:
        assert all(r["status"] in (Status.SUCCEEDED, Status.FAILED) and r["pid"] == os.getpid()
                   for r in s.list_runs())
