"""Where the prediction log lives: a SQLite file (the embedded default) or a PostgreSQL
database shared by several server workers, batch scoring and the monitor.

Both stores take the same rows and give back the same columns; :mod:`loopml.predlog` holds
the typed row, the background writer and the reader on top of them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from loopml.exceptions import StorageError
from loopml.secrets import redact_url

LogTarget = Path | str
"""A SQLite file, or a ``postgresql://`` URL (already expanded from its ``${VAR}``)."""

COLUMNS = ("request_id", "row", "ts", "model_version", "features", "prediction", "probability")
_SELECT = (
    "SELECT p.request_id, p.row, p.ts, p.model_version, p.features, p.prediction, "
    "p.probability, l.label FROM {p} p LEFT JOIN {l} l "
    "ON p.request_id = l.request_id AND p.row = l.row"
)


def is_database_url(target: LogTarget) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgresql+psycopg://"))


def describe(target: LogTarget) -> str:
    """The target as it may be printed (a URL's password masked)."""
    return redact_url(target) if is_database_url(target) else str(target)


class Store(Protocol):
    """The SQL side of the log. Calls come from one thread at a time (the caller locks)."""

    def insert_predictions(self, rows: list[tuple[Any, ...]]) -> None: ...
    def known(self, request_ids: list[str]) -> set[tuple[str, int]]: ...
    def upsert_labels(self, rows: list[tuple[str, int, str, str]]) -> None: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


class SqliteStore:
    """One SQLite file in WAL mode (readers never block the writer)."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint the WAL into the database every 40 MB instead of every 4 MB: each
        # checkpoint syncs the disk, and a busy server appends ~600 bytes per prediction.
        self._conn.execute("PRAGMA wal_autocheckpoint=10000")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS predictions (request_id TEXT, row INTEGER, ts TEXT, "
            "model_version TEXT, features TEXT, prediction TEXT, probability REAL, "
            "PRIMARY KEY (request_id, row))"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS labels (request_id TEXT, row INTEGER, label TEXT, ts TEXT, "
            "PRIMARY KEY (request_id, row))"
        )

    def _transaction(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """All ``rows`` or none (a full disk leaves no partial batch)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StorageError(
                f"prediction log {self.where}: {len(rows)} row(s) not written ({exc}); "
                "free disk space or move paths.prediction_log"
            ) from exc

    def insert_predictions(self, rows: list[tuple[Any, ...]]) -> None:
        self._transaction("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def known(self, request_ids: list[str]) -> set[tuple[str, int]]:
        marks = ",".join("?" * len(request_ids))
        sql = f"SELECT request_id, row FROM predictions WHERE request_id IN ({marks})"
        return {(r, int(i)) for r, i in self._conn.execute(sql, request_ids)}

    def upsert_labels(self, rows: list[tuple[str, int, str, str]]) -> None:
        self._transaction("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)", rows)

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


_PG_TABLES = (
    "CREATE TABLE IF NOT EXISTS loopml_predictions (request_id TEXT, row INTEGER, ts TEXT, "
    "model_version TEXT, features TEXT, prediction TEXT, probability DOUBLE PRECISION, "
    "PRIMARY KEY (request_id, row))",
    "CREATE TABLE IF NOT EXISTS loopml_labels (request_id TEXT, row INTEGER, label TEXT, "
    "ts TEXT, PRIMARY KEY (request_id, row))",
    "CREATE INDEX IF NOT EXISTS loopml_predictions_ts ON loopml_predictions (ts)",
)


_CREATE_KEY = 0x6C6F6F706D6C  # "loopml": serializes the CREATE TABLE statements


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class PostgresStore:
    """Tables ``loopml_predictions`` and ``loopml_labels`` in a PostgreSQL database; each
    process has its own connection, reopened after the server went away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redact_url(url)
        self._conn: Any = None
        with self._connection() as conn:
            # server workers start together: one creates the tables, the others wait
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_KEY,))
            for statement in _PG_TABLES:
                conn.execute(statement)

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(_conninfo(self.url), connect_timeout=10)
            except psycopg.Error as exc:
                raise StorageError(
                    f"prediction log {self.where}: cannot connect ({exc}); check the URL in "
                    "paths.prediction_log_url or LOOPML_PREDICTION_LOG_URL"
                ) from exc
        return _Transaction(self._conn, self.where)

    def insert_predictions(self, rows: list[tuple[Any, ...]]) -> None:
        with self._connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO loopml_predictions VALUES (%s, %s, %s, %s, %s, %s, %s)", rows
            )

    def known(self, request_ids: list[str]) -> set[tuple[str, int]]:
        with self._connection() as conn:
            found = conn.execute(
                "SELECT request_id, row FROM loopml_predictions WHERE request_id = ANY(%s)",
                (request_ids,),
            ).fetchall()
        return {(r, int(i)) for r, i in found}

    def upsert_labels(self, rows: list[tuple[str, int, str, str]]) -> None:
        with self._connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO loopml_labels VALUES (%s, %s, %s, %s) ON CONFLICT (request_id, row) "
                "DO UPDATE SET label = EXCLUDED.label, ts = EXCLUDED.ts",
                rows,
            )

    def count(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM loopml_predictions").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class _Transaction:
    """One transaction on ``conn``: committed on success, rolled back and reported as a
    :class:`StorageError` on a database error (no partial batch)."""

    def __init__(self, conn: Any, where: str) -> None:
        self.conn, self.where = conn, where

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> bool:
        import psycopg

        if kind is None:
            self.conn.commit()
            return False
        if not self.conn.closed:
            self.conn.rollback()
        if isinstance(exc, psycopg.Error):
            raise StorageError(f"prediction log {self.where}: not written ({exc})") from exc
        return False


def open_store(target: LogTarget) -> Store:
    return PostgresStore(str(target)) if is_database_url(target) else SqliteStore(Path(target))


def read_rows(target: LogTarget, since: str | None = None) -> pd.DataFrame:
    """Predictions joined with their labels, columns :data:`COLUMNS` + ``label``."""
    pg = is_database_url(target)
    query = _SELECT.format(
        p="loopml_predictions" if pg else "predictions", l="loopml_labels" if pg else "labels"
    )
    if since:
        query += " WHERE p.ts >= %s" if pg else " WHERE p.ts >= ?"
    args = (since,) if since else ()
    if pg:
        import psycopg

        try:
            with psycopg.connect(_conninfo(str(target)), connect_timeout=10) as conn:
                rows = conn.execute(query, args).fetchall()
        except psycopg.Error as exc:
            raise StorageError(f"prediction log {describe(target)}: not readable ({exc})") from exc
    else:
        conn = sqlite3.connect(str(target))
        try:
            rows = conn.execute(query, args).fetchall()
        finally:
            conn.close()
    return pd.DataFrame.from_records(rows, columns=[*COLUMNS, "label"])
