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
import gc
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from loopml.exceptions import InputError
from loopml.fastpath import check_records, compile_features, records_frame

log = logging.getLogger(__name__)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


# --------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    model: Any  # loopml.pyfunc.LoopmlModel
    required: frozenset[str]
    info: dict[str, Any]
    compiled: Callable[[Sequence[dict[str, Any]]], np.ndarray] | None = None

    def output(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """Class probabilities (or predictions) for checked records."""
        if self.compiled is None:
            return self.model.predict_output(records_frame(records, self.model.input_kinds))
        x = self.compiled(records)
        if self.model.task == "classification":
            return self.model.predictor.predict_proba(x)
        return np.asarray(self.model.predictor.predict(x), dtype=float)


def load_alias(client: Any, name: str, alias: str) -> LoadedModel:
    import mlflow

    mv = client.get_model_version_by_alias(name, alias)
    # The artifacts' own location, resolved by this client: "models:/name/version" would go
    # through the process-wide registry URI (one process may hold several registries).
    location = client.get_model_version_download_uri(name, mv.version)
    pyfunc = mlflow.pyfunc.load_model(location)
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
    compiled = compile_features(inner)
    info["fast_path"] = compiled is not None
    return LoadedModel(
        name=name,
        version=str(mv.version),
        model=inner,
        required=required,
        info=info,
        compiled=compiled,
    )


# --------------------------------------------------------------------------- prediction log
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
        self._pending: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write, name="prediction-log", daemon=True)
        self._writer.start()

    def append(self, rows: list[tuple[Any, ...]]) -> None:
        """Queue rows ``(request_id, row, ts, model_version, features dict, prediction, prob)``."""
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
                encoded = [
                    (r[0], r[1], r[2], r[3], orjson.dumps(r[4], option=_NUMPY).decode(), r[5], r[6])
                    for b in batches
                    for r in b
                ]
                with self._lock:
                    self._conn.executemany(
                        "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)", encoded
                    )
                for _ in batches[1:]:
                    self._pending.task_done()
            except Exception:  # never lose the writer: log and carry on
                log.exception("writing to the prediction log failed")
            finally:
                self._pending.task_done()

    def flush(self) -> None:
        """Wait until every appended row is in the database."""
        self._pending.join()

    def add_labels(self, labels: list[tuple[str, int, str]]) -> int:
        self.flush()
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


