"""``loopml stack up|down|compose``: the server stack of ``topology`` as native processes (this
machine has no Docker engine), and ``docker-compose.yml`` rendered from the same definition.

Natively: the local PostgreSQL (``LOOPML_STACK_POSTGRES_URL``) holds the MLflow and Prefect
databases, moto's standalone S3 server stands in for MinIO (the buckets are made at start), and
every service of the definition runs with its command and environment, on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from loopml.exceptions import ConfigError
from loopml.secrets import REFERENCE
from loopml_cli import CODE_ROOT, stack_auth, topology
from loopml_cli.app import ParamsOpt, app, console, load, session
from loopml_cli.prefect_api import UP_API_FILE
from loopml_cli.processes import running, spawn, stop_group, wait_http

stack_app = typer.Typer(help="The server stack: PostgreSQL, S3, MLflow and Prefect servers.")
app.add_typer(stack_app, name="stack")

REMOTE = "stack"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
NATIVE_ONLY_SECRETS = {"POSTGRES_PASSWORD"}  # the local PostgreSQL has its own login


@dataclass(frozen=True)
class NativeStack:
    """Where the native stack runs: its folder, ports, databases."""

    run_dir: Path
    postgres_url: str
    ports: dict[str, int]
    db_prefix: str = "loopml"

    def addresses(self) -> dict[str, str]:
        pg = urlsplit(self.postgres_url)
        at = {name: f"127.0.0.1:{port}" for name, port in self.ports.items()}
        return {
            **at,
            "postgres": f"{pg.hostname}:{pg.port or 5432}",
            "pg_user": pg.username or "postgres",
            "pg_password": pg.password or "",
            "db_mlflow": f"{self.db_prefix}_mlflow",
            "db_prefect": f"{self.db_prefix}_prefect",
            "db_predictions": f"{self.db_prefix}_predictions",
            "mlflow_auth_config": str(self.run_dir / "mlflow-auth.ini"),
            "code": str(CODE_ROOT),
            "prefect_ui": f"http://{at['prefect']}/api",
        }


def missing_secrets(env: dict[str, str]) -> list[str]:
    return [k for k in topology.SECRETS if k not in NATIVE_ONLY_SECRETS and not env.get(k)]


def expand(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` from the environment, in memory only."""
    return REFERENCE.sub(lambda m: env.get(m.group(1), ""), text)


def native_command(service: topology.Service, addresses: dict[str, str]) -> list[str]:
    cmd = [topology.render(part, addresses) for part in service.command]
    # Same command; the native port is the one chosen for this stack.
    if service.port is not None and "--port" in cmd:
        cmd[cmd.index("--port") + 1] = addresses[service.name].split(":")[1]
    if cmd[0] in {"mlflow", "prefect"}:
        cmd = [sys.executable, "-m", *cmd]
    elif cmd[0] == "python":
        cmd[0] = sys.executable
    return cmd


def native_environment(
    service: topology.Service, addresses: dict[str, str], base: Mapping[str, str]
) -> dict[str, str]:
    """``base`` with the service's environment, its references expanded from ``base``."""
    env = dict(base)
    # `sh -c` commands name programs (python, prefect): this interpreter's first
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [bin_dir, *[p for p in base.get("PATH", "").split(os.pathsep) if p]]
    )
    for key, value in service.environment.items():
        env[key] = expand(topology.render(value, addresses), base)
    return env


