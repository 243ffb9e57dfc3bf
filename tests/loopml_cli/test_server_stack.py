"""The server stack on this machine, natively, from the one definition (`loopml stack up`):
the local PostgreSQL, moto's S3 server, the MLflow server (PostgreSQL, artifacts proxied to the
bucket, basic auth), the Prefect server (PostgreSQL, auth string), the deployments of
prefect.yaml on a process work pool and two workers.

Real parts throughout; the only stand-in is the S3 server (moto's, the one DVC's and MLflow's
own tests use) for MinIO, which compose runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import make_dvc_repo, run_cli, small_params
from tests.loopml_cli.conftest import PG_URL
from tests.stack import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PG_URL is None, reason="LOOPML_TEST_POSTGRES_URL is not set"),
]

SECRETS = {
    "S3_ACCESS_KEY": "stack-access",
    "S3_SECRET_KEY": "stack-s3cret-key",
    "MLFLOW_TRACKING_USERNAME": "ops",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-s3cret",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-s3cret",
    "PREFECT_API_AUTH_STRING": "ops:prefect-s3cret",
    "LOOPML_API_TOKEN": "model-s3cret",
    "LOOPML_SIGNING_KEY": "signing-s3cret",
}
PREFECT_AUTH = ("ops", "prefect-s3cret")
MLFLOW_AUTH = ("ops", "mlflow-s3cret")


def _drop(databases: list[str]) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:  # type: ignore[arg-type]
        for name in databases:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("server_stack")
    project = make_dvc_repo(tmp / "project")
    ports = {name: free_port() for name in ("s3", "mlflow", "prefect", "model")}
    raw = small_params(tracking={"uri": f"http://127.0.0.1:{ports['mlflow']}"})
    raw["train"]["candidates"] = raw["train"]["candidates"][:2]  # baseline, logreg
    raw["serve"]["port"] = ports["model"]
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    prefix = f"loopml_t{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **SECRETS,
        "PREFECT_HOME": str(tmp / "prefect_home"),
        "COLUMNS": "200",
        "LOOPML_STACK_POSTGRES_URL": PG_URL or "",
    }
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(key, None)
    args = ["--params", str(project / "params.yaml")]
    up = [*args, "--db-prefix", prefix]
    for name in ("s3", "mlflow", "prefect"):
        up += [f"--{name}-port", str(ports[name])]
    try:
        started = run_cli("stack", "up", *up, cwd=project, env=env, timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
        yield {
            "project": project,
            "env": env,
            "ports": ports,
            "raw": raw,
            "databases": (f"{prefix}_mlflow", f"{prefix}_prefect"),
            "api": f"http://127.0.0.1:{ports['prefect']}/api",
            "mlflow": f"http://127.0.0.1:{ports['mlflow']}",
            "s3": f"http://127.0.0.1:{ports['s3']}",
            "said": started.stdout + started.stderr,
        }
    finally:
        stopped = run_cli("stack", "down", *args, cwd=project, env=env, timeout=300)
        _drop([f"{prefix}_mlflow", f"{prefix}_prefect"])
        assert "mlflow (pid" in stopped.stdout + stopped.stderr


def _run_deployment(stack: dict[str, Any], name: str, timeout: float = 600) -> dict[str, Any]:
    api = stack["api"]
    found = requests.post(f"{api}/deployments/filter", json={}, auth=PREFECT_AUTH, timeout=10)
    deployment = next(d for d in found.json() if d["name"] == name)
    params = {"params_path": str(stack["project"] / "params.yaml")}
    run = requests.post(
        f"{api}/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": params},
        auth=PREFECT_AUTH,
        timeout=10,
    ).json()
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = requests.get(f"{api}/flow_runs/{run['id']}", auth=PREFECT_AUTH, timeout=10).json()
        if state["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return state
        time.sleep(2)
    pytest.fail(f"flow run {run['id']} of {name} did not finish in {timeout}s")


def _s3(stack: dict[str, Any]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=stack["s3"],
        aws_access_key_id=SECRETS["S3_ACCESS_KEY"],
        aws_secret_access_key=SECRETS["S3_SECRET_KEY"],
        region_name="us-east-1",
    )


def _keys(stack: dict[str, Any], bucket: str) -> list[str]:
    listing = _s3(stack).list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_without_credentials_the_servers_refuse(stack: dict[str, Any]) -> None:
    search = f"{stack['mlflow']}/api/2.0/mlflow/registered-models/search"
    assert requests.get(search, timeout=10).status_code == 401
    assert requests.get(search, auth=MLFLOW_AUTH, timeout=10).status_code == 200
    flows = f"{stack['api']}/flows/filter"
    assert requests.post(flows, json={}, timeout=10).status_code == 401
    assert requests.post(flows, json={}, auth=("ops", "wrong"), timeout=10).status_code == 401
    assert requests.post(flows, json={}, auth=PREFECT_AUTH, timeout=10).status_code == 200


def test_a_worker_trains_into_the_shared_stores(stack: dict[str, Any]) -> None:
    """The training deployment, run through the Prefect API by a worker: the model's rows are
    in PostgreSQL, its artifacts in the bucket (through the MLflow server), its snapshot in the
    DVC remote on S3, and nothing in the project's local stores."""
    import psycopg

    state = _run_deployment(stack, "training")
    assert state["state_type"] == "COMPLETED", state["state"]
    mlflow_db, prefect_db = stack["databases"]
    base = (PG_URL or "").rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/{mlflow_db}") as conn:
        versions = conn.execute("SELECT name, version, source FROM model_versions").fetchall()
        aliases = conn.execute("SELECT alias, version FROM registered_model_aliases").fetchall()
    model = stack["raw"]["promote"]["model_name"]
    assert [(n, v) for n, v, _ in versions] == [(model, 1)]
    assert ("champion", 1) in aliases
    model_id = versions[0][2].removeprefix("models:/")
    artifacts = _keys(stack, "loopml-mlflow")
    assert any(k.endswith(f"models/{model_id}/artifacts/MLmodel") for k in artifacts), artifacts
    with psycopg.connect(f"{base}/{prefect_db}") as conn:
        runs = conn.execute("SELECT count(*) FROM flow_run WHERE id = %s", (state["id"],))
        assert runs.fetchone() == (1,)  # the run's record is in PostgreSQL
    project = stack["project"]
    current = json.loads((project / "data" / "current.json").read_text())
    md5 = current["version"]
    remote = _keys(stack, "loopml-dvc")
    assert f"{project.name}/files/md5/{md5[:2]}/{md5[2:]}" in remote, remote
    assert not (project / "mlartifacts").exists() and not (project / "mlflow.db").exists()


def test_the_model_server_serves_the_champion_from_the_server_stack(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    """`loopml serve` against the stack (the same command and environment as the definition's
    model service): it loads the signed champion through the MLflow server and answers."""
    from loopml_cli import topology
    from loopml_cli.server_stack import NativeStack, native_command, native_environment

    mlflow_db = stack["databases"][0]
    native = NativeStack(
        run_dir=tmp_path,
        postgres_url=PG_URL or "",
        ports=stack["ports"],
        db_prefix=mlflow_db.removesuffix("_mlflow"),
    )
    service = topology.by_name("model")
    addresses = native.addresses()
    cmd = [*native_command(service, addresses), "--params", str(stack["project"] / "params.yaml")]
    env = native_environment(service, addresses, stack["env"])
    log = (tmp_path / "model.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=stack["project"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{stack['ports']['model']}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        health = requests.get(f"{url}/health", timeout=10).json()
        assert health["version"] == "1", health
        bearer = {"Authorization": f"Bearer {SECRETS['LOOPML_API_TOKEN']}"}
        assert requests.get(f"{url}/model", timeout=10).status_code == 401
        described = requests.get(f"{url}/model", headers=bearer, timeout=10)
        assert described.ok and described.json()["version"] == "1", described.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