# --------------------------------------------------------------------------- batching
class MicroBatcher:
    """Gathers concurrent requests for up to ``max_wait_ms`` after the first one arrives (or
    until ``max_rows``) and predicts them together in a worker thread.

    Requests are appended to a plain list (no per-request task or queue hand-off): the cost per
    request stays a few microseconds however many are waiting.
    """

    def __init__(
        self, server: ModelServer, max_wait_ms: float, max_rows: int, inline_rows: int = 256
    ) -> None:
        self.server = server
        self.max_wait = max_wait_ms / 1000.0
        self.max_rows = max_rows
        self.inline_rows = inline_rows
        self.pending: list[tuple[list[dict[str, Any]], asyncio.Future[bytes]]] = []
        self.pending_rows = 0
        self.first_at = 0.0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.wake = asyncio.Event()
        self.full = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()

    async def submit(self, records: list[dict[str, Any]]) -> bytes:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        if not self.pending:
            self.first_at = loop.time()
            self.wake.set()
        self.pending.append((records, fut))
        self.pending_rows += len(records)
        if self.pending_rows >= self.max_rows:
            self.full.set()
        return await fut

    def _take(self) -> list[tuple[list[dict[str, Any]], asyncio.Future[bytes]]]:
        """The oldest requests up to ``max_rows`` (at least one)."""
        rows, n = 0, 0
        for records, _ in self.pending:
            if n and rows + len(records) > self.max_rows:
                break
            rows += len(records)
            n += 1
        batch, self.pending = self.pending[:n], self.pending[n:]
        self.pending_rows -= rows
        if self.pending:
            self.first_at = asyncio.get_running_loop().time()
        else:
            self.wake.clear()
        if self.pending_rows < self.max_rows:
            self.full.clear()
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wake.wait()
            remaining = self.first_at + self.max_wait - loop.time()
            if remaining > 0 and not self.full.is_set():
                try:
                    async with asyncio.timeout(remaining):
                        await self.full.wait()
                except TimeoutError:
                    pass
            batch = self._take()
            requests = [r for r, _ in batch]
            try:
                # Small batches on the compiled fast path take well under a millisecond: a
                # thread hand-off (and the GIL ping-pong it starts) would cost more.
                if (
                    self.server.current.compiled is not None
                    and sum(len(r) for r in requests) <= self.inline_rows
                ):
                    results = self.server.predict_batch(requests)
                else:
                    results = await asyncio.to_thread(self.server.predict_batch, requests)
            except Exception as exc:  # a failed batch fails its requests, never the batcher
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
        gc.freeze()  # the new model's objects, as at start-up
        log.info("serving %s v%s (alias %s moved)", self.name, new.version, self.alias)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # the registry is briefly unreachable: keep serving
                log.warning("alias check failed: %s", exc)

    def predict_batch(self, batches: list[list[dict[str, Any]]]) -> list[bytes]:
        """Predict the requests of one micro-batch together; log every row; JSON responses."""
        model = self.current
        joined = batches[0] if len(batches) == 1 else [r for b in batches for r in b]
        output = model.output(joined)
        labels, probs = model.model.label(output)
        preds = labels.tolist()
        prob = probs.get("probability")
        prob_list = prob.tolist() if prob is not None else [None] * len(preds)
        ts = datetime.now(timezone.utc).isoformat()
        responses, rows, start = [], [], 0
        for batch in batches:
            request_id = uuid.uuid4().hex
            part = []
            for i, rec in enumerate(batch):
                j = start + i
                part.append({"row": i, "prediction": preds[j], "probability": prob_list[j]})
                rows.append(
                    (
                        request_id,
                        i,
                        ts,
                        model.version,
                        rec,
                        orjson.dumps(preds[j], option=_NUMPY).decode(),
                        prob_list[j],
                    )
                )
            responses.append(
                orjson.dumps(
                    {"request_id": request_id, "model_version": model.version, "predictions": part},
                    option=_NUMPY,
                )
            )
            start += len(batch)
        self.log.append(rows)
        return responses


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
    inline_rows: int = 256,
) -> Any:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        server = ModelServer(client, model_name, alias, log_path, poll_seconds)
        server.start()
        batcher = MicroBatcher(server, max_wait_ms, max_batch_rows, inline_rows)
        batcher.start()
        state.update(server=server, batcher=batcher, started=time.time())
        # The imported libraries and the model are a million long-lived objects: a full garbage
        # collection over them stalls every request for ~100 ms. Freeze them out of the GC's
        # view (refcounting still frees them); new request garbage is collected as usual.
        gc.collect()
        gc.freeze()
        yield
        await batcher.stop()
        server.stop()

    app = FastAPI(
        title="loopml model server",
        description="POST /predict with JSON records (one object, a list, or {'records': [...]}).",
        lifespan=lifespan,
    )

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

    async def predict(body: bytes, authorization: str | None) -> tuple[int, bytes]:
        token = os.environ.get(token_env)
        if token and authorization != f"Bearer {token}":
            return 401, _detail("missing or wrong bearer token")
        try:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"body is not valid JSON: {exc}") from None
            records = parsed.get("records", parsed) if isinstance(parsed, dict) else parsed
            if isinstance(records, dict):
                records = [records]
            current: LoadedModel = state["server"].current
            checked = check_records(records, current.model.input_kinds, current.required)
        except InputError as exc:
            return 422, _detail(str(exc))
        try:
            return 200, await state["batcher"].submit(checked)
        except Exception as exc:  # the model failed on valid input: a server error, logged
            log.exception("prediction failed")
            return 500, _detail(f"prediction failed: {type(exc).__name__}: {exc}")

    return PredictRoute(app, predict)


def _detail(message: str) -> bytes:
    return orjson.dumps({"detail": message})


class PredictRoute:
    """ASGI app: ``POST /predict`` answered directly, everything else by the FastAPI app.

    The prediction path skips FastAPI's routing, dependency and telemetry layers, which cost
    more than the prediction itself for one-row requests; input checking and the micro-batcher
    are the same as elsewhere.
    """

    def __init__(self, app: FastAPI, handler: Any) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            status, payload = 405, _detail("use POST /predict with JSON records")
        else:
            chunks, more = [], True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            auth = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
            )
            status, payload = await self.handler(b"".join(chunks), auth)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def app_from_params(params: Any) -> Any:
    """The server app for a loaded ``Params`` (its tracking store, model and ``serve`` section)."""
    from loopml.tracking import setup_tracking

    tracking = setup_tracking(params)
    cfg = params.serve
    return create_app(
        tracking.client(),
        params.promote.model_name,
        alias=cfg.alias,
        log_path=params.path("prediction_log"),
        poll_seconds=cfg.poll_seconds,
        max_wait_ms=cfg.max_wait_ms,
        max_batch_rows=cfg.max_batch_rows,
        token_env=cfg.token_env,
        inline_rows=cfg.inline_rows,
    )


PARAMS_ENV, OVERRIDES_ENV = "LOOPML_SERVE_PARAMS", "LOOPML_SERVE_OVERRIDES"


def app_from_environment() -> Any:
    """App factory for worker processes (``serve.workers`` > 1): params from the environment."""
    from loopml.config import load_params
    from loopml.runtime import configure_environment

    path = Path(os.environ[PARAMS_ENV])
    configure_environment(path.parent)
    return app_from_params(load_params(path, json.loads(os.environ.get(OVERRIDES_ENV, "{}"))))
