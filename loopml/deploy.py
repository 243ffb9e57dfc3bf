"""Deployments and the local stack.

``loopml deploy`` serves the ``training``, ``monitoring`` and ``batch-scoring`` deployments
(schedules and default parameters from ``params.yaml``) with ``prefect.serve``; ``loopml up``
starts, without Docker, a Prefect server with its UI, the MLflow UI, that deployment process and
the model server, and ``loopml down`` stops exactly what ``up`` started (by the process groups it
recorded).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from loopml.config import Params

log = logging.getLogger(__name__)

SERVICES = ("prefect", "mlflow", "deployments", "model")


def build_deployments(params: Params, params_path: Path) -> list[Any]:
    from flows.monitoring import monitoring
    from flows.scoring import batch_scoring
    from flows.training import training

    parameters = {"params_path": str(params_path.resolve())}
    jobs = [  # flow, deployment name, cron (None: on demand only), description
        (
            training,
            "training",
            params.deploy.training_cron,
            "collect -> validate -> features -> train -> evaluate -> promote",
        ),
        (
            monitoring,
            "monitoring",
            params.monitor.schedule_cron,
            "Evidently drift and quality; triggers training when due",
        ),
        (
            batch_scoring,
            "batch-scoring",
            params.score.schedule_cron,
            "the champion scores a batch from score.source into paths.scores",
        ),
    ]
    return [
        flow.to_deployment(
            name=name,
            parameters=parameters,
            cron=cron,
            description=description,
            tags=["loopml", params.project.name],
        )
        for flow, name, cron, description in jobs
    ]


def serve_deployments(params: Params, params_path: Path) -> None:
    """Register the deployments with their schedules and run their flows as they come (blocks)."""
    from prefect import serve

    serve(*build_deployments(params, params_path), limit=3)


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def _spawn(name: str, cmd: list[str], run_dir: Path, env: dict[str, str], cwd: Path) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    logfile = (run_dir / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )
    (run_dir / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies of our own children count
    as gone once reaped)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(run_dir: Path) -> dict[str, int]:
    out = {}
    for name in SERVICES:
        pidfile = run_dir / f"{name}.pid"
        if pidfile.is_file():
            pid = int(pidfile.read_text().strip() or 0)
            if pid and _alive(pid):
                out[name] = pid
    return out


def up(
    params: Params, params_path: Path, prefect_port: int = 4200, mlflow_port: int = 5000
) -> list[str]:
    """Start the local stack; returns what was started, with addresses."""
    from loopml.tracking import setup_tracking

    run_dir = params.path("runtime")
    already = running(run_dir)
    if already:
        raise RuntimeError(f"already running: {already}; run `loopml down` first")
    root = params.root
    api = f"http://127.0.0.1:{prefect_port}/api"
    env = {**os.environ, "PREFECT_API_URL": api}
    env.setdefault("PREFECT_HOME", str((root / ".prefect").resolve()))
    exe = [sys.executable, "-m"]
    messages = []
    _spawn(
        "prefect",
        [*exe, "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
        run_dir,
        {k: v for k, v in env.items() if k != "PREFECT_API_URL"},
        root,
    )
    if not _wait_http(f"{api}/health", 120):
        raise RuntimeError(
            f"the Prefect server did not answer on {api}; see {run_dir / 'prefect.log'}"
        )
    messages.append(f"Prefect UI      http://127.0.0.1:{prefect_port}")
    _spawn(
        "mlflow",
        [*exe, "loopml.cli", "ui", "--params", str(params_path), "--port", str(mlflow_port)],
        run_dir,
        env,
        root,
    )
    if not _wait_http(f"http://127.0.0.1:{mlflow_port}/health", 120):
        raise RuntimeError(f"the MLflow UI did not answer; see {run_dir / 'mlflow.log'}")
    messages.append(f"MLflow UI       http://127.0.0.1:{mlflow_port}")
    _spawn(
        "deployments",
        [*exe, "loopml.cli", "deploy", "--params", str(params_path)],
        run_dir,
        env,
        root,
    )
    messages.append(
        "deployments     training, monitoring, batch-scoring (served by `loopml deploy`)"
    )
    client = setup_tracking(params).client()
    try:
        client.get_model_version_by_alias(params.promote.model_name, params.serve.alias)
        has_champion = True
    except Exception:
        has_champion = False
    if has_champion:
        _spawn(
            "model", [*exe, "loopml.cli", "serve", "--params", str(params_path)], run_dir, env, root
        )
        url = f"http://{params.serve.host}:{params.serve.port}/health"
        if not _wait_http(url, 120):
            raise RuntimeError(
                f"the model server did not answer on {url}; see {run_dir / 'model.log'}"
            )
        messages.append(f"model server    http://{params.serve.host}:{params.serve.port}")
    else:
        messages.append(
            "model server    not started: no champion yet (run training, then `loopml serve`)"
        )
    return messages


def down(params: Params, timeout: float = 20.0) -> list[str]:
    """Stop what ``up`` started (and only that): SIGTERM to each recorded process group."""
    run_dir = params.path("runtime")
    stopped = []
    for name in reversed(SERVICES):
        pidfile = run_dir / f"{name}.pid"
        if not pidfile.is_file():
            continue
        pid = int(pidfile.read_text().strip() or 0)
        if pid and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.time() + timeout
            while _group_alive(pid) and time.time() < deadline:
                time.sleep(0.2)  # the leader and its children (server workers) all exit
            if _group_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            stopped.append(f"{name} (pid {pid})")
        pidfile.unlink(missing_ok=True)
    return stopped
