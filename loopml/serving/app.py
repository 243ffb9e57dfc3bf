"""The model server's web app: ``POST /predict``, ``POST /labels``, ``GET /health``, ``/model``.

* ``POST /predict``: JSON records (one object, a list, or ``{"records": [...]}``), validated
  against the model's input columns (a 422 names the column and the problem, never a 500).
* ``POST /labels``: ground truth for logged predictions, by request id (and row).

Requests are micro-batched; a watcher swaps in the model when the alias moves (in-flight
batches finish on the model they started with); every prediction goes to the prediction log.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from loopml.config import Params, ServeConfig
from loopml.exceptions import InputError
from loopml.serving.batcher import MicroBatcher
from loopml.serving.fastpath import check_records
from loopml.serving.server import ModelServer

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

Handler = Callable[[bytes, str | None], Awaitable[tuple[int, bytes]]]


class _State:
    """What the lifespan starts: the model server and its micro-batcher."""

    server: ModelServer
    batcher: MicroBatcher


def _lifespan(
    state: _State, client: MlflowClient, model_name: str, cfg: ServeConfig, log_path: Path
) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.server = ModelServer(client, model_name, cfg.alias, log_path, cfg.poll_seconds)
        state.server.start()
        state.batcher = MicroBatcher(
            state.server, cfg.max_wait_ms, cfg.max_batch_rows, cfg.inline_rows
        )
        state.batcher.start()
        # The imported libraries and the model are a million long-lived objects: a full garbage
        # collection over them stalls every request for ~100 ms. Freeze them out of the GC's
        # view (refcounting still frees them); new request garbage is collected as usual.
        gc.collect()
        gc.freeze()
        yield
        await state.batcher.stop()
        state.server.stop()

    return lifespan


def _parse_labels(body: Any) -> list[tuple[str, int, str]]:
    items = body.get("labels") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError("expected {'labels': [{'request_id': ..., 'row': 0, 'label': ...}]}")
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            raise InputError(f"label {i} needs 'request_id' and 'label'")
        parsed.append((str(item["request_id"]), int(item.get("row", 0)), json.dumps(item["label"])))
    return parsed


def _add_routes(app: FastAPI, state: _State, token_env: str) -> None:
    def _auth(request: Request) -> None:
        token = os.environ.get(token_env)
        if token and request.headers.get("authorization") != f"Bearer {token}":
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.get("/health")
    async def health() -> dict[str, Any]:
        server = state.server
        return {"status": "ok", "model": server.name, "version": server.current.version}

    @app.get("/model")
    async def model_info(request: Request) -> dict[str, Any]:
        _auth(request)
        return state.server.current.info.to_json()

    @app.post("/labels")
    async def labels(request: Request) -> dict[str, Any]:
        _auth(request)
        parsed = _parse_labels(await request.json())
        count = await asyncio.to_thread(state.server.log.add_labels, parsed)
        return {"labels": count}


def _predict_handler(state: _State, token_env: str) -> Handler:
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
            current = state.server.current
            checked = check_records(records, current.model.input_kinds, current.required)
        except InputError as exc:
            return 422, _detail(str(exc))
        try:
            return 200, await state.batcher.submit(checked)
        except Exception as exc:  # the model failed on valid input: a server error, logged
            log.exception("prediction failed")
            return 500, _detail(f"prediction failed: {type(exc).__name__}: {exc}")

    return predict


def create_app(
    client: MlflowClient, model_name: str, cfg: ServeConfig, log_path: Path
) -> PredictRoute:
    """The ASGI app serving ``model_name@cfg.alias`` from the registry behind ``client``."""
    state = _State()
    app = FastAPI(
        title="loopml model server",
        description="POST /predict with JSON records (one object, a list, or {'records': [...]}).",
        lifespan=_lifespan(state, client, model_name, cfg, log_path),
    )
    _add_routes(app, state, cfg.token_env)
    return PredictRoute(app, _predict_handler(state, cfg.token_env))


def _detail(message: str) -> bytes:
    return orjson.dumps({"detail": message})


class PredictRoute:
    """ASGI app: ``POST /predict`` answered directly, everything else by the FastAPI app.

    The prediction path skips FastAPI's routing, dependency and telemetry layers, which cost
    more than the prediction itself for one-row requests; input checking and the micro-batcher
    are the same as elsewhere.
    """

    def __init__(self, app: FastAPI, handler: Handler) -> None:
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


def app_from_params(params: Params) -> PredictRoute:
    """The server app for a loaded ``Params`` (its tracking store, model and ``serve`` section)."""
    from loopml.tracking import setup_tracking

    tracking = setup_tracking(params)
    return create_app(
        tracking.client(), params.promote.model_name, params.serve, params.path("prediction_log")
    )


PARAMS_ENV, OVERRIDES_ENV = "LOOPML_SERVE_PARAMS", "LOOPML_SERVE_OVERRIDES"


def app_from_environment() -> PredictRoute:
    """App factory for worker processes (``serve.workers`` > 1): params from the environment."""
    from loopml.config import load_params
    from loopml.runtime import configure_environment

    path = Path(os.environ[PARAMS_ENV])
    configure_environment(path.parent)
    return app_from_params(load_params(path, json.loads(os.environ.get(OVERRIDES_ENV, "{}"))))
