"""The set-up scripts install what each command needs: the demo no test tools, the tests theirs.

``scripts/setup.sh`` is run with a stand-in Python that records every ``pip install``
instead of installing, so the test takes milliseconds and needs no network.
"""

import os
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STUB = """#!/usr/bin/env bash
if [ "$1" = "-c" ]; then exit 0; fi
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
if [ "$1 $2" = "-m pip" ]; then echo "${@:3}" >> "$PIP_LOG"; exit 0; fi
exit 1
"""


def installs(tmp_path: Path, extras: str | None, name: str) -> list[str]:
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / f"{name}.log"
    env = dict(os.environ, PYTHON=str(stub), BPTT_VENV=str(tmp_path / f"venv-{name}"), PIP_LOG=str(log))
    env.pop("BPTT_EXTRAS", None)
    prefix = "" if extras is None else f"BPTT_EXTRAS={extras} "
    subprocess.run(["bash", "-c", f'{prefix}source "{REPO}/scripts/setup.sh"'], env=env, check=True)
    return log.read_text().splitlines() if log.exists() else []


def test_the_demo_installs_no_test_extras_and_the_tests_do(tmp_path):
    demo = installs(tmp_path, "", "demo")
    tests = installs(tmp_path, "test", "tests")
    assert "install -q torch==2.13.0" in demo and "install -q torch==2.13.0" in tests
    assert demo.index("install -q torch==2.13.0") < demo.index(f"install -q -e {REPO}")
    assert f"install -q -e {REPO}[test]" in tests and not any("[" in line for line in demo)


def test_the_scripts_ask_for_their_extras():
    assert 'BPTT_EXTRAS=test source "$ROOT/scripts/setup.sh"' in (REPO / "scripts" / "test.sh").read_text()
    assert 'BPTT_EXTRAS= source "$ROOT/scripts/setup.sh"' in (REPO / "scripts" / "demo.sh").read_text()


def test_a_second_run_installs_nothing(tmp_path):
    first = installs(tmp_path, "test", "again")
    second = installs(tmp_path, "test", "again")
    assert second == first            # the log only grew by the first run's lines
