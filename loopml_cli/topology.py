"""The server stack, defined once: ``docker-compose.yml`` is rendered from it, and
``loopml stack up`` runs the same services as native processes with the same commands and
environment. Only the addresses differ (service names in compose, 127.0.0.1 and free ports
natively) and the storage servers behind them (PostgreSQL and MinIO containers in compose;
the local PostgreSQL and moto's S3 server natively).

In a service's command and environment, ``{postgres}``, ``{s3}``, ``{mlflow}``, ``{prefect}``
stand for that service's ``host:port``, ``{prefect_ui}`` for the API address browsers use,
``{db_mlflow}``, ``{db_prefect}`` and ``{db_predictions}`` for the database
names and ``{pg_user}``/``{pg_password}`` for the PostgreSQL login; ``${VAR}`` are secrets read
from the environment (``.env`` for compose), never written into the definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Secrets: compose refuses to start without them (``${VAR:?...}``); so does `loopml stack up`.
SECRETS = (
    "POSTGRES_PASSWORD",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "PREFECT_API_AUTH_STRING",
    "LOOPML_API_TOKEN",
    "LOOPML_SIGNING_KEY",
)
MLFLOW_BUCKET, DVC_BUCKET = "loopml-mlflow", "loopml-dvc"
BUCKETS = (MLFLOW_BUCKET, DVC_BUCKET)
WORK_POOL = "loopml"
DATABASES = ("mlflow", "prefect", "predictions")
PORTS = {"postgres": 5432, "s3": 9000, "mlflow": 5000, "prefect": 4200, "model": 8000}


@dataclass(frozen=True)
class Service:
    """One service: the same command and environment in compose and natively."""

    name: str
    command: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    health: str | None = None
    """HTTP path that answers once the service is ready."""
    depends_on: tuple[str, ...] = ()
    replicas: int = 1
    one_shot: bool = False
    """Runs once and exits (registering deployments)."""


S3_CLIENT = {
    "AWS_ACCESS_KEY_ID": "${S3_ACCESS_KEY}",
    "AWS_SECRET_ACCESS_KEY": "${S3_SECRET_KEY}",
    "AWS_DEFAULT_REGION": "us-east-1",
}
PREFECT_CLIENT = {
    "PREFECT_API_URL": "http://{prefect}/api",
    "PREFECT_API_AUTH_STRING": "${PREFECT_API_AUTH_STRING}",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}
MLFLOW_CLIENT = {
    "MLFLOW_TRACKING_URI": "http://{mlflow}",
    "MLFLOW_TRACKING_USERNAME": "${MLFLOW_TRACKING_USERNAME}",
    "MLFLOW_TRACKING_PASSWORD": "${MLFLOW_TRACKING_PASSWORD}",
    "LOOPML_SIGNING_KEY": "${LOOPML_SIGNING_KEY}",
}
# Every server worker, batch scoring and the monitor share one prediction log in PostgreSQL.
PREDICTION_LOG = {
    "LOOPML_PREDICTION_LOG_URL": "postgresql://{pg_user}:{pg_password}@{postgres}/{db_predictions}"
}
# The flows run by the workers: MLflow through its server, DVC's remote on S3.
RUNNER = {
    **PREDICTION_LOG,
    **PREFECT_CLIENT,
    **MLFLOW_CLIENT,
    **S3_CLIENT,
    # promotions from every worker take one advisory lock on the registry's database
    "LOOPML_LOCK_URL": "postgresql://{pg_user}:{pg_password}@{postgres}/{db_mlflow}",
}

SERVICES: tuple[Service, ...] = (
    Service(
        name="mlflow",
        command=(
            *("mlflow", "server", "--app-name", "basic-auth", "--backend-store-uri"),
            "postgresql+psycopg://{pg_user}:{pg_password}@{postgres}/{db_mlflow}",
            *("--artifacts-destination", "s3://loopml-mlflow/", "--workers", "2"),
            *("--host", "0.0.0.0", "--port", str(PORTS["mlflow"])),
        ),
        environment={
            **S3_CLIENT,
            "MLFLOW_S3_ENDPOINT_URL": "http://{s3}",
            "MLFLOW_AUTH_CONFIG_PATH": "{mlflow_auth_config}",
            "MLFLOW_AUTH_ADMIN_USERNAME": "${MLFLOW_TRACKING_USERNAME}",
            "MLFLOW_AUTH_ADMIN_PASSWORD": "${MLFLOW_TRACKING_PASSWORD}",
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "${MLFLOW_FLASK_SERVER_SECRET_KEY}",
        },
        port=PORTS["mlflow"],
        health="/health",
        depends_on=("postgres", "s3"),
    ),
    Service(
        name="prefect",
        command=("prefect", "server", "start", "--host", "0.0.0.0", "--port", "4200"),
        environment={
            "PREFECT_API_DATABASE_CONNECTION_URL": (
                "postgresql+asyncpg://{pg_user}:{pg_password}@{postgres}/{db_prefect}"
            ),
            "PREFECT_SERVER_API_AUTH_STRING": "${PREFECT_API_AUTH_STRING}",
            "PREFECT_UI_API_URL": "{prefect_ui}",  # where browsers reach the API
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        },
        port=PORTS["prefect"],
        health="/api/health",
        depends_on=("postgres",),
    ),
    Service(
        name="deployments",
        command=(
            "sh",
            "-c",
            f"prefect work-pool create {WORK_POOL} --type process --overwrite"
            " && prefect --no-prompt deploy --all"
            " && python -m loopml_cli stack automations",
        ),
        environment=PREFECT_CLIENT,
        depends_on=("prefect",),
        one_shot=True,
    ),
    Service(
        name="worker",
        command=("prefect", "worker", "start", "--pool", WORK_POOL, "--type", "process"),
        environment={
            **RUNNER,
            "LOOPML_PROJECT_DIR": "{code}",  # prefect.yaml's pull step: where flows/ is
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",  # a killed worker's run turns Crashed
        },
        depends_on=("prefect", "mlflow"),
        replicas=2,
    ),
    Service(
        name="model",
        command=("python", "-m", "loopml_cli", "serve", "--host", "0.0.0.0", "--port", "8000"),
        environment={
            **MLFLOW_CLIENT,
            **PREDICTION_LOG,
            "LOOPML_API_TOKEN": "${LOOPML_API_TOKEN}",
        },
        port=PORTS["model"],
        health="/health",
        depends_on=("mlflow",),
    ),
)


def by_name(name: str) -> Service:
    return next(s for s in SERVICES if s.name == name)


def render(text: str, addresses: dict[str, str]) -> str:
    """Fill the ``{service}`` placeholders; ``${VAR}`` references are left for the caller."""
    for key, value in addresses.items():
        text = text.replace("{" + key + "}", value)
    return text
