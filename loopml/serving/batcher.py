"""Micro-batching: concurrent requests predicted together, so the feature transform runs once
per batch instead of once per request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopml.serving.inputs import Rows
    from loopml.serving.server import ModelServer


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
        self.pending: list[tuple[Rows, asyncio.Future[bytes]]] = []
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

    async def submit(self, records: Rows) -> bytes:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        if not self.pending:
            self.first_at = loop.time()
            self.wake.set()
        self.pending.append((records, fut))
        self.pending_rows += records.count
        if self.pending_rows >= self.max_rows:
            self.full.set()
        return await fut

    def _take(self) -> list[tuple[Rows, asyncio.Future[bytes]]]:
        """The oldest requests up to ``max_rows`` (at least one)."""
        rows, n = 0, 0
        for records, _ in self.pending:
            if n and rows + records.count > self.max_rows:
                break
            rows += records.count
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
                    self.server.current is not None
                    and self.server.current.compiled is not None
                    and sum(r.count for r in requests) <= self.inline_rows
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
