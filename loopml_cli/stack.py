"""The local stack: ``loopml up`` starts, without Docker, a Prefect server with its UI, the
MLflow UI, the deployments (``loopml deploy``) and the model server; ``loopml down`` stops
exactly what ``up`` started (by the process groups it recorded)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from loopml.config import Params
from loopml_cli.app import ParamsOpt, app, console, load, session
from loopml_cli.prefect_api import UP_API_FILE
from loopml_cli.processes import alive, running, spawn, stop_group, wait_http

log = logging.getLogger(__name__)

SERVICES = ("prefect", "mlflow", "deployments", "model")


class AlreadyRunning(RuntimeError):
    """``up`` found the servers of an earlier ``up`` still running."""


def _start(
    name: str, cmd: list[str], health: str, run_dir: Path, env: dict[str, str], root: Path
) -> None:
    pid = spawn(name, cmd, run_dir, env, root)
    if not wait_http(health, 120, pid):
        raise RuntimeError(f"{name} did not answer on {health}; see {run_dir / f'{name}.log'}")


def _reach(host: str) -> str:
    """The address to reach a server bound to ``host`` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def start_stack(
    params: Params,
    params_path: Path,
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    host: str = "127.0.0.1",
) -> list[str]:
    """Start the local stack; returns what was started, with addresses.

    Authentication comes from the environment (``stack_auth``); a bind address other than
    loopback is refused unless all three servers are authenticated.
    """
    from loopml.registry import alias_version
    from loopml.tracking import setup_tracking
    from loopml_cli import stack_auth

    auth = stack_auth.read_auth(os.environ, params.serve.token_env)
    stack_auth.check_bind(host, auth, "up")
    run_dir = params.path("runtime")
    already = running(run_dir)
    if already:
        raise AlreadyRunning(f"already running: {already}; run `loopml down` first")
    root, at = params.root, _reach(host)
    api = f"http://{at}:{prefect_port}/api"
    env = {**os.environ, "PREFECT_API_URL": api}
    env.setdefault("PREFECT_HOME", str((root / ".prefect").resolve()))
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server_env |= stack_auth.prefect_server_env(auth, env)
    py = [sys.executable, "-m"]
    prefect = [*py, "prefect", "server", "start", "--host", host, "--port", str(prefect_port)]
    _start("prefect", prefect, f"{api}/health", run_dir, server_env, root)
    (run_dir / UP_API_FILE).write_text(api)  # later commands of this project use this server
    messages = [f"Prefect UI      http://{at}:{prefect_port}{auth.label('prefect')}"]
    mlflow = [*py, "loopml_cli", "ui", "--params", str(params_path)]
    mlflow += ["--host", host, "--port", str(mlflow_port)]
    _start("mlflow", mlflow, f"http://{at}:{mlflow_port}/health", run_dir, env, root)
    messages.append(f"MLflow UI       http://{at}:{mlflow_port}{auth.label('mlflow')}")
    deploy = [*py, "loopml_cli", "deploy", "--params", str(params_path)]
    spawn("deployments", deploy, run_dir, env, root)
    messages.append(
        "deployments     training, monitoring, batch-scoring (served by `loopml deploy`)"
    )
    client = setup_tracking(params).client()
    if alias_version(client, params.promote.model_name, params.serve.alias) is None:
        messages.append(
            "model server    not started: no champion yet (run training, then `loopml serve`)"
        )
        return messages
    bind = host if not stack_auth.is_loopback(host) else params.serve.host
    address = f"http://{_reach(bind)}:{params.serve.port}"
    serve = [*py, "loopml_cli", "serve", "--params", str(params_path), "--host", bind]
    _start("model", serve, f"{address}/health", run_dir, env, root)
    messages.append(f"model server    {address}{auth.label('model')}")
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
        if pid and alive(pid):
            stop_group(pid, timeout)
            stopped.append(f"{name} (pid {pid})")
        pidfile.unlink(missing_ok=True)
    (run_dir / UP_API_FILE).unlink(missing_ok=True)
    return stopped


@app.command()
def up(
    params: ParamsOpt = Path("params.yaml"),
    prefect_port: Annotated[int, typer.Option(help="Prefect server port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port.")] = 5000,
    host: Annotated[
        str,
        typer.Option(
            help="Bind address of every server. Anything but loopback needs "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD, PREFECT_API_AUTH_STRING "
            "(user:password) and the model token (serve.token_env) in the environment."
        ),
    ] = "127.0.0.1",
) -> None:
    """Start the local stack (no Docker): Prefect server, MLflow UI, deployments, model server.

    Each server is authenticated when its credentials are in the environment (see --host).
    """
    with session("up", params):
        p = load(params)
        with console.status("starting the Prefect server ..."):
            try:
                lines = start_stack(p, params.resolve(), prefect_port, mlflow_port, host)
            except AlreadyRunning:
                raise
            except BaseException:
                stop_stack(p)  # a server that failed to start: stop the ones started before it
                raise
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
