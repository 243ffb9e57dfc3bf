"""The local stack: ``loopml up`` starts, without Docker, a Prefect server with its UI, the
MLflow UI, the deployments (``loopml deploy``) and the model server; ``loopml down`` stops
exactly what ``up`` started (by the process groups it recorded)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import requests
import typer

from loopml.config import Params
from loopml_cli.app import ParamsOpt, app, console, load, session

log = logging.getLogger(__name__)

SERVICES = ("prefect", "mlflow", "deployments", "model")


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


def _start(
    name: str, cmd: list[str], health: str, run_dir: Path, env: dict[str, str], root: Path
) -> None:
    _spawn(name, cmd, run_dir, env, root)
    if not _wait_http(health, 120):
        raise RuntimeError(f"{name} did not answer on {health}; see {run_dir / f'{name}.log'}")


def start_stack(
    params: Params, params_path: Path, prefect_port: int = 4200, mlflow_port: int = 5000
) -> list[str]:
    """Start the local stack; returns what was started, with addresses."""
    from loopml.registry import alias_version
    from loopml.tracking import setup_tracking

    run_dir = params.path("runtime")
    already = running(run_dir)
    if already:
        raise RuntimeError(f"already running: {already}; run `loopml down` first")
    root = params.root
    api = f"http://127.0.0.1:{prefect_port}/api"
    env = {**os.environ, "PREFECT_API_URL": api}
    env.setdefault("PREFECT_HOME", str((root / ".prefect").resolve()))
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    py = [sys.executable, "-m"]
    prefect = [
        *py,
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(prefect_port),
    ]
    _start("prefect", prefect, f"{api}/health", run_dir, server_env, root)
    messages = [f"Prefect UI      http://127.0.0.1:{prefect_port}"]
    mlflow = [*py, "loopml_cli", "ui", "--params", str(params_path), "--port", str(mlflow_port)]
    _start("mlflow", mlflow, f"http://127.0.0.1:{mlflow_port}/health", run_dir, env, root)
    messages.append(f"MLflow UI       http://127.0.0.1:{mlflow_port}")
    _spawn(
        "deployments",
        [*py, "loopml_cli", "deploy", "--params", str(params_path)],
        run_dir,
        env,
        root,
    )
    messages.append(
        "deployments     training, monitoring, batch-scoring (served by `loopml deploy`)"
    )
    client = setup_tracking(params).client()
    if alias_version(client, params.promote.model_name, params.serve.alias) is None:
        messages.append(
            "model server    not started: no champion yet (run training, then `loopml serve`)"
        )
        return messages
    address = f"http://{params.serve.host}:{params.serve.port}"
    serve = [*py, "loopml_cli", "serve", "--params", str(params_path)]
    _start("model", serve, f"{address}/health", run_dir, env, root)
    messages.append(f"model server    {address}")
    return messages


def stop_stack(params: Params, timeout: float = 20.0) -> list[str]:
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


@app.command()
def up(
    params: ParamsOpt = Path("params.yaml"),
    prefect_port: Annotated[int, typer.Option(help="Prefect server port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port.")] = 5000,
) -> None:
    """Start the local stack (no Docker): Prefect server, MLflow UI, deployments, model server."""
    with session("up", params):
        p = load(params)
        with console.status("starting the Prefect server ..."):
            lines = start_stack(p, params.resolve(), prefect_port, mlflow_port)
    for line in lines:
        console.print(line, markup=False)
    console.print(f"logs: {p.path('runtime')}/*.log; stop with `loopml down`", markup=False)


@app.command()
def down(params: ParamsOpt = Path("params.yaml")) -> None:
    """Stop what `loopml up` started, and nothing else."""
    with session("down", params):
        stopped = stop_stack(load(params))
    console.print(
        "stopped: " + (", ".join(stopped) if stopped else "nothing was running"), markup=False
    )
