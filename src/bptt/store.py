"""Results store: one SQLite file holding runs, curves, events and checkpoints.

The store is shared by the trainer, the ``bptt runs`` command line and
resumable sweeps in which several processes write to the same file at once.
It uses only the standard library ``sqlite3`` module, WAL journal mode and a
generous busy timeout, so concurrent writers wait for each other instead of
failing.  Every state change runs in its own ``BEGIN IMMEDIATE`` transaction.

Tables
------
``meta(key TEXT PRIMARY KEY, value TEXT)``
    Store-wide settings; ``schema_version`` records the layout of the file.
    A file written by a newer version of this module is refused rather than
    modified.

``runs(id, key, sweep, status, config, metrics, created, updated, host, pid)``
    One row per training run.  ``id`` is an autoincrementing integer that is
    never reused.  ``key`` identifies the work item (by default the first 16
    hex digits of the SHA-256 of the canonical config JSON), ``sweep`` an
    optional sweep name, ``status`` one of ``running``, ``succeeded``,
    ``failed``, ``diverged`` or ``stopped``.  ``config`` and ``metrics`` are
    JSON objects (config with sorted keys).  ``created`` and ``updated`` are
    UTC ISO-8601 timestamps; ``updated`` is bumped by every write that concerns
    the run and serves as a heartbeat.  ``host`` and ``pid`` name the owning
    process.

``curves(run_id, name, step, value)``
    Long-format training curves: one row per (run, quantity, step), e.g. the
    loss, gradient norm, clipping indicator, Omega regulariser, spectral
    radius or validation error recorded at an update.  SQLite cannot store a
    NaN ``REAL`` (it turns it into NULL), so NaN is stored as NULL and read
    back as NaN; infinities are stored as they are.

``events(id, run_id, step, kind, detail, created)``
    Discrete occurrences during training, e.g. ``nonfinite`` for an update
    skipped because the gradient was not finite.

``checkpoints(run_id, step, payload, updated)``
    The latest checkpoint of each run as an opaque blob; saving replaces the
    previous one.

A ``Store`` object holds one connection and must not be shared across a
``fork``; each process opens its own.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "FINAL_STATUSES",
    "OUTCOME_STATUSES",
    "Store",
    "Status",
    "config_json",
    "config_key",
    "default_store_path",
]

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


class Store:
    """A results store backed by one SQLite file.

    ``Store(path)`` creates the parent directories and the schema when they
    are missing; opening an existing store never alters stored results.
    ``path`` may be ``":memory:"`` for a private, in-memory store.

    Raises ``ValueError`` when the file is not a SQLite database or was
    written by a newer schema version than this code understands.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            path = default_store_path()
        self.memory = str(path) == ":memory:"
        self.path: Path | None = None if self.memory else Path(path)
        self._host = socket.gethostname()
        self._conn: sqlite3.Connection | None = None
        if self.path is not None:
            self._check_file(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        target = ":memory:" if self.path is None else str(self.path)
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._conn = conn
            self._setup()
        except sqlite3.OperationalError:
            conn.close()
            self._conn = None
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            self._conn = None
            raise ValueError(self._not_a_database(self.path, exc)) from exc
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # ------------------------------------------------------------------ setup

    @staticmethod
    def _not_a_database(path: Path | None, exc: Exception | None = None) -> str:
        reason = f" ({exc})" if exc is not None else ""
        return (f"{path} is not a usable bptt results store: it is not a SQLite "
                f"database or it is damaged{reason}. It was left untouched; move it "
                f"aside or choose another path (e.g. via $BPTT_STORE).")

    @classmethod
    def _check_file(cls, path: Path) -> None:
        if not path.exists():
            return
        if path.is_dir():
            raise ValueError(f"{path} is a directory, not a results store file; "
                             f"pass the path of a .sqlite file instead.")
        with open(path, "rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
        if header and header != _SQLITE_HEADER:
            raise ValueError(cls._not_a_database(path))

    def _setup(self) -> None:
        conn = self._connection
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # Read-only look at an existing schema before anything is written.
        version = self._stored_version()
        if version is not None and version > SCHEMA_VERSION:
            raise ValueError(self._too_new(version))
        if not self.memory:
            self._enable_wal()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._write():
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise ValueError(self._too_new(int(row[0])))
            for statement in _SCHEMA:
                conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))

    def _too_new(self, version: int) -> str:
        where = self.path if self.path is not None else ":memory:"
        return (f"{where} has schema version {version}, newer than the version "
                f"{SCHEMA_VERSION} this bptt understands; upgrade bptt to read it.")

    def _stored_version(self) -> int | None:
        conn = self._connection
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else int(row[0])

    def _enable_wal(self) -> None:
        conn = self._connection
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"could not enable WAL mode (got {mode!r})")
            return

    @property
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("the results store is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front."""
        conn = self._connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()

    def close(self) -> None:
        """Close the connection; further use raises ``ValueError``."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = ":memory:" if self.path is None else str(self.path)
        return f"Store({where!r})"

    @property
    def schema_version(self) -> int:
        version = self._stored_version()
        assert version is not None
        return version

    # ------------------------------------------------------------------- runs

    def _insert_run(self, conn: sqlite3.Connection, config: Mapping[str, Any],
                    sweep: str | None, key: str | None) -> int:
        text = config_json(config)
        if key is None:
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        now = _now()
        cur = conn.execute(
            "INSERT INTO runs (key, sweep, status, config, metrics, created, updated, host, pid)"
            " VALUES (?, ?, 'running', ?, '{}', ?, ?, ?, ?)",
            (key, sweep, text, now, now, self._host, os.getpid()))
        return int(cur.lastrowid)

    @staticmethod
    def _require_run(conn: sqlite3.Connection, run_id: int) -> tuple:
        row = conn.execute("SELECT metrics FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id} in the results store")
        return row

    @staticmethod
    def _touch(conn: sqlite3.Connection, run_id: int) -> None:
        conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (_now(), int(run_id)))

    def start_run(self, config: Mapping[str, Any], *, sweep: str | None = None,
                  key: str | None = None) -> int:
        """Record a new run with status ``running`` and return its id.

        ``key`` defaults to :func:`config_key` of ``config``.  Unlike
        :meth:`claim`, this always creates a run.
        """
        with self._write() as conn:
            return self._insert_run(conn, config, sweep, key)

    def update_run(self, run_id: int, metrics: Mapping[str, Any] | None = None,
                   status: str | None = None) -> None:
        """Merge ``metrics`` into the run's metrics and optionally set its status.

        Always bumps the run's ``updated`` time, so ``update_run(run_id)``
        alone works as a heartbeat.
        """
        if status is not None:
            _check_status(status, STATUSES)
        self._update(run_id, metrics, status)

    def finish_run(self, run_id: int, status: str,
                   metrics: Mapping[str, Any] | None = None) -> None:
        """Mark a run as ended with a final ``status`` and store final metrics.

        ``status`` must be one of :data:`FINAL_STATUSES`.  The metrics are
        merged into those already stored (final values win).
        """
        _check_status(status, FINAL_STATUSES)
        self._update(run_id, metrics, status)

    def _update(self, run_id: int, metrics: Mapping[str, Any] | None,
                status: str | None) -> None:
        with self._write() as conn:
            row = self._require_run(conn, run_id)
            merged = json.loads(row[0])
            if metrics:
                merged.update(json.loads(_metrics_json(metrics)))
            sets = ["metrics = ?", "updated = ?"]
            args: list[Any] = [_metrics_json(merged), _now()]
            if status is not None:
                sets.append("status = ?")
                args.append(status)
            conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*args, int(run_id)))

    _RUN_COLUMNS = "id, key, sweep, status, config, metrics, created, updated, host, pid"

    @staticmethod
    def _run_dict(row: tuple) -> dict[str, Any]:
        rid, key, sweep, status, config, metrics, created, updated, host, pid = row
        return {
            "id": rid, "key": key, "sweep": sweep, "status": status,
            "config": json.loads(config), "metrics": json.loads(metrics),
            "created": created, "updated": updated, "host": host, "pid": pid,
        }

    def get_run(self, run_id: int) -> dict[str, Any]:
        """Return one run as a dict; ``KeyError`` for an unknown id."""
        row = self._connection.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id} in the results store")
        return self._run_dict(row)

    def list_runs(self, sweep: str | None = None, status: str | None = None,
                  limit: int | None = None, *, key: str | None = None) -> list[dict[str, Any]]:
        """Runs matching the filters, newest first."""
        where, args = [], []
        if sweep is not None:
            where.append("sweep = ?")
            args.append(sweep)
        if status is not None:
            _check_status(status, STATUSES)
            where.append("status = ?")
            args.append(status)
        if key is not None:
            where.append("key = ?")
            args.append(key)
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [self._run_dict(r) for r in self._connection.execute(sql, args).fetchall()]

    # --------------------------------------------------------------- claiming

    def _abandoned(self, host: str | None, pid: int | None, updated: str,
                   stale_after: float | None) -> bool:
        if host == self._host and not _pid_alive(pid):
            return True
        if stale_after is not None and _age_seconds(updated) >= stale_after:
            return True
        return False

    def is_live(self, run: Mapping[str, Any], stale_after: float | None = None) -> bool:
        """Whether ``run`` is ``running`` in a process that is still alive.

        The opposite of what :meth:`claim` calls abandoned: a ``running`` run is live
        unless its owner was on this host and is no longer alive, or it has not been
        updated for ``stale_after`` seconds (with ``None``, a run owned by another host
        counts as live however old). A run in any other status is not live. A run of
        this very process is live; :meth:`owns` tells it apart.

        Args:
            run: a run as returned by :meth:`get_run` or :meth:`list_runs`.
            stale_after: seconds without an update after which a run counts as abandoned.
        """
        if run["status"] != Status.RUNNING:
            return False
        return not self._abandoned(run["host"], run["pid"], run["updated"], stale_after)

    def owns(self, run: Mapping[str, Any]) -> bool:
        """Whether ``run`` (from :meth:`get_run` or :meth:`list_runs`) was started by this process."""
        return run["host"] == self._host and run["pid"] == os.getpid()

    def claim(self, key: str, config: Mapping[str, Any], sweep: str | None = None,
              stale_after: float | None = None) -> int | None:
        """Atomically claim the work item ``key``; return a new run id or ``None``.

        A new run is started when no run with this key exists, or when every
        existing one either ended as ``stopped`` or is ``running`` but
        abandoned: its owner was on this host and is no longer alive, or it
        has not been updated for ``stale_after`` seconds.  Abandoned runs are
        marked ``stopped`` and get a ``superseded`` event.  ``None`` is
        returned when a run with this key succeeded, failed or diverged, or is
        still running live.
        """
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, status, host, pid, updated FROM runs WHERE key = ?", (key,)).fetchall()
            abandoned = []
            for rid, status, host, pid, updated in rows:
                if status in OUTCOME_STATUSES:
                    return None
                if status == "running":
                    if not self._abandoned(host, pid, updated, stale_after):
                        return None
                    abandoned.append(rid)
            run_id = self._insert_run(conn, config, sweep, key)
            now = _now()
            for rid in abandoned:
                conn.execute("UPDATE runs SET status = 'stopped', updated = ? WHERE id = ?",
                             (now, rid))
                conn.execute(
                    "INSERT INTO events (run_id, step, kind, detail, created)"
                    " VALUES (?, NULL, 'superseded', ?, ?)",
                    (rid, f"abandoned; superseded by run {run_id}", now))
            return run_id

    def finished_keys(self, sweep: str | None = None) -> set[str]:
        """Keys (of ``sweep``, or of all runs) with a run that succeeded,
        failed or diverged, i.e. the keys :meth:`claim` refuses for good."""
        marks = ", ".join("?" * len(OUTCOME_STATUSES))
        sql = f"SELECT DISTINCT key FROM runs WHERE status IN ({marks})"
        args: list[Any] = list(OUTCOME_STATUSES)
        if sweep is not None:
            sql += " AND sweep = ?"
            args.append(sweep)
        return {r[0] for r in self._connection.execute(sql, args).fetchall()}

    # ----------------------------------------------------------------- curves

    def log_curve(self, run_id: int, rows: Iterable[Mapping[str, Any]]) -> None:
        """Store curve records, each a mapping with an integer ``step`` and
        numeric fields.  ``None`` fields are skipped; NaN and +-inf are kept.
        A value logged again for the same (name, step) replaces the old one.
        """
        records = []
        for row in rows:
            if "step" not in row:
                raise ValueError(f"curve row without a 'step': {dict(row)!r}")
            step = int(row["step"])
            for name, value in row.items():
                if name == "step" or value is None:
                    continue
                v = float(value)
                records.append((int(run_id), str(name), step, None if math.isnan(v) else v))
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.executemany(
                "INSERT OR REPLACE INTO curves (run_id, name, step, value) VALUES (?, ?, ?, ?)",
                records)
            self._touch(conn, run_id)

    def get_curve(self, run_id: int, names: Iterable[str] | None = None
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Curves of a run as ``{name: (steps, values)}`` sorted by step.

        Steps are ``int64`` arrays and values ``float64`` arrays (NaN where a
        NaN was logged).  With ``names``, every requested name is present,
        with empty arrays when nothing was logged under it.
        """
        conn = self._connection
        if names is None:
            cur = conn.execute(
                "SELECT name, step, value FROM curves WHERE run_id = ? ORDER BY name, step",
                (int(run_id),))
            wanted: list[str] = []
        else:
            wanted = [str(n) for n in names]
            marks = ", ".join("?" * len(wanted)) or "NULL"
            cur = conn.execute(
                f"SELECT name, step, value FROM curves WHERE run_id = ? AND name IN ({marks})"
                " ORDER BY name, step", (int(run_id), *wanted))
        steps: dict[str, list[int]] = {n: [] for n in wanted}
        values: dict[str, list[float]] = {n: [] for n in wanted}
        for name, step, value in cur:
            steps.setdefault(name, []).append(step)
            values.setdefault(name, []).append(math.nan if value is None else value)
        return {
            name: (np.asarray(steps[name], dtype=np.int64),
                   np.asarray(values[name], dtype=np.float64))
            for name in steps
        }

    # ----------------------------------------------------------------- events

    def log_event(self, run_id: int, step: int | None, kind: str, detail: str = "") -> None:
        """Record a discrete event, e.g. ``kind="nonfinite"`` for a skipped update."""
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "INSERT INTO events (run_id, step, kind, detail, created) VALUES (?, ?, ?, ?, ?)",
                (int(run_id), None if step is None else int(step), str(kind), str(detail),
                 _now()))
            self._touch(conn, run_id)

    def events(self, run_id: int, kind: str | None = None) -> list[dict[str, Any]]:
        """Events of a run (optionally of one kind) in the order they were logged."""
        sql = "SELECT id, step, kind, detail, created FROM events WHERE run_id = ?"
        args: list[Any] = [int(run_id)]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY id"
        return [
            {"id": i, "run_id": int(run_id), "step": s, "kind": k, "detail": d, "created": c}
            for i, s, k, d, c in self._connection.execute(sql, args).fetchall()
        ]

    def count_events(self, run_id: int, kind: str) -> int:
        """Number of events of ``kind`` logged for a run."""
        row = self._connection.execute(
            "SELECT COUNT(*) FROM events WHERE run_id = ? AND kind = ?",
            (int(run_id), kind)).fetchone()
        return int(row[0])

    # ------------------------------------------------------------ checkpoints

    def save_checkpoint(self, run_id: int, step: int, payload: bytes) -> None:
        """Store ``payload`` as the run's checkpoint, replacing any older one."""
        self.save_checkpoints([(run_id, step, payload)])

    def save_checkpoints(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        """Save several runs' checkpoints ``(run_id, step, payload)`` in one transaction.

        The runs of one ensemble are checkpointed together, so that a process killed
        at any moment leaves either all of them at the new step or all at the old one.
        """
        now = _now()
        with self._write() as conn:
            for run_id, step, payload in items:
                self._require_run(conn, run_id)
                conn.execute(
                    "INSERT INTO checkpoints (run_id, step, payload, updated) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (run_id) DO UPDATE SET step = excluded.step,"
                    " payload = excluded.payload, updated = excluded.updated",
                    (int(run_id), int(step), sqlite3.Binary(bytes(payload)), now))
                self._touch(conn, run_id)

    def load_checkpoint(self, run_id: int) -> tuple[int, bytes] | None:
        """The run's latest checkpoint as ``(step, payload)``, or ``None``."""
        row = self._connection.execute(
            "SELECT step, payload FROM checkpoints WHERE run_id = ?", (int(run_id),)).fetchone()
        if row is None:
            return None
        return int(row[0]), bytes(row[1])
