"""Locks that serialize promotion across every process that can promote.

- ``postgresql://...``: a PostgreSQL advisory lock, held by one session for the duration of
  the block; it holds across machines and is released by the database if the holder dies.
- anything else: a file lock in a local folder (one machine; the embedded SQLite stores).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.config import Params
from loopml.secrets import expand, redact_url

if TYPE_CHECKING:
    from loopml.tracking import Tracking

log = logging.getLogger(__name__)
LOCK_URL_ENV = "LOOPML_LOCK_URL"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(url: str, name: str) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock ``name`` on the database at ``url``."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(name),))
        log.debug("advisory lock %s held on %s", name, redact_url(url))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))


@dataclass(frozen=True)
class Lock:
    """A named lock: on the PostgreSQL database ``url`` when it is one, otherwise a file in
    ``lock_dir``. Plain data, so it can be handed to another process."""

    name: str
    lock_dir: Path
    url: str | None = None
    """A ``${VAR}`` reference is expanded from the environment when the lock is taken."""

    @contextmanager
    def hold(self) -> Iterator[None]:
        """One holder at a time."""
        resolved = expand(self.url, "promote.lock_url") if self.url else None
        if resolved and resolved.startswith(("postgresql://", "postgresql+psycopg://")):
            with advisory_lock(resolved, self.name):
                yield
            return
        from filelock import FileLock

        self.lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock_dir / f"{self.name}.lock")):
            yield


def promotion_lock(params: Params, tracking: Tracking) -> Lock:
    """The lock promotions of this model take: an advisory lock on ``promote.lock_url``, else
    ``LOOPML_LOCK_URL``, else the registry's own database when it is PostgreSQL; a file lock
    in ``paths.locks`` otherwise (the embedded SQLite store)."""
    url = params.promote.lock_url or os.environ.get(LOCK_URL_ENV)
    if url is None and tracking.registry.startswith("postgresql"):
        url = tracking.registry
    return Lock(f"promote-{params.promote.model_name}", params.path("locks"), url)
