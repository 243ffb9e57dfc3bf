"""The embedded Prefect server's app: on SQLite its 503s (a write refused by a lock conflict)
tell Prefect's client to retry after 0.5 s instead of its 2 s backoff; nothing else changes, and
a PostgreSQL-backed server is Prefect's app as it is."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from loopml_cli.prefect_server import RETRY_AFTER_S, RetrySoon, create_app


def _app() -> Starlette:
    def busy(request: Any) -> PlainTextResponse:
        return PlainTextResponse("Service Unavailable", status_code=503)

    def busy_with_header(request: Any) -> PlainTextResponse:
        return PlainTextResponse("later", status_code=503, headers={"Retry-After": "7"})

    def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/busy", busy), Route("/busy7", busy_with_header), Route("/ok", ok)]
    )


def test_a_503_gets_a_short_retry_after_and_nothing_else_changes() -> None:
    with TestClient(RetrySoon(_app())) as client:
        busy = client.get("/busy")
        assert busy.status_code == 503 and busy.headers["retry-after"] == RETRY_AFTER_S == "0.5"
        assert busy.text == "Service Unavailable"
        assert client.get("/busy7").headers.get_list("retry-after") == ["7"]  # kept, not added
        ok = client.get("/ok")
        assert ok.status_code == 200 and "retry-after" not in ok.headers and ok.text == "ok"


def test_prefects_client_waits_what_the_answer_says() -> None:
    """Prefect's own client reads the header (not a test of ours: of the contract we rely on)."""
    from prefect.client.base import _parse_retry_after

    assert _parse_retry_after(RETRY_AFTER_S) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("url", "wrapped"),
    [
        ("sqlite+aiosqlite:///{tmp}/prefect.db", True),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/prefect", False),
    ],
)
def test_only_a_sqlite_backed_server_is_wrapped(tmp_path: Any, url: str, wrapped: bool) -> None:
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: url.format(tmp=tmp_path)}):
        app = create_app()  # builds Prefect's app; connects to nothing until it starts
    assert isinstance(app, RetrySoon) is wrapped
