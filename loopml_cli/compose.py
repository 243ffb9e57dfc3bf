"""``docker-compose.yml`` rendered from ``topology``: the loopml services with the definition's
commands and environment, plus the storage containers compose needs (PostgreSQL, MinIO and a
one-shot that makes the buckets). ``loopml stack compose --write`` writes it; a test checks
that the committed file is what the definition renders.

Every secret is ``${VAR:?...}`` (compose refuses to start without it); published ports are
bound to ``${LOOPML_BIND:-127.0.0.1}``; ``PREFECT_UI_API_URL`` (default
http://127.0.0.1:4200/api) is where browsers reach the Prefect API.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import yaml

from loopml.secrets import REFERENCE
from loopml_cli import topology

HEADER = """\
# The loopml server stack for a team. Generated from loopml_cli/topology.py by
# `loopml stack compose --write`; do not edit by hand (a test compares the two).
#   cp .env.example .env        # then replace every placeholder
#   docker compose up -d
# The same services run natively, without Docker, with `loopml stack up`.
"""
POSTGRES_IMAGE = "postgres:15.20"
MINIO_IMAGE = "minio/minio:RELEASE.2025-09-07T16-13-09Z"
MC_IMAGE = "minio/mc:RELEASE.2025-08-13T08-35-41Z"
BIND = "${LOOPML_BIND:-127.0.0.1}"
ADDRESSES = {
    "postgres": "postgres:5432",
    "s3": "s3:9000",
    "mlflow": "mlflow:5000",
    "prefect": "prefect:4200",
    "model": "model:8000",
    "pg_user": "loopml",
    "pg_password": "${POSTGRES_PASSWORD}",
    "db_mlflow": "mlflow",
    "db_prefect": "prefect",
    "db_predictions": "predictions",
    "mlflow_auth_config": "/app/stack/mlflow-auth.ini",
    "code": "/app",
    "prefect_ui": "${PREFECT_UI_API_URL:-http://127.0.0.1:4200/api}",
}


def required(text: str) -> str:
    """``${VAR}`` -> ``${VAR:?...}``: compose stops with the message when VAR is unset
    (``${VAR:-default}``, not a secret, is left as it is)."""
    return REFERENCE.sub(lambda m: f"${{{m.group(1)}:?set {m.group(1)} in .env}}", text)


def image() -> str:
    return f"loopml:{version('loopml')}"


def _http_check(port: int, path: str) -> dict[str, Any]:
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}')"
    return {"test": ["CMD", "python", "-c", probe], "interval": "10s", "retries": 30}


def _storage() -> dict[str, Any]:
    buckets = " ".join(f"s3/{b}" for b in topology.BUCKETS)
    return {
        "postgres": {
            "image": POSTGRES_IMAGE,
            "environment": {
                "POSTGRES_USER": "loopml",
                "POSTGRES_PASSWORD": required("${POSTGRES_PASSWORD}"),
            },
            "volumes": [
                "postgres:/var/lib/postgresql/data",
                "./stack/postgres-init.sql:/docker-entrypoint-initdb.d/init.sql:ro",
            ],
            "healthcheck": {
                "test": ["CMD-SHELL", "pg_isready -U loopml"],
                "interval": "5s",
                "retries": 30,
            },
        },
        "s3": {
            "image": MINIO_IMAGE,
            "command": ["server", "/data", "--address", ":9000"],
            "environment": {
                "MINIO_ROOT_USER": required("${S3_ACCESS_KEY}"),
                "MINIO_ROOT_PASSWORD": required("${S3_SECRET_KEY}"),
            },
            "volumes": ["s3:/data"],
            "healthcheck": {
                "test": ["CMD", "mc", "ready", "local"],
                "interval": "5s",
                "retries": 30,
            },
        },
        "buckets": {
            "image": MC_IMAGE,
            "entrypoint": [
                "sh",
                "-c",
                'mc alias set s3 http://s3:9000 "$$S3_ACCESS_KEY" "$$S3_SECRET_KEY"'
                f" && mc mb --ignore-existing {buckets}",
            ],
            "environment": {
                "S3_ACCESS_KEY": required("${S3_ACCESS_KEY}"),
                "S3_SECRET_KEY": required("${S3_SECRET_KEY}"),
            },
            "depends_on": {"s3": {"condition": "service_healthy"}},
        },
    }


def _condition(name: str) -> dict[str, str]:
    if name == "s3":
        return {"condition": "service_completed_successfully"}  # the buckets exist
    service = next((s for s in topology.SERVICES if s.name == name), None)
    healthy = name == "postgres" or (service is not None and service.health)
    return {"condition": "service_healthy" if healthy else "service_started"}


def _service(service: topology.Service) -> dict[str, Any]:
    out: dict[str, Any] = {
        "image": image(),
        "command": [required(topology.render(part, ADDRESSES)) for part in service.command],
        "environment": {
            key: required(topology.render(value, ADDRESSES))
            for key, value in service.environment.items()
        },
    }
    if service.name == "mlflow":
        out["build"] = "."
        out["working_dir"] = "/var/lib/mlflow-auth"
        out["volumes"] = ["mlflow-auth:/var/lib/mlflow-auth"]
    deps = {("buckets" if d == "s3" else d): _condition(d) for d in service.depends_on}
    if service.name == "worker":
        deps["deployments"] = {"condition": "service_completed_successfully"}
    out["depends_on"] = deps
    if service.port is not None:
        out["ports"] = [f"{BIND}:{service.port}:{service.port}"]
    if service.health is not None and service.port is not None:
        out["healthcheck"] = _http_check(service.port, service.health)
    if service.replicas > 1:
        out["deploy"] = {"replicas": service.replicas}
    if not service.one_shot:
        out["restart"] = "unless-stopped"
    return out


def render_compose() -> str:
    services = {**_storage(), **{s.name: _service(s) for s in topology.SERVICES}}
    body = {"services": services, "volumes": {"postgres": {}, "s3": {}, "mlflow-auth": {}}}
    return HEADER + yaml.safe_dump(body, sort_keys=False, width=4096)  # one value, one line


PINNED = (
    "prefect", "mlflow", "dvc", "dvc-s3", "pandas", "numpy", "pyarrow", "scikit-learn", "torch",
    "pytorch-lightning", "great-expectations", "evidently", "pydantic", "fastapi", "uvicorn",
    "sqlalchemy", "psycopg", "asyncpg", "boto3",
)  # fmt: skip


def render_constraints() -> str:
    """``stack/constraints.txt``: the image gets the versions this stack was tested with."""
    lines = [f"{name}=={version(name)}" for name in PINNED]
    return (
        "# Written by `loopml stack compose --write` from the tested environment.\n"
        + "\n".join(lines)
        + "\n"
    )
