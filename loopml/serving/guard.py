"""The model server's front door: every request passes here before any route sees it.

In this order, before a byte of the body is read: the bearer token (when ``serve.token_env``
names a set variable; compared in constant time; ``/health`` stays open), the method of a known
path (405), ``Content-Type: application/json`` for POST (415: a web page cannot post a form or
``text/plain`` body to the server without a CORS preflight), and a declared ``Content-Length``
above ``serve.max_body_bytes`` (413). Then the body is read up to that limit (a streamed body
that passes it is cut off with a 413) and handed to the app whole.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METHODS = {
    "/predict": {"POST"},
    "/labels": {"POST"},
    "/health": {"GET", "HEAD"},
    "/model": {"GET", "HEAD"},
    "/docs": {"GET", "HEAD"},
    "/redoc": {"GET", "HEAD"},
    "/openapi.json": {"GET", "HEAD"},
}
OPEN = frozenset({"/health"})
"""Paths answered without the token (liveness probes); they reveal no data."""


def token_matches(header: bytes | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    return hmac.compare_digest(header or b"", b"Bearer " + token.encode())


class Guard:
    """ASGI middleware enforcing authentication, methods, content type and body size."""

    def __init__(self, app: ASGIApp, token_env: str, max_body_bytes: int) -> None:
        self.app = app
        self.token_env = token_env
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive)
        if body is None:
            await _answer(send, 413, f"body larger than {self.max_body_bytes:,} bytes")
            return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why the request is refused from its head alone, or None."""
        headers = dict(scope["headers"])
        path, method = scope["path"], scope["method"]
        token = os.environ.get(self.token_env)
        if token and path not in OPEN and not token_matches(headers.get(b"authorization"), token):
            return 401, "missing or wrong bearer token"
        allowed = METHODS.get(path)
        if allowed is not None and method not in allowed:
            return 405, f"{path} accepts {', '.join(sorted(allowed))}"
        if method == "POST":
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                return 415, "send the body as JSON with Content-Type: application/json"
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                return 413, f"body larger than {self.max_body_bytes:,} bytes (serve.max_body_bytes)"
        return None

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (the rest is never read)."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """The body read ahead, as one message; then the connection's own events (a disconnect)."""
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def respond(send: Send, status: int, payload: bytes) -> None:
    """A whole JSON response."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _answer(send: Send, status: int, detail: str) -> None:
    await respond(send, status, orjson.dumps({"detail": detail}))
