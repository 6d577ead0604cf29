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

The parts: the layout, statuses and keys (:mod:`bptt.store.schema`), opening the
file (:mod:`bptt.store.database`) and the queries (:mod:`bptt.store.records`).
"""

from bptt.store.records import Store
from bptt.store.schema import (
    BUSY_TIMEOUT_S, FINAL_STATUSES, OUTCOME_STATUSES, SCHEMA_VERSION, STATUSES, Status, config_json, config_key,
    default_store_path,
)

__all__ = [
    "BUSY_TIMEOUT_S",
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
