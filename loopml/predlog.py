"""The prediction log: every served or batch-scored prediction, one typed row each, with labels
attached later by request id. The server and batch scoring write it; monitoring reads it.

It lives in a SQLite file (``paths.prediction_log``, the embedded default) or in a PostgreSQL
database (``paths.prediction_log_url``, or ``LOOPML_PREDICTION_LOG_URL``) that several server
workers and the monitor share (:mod:`loopml.predlog_stores`). Rows are written by a
background thread so that responses never wait for the database.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from loopml.exceptions import InputError, StorageError
from loopml.predlog_stores import LogTarget, describe, is_database_url, open_store, read_rows
from loopml.secrets import expand

if TYPE_CHECKING:
    from loopml.config import Params

log = logging.getLogger(__name__)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
LOG_URL_ENV = "LOOPML_PREDICTION_LOG_URL"


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


def new_request_id() -> str:
    """A request id: 32 hex digits, the first 16 the time in nanoseconds, the rest random.

    Ids that grow with time are appended at the end of the log's primary-key index; random
    ones (uuid4) land all over it, and every transaction then rewrites pages across the
    whole index (in SQLite, inserting 100 rows took between two and three times as long).
    The random half tells apart requests of the same nanosecond in different server workers;
    it is an identifier, not a secret (``random``, seeded per process, costs no system call)."""
    return f"{time.time_ns():016x}{random.getrandbits(64):016x}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


def log_target(params: Params) -> LogTarget:
    """Where this project's prediction log is: ``LOOPML_PREDICTION_LOG_URL``, else
    ``paths.prediction_log_url`` (its ``${VAR}`` expanded), else the SQLite file
    ``paths.prediction_log``."""
    url = os.environ.get(LOG_URL_ENV) or params.paths.prediction_log_url
    if url:
        return expand(url, "paths.prediction_log_url")
    return params.path("prediction_log")


def log_exists(target: LogTarget) -> bool:
    """Whether anything was ever logged there (a database is assumed to exist)."""
    return is_database_url(target) or os.path.isfile(target)


class PredictionLog:
    """Append-only log: one row per prediction; labels attach later by request id.

    Rows are written by a background thread so that responses never wait for the disk. The
    writer wakes every :attr:`interval` seconds (or when asked) and writes everything appended
    meanwhile in one transaction: appending only adds to a list, with no thread hand-off per
    request (waking the writer for every request cost the server's event loop a thread switch
    and a GIL hand-over each time). :meth:`flush` waits until everything appended so far is
    written (labels and shutdown call it, so a label always finds its prediction and nothing
    is lost on a clean stop).
    """

    interval = 0.1
    """Seconds between the writer's rounds: how long a served prediction may wait for the log."""

    def __init__(self, target: LogTarget) -> None:
        self.target = target
        self._lock = threading.Lock()  # the store: one caller at a time
        self._store = open_store(target)
        self._cond = threading.Condition()
        self._buffer: list[list[PredictionRow]] = []
        self._appended = self._written = 0  # batches appended, and written (or failed)
        self._wanted = self._closing = False
        self._writer = threading.Thread(target=self._write, name="prediction-log", daemon=True)
        self._writer.start()

    def append(self, rows: list[PredictionRow]) -> None:
        """Queue rows for the writer thread (returns at once)."""
        with self._cond:
            self._buffer.append(rows)
            self._appended += 1

    def _write(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted or self._closing, self.interval)
                batches, self._buffer = self._buffer, []
                upto, closing, self._wanted = self._appended, self._closing, False
            if batches:
                self._insert(batches)
            with self._cond:
                self._written = upto
                self._cond.notify_all()
            if closing:
                return

    def _insert(self, batches: list[list[PredictionRow]]) -> None:
        try:
            encoded = [r.encoded() for b in batches for r in b]
            with self._lock:
                self._store.insert_predictions(encoded)
        except StorageError as exc:  # never lose the writer: say so and carry on
            log.error("%s", exc)
        except Exception:
            log.exception("writing to the prediction log failed")

    def flush(self) -> None:
        """Wait until every appended row is in the database (or failed to be written)."""
        with self._cond:
            target, self._wanted = self._appended, True
            self._cond.notify_all()
            if self._writer.is_alive():
                self._cond.wait_for(lambda: self._written >= target)

    def add_labels(self, labels: list[tuple[str, int, str]]) -> int:
        """Attach ``(request_id, row, label as JSON)`` to logged predictions."""
        self.flush()
        ts = utc_now()
        ids = sorted({lb[0] for lb in labels})
        with self._lock:
            known = self._store.known(ids)
            unknown = [(r, i) for r, i, _ in labels if (r, i) not in known]
            if unknown:
                raise InputError(f"no logged prediction for request_id/row {unknown[:5]}")
            self._store.upsert_labels([(r, i, lb, ts) for r, i, lb in labels])
        return len(labels)

    def count(self) -> int:
        self.flush()
        with self._lock:
            return self._store.count()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._writer.join(timeout=30)
        with self._lock:
            self._store.close()


def read_prediction_log(target: LogTarget, since: str | None = None) -> pd.DataFrame:
    """The logged predictions as a frame: input columns expanded, with label where known."""
    raw = read_rows(target, since)
    if raw.empty:
        return raw
    features = pd.DataFrame.from_records([json.loads(f) for f in raw["features"]])
    return pd.concat([raw.drop(columns=["features"]).reset_index(drop=True), features], axis=1)


__all__ = [
    "LOG_URL_ENV",
    "LogTarget",
    "PredictionLog",
    "PredictionRow",
    "describe",
    "log_exists",
    "log_target",
    "read_prediction_log",
    "utc_now",
]
