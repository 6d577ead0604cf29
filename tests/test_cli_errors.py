"""Bad input and broken surroundings give one-line messages, never tracebacks; commands
that read never write."""

import socket
import sqlite3
import time

import pytest
import torch
from click.testing import CliRunner

from bptt.cli import main
from bptt.store import Store

SMALL = ["--length", "10", "--hidden", "8", "--max-updates", "20", "--eval-every", "10",
         "--eval-sequences", "50", "--no-progress"]


def invoke(args):
    return CliRunner().invoke(main, args)


def assert_clean_error(res, *words):
    """Exit code != 0, a message naming ``words``, and no traceback or exception escaping."""
    assert res.exit_code not in (0, None), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    message = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(message) == 1, res.output
    for w in words:
        assert w in res.output, res.output


def _foreign(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (name TEXT, distance REAL)")
    conn.execute("INSERT INTO runs VALUES ('morning', 5.2)")
    conn.commit()
    conn.close()


def test_bogus_device(tmp_path):
    res = invoke(["train", "--device", "bogus", "--store", str(tmp_path / "s.sqlite"), *SMALL])
    assert_clean_error(res, "'bogus' is not a device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [["train", *SMALL], ["reproduce", "table1", "--dataset", "jsb_chorales"]])
def test_cuda_without_cuda(tmp_path, command):
    res = invoke([*command, "--device", "cuda", "--store", str(tmp_path / "s.sqlite")])
    assert_clean_error(res, "CUDA is not available")


@pytest.mark.parametrize("where", ["proc", "under_file"])
def test_store_where_none_can_be(tmp_path, where):
    if where == "proc":
        path = "/proc/x.sqlite"
    else:
        (tmp_path / "plain").write_text("a regular file")
        path = str(tmp_path / "plain" / "s.sqlite")
    res = invoke(["train", "--store", path, *SMALL])
    assert_clean_error(res, path if where == "proc" else "is a file, not a folder")


def test_foreign_sqlite_refused_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    _foreign(path)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    time.sleep(0.01)
    for args in (["train", *SMALL], ["runs"], ["sweeps"]):
        res = invoke([*args, "--store", str(path)])
        assert_clean_error(res, "not a bptt results store", "left untouched")
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]      # no WAL files either


def test_training_too_big_for_memory_refused(tmp_path):
    res = invoke(["train", "--hidden", "1000000", "--store", str(tmp_path / "s.sqlite"), "--length", "10",
                  "--no-progress"])
    assert_clean_error(res, "GiB", "hidden 1000000")
    assert Store(tmp_path / "s.sqlite").list_runs() == []


def test_runs_reads_without_writing(tmp_path):
    path = tmp_path / "s.sqlite"
    res = invoke(["runs", "--store", str(path)])
    assert_clean_error(res, "no results store")
    assert not path.exists()                                  # not created by a reading command
    with Store(path) as s:
        s.finish_run(s.start_run({"task": "adding", "seed": 0}, sweep="figure7-smoke"), "failed", {"error": 0.5})
        s.start_run({"task": "adding", "seed": 1})
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    for args in (["runs"], ["sweeps"], ["runs", "--json"]):
        assert invoke([*args, "--store", str(path)]).exit_code == 0
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_runs_of_an_unknown_sweep(tmp_path):
    path = str(tmp_path / "s.sqlite")
    Store(path).close()
    assert_clean_error(invoke(["runs", "--store", path, "--sweep", "figure7-nothing"]), "no sweep 'figure7-nothing'")


def test_ray_address_nobody_listens_at(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:                   # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    res = invoke(["reproduce", "generalization", "--executor", "ray", "--address", f"127.0.0.1:{port}",
                  "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out"), "--no-progress"])
    assert time.monotonic() - start < 30
    assert_clean_error(res, f"no Ray cluster answers at 127.0.0.1:{port}")


def test_sweeps_lists_progress(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = str(tmp_path / "s.sqlite")
    with Store(path) as s:
        for i, status in enumerate(["succeeded", "succeeded", "failed", "stopped"]):
            s.finish_run(s.start_run({"i": i}, sweep="figure7-smoke", key=f"k{i}"), status)
        s.start_run({"i": 4}, sweep="figure7-smoke", key="k4")                  # live: this process
        stranded = s.start_run({"i": 5}, sweep="figure7-smoke", key="k5")
        s._connection.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, stranded))
        s.finish_run(s.start_run({"i": 0}, sweep="mine", key="m0"), "succeeded")
    res = invoke(["sweeps", "--store", path])
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split()[1:] for line in res.output.splitlines()[1:]}
    assert rows["figure7-smoke"] == ["45", "3", "2", "1", "1"]
    assert rows["mine"] == ["?", "1", "1", "0", "0"]
