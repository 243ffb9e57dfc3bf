"""Authentication of the servers ``loopml up`` starts, from environment variables only.

Three credentials, each optional on 127.0.0.1 and all required on any other bind address:

- ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``: the MLflow server runs MLflow's
  basic-auth app with this user as its admin; MLflow clients send the same two variables.
- ``PREFECT_API_AUTH_STRING`` (``user:password``): the Prefect server gets it as
  ``PREFECT_SERVER_API_AUTH_STRING``; Prefect clients (the deployments) send it.
- the model server's bearer token, from the variable ``serve.token_env`` names
  (``LOOPML_API_TOKEN`` by default).

Nothing secret is written to disk: the basic-auth configuration file in the runtime folder
names only the user database (which holds a salted hash), and the values stay in the
environment of the processes that need them.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from loopml.exceptions import ConfigError

MLFLOW_USER = "MLFLOW_TRACKING_USERNAME"
MLFLOW_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
PREFECT_AUTH = "PREFECT_API_AUTH_STRING"
PREFECT_SERVER_AUTH = "PREFECT_SERVER_API_AUTH_STRING"
MLFLOW_DEFAULT_PASSWORD = "password1234"  # MLflow's former default; its auth app refuses it
SERVICES = ("mlflow", "prefect", "model")


@dataclass(frozen=True)
class StackAuth:
    """Which servers are authenticated, read from the environment."""

    mlflow: bool
    prefect: bool
    model: bool
    token_env: str

    def missing(self, services: tuple[str, ...] = SERVICES) -> list[str]:
        """The variables still to set for these servers to be authenticated."""
        unset = {
            "mlflow": None if self.mlflow else f"{MLFLOW_USER} and {MLFLOW_PASSWORD}",
            "prefect": None if self.prefect else f"{PREFECT_AUTH} (user:password)",
            "model": None if self.model else self.token_env,
        }
        return [name for s in services if (name := unset[s])]

    def label(self, service: str) -> str:
        on = {"mlflow": self.mlflow, "prefect": self.prefect, "model": self.model}[service]
        return "" if on else "  (no authentication)"


AUTH_CACHE_SECONDS = 60
"""How long the MLflow servers remember a verified password (see :func:`mlflow_auth_env`)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def read_auth(env: Mapping[str, str], token_env: str) -> StackAuth:
    """What the environment configures; a half-configured or unusable value is an error."""
    problems = []
    user, password = env.get(MLFLOW_USER, ""), env.get(MLFLOW_PASSWORD, "")
    if bool(user) != bool(password):
        problems.append(f"{MLFLOW_USER} and {MLFLOW_PASSWORD}: set both or neither")
    if password == MLFLOW_DEFAULT_PASSWORD:
        problems.append(f"{MLFLOW_PASSWORD}: MLflow refuses its old default password; pick another")
    auth_string = env.get(PREFECT_AUTH, "")
    if auth_string and ":" not in auth_string:
        problems.append(f"{PREFECT_AUTH}: expected user:password")
    if problems:
        raise ConfigError(problems, source="the environment")
    return StackAuth(
        mlflow=bool(user and password),
        prefect=bool(auth_string),
        model=bool(env.get(token_env, "")),
        token_env=token_env,
    )


def check_bind(
    host: str, auth: StackAuth, command: str, services: tuple[str, ...] = SERVICES
) -> None:
    """Refuse a bind address other than loopback unless these servers are authenticated."""
    missing = auth.missing(services)
    if is_loopback(host) or not missing:
        return
    raise ConfigError(
        [f"set {name}" for name in missing]
        + [f"or bind to 127.0.0.1 (--host {host} would expose servers without authentication)"],
        source=f"`loopml {command} --host {host}`",
    )


def mlflow_auth_env(auth: StackAuth, env: Mapping[str, str], runtime: Path) -> dict[str, str]:
    """The MLflow server's extra environment for its basic-auth app (empty without auth)."""
    if not auth.mlflow:
        return {}
    runtime.mkdir(parents=True, exist_ok=True)
    ini = runtime / "mlflow-auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{(runtime / 'mlflow-auth.db').resolve()}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Each request's password is otherwise checked against its PBKDF2 hash (~0.3 s of
        # CPU): a model's ~75 artifact files cost ~25 s to download. A verified credential is
        # remembered for a minute per server process (MLflow's own cache; a changed password
        # takes effect on the other processes within that minute).
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
        "auth_cache_max_size = 1000\n"
    )
    os.chmod(ini, 0o600)
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini.resolve()),
        "MLFLOW_AUTH_ADMIN_USERNAME": env[MLFLOW_USER],
        "MLFLOW_AUTH_ADMIN_PASSWORD": env[MLFLOW_PASSWORD],
        # the auth app's CSRF key: one server, so a fresh key per start (sessions end with it)
        "MLFLOW_FLASK_SERVER_SECRET_KEY": env.get(
            "MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(32)
        ),
    }


def prefect_server_env(auth: StackAuth, env: Mapping[str, str]) -> dict[str, str]:
    """The Prefect server's extra environment (empty without auth)."""
    return {PREFECT_SERVER_AUTH: env[PREFECT_AUTH]} if auth.prefect else {}
