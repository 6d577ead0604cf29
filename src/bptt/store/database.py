"""Opening a results store: the file checks, the schema and its version, WAL mode,
one connection and its write transactions (see :mod:`bptt.store`)."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bptt.store.schema import _SCHEMA, _SQLITE_HEADER, BUSY_TIMEOUT_S, SCHEMA_VERSION, default_store_path


class Database:
    """One SQLite file opened as a results store: checks, schema, WAL, transactions.

    ``Store(path)`` creates the parent directories and the schema when they
    are missing; opening an existing store never alters stored results.
    ``path`` may be ``":memory:"`` for a private, in-memory store.

    Raises ``ValueError`` when the file is not a SQLite database, is a SQLite
    database of something else (tables but no results-store schema), or was
    written by a newer schema version than this code understands.

    With ``read_only=True`` the file is opened for reading only (SQLite's
    ``mode=ro``): it must exist already (``FileNotFoundError`` otherwise), and
    nothing is ever written to it, not even the schema.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> None:
        if path is None:
            path = default_store_path()
        self.memory = str(path) == ":memory:"
        self.path: Path | None = None if self.memory else Path(path)
        self.read_only = read_only and not self.memory
        self._host = socket.gethostname()
        self._conn: sqlite3.Connection | None = None
        if self.path is not None:
            self._check_file(self.path)
            if self.read_only and not self.path.exists():
                raise FileNotFoundError(f"no results store at {self.path}; pass the path of an existing "
                                        f"store (--store PATH or $BPTT_STORE)")
            if not self.read_only:
                self._make_parent(self.path)
        target = ":memory:" if self.path is None else str(self.path)
        if self.read_only:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                                   isolation_level=None)
        else:
            conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._conn = conn
            if self.read_only:
                self._check_schema()
            else:
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

    @staticmethod
    def _make_parent(path: Path) -> None:
        parent = path.parent
        for above in (parent, *parent.parents):       # a regular file where a folder must be
            if above.exists():
                if not above.is_dir():
                    raise ValueError(f"cannot create the results store {path}: {above} is a file, not a "
                                     f"folder; choose another path (--store PATH or $BPTT_STORE)")
                break
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot create the folder {parent} for the results store: "
                             f"{exc.strerror or exc}; choose another path (--store PATH or $BPTT_STORE)") from None

    def _check_schema(self) -> None:
        """Refuse, without writing, a file that is not a results store this code can read."""
        self._connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        version = self._stored_version()
        if version is None:
            raise ValueError(self._foreign())
        if version > SCHEMA_VERSION:
            raise ValueError(self._too_new(version))

    def _foreign(self) -> str:
        return (f"{self.path} is a SQLite database but not a bptt results store (it has no bptt schema). "
                f"It was left untouched; choose another path (--store PATH or $BPTT_STORE).")

    def _setup(self) -> None:
        conn = self._connection
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # Read-only look at an existing schema before anything is written, in one
        # read transaction: another process may be creating the store meanwhile, and
        # two separate reads could see its tables without its schema version.
        conn.execute("BEGIN")
        try:
            self._refuse_unless_ours()
        finally:
            conn.execute("COMMIT")
        if not self.memory:
            self._enable_wal()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._write():
            self._refuse_unless_ours()                  # again, under the write lock
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            for statement in _SCHEMA:
                conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))

    def _refuse_unless_ours(self) -> None:
        """Raise unless the database is empty or a results store this code can read."""
        version = self._stored_version()
        if version is not None and version > SCHEMA_VERSION:
            raise ValueError(self._too_new(version))
        if version is None and self._connection.execute("SELECT 1 FROM sqlite_master").fetchone() is not None:
            raise ValueError(self._foreign())            # another program's database: never alter it

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

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = ":memory:" if self.path is None else str(self.path)
        return f"Store({where!r})"
