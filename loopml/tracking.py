"""MLflow set-up: where the store is, which experiment, links into the UI.

The default is an embedded store (SQLite + a local artifact folder inside the project); any
tracking URI (an MLflow server) can be set in ``tracking.uri`` or ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.config import Params

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _resolve_sqlite(uri: str, root: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def tracking_uri(params: Params) -> str:
    return _resolve_sqlite(
        os.environ.get("MLFLOW_TRACKING_URI") or params.tracking.uri, params.root
    )


def registry_uri(params: Params) -> str:
    return _resolve_sqlite(
        os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri(params), params.root
    )


def artifact_location(params: Params) -> str:
    loc = params.tracking.artifact_location
    if "://" in loc:
        return loc
    return params.resolve(loc).resolve().as_uri()


def _set_uris(uri: str, registry: str) -> None:
    import mlflow

    # MLflow's setters also write MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI into os.environ; keep
    # the environment as the user set it, so it keeps meaning "the user's choice" for later loads.
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@dataclass(frozen=True)
class Tracking:
    uri: str
    registry: str
    experiment_id: str
    experiment: str
    ui_url: str

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.registry)

    def activate(self) -> None:
        """Point MLflow's fluent API at this store (in whatever process a task runs)."""
        _set_uris(self.uri, self.registry)

    @property
    def served(self) -> bool:
        """Whether the store is an MLflow server (its UI is up) rather than an embedded store."""
        return self.uri.startswith(("http://", "https://"))

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def model_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_url}/#/models/{name}/versions/{version}"


def setup_tracking(params: Params, experiment: str | None = None) -> Tracking:
    """Point MLflow at the configured store and make sure the experiment exists."""
    import mlflow

    uri, reg = tracking_uri(params), registry_uri(params)
    _set_uris(uri, reg)
    name = experiment or params.tracking.experiment
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=reg)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            # A server keeps artifacts where it was told to (proxied: clients need no storage
            # credentials), unless tracking.artifact_location names a URI itself.
            location = (
                None
                if uri.startswith(("http://", "https://"))
                and "://" not in params.tracking.artifact_location
                else artifact_location(params)
            )
            exp_id = client.create_experiment(name, artifact_location=location)
        except Exception:  # created by a concurrent run in the meantime
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            exp_id = found.experiment_id
    else:
        exp_id = exp.experiment_id
    # A tracking server is its own UI; an embedded store is opened with `loopml ui`.
    ui_url = uri.rstrip("/") if uri.startswith(("http://", "https://")) else params.tracking.ui_url
    return Tracking(uri=uri, registry=reg, experiment_id=exp_id, experiment=name, ui_url=ui_url)


def git_commit(root: Path) -> str:
    """The current commit (with ``-dirty`` when the work tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def flatten(prefix: str, value: Any, out: dict[str, str] | None = None) -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}`` (MLflow params are flat strings)."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            flatten(f"{prefix}.{i}", v, out)
    else:
        out[prefix] = str(value)[:6000]
    return out


_UNREACHABLE = ("Connection refused", "Max retries exceeded", "Failed to establish", "timed out")


def unreachable_server(exc: BaseException) -> str | None:
    """If ``exc`` (or what caused it) is an MLflow server that stopped answering, the one message
    to show; otherwise None."""
    import re

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(cur)
        request = re.search(r"API request to (\S+) failed", text)
        if request and any(word in text for word in _UNREACHABLE):
            endpoint = request.group(1)
            server = re.sub(r"/api/.*$", "", endpoint)
            return (
                f"the MLflow tracking server {server} stopped answering ({endpoint}: "
                "connection refused or timed out); the run stopped at that request. "
                "Start the server again and re-run: fitted candidates and evaluations come "
                "from the cache, and a version already registered is not registered twice."
            )
        cur = cur.__cause__ or cur.__context__
    return None
