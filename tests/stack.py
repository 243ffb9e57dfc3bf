"""A real local stack for end-to-end tests: a Prefect server process, `loopml deploy`, and
optionally the MLflow UI, on free ports in a temporary project."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.conftest import make_dvc_repo, prefect_home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def descendants(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    found, frontier = set(), [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            for child in task.read_text().split():
                if int(child) not in found:
                    found.add(int(child))
                    frontier.append(int(child))
    return found


def wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


@contextlib.contextmanager
def prefect_stack(
    tmp_path: Path, raw_params: dict[str, Any], mlflow_ui: bool = False
) -> Iterator[dict]:
    repo = make_dvc_repo(tmp_path / "project")
    (repo / "params.yaml").write_text(yaml.safe_dump(raw_params))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": prefect_home(tmp_path / "prefect_home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_UI_API_URL"] = api  # the UI's browser code calls this address
    procs: list[subprocess.Popen] = []

    def spawn(name: str, cmd: list[str], environ: dict[str, str]) -> None:
        out = (tmp_path / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=repo,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    info: dict[str, Any] = {
        "repo": repo,
        "api": api,
        "ui": f"http://127.0.0.1:{port}",
        "tmp": tmp_path,
    }
    try:
        spawn(
            "server",
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
        )
        wait_http(f"{api}/health", 120)
        child_env = {**env, "PREFECT_API_URL": api}
        spawn(
            "deploy",
            [sys.executable, "-m", "loopml_cli", "deploy", "--params", str(repo / "params.yaml")],
            child_env,
        )
        if mlflow_ui:
            mport = free_port()
            spawn(
                "mlflow",
                [
                    sys.executable,
                    "-m",
                    "loopml_cli",
                    "ui",
                    "--params",
                    str(repo / "params.yaml"),
                    "--port",
                    str(mport),
                ],
                child_env,
            )
            wait_http(f"http://127.0.0.1:{mport}/health", 120)
            info["mlflow"] = f"http://127.0.0.1:{mport}"
        yield info
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 15)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
