"""The prediction log: every served or batch-scored prediction, logged a request at a time
(:class:`PredictionBatch`), with labels attached later by request id and row. The server and
batch scoring write it; monitoring reads it, one row per prediction.

It lives in a SQLite file (``paths.prediction_log``, the embedded default) or in a PostgreSQL
database (``paths.prediction_log_url``, or ``LOOPML_PREDICTION_LOG_URL``) that several server
workers and the monitor share (:mod:`loopml.predlog_stores`). Requests are written by a
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
from loopml.predlog_stores import (
    LEGACY_COLUMNS,
    LogTarget,
    StoredLog,
    describe,
    is_database_url,
    missing_rows,
    open_store,
    read_stored,
)
from loopml.secrets import expand

if TYPE_CHECKING:
    from loopml.config import Params

log = logging.getLogger(__name__)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
LOG_URL_ENV = "LOOPML_PREDICTION_LOG_URL"


Encoded = tuple[str, int, int, str, str, str, str, str | None]
"""A :class:`PredictionBatch` as stored (:data:`loopml.predlog_stores.PART_COLUMNS`)."""


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The predictions of one request (or of one part of a scored batch), as logged."""

    request_id: str
    first_row: int
    """The row number of the first prediction within its request (0 for a served request)."""
    ts: str
    model_version: str
    features: dict[str, list[Any]]
    """The raw input values, column by column (one value per prediction in each list)."""
    predictions: list[Any]
    """The predicted labels (classification) or values (regression)."""
    probabilities: list[float] | None
    """The probability of the positive class (binary classification), else None."""

    @property
    def count(self) -> int:
        return len(self.predictions)

    def encoded(self) -> Encoded:
        """The batch as stored (:data:`loopml.predlog_stores.PART_COLUMNS`): JSON text."""
        probabilities = self.probabilities
        return (
            self.request_id,
            self.first_row,
            self.count,
            self.ts,
            self.model_version,
            orjson.dumps(self.features, option=_NUMPY).decode(),
            orjson.dumps(self.predictions, option=_NUMPY).decode(),
            None if probabilities is None else orjson.dumps(probabilities, option=_NUMPY).decode(),
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
        self._buffer: list[list[Encoded]] = []
        self._appended = self._written = 0  # batches appended, and written (or failed)
        self._wanted = self._closing = False
        self._writer = threading.Thread(target=self._write, name="prediction-log", daemon=True)
        self._writer.start()

    def append(self, batches: list[PredictionBatch]) -> None:
        """Encode requests' predictions and queue them for the writer thread.

        Encoding here, in the caller's thread, spreads its cost over the requests; in the
        writer it came in bursts (a round's worth at once) that held the interpreter lock
        while requests waited."""
        self.append_encoded([b.encoded() for b in batches])

    def append_encoded(self, encoded: list[Encoded]) -> None:
        """Queue batches encoded earlier (:meth:`PredictionBatch.encoded`) for the writer."""
        with self._cond:
            self._buffer.append(encoded)
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

    def _insert(self, appended: list[list[Encoded]]) -> None:
        try:
            encoded = [e for batch in appended for e in batch]
            predictions = sum(p[2] for p in encoded)
            with self._lock:
                self._store.insert_parts(encoded, predictions)
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
            unknown = missing_rows(((r, i) for r, i, _ in labels), self._store.ranges(ids))
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
    """The logged predictions, one row each: ``request_id``, ``row``, ``ts``,
    ``model_version``, ``prediction`` (the value), ``probability``, ``label`` (JSON text, None
    where unknown) and the input columns."""
    return _frame(read_stored(target, since))


_META = ("request_id", "row", "ts", "model_version", "prediction", "probability")


def _frame(stored: StoredLog) -> pd.DataFrame:
    meta: dict[str, list[Any]] = {name: [] for name in _META}
    inputs: dict[str, list[Any]] = {}
    total = 0
    for request_id, first, n, ts, version, features, predictions, probabilities in stored.parts:
        for col, values in orjson.loads(features).items():
            inputs.setdefault(col, [None] * total).extend(values)
        meta["prediction"].extend(orjson.loads(predictions))
        meta["probability"].extend(orjson.loads(probabilities) if probabilities else [None] * n)
        for name, value in (("request_id", request_id), ("ts", ts), ("model_version", version)):
            meta[name].extend([value] * n)
        meta["row"].extend(range(first, first + n))
        total += n
        for values in inputs.values():  # columns this request did not have
            values.extend([None] * (total - len(values)))
    frame = pd.DataFrame({**meta, **inputs})
    if stored.legacy:
        frame = pd.concat([frame, _legacy_frame(stored.legacy)], ignore_index=True)
    if frame.empty:
        return frame.assign(label=pd.Series(dtype=object))
    labels = pd.DataFrame(stored.labels, columns=["request_id", "row", "label"])
    merged = frame.merge(labels.astype({"row": "int64"}), on=["request_id", "row"], how="left")
    merged["label"] = merged["label"].astype(object).where(merged["label"].notna(), None)
    return merged


def _legacy_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of a log written before parts (one database row per prediction)."""
    raw = pd.DataFrame.from_records(rows, columns=list(LEGACY_COLUMNS))
    features = pd.DataFrame.from_records([json.loads(f) for f in raw["features"]])
    raw["prediction"] = raw["prediction"].map(json.loads)
    return pd.concat([raw.drop(columns=["features"]), features], axis=1)


__all__ = [
    "LOG_URL_ENV",
    "LogTarget",
    "PredictionBatch",
    "PredictionLog",
    "describe",
    "log_exists",
    "log_target",
    "read_prediction_log",
    "utc_now",
]
