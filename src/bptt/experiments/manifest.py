"""The record of a reproduction's invocations (``sweep.json`` beside its report): the
machine, the command that reruns it, and every pass that worked on the sweep."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import socket
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