def _create_databases(stack: NativeStack, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        for name in names:
            if name not in have:
                conn.execute(f'CREATE DATABASE "{name}"')


def _start_s3(stack: NativeStack, env: dict[str, str]) -> None:
    import boto3

    port = str(stack.ports["s3"])
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", port]
    pid = spawn("s3", cmd, stack.run_dir, env, stack.run_dir)
    url = f"http://127.0.0.1:{port}"
    if not wait_http(f"{url}/", 60, pid):
        raise RuntimeError(f"the S3 server did not start; see {stack.run_dir / 's3.log'}")
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=env["S3_ACCESS_KEY"],
        aws_secret_access_key=env["S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in topology.BUCKETS:
        if bucket not in have:
            s3.create_bucket(Bucket=bucket)


def use_s3_remote(project: Path, url: str, endpoint: str) -> None:
    """Make the project's default DVC remote the stack's bucket, in ``.dvc/config.local`` (not
    committed; the credentials come from the AWS variables of the environment)."""
    dvc = [sys.executable, "-m", "dvc", "remote"]
    for args in (
        ["add", "--local", "--force", "--default", REMOTE, url],
        ["modify", "--local", REMOTE, "endpointurl", endpoint],
    ):
        done = subprocess.run([*dvc, *args], cwd=project, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"dvc remote {args[0]} in {project}: {done.stderr.strip()}")


def start_server_stack(stack: NativeStack, project: Path) -> list[str]:
    """Start every service of the definition natively; returns what runs where."""
    env = dict(os.environ)
    missing = missing_secrets(env)
    if missing:
        source = "the environment (see .env.example)"
        raise ConfigError([f"set {k}" for k in missing], source=source)
    addresses = stack.addresses()
    _create_databases(stack, [addresses[f"db_{name}"] for name in topology.DATABASES])
    _start_s3(stack, env)
    auth = stack_auth.read_auth(env, "LOOPML_API_TOKEN")
    stack_auth.mlflow_auth_env(auth, env, stack.run_dir)  # writes the auth app's ini
    lines = [f"S3 (moto)       http://{addresses['s3']}  buckets {', '.join(topology.BUCKETS)}"]
    remote = f"s3://{topology.DVC_BUCKET}/{project.name}"
    use_s3_remote(project, remote, f"http://{addresses['s3']}")
    lines.append(f"DVC remote      {remote} (in {project / '.dvc' / 'config.local'})")
    for service in topology.SERVICES:
        cmd = native_command(service, addresses)
        service_env = native_environment(service, addresses, env)
        if service.one_shot:
            done = subprocess.run(
                cmd, cwd=CODE_ROOT, env=service_env, capture_output=True, text=True, check=False
            )
            (stack.run_dir / f"{service.name}.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                raise RuntimeError(
                    f"{service.name} failed; see {stack.run_dir / f'{service.name}.log'}"
                )
            lines.append(f"{service.name:<15} registered from prefect.yaml")
            continue
        for i in range(service.replicas):
            name = service.name if service.replicas == 1 else f"{service.name}-{i + 1}"
            # the model server reads the project's params.yaml, as compose's does in /app
            cwd = project if service.name == "model" else CODE_ROOT
            pid = spawn(name, cmd, stack.run_dir, service_env, cwd)
            waiting = service.name == "model"  # 503 until the first champion: it waits for one
            if service.health and not wait_http(
                f"http://{addresses[service.name]}{service.health}", 180, pid, waiting
            ):
                raise RuntimeError(f"{name} did not start; see {stack.run_dir / f'{name}.log'}")
            where = f"http://{addresses[service.name]}" if service.port else "pool loopml"
            if service.name == "prefect":  # later commands of this project use this server
                (stack.run_dir / UP_API_FILE).write_text(f"{where}/api")
            lines.append(f"{name:<15} {where}")
    return lines


def stop_server_stack(run_dir: Path) -> list[str]:
    """Stop what ``stack up`` started: workers first, the storage last."""
    order = ["worker", "model", "prefect", "mlflow", "s3"]
    pids = sorted(running(run_dir).items(), key=lambda kv: order.index(kv[0].split("-")[0]))
    for _name, pid in pids:
        stop_group(pid)
    for pidfile in run_dir.glob("*.pid"):  # those that died on their own too
        pidfile.unlink()
    (run_dir / UP_API_FILE).unlink(missing_ok=True)
    return [f"{name} (pid {pid})" for name, pid in pids]


PortOpt = Annotated[int | None, typer.Option(help="Port (default: the compose file's).")]


@stack_app.command("up")
def stack_up(
    params: ParamsOpt = Path("params.yaml"),
    s3_port: PortOpt = None,
    mlflow_port: PortOpt = None,
    prefect_port: PortOpt = None,
    db_prefix: Annotated[str, typer.Option(help="Prefix of the three databases.")] = "loopml",
) -> None:
    """Start the server stack natively: S3, MLflow and Prefect servers on PostgreSQL, the
    deployments of prefect.yaml on the work pool, two workers. Secrets from the environment."""
    with session("stack-up", params):
        p = load(params)
        ports = {
            "s3": s3_port or topology.PORTS["s3"],
            "mlflow": mlflow_port or topology.PORTS["mlflow"],
            "prefect": prefect_port or topology.PORTS["prefect"],
            "model": p.serve.port,
        }
        stack = NativeStack(
            run_dir=p.path("runtime") / "stack",
            postgres_url=os.environ.get("LOOPML_STACK_POSTGRES_URL", DEFAULT_POSTGRES),
            ports=ports,
            db_prefix=db_prefix,
        )
        stack.run_dir.mkdir(parents=True, exist_ok=True)
        if running(stack.run_dir):
            raise RuntimeError(f"already running: {running(stack.run_dir)}; `loopml stack down`")
        try:
            with console.status("starting the server stack ..."):
                lines = start_server_stack(stack, p.root)
        except Exception:
            stop_server_stack(stack.run_dir)
            raise
    for line in lines:
        console.print(line, markup=False)
    console.print(f"logs: {stack.run_dir}/*.log; stop with `loopml stack down`", markup=False)


@stack_app.command("down")
def stack_down(params: ParamsOpt = Path("params.yaml")) -> None:
    """Stop what `loopml stack up` started, and nothing else."""
    with session("stack-down", params):
        stopped = stop_server_stack(load(params).path("runtime") / "stack")
    console.print("stopped: " + (", ".join(stopped) or "nothing was running"), markup=False)


@stack_app.command("compose")
def stack_compose(
    write: Annotated[
        bool,
        typer.Option(
            "--write", help="Write docker-compose.yml and stack/constraints.txt in the repository."
        ),
    ] = False,
) -> None:
    """Print (or --write) docker-compose.yml, rendered from the stack definition."""
    from loopml_cli.compose import render_compose, render_constraints

    text = render_compose()
    if not write:
        typer.echo(text, nl=False)
        return
    (CODE_ROOT / "docker-compose.yml").write_text(text)
    (CODE_ROOT / "stack" / "constraints.txt").write_text(render_constraints())
    console.print(f"wrote {CODE_ROOT / 'docker-compose.yml'} and stack/constraints.txt")


@stack_app.command("automations")
def stack_automations() -> None:
    """Create the stack's Prefect automations (zombie runs become Crashed) on PREFECT_API_URL."""
    from loopml.runtime import configure_environment
    from loopml_cli.automations import ZOMBIE_AUTOMATION, ensure_zombie_automation

    configure_environment()
    console.print(f"automation {ZOMBIE_AUTOMATION}: {ensure_zombie_automation()}", markup=False)
