"""The prediction log in PostgreSQL: tables ``loopml_prediction_parts`` and ``loopml_labels``,
shared by several server workers, batch scoring and the monitor (the layout is
:mod:`loopml.predlog_stores`'s)."""

from __future__ import annotations

from typing import Any

from loopml.exceptions import StorageError
from loopml.predlog_stores import StoredLog
from loopml.secrets import redact_url

_TABLES = (
    "CREATE TABLE IF NOT EXISTS loopml_prediction_parts (request_id TEXT, first_row INTEGER, "
    "n_rows INTEGER, ts TEXT, model_version TEXT, features TEXT, predictions TEXT, "
    "probabilities TEXT, PRIMARY KEY (request_id, first_row))",
    "CREATE TABLE IF NOT EXISTS loopml_labels (request_id TEXT, row INTEGER, label TEXT, "
    "ts TEXT, PRIMARY KEY (request_id, row))",
    "CREATE INDEX IF NOT EXISTS loopml_prediction_parts_ts ON loopml_prediction_parts (ts)",
)
_LEGACY = "loopml_predictions"  # one database row per prediction, written before parts
_CREATE_KEY = 0x6C6F6F706D6C  # "loopml": serializes the CREATE TABLE statements


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _has_legacy(conn: Any) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (_LEGACY,)).fetchone()[0] is not None


class PostgresStore:
    """The log's tables in a PostgreSQL database; each process has its own connection,
    reopened after the server went away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redact_url(url)
        self._conn: Any = None
        with self._connection() as conn:
            # server workers start together: one creates the tables, the others wait
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_KEY,))
            for statement in _TABLES:
                conn.execute(statement)
            self._legacy = _has_legacy(conn)

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

    def insert_parts(self, parts: list[tuple[Any, ...]], predictions: int) -> None:
        with self._connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO loopml_prediction_parts VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                parts,
            )

    def ranges(self, request_ids: list[str]) -> list[tuple[str, int, int]]:
        with self._connection() as conn:
            found = conn.execute(
                "SELECT request_id, first_row, n_rows FROM loopml_prediction_parts "
                "WHERE request_id = ANY(%s)",
                (request_ids,),
            ).fetchall()
            if self._legacy:
                found += conn.execute(
                    f"SELECT request_id, row, 1 FROM {_LEGACY} WHERE request_id = ANY(%s)",
                    (request_ids,),
                ).fetchall()
        return [(r, int(f), int(n)) for r, f, n in found]

    def upsert_labels(self, rows: list[tuple[str, int, str, str]]) -> None:
        with self._connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO loopml_labels VALUES (%s, %s, %s, %s) ON CONFLICT (request_id, row) "
                "DO UPDATE SET label = EXCLUDED.label, ts = EXCLUDED.ts",
                rows,
            )

    def count(self) -> int:
        with self._connection() as conn:
            sql = "SELECT COALESCE(SUM(n_rows), 0) FROM loopml_prediction_parts"
            total = int(conn.execute(sql).fetchone()[0])
            if self._legacy:
                total += int(conn.execute(f"SELECT COUNT(*) FROM {_LEGACY}").fetchone()[0])
        return total

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


def read_postgres(url: str, since: str | None = None) -> StoredLog:
    """Everything the log in the database holds (parts and older rows from ``since`` on)."""
    import psycopg

    where, args = (" WHERE ts >= %s", (since,)) if since else ("", ())
    try:
        with psycopg.connect(_conninfo(url), connect_timeout=10) as conn:
            parts, legacy = [], []
            if conn.execute("SELECT to_regclass('loopml_prediction_parts')").fetchone()[0]:
                sql = f"SELECT * FROM loopml_prediction_parts{where}"
                parts = conn.execute(sql, args).fetchall()
            if _has_legacy(conn):
                legacy = conn.execute(f"SELECT * FROM {_LEGACY}{where}", args).fetchall()
            labels = []
            if conn.execute("SELECT to_regclass('loopml_labels')").fetchone()[0]:
                labels = conn.execute("SELECT request_id, row, label FROM loopml_labels").fetchall()
    except psycopg.Error as exc:
        raise StorageError(f"prediction log {redact_url(url)}: not readable ({exc})") from exc
    return StoredLog(parts, legacy, labels)
