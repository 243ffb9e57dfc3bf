"""Serving the registry's champion over REST, with a prediction log that feeds the monitor.

* ``POST /predict``: JSON records (one object, a list, or ``{"records": [...]}``); validated
  against the model's input columns (a 422 names the column and the problem, never a 500).
* ``GET /health``, ``GET /model`` (name, version, data version, metrics).
* ``POST /labels``: ground truth for logged predictions, by request id (and row).

Concurrent requests are micro-batched: requests that arrive together are predicted as one
frame, so the feature transformer runs once per batch instead of once per request. A watcher
polls the ``champion`` alias and swaps the model in without a restart; in-flight batches finish
on the model they started with. Every prediction is appended to a SQLite prediction log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


class InputError(ValueError):
    """Bad request input; the message names the column and the problem."""


# --------------------------------------------------------------------------- input validation
def validate_records(
    records: list[dict[str, Any]], kinds: dict[str, str], required: set[str]
) -> pd.DataFrame:
    """Records to a frame of the model's input columns, or :class:`InputError`."""
    if not records:
        raise InputError("no records to predict")
    if len(records) > 10_000:
        raise InputError(f"{len(records)} records in one request; at most 10000")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"record {i} is not a JSON object")
    frame = pd.DataFrame.from_records(records)
    problems = []
    missing = sorted(c for c in required if c not in frame.columns)
    if missing:
        problems.append(f"missing column(s): {missing}")
    for col, kind in kinds.items():
        if col not in frame.columns:
            frame[col] = None
            continue
        values = frame[col]
        present = values.notna()
        if kind in ("numeric", "integer"):
            bad = present & values.map(
                lambda v: isinstance(v, bool) or not isinstance(v, int | float)
            )
            if bad.any():
                problems.append(f"column '{col}': expected a number, got {values[bad].iloc[0]!r}")
        elif kind == "boolean":
            ok = values.map(
                lambda v: v is None or isinstance(v, bool) or v in (0, 1, "true", "false")
            )
            if not ok.all():
                problems.append(
                    f"column '{col}': expected true or false, got {values[~ok].iloc[0]!r}"
                )
        elif kind == "datetime":
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            bad = present & parsed.isna()
            if bad.any():
                problems.append(
                    f"column '{col}': expected a date-time, got {values[bad].iloc[0]!r}"
                )
        elif kind == "categorical":
            bad = present & values.map(lambda v: isinstance(v, dict | list))
            if bad.any():
                problems.append(f"column '{col}': expected a string, got {values[bad].iloc[0]!r}")
    if problems:
        raise InputError("; ".join(problems))
    return frame[list(kinds)]


# --------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    model: Any  # loopml.pyfunc.LoopmlModel
    required: frozenset[str]
    info: dict[str, Any]


def load_alias(client: Any, name: str, alias: str) -> LoadedModel:
    import mlflow

    mv = client.get_model_version_by_alias(name, alias)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    inner = pyfunc.unwrap_python_model()
    schema = pyfunc.metadata.get_input_schema()
    required = (
        frozenset(c.name for c in schema.inputs if getattr(c, "required", True))
        if schema
        else frozenset()
    )
    info = {
        "name": name,
        "version": str(mv.version),
        "alias": alias,
        "run_id": mv.run_id,
        "data_version": mv.tags.get("loopml.data_version"),
        "git_commit": mv.tags.get("loopml.git_commit"),
        "metrics": {
            k[len("metric.") :]: float(v) for k, v in mv.tags.items() if k.startswith("metric.")
        },
        "task": inner.task,
        "inputs": inner.input_kinds,
    }
    return LoadedModel(
        name=name, version=str(mv.version), model=inner, required=required, info=info
    )


