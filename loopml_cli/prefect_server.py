"""The embedded Prefect API server's app: Prefect's own, and on SQLite a ``Retry-After`` on its
503 answers.

Prefect's server answers 503 when SQLite refuses a write because another connection wrote
since the transaction's first read (``database is locked`` at once, without SQLite's busy
timeout: upstream issue PrefectHQ/prefect#18934, seen here when a subflow starts while the
server records the previous stage's task runs). Prefect's client retries a 503 after 2 s, or
after the server's ``Retry-After`` when there is one; the conflict is over by the time any retry
arrives, so on SQLite the answer says to retry after :data:`RETRY_AFTER_S`. A PostgreSQL-backed
server is left as Prefect builds it: its 503s (a database away) deserve the client's backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_S = "0.5"
"""Five retries (Prefect's client default) span 2.5 s or more."""


class RetrySoon:
    """ASGI middleware: a 503 answer without ``Retry-After`` gets ``Retry-After: 0.5``."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", RETRY_AFTER_S.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)


def on_sqlite() -> bool:
    """Whether the server's database is SQLite (Prefect's default when none is configured)."""
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    return url is None or str(url).startswith("sqlite")


def create_app() -> App:
    """Prefect's server app (uvicorn ``--factory``), wrapped on SQLite."""
    from prefect.server.api.server import create_app as prefect_app

    app = prefect_app()
    return RetrySoon(app) if on_sqlite() else app
