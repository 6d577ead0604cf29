"""Drill: ``kill -9`` the driver of ``--executor processes``; its workers must end too,
and running the same command again must finish the sweep."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bptt.store import Status, Store

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")       # a zombie has ended


def test_killing_the_driver_ends_its_workers(tmp_path):
    store = str(tmp_path / "s.sqlite")
    args = [sys.executable, "-m", "bptt.cli", "reproduce", "figure7", "--budget", "smoke", "--executor",
            "processes", "--workers", "2", "--store", store, "--out", str(tmp_path / "out"), "--no-progress",
            "--no-report"]
    driver = subprocess.Popen(args, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:                  # until a worker trains
            if os.path.exists(store):
                try:
                    with Store(store, read_only=True) as s:
                        if s.list_runs(status=Status.RUNNING):
                            break
                except ValueError:
                    pass
            time.sleep(0.1)
        else:
            raise AssertionError("no run started")
        workers = _children(driver.pid)
        assert len(workers) >= 2, workers
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        deadline = time.monotonic() + 40               # seconds on an idle machine; more under load
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        left = [w for w in workers if _alive(w)]
        assert not left, f"workers {left} outlived their driver"
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
    with Store(store) as s:                                  # what the workers did is settled or stopped
        assert not any(s.is_live(r) for r in s.list_runs())
    rerun = subprocess.run(args, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "45/45 runs settled" in rerun.stdout
