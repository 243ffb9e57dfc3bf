"""The Prefect API a command talks to: the one configured (``PREFECT_API_URL``, a team's
server), else the one ``loopml up`` runs for this project (its address is in the runtime
folder), or else an embedded API server started for this command.

The embedded server is a child process that starts while the command imports its libraries, in
its own session (a Ctrl-C in the terminal reaches the command, which then reports the run as
cancelled to a server still alive), and that dies with its parent, even on SIGKILL (Linux's
parent-death signal), so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

PR_SET_PDEATHSIG = 1
UP_API_FILE = "prefect.url"
"""In ``paths.runtime``: the API address of the Prefect server ``loopml up`` started."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


APP = "loopml_cli.prefect_server:create_app"
"""Prefect's server app, with a short ``Retry-After`` on its SQLite 503s
(:mod:`loopml_cli.prefect_server`)."""


def _bind(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_api(run_dir: Path) -> str | None:
    """The API of the Prefect server ``loopml up`` runs for this project, when it is running
    and this process may use it (a server with an auth string needs ``PREFECT_API_AUTH_STRING``
    here too); else None."""
    from loopml_cli.processes import group_alive

    url_file, pid_file = run_dir / UP_API_FILE, run_dir / "prefect.pid"
    try:
        url, pid = url_file.read_text().strip(), int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not url or not group_alive(pid):
        return None
    auth = os.environ.get("PREFECT_API_AUTH_STRING", "")
    user, _, password = auth.partition(":")
    try:  # an endpoint behind the auth, unlike /health
        ok = httpx.get(
            f"{url}/admin/version", auth=(user, password) if auth else None, timeout=2
        ).is_success
    except httpx.HTTPError:
        return None
    return url if ok else None


class EmbeddedApi:
    """A Prefect API server for one command; a no-op when an API is configured."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.url = os.environ.get("PREFECT_API_URL")

    @property
    def embedded(self) -> bool:
        return self.process is not None

    def start(self) -> None:
        """Start the server (returns at once); ``PREFECT_API_URL`` points to it from now on."""
        if self.url:
            return
        port = _free_port()
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", APP, *_bind(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.url = f"http://127.0.0.1:{port}/api"
        os.environ["PREFECT_API_URL"] = self.url

    def wait(self, timeout: float = 120.0) -> None:
        """Block until the API answers (a configured one too)."""
        if not self.url:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"the embedded Prefect API server exited (code {self.process.returncode}); "
                    f"see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the Prefect API at {self.url} did not answer in {timeout:.0f}s")

    def stop(self) -> None:
        """Deliver what Prefect still holds for the API (logs, events), then stop the server:
        stopped first, Prefect would retry against it for a minute at exit."""
        if self.process is None:
            return
        drain_prefect()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextlib.contextmanager
def without_heartbeats() -> Iterator[None]:
    """Flow runs send no heartbeats: for an embedded API, where nothing watches them (a team's
    server keeps them, for its crash automation). Prefect's heartbeat thread sleeps in steps of
    one second and each flow run joins it on exit, so a heartbeat costs up to a second per
    flow run: a training run is six flow runs."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def drain_prefect(timeout: float = 10.0) -> None:
    """Flush Prefect's background senders (the API log handler, the events worker)."""
    services = sys.modules.get("prefect._internal.concurrency.services")
    if services is None:  # Prefect was never imported: nothing to deliver
        return
    QueueService = services.QueueService

    def every(cls: type) -> set[type]:
        return {cls, *(c for sub in cls.__subclasses__() for c in every(sub))}

    for service in every(QueueService):
        with contextlib.suppress(Exception):
            service.drain_all(timeout=timeout, at_exit=False)
