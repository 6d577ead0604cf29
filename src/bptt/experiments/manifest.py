"""The record of a reproduction's invocations (``sweep.json`` beside its report): the
machine, the command that reruns it, and every pass that worked on the sweep."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path


def machine() -> dict:
    """The machine a sweep ran on, for the report."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        bptt_version = version("bptt")
    except Exception:  # noqa: BLE001
        bptt_version = "unknown"
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "bptt": bptt_version}


def provenance() -> dict:
    """What produced a report: the commit of the source tree (``git rev-parse HEAD``
    where the package lives in a git checkout, with whether the tree had uncommitted
    changes), else the installed package version; and the exact command line.

    Returns ``{"commit", "dirty", "version", "source", "command"}`` (``commit`` and
    ``dirty`` are ``None`` outside a git checkout).
    """
    here = Path(__file__).resolve().parent
    commit = dirty = None
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        commit = git("rev-parse", "HEAD") or None
        if commit:
            dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit = dirty = None
    source = "git" if commit else "package version"
    if commit is None:
        commit = archived_commit(here.parent / "COMMIT")
        source = "git archive" if commit else source
    try:
        from importlib.metadata import version

        pkg = version("bptt")
    except Exception:  # noqa: BLE001
        pkg = "unknown"
    return {"commit": commit, "dirty": dirty, "version": pkg, "source": source, "command": shlex.join(sys.argv)}


def archived_commit(path: Path) -> str | None:
    """The commit written into ``path`` by ``git archive`` (the file holds ``$Format:%H$``,
    which ``.gitattributes``' ``export-subst`` replaces with the commit's hash), or ``None``
    where it was not substituted or is missing."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return text if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else None


def provenance_line(p: dict) -> str:
    """One line for a report: the commit (or version) and the command."""
    what = (f"commit `{p['commit'][:12]}`" + (" with uncommitted changes" if p.get("dirty") else "")
            + (" (an archive of it)" if p.get("source") == "git archive" else "")
            if p.get("commit") else f"bptt {p.get('version')} (no git checkout)")
    return f"Produced by {what}, command `{p.get('command')}`."


def rerun_command(experiment: str, budget: str, *, store: str | None, out: str | None, sweep: str | None,
                  executor: str = "inline", workers: int | None = None, address: str | None = None,
                  device: str | None = None, kernel: str | None = None) -> str:
    parts = ["bptt", "reproduce", experiment, "--budget", budget]
    if sweep:
        parts += ["--sweep", sweep]
    if store:
        parts += ["--store", store]
    if out:
        parts += ["--out", out]
    if executor != "inline":
        parts += ["--executor", executor]
    if workers:
        parts += ["--workers", str(workers)]
    if address:
        parts += ["--address", address]
    if device:
        parts += ["--device", device]
    if kernel:
        parts += ["--kernel", kernel]
    return shlex.join(parts)


def manifest_path(out_dir: Path) -> Path:
    return Path(out_dir) / "sweep.json"


def read_manifest(out_dir: Path) -> dict:
    p = manifest_path(out_dir)
    if p.exists():
        try:
            return json.loads(p.read_text())
        except ValueError:
            return {}
    return {}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

