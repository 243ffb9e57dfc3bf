"""Where the prediction log lives: a SQLite file (the embedded default) or a PostgreSQL
database shared by several server workers, batch scoring and the monitor.

Predictions are stored a request at a time (table ``prediction_parts``, in PostgreSQL
``loopml_prediction_parts``): one database row per served request, or per part of a scored
batch, holding its rows' features column by column, the predictions and the probabilities as
JSON (writing a database row per prediction took about a third of a served 100-row request's
time in a profile). Labels stay one database row per prediction
(``labels``), by request id and row. Logs written before (one database row per prediction,
table ``predictions``) are still read.

Both stores take the same rows and give back the same tuples; :mod:`loopml.predlog` holds
the typed record, the background writer and the reader on top of them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loopml.exceptions import StorageError
from loopml.secrets import redact_url

LogTarget = Path | str
"""A SQLite file, or a ``postgresql://`` URL (already expanded from its ``${VAR}``)."""

PART_COLUMNS = (
    "request_id", "first_row", "n_rows", "ts", "model_version", "features", "predictions",
    "probabilities",
)  # fmt: skip
"""A stored part: ``features`` a JSON object of column lists, ``predictions`` and
``probabilities`` JSON lists (``probabilities`` null for regression)."""
LEGACY_COLUMNS = (
    "request_id", "row", "ts", "model_version", "features", "prediction", "probability",
)  # fmt: skip
"""A row of a log written before parts: one prediction, its features a JSON object."""


@dataclass(frozen=True)
class StoredLog:
    """What a log holds, as stored: parts, rows of the older layout, labels."""

    parts: list[tuple[Any, ...]]
    legacy: list[tuple[Any, ...]]
    labels: list[tuple[str, int, str]]
    """``(request_id, row, label as JSON)``."""


def is_database_url(target: LogTarget) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgresql+psycopg://"))


def describe(target: LogTarget) -> str:
    """The target as it may be printed (a URL's password masked)."""
    return redact_url(target) if is_database_url(target) else str(target)


class Store(Protocol):
    """The SQL side of the log. Calls come from one thread at a time (the caller locks)."""

    def insert_parts(self, parts: list[tuple[Any, ...]], predictions: int) -> None: ...
    def ranges(self, request_ids: list[str]) -> list[tuple[str, int, int]]: ...
    def upsert_labels(self, rows: list[tuple[str, int, str, str]]) -> None: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


def missing_rows(
    wanted: Iterable[tuple[str, int]], ranges: list[tuple[str, int, int]]
) -> list[tuple[str, int]]:
    """The ``(request_id, row)`` pairs that no ``(request_id, first_row, n_rows)`` covers."""
    by_id: dict[str, list[tuple[int, int]]] = {}
    for request_id, first, n in ranges:
        by_id.setdefault(request_id, []).append((first, first + n))
    return [
        (r, i) for r, i in wanted if not any(first <= i < stop for first, stop in by_id.get(r, ()))
    ]


class SqliteStore:
    """One SQLite file in WAL mode (readers never block the writer)."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        _retry_while_locked(lambda: _set_up(self._conn), self.where)
        self._legacy = _sqlite_has(self._conn, "predictions")

    def _transaction(self, sql: str, rows: list[tuple[Any, ...]], what: str) -> None:
        """All ``rows`` or none (a full disk leaves no partial batch)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StorageError(
                f"prediction log {self.where}: {what} not written ({exc}); "
                "free disk space or move paths.prediction_log"
            ) from exc

    def insert_parts(self, parts: list[tuple[Any, ...]], predictions: int) -> None:
        sql = "INSERT INTO prediction_parts VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        self._transaction(sql, parts, f"{predictions} prediction(s)")

    def ranges(self, request_ids: list[str]) -> list[tuple[str, int, int]]:
        marks = ",".join("?" * len(request_ids))
        sql = f"SELECT request_id, first_row, n_rows FROM prediction_parts WHERE request_id IN ({marks})"  # noqa: E501
        found = [(r, int(f), int(n)) for r, f, n in self._conn.execute(sql, request_ids)]
        if self._legacy:
            sql = f"SELECT request_id, row, 1 FROM predictions WHERE request_id IN ({marks})"
            found += [(r, int(f), 1) for r, f, _ in self._conn.execute(sql, request_ids)]
        return found

    def upsert_labels(self, rows: list[tuple[str, int, str, str]]) -> None:
        sql = "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)"
        self._transaction(sql, rows, f"{len(rows)} label(s)")

    def count(self) -> int:
        sql = "SELECT COALESCE(SUM(n_rows), 0) FROM prediction_parts"
        total = int(self._conn.execute(sql).fetchone()[0])
        if self._legacy:
            total += int(self._conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
        return total

    def close(self) -> None:
        self._conn.close()


def _set_up(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint the WAL into the database every 40 MB instead of every 4 MB: each
    # checkpoint syncs the disk.
    conn.execute("PRAGMA wal_autocheckpoint=10000")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS prediction_parts (request_id TEXT, first_row INTEGER, "
        "n_rows INTEGER, ts TEXT, model_version TEXT, features TEXT, predictions TEXT, "
        "probabilities TEXT, PRIMARY KEY (request_id, first_row))"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS labels (request_id TEXT, row INTEGER, label TEXT, ts TEXT, "
        "PRIMARY KEY (request_id, row))"
    )


def _retry_while_locked(step: Callable[[], None], where: str, seconds: float = 30.0) -> None:
    """Run ``step`` again while another connection holds the file: server workers starting
    together on a new log all switch it to WAL and create its tables, and SQLite answers
    "database is locked" at once to a journal-mode change (its busy timeout does not apply)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise StorageError(f"prediction log {where}: cannot open ({exc})") from exc
            time.sleep(0.05)


def _sqlite_has(conn: sqlite3.Connection, table: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (table,)).fetchone() is not None


def read_stored(target: LogTarget, since: str | None = None) -> StoredLog:
    """Everything the log holds (parts and older rows from ``since`` on, all labels)."""
    if is_database_url(target):
        from loopml.predlog_postgres import read_postgres

        return read_postgres(str(target), since)
    conn = sqlite3.connect(str(target))
    try:
        where, args = (" WHERE ts >= ?", (since,)) if since else ("", ())
        parts, legacy = [], []
        if _sqlite_has(conn, "prediction_parts"):  # not in a log only older versions wrote
            parts = conn.execute(f"SELECT * FROM prediction_parts{where}", args).fetchall()
        if _sqlite_has(conn, "predictions"):
            legacy = conn.execute(f"SELECT * FROM predictions{where}", args).fetchall()
        labels = conn.execute("SELECT request_id, row, label FROM labels").fetchall()
    finally:
        conn.close()
    return StoredLog(parts, legacy, labels)


def open_store(target: LogTarget) -> Store:
    if is_database_url(target):
        from loopml.predlog_postgres import PostgresStore

        return PostgresStore(str(target))
    return SqliteStore(Path(target))
