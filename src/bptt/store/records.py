"""The results store's queries: runs and their claims, curves, events and checkpoints
(see :mod:`bptt.store`)."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bptt.store.database import Database
from bptt.store.schema import (
    FINAL_STATUSES, OUTCOME_STATUSES, STATUSES, Status, _age_seconds, _check_status, _metrics_json, _now,
    _pid_alive, config_json, config_key,
)


class Store(Database):
    """A results store backed by one SQLite file.

    ``Store(path)`` creates the parent directories and the schema when they
    are missing; opening an existing store never alters stored results.
    ``path`` may be ``":memory:"`` for a private, in-memory store.

    Raises ``ValueError`` when the file is not a SQLite database or was
    written by a newer schema version than this code understands.
    """

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
            key = config_key(config)
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

    def sweeps(self) -> list[str]:
        """The names of the sweeps that have runs in the store, sorted."""
        rows = self._connection.execute("SELECT DISTINCT sweep FROM runs WHERE sweep IS NOT NULL ORDER BY sweep")
        return [r[0] for r in rows.fetchall()]

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
                if status == Status.RUNNING:
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

    def adopt(self, run_ids: Iterable[int]) -> None:
        """Make this process the owner of the runs ``run_ids`` and mark them ``running``.

        Resuming a training takes its runs over this way. It is refused, atomically, when
        any of them is running live in another process (see :meth:`is_live`): two
        processes would otherwise write the same runs.

        Raises:
            KeyError: an id names no run.
            ValueError: a run is live in another process (the message names it).
        """
        ids = [int(r) for r in run_ids]
        with self._write() as conn:
            owners = []
            for rid in ids:
                row = conn.execute("SELECT status, host, pid, updated FROM runs WHERE id = ?", (rid,)).fetchone()
                if row is None:
                    raise KeyError(f"no run with id {rid} in the results store")
                status, host, pid, updated = row
                mine = host == self._host and pid == os.getpid()
                if status == Status.RUNNING and not mine and not self._abandoned(host, pid, updated, None):
                    owners.append(f"run {rid} (process {pid} on {host})")
            if owners:
                raise ValueError(f"{', '.join(owners)} {'is' if len(owners) == 1 else 'are'} still being trained; "
                                 f"resuming here as well would have two processes write the same runs. Wait for "
                                 f"that process to end, or stop it (kill -TERM PID) and resume then")
            now = _now()
            for rid in ids:
                conn.execute("UPDATE runs SET status = 'running', host = ?, pid = ?, updated = ? WHERE id = ?",
                             (self._host, os.getpid(), now, rid))

    def settle_abandoned(self, stale_after: float | None = None) -> list[int]:
        """Mark ``stopped`` every ``running`` run whose process is gone; return their ids.

        A run counts as abandoned as in :meth:`claim`: its owner was on this host and is
        no longer alive, or (with ``stale_after``) it has not been updated for that many
        seconds. Each settled run gets a ``settled`` event. Stopped runs can be resumed
        (``bptt train --resume``) or are claimed again by their sweep.
        """
        with self._write() as conn:
            rows = conn.execute("SELECT id, host, pid, updated FROM runs WHERE status = 'running'").fetchall()
            gone = [rid for rid, host, pid, updated in rows if self._abandoned(host, pid, updated, stale_after)]
            now = _now()
            for rid in gone:
                conn.execute("UPDATE runs SET status = 'stopped', updated = ? WHERE id = ?", (now, rid))
                conn.execute("INSERT INTO events (run_id, step, kind, detail, created)"
                             " VALUES (?, NULL, 'settled', 'its process was gone; marked stopped', ?)", (rid, now))
            return gone

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
