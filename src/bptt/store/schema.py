"""The results store's file layout: its tables, statuses, run keys and the small
helpers every part of the store shares (see :mod:`bptt.store`)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1



class Status(StrEnum):
    """What became of a run. ``running`` is the only status that is not final;
    ``succeeded``, ``failed`` and ``diverged`` are outcomes (they settle the run's key);
    ``stopped`` is a run interrupted before its outcome (it can be resumed)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DIVERGED = "diverged"
    STOPPED = "stopped"


#: Statuses a run can end with.
FINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.DIVERGED, Status.STOPPED)
#: All valid statuses; ``running`` is the only one that is not final.
STATUSES = (Status.RUNNING,) + FINAL_STATUSES
#: Final statuses that settle a work item: a claim for its key is refused.
OUTCOME_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.DIVERGED)

BUSY_TIMEOUT_S = 30.0
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        key     TEXT NOT NULL,
        sweep   TEXT,
        status  TEXT NOT NULL CHECK (status IN
                ('running', 'succeeded', 'failed', 'diverged', 'stopped')),
        config  TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        host    TEXT,
        pid     INTEGER
    )
    """,
    "CREATE INDEX IF NOT EXISTS runs_key ON runs (key)",
    "CREATE INDEX IF NOT EXISTS runs_sweep ON runs (sweep, status)",
    """
    CREATE TABLE IF NOT EXISTS curves (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        name   TEXT NOT NULL,
        step   INTEGER NOT NULL,
        value  REAL,
        PRIMARY KEY (run_id, name, step)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id  INTEGER NOT NULL REFERENCES runs (id),
        step    INTEGER,
        kind    TEXT NOT NULL,
        detail  TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS events_run ON events (run_id, kind)",
    """
    CREATE TABLE IF NOT EXISTS checkpoints (
        run_id  INTEGER PRIMARY KEY REFERENCES runs (id),
        step    INTEGER NOT NULL,
        payload BLOB NOT NULL,
        updated TEXT NOT NULL
    )
    """,
)


def default_store_path() -> Path:
    """Return ``$BPTT_STORE`` if set, else ``./bptt-results.sqlite``."""
    env = os.environ.get("BPTT_STORE")
    if env:
        return Path(env)
    return Path("bptt-results.sqlite")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    tolist = getattr(obj, "tolist", None)  # e.g. torch tensors
    if callable(tolist):
        return tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def config_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a config: sorted keys, no insignificant whitespace."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"),
                      default=_json_default)


def config_key(config: Mapping[str, Any]) -> str:
    """Default run key: first 16 hex digits of SHA-256 of the canonical JSON."""
    return hashlib.sha256(config_json(config).encode("utf-8")).hexdigest()[:16]


def _metrics_json(metrics: Mapping[str, Any]) -> str:
    return json.dumps(dict(metrics), sort_keys=True, default=_json_default)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _age_seconds(timestamp: str) -> float:
    then = _dt.datetime.fromisoformat(timestamp)
    if then.tzinfo is None:
        then = then.replace(tzinfo=_dt.timezone.utc)
    return (_dt.datetime.now(_dt.timezone.utc) - then).total_seconds()


def _pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid is None or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _check_status(status: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if status not in allowed:
        raise ValueError(f"invalid run status {status!r}; expected one of {', '.join(allowed)}")
