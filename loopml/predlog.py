"""The prediction log: every served or batch-scored prediction, one typed row each, with labels
attached later by request id. The server and batch scoring write it; monitoring reads it.

SQLite (``paths.prediction_log``) in WAL mode; rows are written by a background thread so that
responses never wait for the disk.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from loopml.exceptions import InputError, StorageError

log = logging.getLogger(__name__)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One prediction as logged."""

    request_id: str
    row: int
    ts: str
    model_version: str
    features: dict[str, Any]
    """The raw input values of the row."""
    prediction: Any
    """The predicted label (classification) or value (regression)."""
    probability: float | None

    def encoded(self) -> tuple[str, int, str, str, str, str, float | None]:
        """The row as stored: features and prediction as JSON text."""
        return (
            self.request_id,
            self.row,
            self.ts,
            self.model_version,
            orjson.dumps(self.features, option=_NUMPY).decode(),
            orjson.dumps(self.prediction, option=_NUMPY).decode(),
            self.probability,
        )


_INSERT_PREDICTIONS = "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


class PredictionLog:
    """Append-only SQLite log: one row per prediction; labels attach later by request id.

    Rows are written by a background thread so that responses never wait for the disk;
    :meth:`flush` waits until everything appended so far is written (labels and shutdown call
    it, so a label always finds its prediction and nothing is lost on a clean stop).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS predictions (request_id TEXT, row INTEGER, ts TEXT, "
            "model_version TEXT, features TEXT, prediction TEXT, probability REAL, "
            "PRIMARY KEY (request_id, row))"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS labels (request_id TEXT, row INTEGER, label TEXT, ts TEXT, "
            "PRIMARY KEY (request_id, row))"
        )
        self._pending: queue.Queue[list[PredictionRow] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write, name="prediction-log", daemon=True)
        self._writer.start()

    def append(self, rows: list[PredictionRow]) -> None:
        """Queue rows for the writer thread (returns at once)."""
        self._pending.put(rows)

    def _write(self) -> None:
        while True:
            rows = self._pending.get()
            try:
                if rows is None:
                    return
                # Drain what queued up meanwhile: one transaction for many batches.
                batches = [rows]
                while True:
                    try:
                        more = self._pending.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._pending.put(None)
                        self._pending.task_done()
                        break
                    batches.append(more)
                encoded = [r.encoded() for b in batches for r in b]
                with self._lock:
                    self._transaction(_INSERT_PREDICTIONS, encoded)
                for _ in batches[1:]:
                    self._pending.task_done()
            except StorageError as exc:  # never lose the writer: say so and carry on
                log.error("%s", exc)
            except Exception:
                log.exception("writing to the prediction log failed")
            finally:
                self._pending.task_done()

    def _transaction(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """All ``rows`` or none (a full disk leaves no partial batch). Hold ``_lock``."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StorageError(
                f"prediction log {self.path}: {len(rows)} row(s) not written ({exc}); "
                "free disk space or move paths.prediction_log"
            ) from exc

    def flush(self) -> None:
        """Wait until every appended row is in the database."""
        self._pending.join()

    def add_labels(self, labels: list[tuple[str, int, str]]) -> int:
        """Attach ``(request_id, row, label as JSON)`` to logged predictions."""
        self.flush()
        ts = utc_now()
        ids = sorted({lb[0] for lb in labels})
        marks = ",".join("?" * len(ids))
        with self._lock:
            known = {
                (r, i)
                for r, i in self._conn.execute(
                    f"SELECT request_id, row FROM predictions WHERE request_id IN ({marks})", ids
                )
            }
            unknown = [(r, i) for r, i, _ in labels if (r, i) not in known]
            if unknown:
                raise InputError(f"no logged prediction for request_id/row {unknown[:5]}")
            self._transaction(
                "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)",
                [(r, i, lb, ts) for r, i, lb in labels],
            )
        return len(labels)

    def count(self) -> int:
        self.flush()
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def close(self) -> None:
        self.flush()
        self._pending.put(None)
        self._writer.join(timeout=30)
        with self._lock:
            self._conn.close()


def read_prediction_log(path: Path, since: str | None = None) -> pd.DataFrame:
    """The logged predictions as a frame: input columns expanded, with label where known."""
    conn = sqlite3.connect(str(path))
    try:
        query = (
            "SELECT p.request_id, p.row, p.ts, p.model_version, p.features, p.prediction, "
            "p.probability, l.label FROM predictions p LEFT JOIN labels l "
            "ON p.request_id = l.request_id AND p.row = l.row"
        )
        args: list[Any] = []
        if since:
            query += " WHERE p.ts >= ?"
            args.append(since)
        raw = pd.read_sql_query(query, conn, params=args)
    finally:
        conn.close()
    if raw.empty:
        return raw
    features = pd.DataFrame.from_records([json.loads(f) for f in raw["features"]])
    return pd.concat([raw.drop(columns=["features"]).reset_index(drop=True), features], axis=1)