# --------------------------------------------------------------------------- prediction log
class PredictionLog:
    """Append-only SQLite log: one row per prediction; labels attach later by request id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
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

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._conn.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def add_labels(self, labels: list[tuple[str, int, str]]) -> int:
        ts = datetime.now(timezone.utc).isoformat()
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
            self._conn.executemany(
                "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)",
                [(r, i, lb, ts) for r, i, lb in labels],
            )
        return len(labels)

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def close(self) -> None:
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


# --------------------------------------------------------------------------- batching
class MicroBatcher:
    """Gathers concurrent requests for up to ``max_wait_ms`` (or ``max_rows``) and predicts
    them as one frame in a worker thread."""

    def __init__(self, server: ModelServer, max_wait_ms: float, max_rows: int) -> None:
        self.server = server
        self.max_wait = max_wait_ms / 1000.0
        self.max_rows = max_rows
        self.queue: asyncio.Queue[tuple[pd.DataFrame, asyncio.Future[Any]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()

    async def submit(self, frame: pd.DataFrame) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((frame, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch = [first]
            rows = len(first[0])
            deadline = loop.time() + self.max_wait
            while rows < self.max_rows:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(item)
                rows += len(item[0])
            try:
                results = await asyncio.to_thread(self.server.predict_batch, [f for f, _ in batch])
            except Exception as exc:  # a bad batch fails its requests, never the batcher
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)


class ModelServer:
    """Holds the current model, swaps it when the alias moves, logs every prediction."""

    def __init__(
        self, client: Any, name: str, alias: str, log_path: Path, poll_seconds: float
    ) -> None:
        self.client = client
        self.name = name
        self.alias = alias
        self.poll_seconds = poll_seconds
        self.current: LoadedModel = load_alias(client, name, alias)
        self.log = PredictionLog(log_path)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="alias-watcher", daemon=True)

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        self.log.close()

    def refresh(self) -> bool:
        """Load the alias's version if it moved. Returns whether the model changed."""
        mv = self.client.get_model_version_by_alias(self.name, self.alias)
        if str(mv.version) == self.current.version:
            return False
        new = load_alias(self.client, self.name, self.alias)
        self.current = new  # one reference swap: in-flight batches keep the model they hold
        log.info("serving %s v%s (alias %s moved)", self.name, new.version, self.alias)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # the registry is briefly unreachable: keep serving
                log.warning("alias check failed: %s", exc)

    def predict_batch(self, frames: list[pd.DataFrame]) -> list[dict[str, Any]]:
        model = self.current
        sizes = [len(f) for f in frames]
        joined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        out = model.model.predict(None, joined)
        ts = datetime.now(timezone.utc).isoformat()
        results, rows, start = [], [], 0
        records = joined.to_json(orient="records", date_format="iso")
        feature_json = [json.dumps(r) for r in json.loads(records)]
        preds = out["prediction"].tolist()
        probs = out["probability"].tolist() if "probability" in out else [None] * len(preds)
        for size in sizes:
            request_id = uuid.uuid4().hex
            part = []
            for i in range(size):
                j = start + i
                pred = preds[j].item() if isinstance(preds[j], np.generic) else preds[j]
                prob = None if probs[j] is None else float(probs[j])
                part.append({"row": i, "prediction": pred, "probability": prob})
                rows.append(
                    (request_id, i, ts, model.version, feature_json[j], json.dumps(pred), prob)
                )
            results.append(
                {"request_id": request_id, "model_version": model.version, "predictions": part}
            )
            start += size
        self.log.append(rows)
        return results


# --------------------------------------------------------------------------- the app
def create_app(
    client: Any,
    model_name: str,
    alias: str = "champion",
    log_path: Path = Path("data/predictions.sqlite"),
    poll_seconds: float = 2.0,
    max_wait_ms: float = 2.0,
    max_batch_rows: int = 2048,
    token_env: str = "LOOPML_API_TOKEN",
) -> Any:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        server = ModelServer(client, model_name, alias, log_path, poll_seconds)
        server.start()
        batcher = MicroBatcher(server, max_wait_ms, max_batch_rows)
        batcher.start()
        state.update(server=server, batcher=batcher, started=time.time())
        yield
        await batcher.stop()
        server.stop()

    app = FastAPI(title="loopml model server", lifespan=lifespan)

    def _auth(request: Request) -> None:
        token = os.environ.get(token_env)
        if token and request.headers.get("authorization") != f"Bearer {token}":
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.get("/health")
    async def health() -> dict[str, Any]:
        server: ModelServer = state["server"]
        return {"status": "ok", "model": server.name, "version": server.current.version}

    @app.get("/model")
    async def model_info(request: Request) -> dict[str, Any]:
        _auth(request)
        return state["server"].current.info

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        _auth(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"body is not valid JSON: {exc}") from None
        records = body.get("records", body) if isinstance(body, dict) else body
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list):
            raise InputError("expected a JSON object, a list of objects or {'records': [...]}")
        server: ModelServer = state["server"]
        frame = validate_records(
            records, server.current.model.input_kinds, set(server.current.required)
        )
        return await state["batcher"].submit(frame)

    @app.post("/labels")
    async def labels(request: Request) -> dict[str, Any]:
        _auth(request)
        body = await request.json()
        items = body.get("labels") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise InputError("expected {'labels': [{'request_id': ..., 'row': 0, 'label': ...}]}")
        parsed = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
                raise InputError(f"label {i} needs 'request_id' and 'label'")
            parsed.append(
                (str(item["request_id"]), int(item.get("row", 0)), json.dumps(item["label"]))
            )
        count = await asyncio.to_thread(state["server"].log.add_labels, parsed)
        return {"labels": count}

    return app
