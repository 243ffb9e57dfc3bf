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
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from loopml.config import Params, ServeConfig
from loopml.exceptions import InputError, NoModelYet, StorageError
from loopml.predlog import LogTarget
from loopml.serving.batcher import MicroBatcher
from loopml.serving.guard import Guard, respond
from loopml.serving.inputs import check_rows
from loopml.serving.labels import LabelsBody, PredictBody, parse_labels
from loopml.serving.server import ModelServer

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]


class _State:
    """What the lifespan starts: the model server and its micro-batcher."""

    server: ModelServer
    batcher: MicroBatcher


def _lifespan(
    state: _State, client: MlflowClient, model_name: str, cfg: ServeConfig, log_path: LogTarget
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


def _add_routes(app: FastAPI, state: _State, cfg: ServeConfig) -> None:
    """The routes besides ``POST /predict`` (:class:`Guard` has checked the token already)."""

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.get("/health", responses={503: {"description": "No version has the alias yet."}})
    async def health() -> Any:
        server = state.server
        if server.current is None:  # alive, not ready: waiting for a first champion
            waiting = {"status": "waiting", "model": server.name, "alias": server.alias}
            return JSONResponse(status_code=503, content=waiting)
        health = {"status": "ok", "model": server.name, "version": server.current.version}
        return {**health, "refused": server.refused} if server.refused else health

    @app.exception_handler(NoModelYet)
    async def _no_model(request: Request, exc: NoModelYet) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only where and what: the offending value may be huge, or not JSON at all (inf, NaN).
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:10]
        ]
        return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})

    @app.exception_handler(StorageError)
    async def _no_space(request: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse(status_code=507, content={"detail": str(exc)})

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        return state.server.model().info.to_json()

    @app.post(
        "/labels",
        responses={422: {"description": "A malformed or unknown label; the message says which."}},
    )
    async def labels(body: LabelsBody) -> dict[str, Any]:
        """Ground truth for logged predictions, by request id and row."""
        parsed = parse_labels(body, cfg.max_records, cfg.max_string_length)
        count = await asyncio.to_thread(state.server.log.add_labels, parsed)
        return {"labels": count}

    @app.post("/predict")
    async def predict(body: PredictBody) -> dict[str, Any]:  # pragma: no cover - shadowed
        """JSON records: one object, a list, or ``{"records": [...]}``. (Answered by the fast
        path; declared here for the OpenAPI schema.)"""
        raise AssertionError("POST /predict is answered by PredictRoute")


def _predict_handler(state: _State, cfg: ServeConfig) -> Handler:
    async def predict(body: bytes) -> tuple[int, bytes]:
        try:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"body is not valid JSON: {exc}") from None
            records = parsed.get("records", parsed) if isinstance(parsed, dict) else parsed
            if isinstance(records, dict):
                records = [records]
            try:
                current = state.server.model()
            except NoModelYet as exc:
                return 503, _detail(str(exc))
            checked = check_rows(
                records,
                current.model.input_kinds,
                current.required,
                cfg.max_records,
                cfg.max_string_length,
            )
        except InputError as exc:
            return 422, _detail(str(exc))
        try:
            return 200, await state.batcher.submit(checked)
        except Exception as exc:  # the model failed on valid input: a server error, logged
            log.exception("prediction failed")
            return 500, _detail(f"prediction failed: {type(exc).__name__}: {exc}")

    return predict


def create_app(
    client: MlflowClient, model_name: str, cfg: ServeConfig, log_path: LogTarget
) -> Guard:
    """The ASGI app serving ``model_name@cfg.alias`` from the registry behind ``client``."""
    state = _State()
    app = FastAPI(
        title="loopml model server",
        description="POST /predict with JSON records (one object, a list, or {'records': [...]}).",
        lifespan=_lifespan(state, client, model_name, cfg, log_path),
    )
    _add_routes(app, state, cfg)
    return Guard(PredictRoute(app, _predict_handler(state, cfg)), cfg.token_env, cfg.max_body_bytes)


def _detail(message: str) -> bytes:
    return orjson.dumps({"detail": message})


class PredictRoute:
    """ASGI app behind :class:`Guard`: ``POST /predict`` answered directly, everything else by
    the FastAPI app.

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
        # :class:`Guard` checked the method and read the whole body: it comes as one message.
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        status, payload = await self.handler(message.get("body", b""))
        await respond(send, status, payload)


def app_from_params(params: Params) -> Guard:
    """The server app for a loaded ``Params`` (its tracking store, model and ``serve`` section)."""
    from loopml.predlog import log_target
    from loopml.tracking import setup_tracking

    tracking = setup_tracking(params)
    return create_app(
        tracking.client(), params.promote.model_name, params.serve, log_target(params)
    )


PARAMS_ENV, OVERRIDES_ENV = "LOOPML_SERVE_PARAMS", "LOOPML_SERVE_OVERRIDES"


def app_from_environment() -> Guard:
    """App factory for worker processes (``serve.workers`` > 1): params from the environment."""
    from loopml.config import load_params
    from loopml.runtime import configure_environment

    path = Path(os.environ[PARAMS_ENV])
    configure_environment(path.parent)
    return app_from_params(load_params(path, json.loads(os.environ.get(OVERRIDES_ENV, "{}"))))
