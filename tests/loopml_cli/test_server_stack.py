"""The server stack on this machine, natively, from the one definition (`loopml stack up`):
the local PostgreSQL, moto's S3 server, the MLflow server (PostgreSQL, artifacts proxied to the
bucket, basic auth), the Prefect server (PostgreSQL, auth string), the deployments of
prefect.yaml on a process work pool and two workers.

Real parts throughout; the only stand-in is the S3 server (moto's, the one DVC's and MLflow's
own tests use) for MinIO, which compose runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from loopml.datagen import generate_churn
from loopml_cli import topology
from tests.conftest import make_dvc_repo, run_cli, small_params
from tests.loopml_cli.conftest import PG_URL
from tests.stack import descendants, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PG_URL is None, reason="LOOPML_TEST_POSTGRES_URL is not set"),
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
    raw["train"]["candidates"] = [{"name": "logreg", "kind": "linear"}]  # one quick real model
    raw["promote"]["floors"] = {}
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
            "databases": tuple(f"{prefix}_{name}" for name in topology.DATABASES),
            "api": f"http://127.0.0.1:{ports['prefect']}/api",
            "mlflow": f"http://127.0.0.1:{ports['mlflow']}",
            "s3": f"http://127.0.0.1:{ports['s3']}",
            "said": started.stdout + started.stderr,
        }
    finally:
        stopped = run_cli("stack", "down", *args, cwd=project, env=env, timeout=300)
        _drop([f"{prefix}_{name}" for name in topology.DATABASES])
        assert "mlflow (pid" in stopped.stdout + stopped.stderr


def _start_deployment(
    stack: dict[str, Any], name: str, overrides: dict[str, Any] | None = None
) -> str:
    """Create a flow run of the deployment through the API (a worker picks it up)."""
    api = stack["api"]
    found = requests.post(f"{api}/deployments/filter", json={}, auth=PREFECT_AUTH, timeout=10)
    deployment = next(d for d in found.json() if d["name"] == name)
    params: dict[str, Any] = {"params_path": str(stack["project"] / "params.yaml")}
    if overrides:
        params["overrides"] = overrides
    run = requests.post(
        f"{api}/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": params},
        auth=PREFECT_AUTH,
        timeout=10,
    ).json()
    return str(run["id"])


def _wait_for_heartbeat(stack: dict[str, Any], run_id: str, timeout: float = 180) -> None:
    """Until the server has a heartbeat of the flow run: the crash automation arms on the first
    one (a run killed before its first heartbeat reached the server is never marked)."""
    query = {
        "filter": {
            "event": {"name": ["prefect.flow-run.heartbeat"]},
            "resource": {"id": [f"prefect.flow-run.{run_id}"]},
        },
        "limit": 1,
    }
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = requests.post(
            f"{stack['api']}/events/filter", json=query, auth=PREFECT_AUTH, timeout=10
        )
        if found.status_code == 200 and found.json().get("events"):
            return
        time.sleep(1)
    pytest.fail(f"no heartbeat of flow run {run_id} reached the server in {timeout}s")


def _wait(
    stack: dict[str, Any], run_id: str, until: set[str] | None = None, timeout: float = 600
) -> dict[str, Any]:
    until = until or {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    deadline = time.time() + timeout
    while time.time() < deadline:
        url = f"{stack['api']}/flow_runs/{run_id}"
        state = requests.get(url, auth=PREFECT_AUTH, timeout=10).json()
        if state["state_type"] in until:
            return state
        time.sleep(2)
    pytest.fail(f"flow run {run_id} did not reach {until} in {timeout}s")


def _why(stack: dict[str, Any], state: dict[str, Any]) -> str:
    """A finished run's state message and its error logs (for a failing assertion)."""
    query = {"logs": {"flow_run_id": {"any_": [state["id"]]}, "level": {"ge_": 40}}}
    url = f"{stack['api']}/logs/filter"
    logs = requests.post(url, json=query, auth=PREFECT_AUTH, timeout=10).json()
    return f"{state['state'].get('message')}\n" + "\n".join(log["message"] for log in logs)


def _run_deployment(stack: dict[str, Any], name: str, timeout: float = 600) -> dict[str, Any]:
    return _wait(stack, _start_deployment(stack, name), timeout=timeout)


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
    predict = f"http://127.0.0.1:{stack['ports']['model']}/predict"
    assert requests.post(predict, json=[{}], timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert requests.post(predict, json=[{}], headers=wrong, timeout=10).status_code == 401


def _newest_run(stack: dict[str, Any], deployment: str) -> dict[str, Any]:
    api = stack["api"]
    found = requests.post(f"{api}/deployments/filter", json={}, auth=PREFECT_AUTH, timeout=10)
    deployment_id = next(d["id"] for d in found.json() if d["name"] == deployment)
    query = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_DESC"}
    runs = requests.post(f"{api}/flow_runs/filter", json=query, auth=PREFECT_AUTH, timeout=10)
    assert runs.json(), "no flow run of the deployment"
    return dict(runs.json()[0])


def _train_from_the_prefect_ui(stack: dict[str, Any], shots: Path) -> str:
    """Log in to the Prefect UI with the auth string and submit a custom training run (this
    project's params.yaml); returns the flow run's id."""
    from playwright.sync_api import expect, sync_playwright

    ui = stack["api"].removesuffix("/api")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{ui}/deployments")
            page.get_by_placeholder("admin:pass").fill(SECRETS["PREFECT_API_AUTH_STRING"])
            page.get_by_role("button", name="Login").click()
            expect(page.get_by_role("link", name="training", exact=True).first).to_be_visible(
                timeout=60_000
            )
            page.get_by_role("link", name="training", exact=True).first.click()
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("Custom run").click()
            field = page.locator(".schema-form-property").filter(
                has=page.locator(".schema-form-property__label", has_text="params_path")
            )
            field.locator("textarea, input").first.fill(str(stack["project"] / "params.yaml"))
            page.get_by_role("button", name="Submit").click()
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shots / "prefect-stack-run.png"))
        finally:
            browser.close()
    run = _newest_run(stack, "training")
    assert run["parameters"]["params_path"] == str(stack["project"] / "params.yaml")
    return str(run["id"])


@pytest.fixture(scope="module")
def trained(stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The first training: submitted from the Prefect UI when Chromium is here (the browser
    test), through the API otherwise; run by a worker."""
    if Path(CHROMIUM).exists():
        run_id, via = _train_from_the_prefect_ui(stack, tmp_path_factory.mktemp("shots")), "ui"
    else:
        run_id, via = _start_deployment(stack, "training"), "api"
    return {"state": _wait(stack, run_id, timeout=900), "via": via}


@pytest.mark.browser
def test_the_uis_of_the_stack_behind_their_credentials(
    stack: dict[str, Any], trained: dict[str, Any], tmp_path: Path
) -> None:
    """A training run submitted from the Prefect UI (after its login) completed, and the MLflow
    UI, with basic-auth credentials, shows the registered model with its champion."""
    if trained["via"] != "ui":
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import expect, sync_playwright

    assert trained["state"]["state_type"] == "COMPLETED", _why(stack, trained["state"])
    model = stack["raw"]["promote"]["model_name"]
    assert requests.get(stack["mlflow"], timeout=10).status_code == 401  # the UI too
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        user, password = MLFLOW_AUTH
        context = browser.new_context(http_credentials={"username": user, "password": password})
        page = context.new_page()
        try:
            page.goto(f"{stack['mlflow']}/#/models/{model}")
            expect(page.get_by_text(model).first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("champion").first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(tmp_path / "mlflow-stack-registry.png"))
        finally:
            browser.close()


def test_a_worker_trains_into_the_shared_stores(
    stack: dict[str, Any], trained: dict[str, Any]
) -> None:
    """The training deployment, run by a worker: the model's rows are in PostgreSQL, its
    artifacts in the bucket (through the MLflow server), its snapshot in the DVC remote on S3,
    and nothing in the project's local stores."""
    import psycopg

    state = trained["state"]
    assert state["state_type"] == "COMPLETED", _why(stack, state)
    mlflow_db, prefect_db, _ = stack["databases"]
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
    stack: dict[str, Any],
) -> None:
    """The stack's model server (started by `stack up` before anything was trained, waiting
    with 503) loads the signed champion through the MLflow server once training has set the
    alias, answers, and logs its predictions (and the labels posted later) to the stack's
    PostgreSQL."""
    import psycopg

    assert "model           http://" in stack["said"]  # started with the stack
    url = f"http://127.0.0.1:{stack['ports']['model']}"
    deadline = time.time() + 120
    while time.time() < deadline and requests.get(f"{url}/health", timeout=5).status_code == 503:
        time.sleep(0.5)  # the alias watcher picks the champion up within serve.poll_seconds
    health = requests.get(f"{url}/health", timeout=10).json()
    log = stack["project"] / ".loopml" / "run" / "stack" / "model.log"
    assert health.get("version") == "1", (health, log.read_text())
    bearer = {"Authorization": f"Bearer {SECRETS['LOOPML_API_TOKEN']}"}
    assert requests.get(f"{url}/model", timeout=10).status_code == 401
    described = requests.get(f"{url}/model", headers=bearer, timeout=10)
    assert described.ok and described.json()["version"] == "1", described.text
    rows = generate_churn(3, seed=8).drop(columns=["churned", "customer_id"])
    records = json.loads(rows.to_json(orient="records", date_format="iso"))
    answer = requests.post(f"{url}/predict", json=records, headers=bearer, timeout=30)
    assert answer.ok, answer.text
    label = {"request_id": answer.json()["request_id"], "row": 2, "label": True}
    labelled = requests.post(f"{url}/labels", json={"labels": [label]}, headers=bearer, timeout=30)
    assert labelled.ok, labelled.text
    conninfo = PG_URL.rsplit("/", 1)[0] + "/" + stack["databases"][2]  # type: ignore[union-attr]
    with psycopg.connect(conninfo) as conn:
        logged = conn.execute(
            "SELECT request_id, first_row, n_rows FROM loopml_prediction_parts"
        ).fetchall()
        labels = conn.execute("SELECT request_id, row FROM loopml_labels").fetchall()
    assert logged == [(answer.json()["request_id"], 0, 3)]  # one request of three rows
    assert labels == [(answer.json()["request_id"], 2)]
    assert not (stack["project"] / "data" / "predictions.sqlite").exists()


DRIFT = {
    "monitor": {"current": "source", "min_rows": 100},
    # inputs drift and, through them, the churn rate: the retrain accepts the new balance
    "validate": {"severity": {"class_balance": "warning"}},
    "data": {
        "source": {
            "generator": {
                "seed": 5,
                "drift": {"covariate": {"monthly_charges": 1.5, "plan": 0.7, "device": 0.7}},
            }
        }
    },
}


def test_monitoring_on_drifted_data_triggers_a_retrain_that_a_worker_runs(
    stack: dict[str, Any],
) -> None:
    """The monitoring deployment, run by a worker on a drifted batch, starts the training
    deployment; another worker run of it registers a new version."""
    before = len(_versions(stack))
    monitored = _wait(stack, _start_deployment(stack, "monitoring", DRIFT), timeout=600)
    assert monitored["state_type"] == "COMPLETED", _why(stack, monitored)
    api = stack["api"]
    found = requests.post(f"{api}/deployments/filter", json={}, auth=PREFECT_AUTH, timeout=10)
    training = next(d["id"] for d in found.json() if d["name"] == "training")
    runs = requests.post(
        f"{api}/flow_runs/filter",
        json={"deployments": {"id": {"any_": [training]}}},
        auth=PREFECT_AUTH,
        timeout=10,
    ).json()
    triggered = [r for r in runs if r["parameters"].get("overrides") == DRIFT]
    assert len(triggered) == 1, [r["parameters"] for r in runs]
    retrained = _wait(stack, triggered[0]["id"], timeout=900)
    assert retrained["state_type"] == "COMPLETED", _why(stack, retrained)
    assert len(_versions(stack)) == before + 1


def _aliases(stack: dict[str, Any]) -> dict[str, str]:
    model = stack["raw"]["promote"]["model_name"]
    url = f"{stack['mlflow']}/api/2.0/mlflow/registered-models/get"
    found = requests.get(url, params={"name": model}, auth=MLFLOW_AUTH, timeout=10).json()
    return {a["alias"]: a["version"] for a in found["registered_model"].get("aliases", [])}


def _versions(stack: dict[str, Any]) -> list[dict[str, Any]]:
    model = stack["raw"]["promote"]["model_name"]
    url = f"{stack['mlflow']}/api/2.0/mlflow/model-versions/search"
    found = requests.get(url, params={"filter": f"name='{model}'"}, auth=MLFLOW_AUTH, timeout=10)
    return list(found.json().get("model_versions", []))


def test_two_trainings_at_once_leave_one_consistent_champion(stack: dict[str, Any]) -> None:
    """Two retrains of the model started together (new data each): the deployment's
    concurrency limit runs them one after the other, and the registry ends with each version
    decided and one champion."""
    before = len(_versions(stack))
    runs = [
        _start_deployment(stack, "training", {"data": {"source": {"generator": {"seed": s}}}})
        for s in (101, 202)
    ]
    states = [_wait(stack, run, timeout=900) for run in runs]
    assert [s["state_type"] for s in states] == ["COMPLETED", "COMPLETED"], [
        _why(stack, s) for s in states
    ]
    first, second = sorted(states, key=lambda s: s["start_time"])
    assert first["end_time"] <= second["start_time"]  # never at once
    versions = _versions(stack)
    assert len(versions) == before + 2
    decided = [v for v in versions if int(v["version"]) > before]
    for version in decided:
        tags = {t["key"]: t["value"] for t in version.get("tags", [])}
        assert tags.get("loopml.decision") in {"promoted", "refused"}, tags
    aliases = _aliases(stack)
    assert "champion" in aliases
    assert aliases.get("previous") != aliases["champion"]
    assert list(aliases.values()).count(aliases["champion"]) == 1


def test_a_killed_worker_leaves_a_crashed_run_and_the_next_run_succeeds(
    stack: dict[str, Any],
) -> None:
    """SIGKILL to the worker (and the flow run it started) in the middle of a training: the
    missing heartbeats turn the run Crashed (the stack's automation), the registry is left as
    it was, and the next run, taken by the other worker, completes."""
    from loopml.config import load_params
    from loopml_cli.processes import running

    runtime = load_params(stack["project"] / "params.yaml").path("runtime") / "stack"
    versions_before = len(_versions(stack))
    run = _start_deployment(stack, "training", {"data": {"source": {"generator": {"seed": 303}}}})
    _wait(stack, run, until={"RUNNING"}, timeout=300)
    _wait_for_heartbeat(stack, run)
    workers = {n: p for n, p in running(runtime).items() if n.startswith("worker")}
    busy = [
        n
        for n, p in workers.items()
        if any(
            "prefect" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")
            for c in descendants(p)
            if Path(f"/proc/{c}/cmdline").exists()
        )
    ]
    assert len(busy) == 1, workers
    victims = {workers[busy[0]], *descendants(workers[busy[0]])}  # as if its machine died
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    crashed = _wait(stack, run, timeout=300)
    assert crashed["state_type"] == "CRASHED", crashed["state"]
    assert len(_versions(stack)) == versions_before  # nothing half-registered
    after = _run_deployment(stack, "training", timeout=900)
    assert after["state_type"] == "COMPLETED", _why(stack, after)


def test_a_command_of_the_project_runs_on_the_stack_s_prefect_server(
    stack: dict[str, Any],
) -> None:
    """No PREFECT_API_URL in the shell: `loopml collect` finds the server `stack up` started
    for this project, runs there (one more completed collect run in its API) and starts no
    embedded server; without the AWS variables DVC's push to the bucket fails with one line
    naming them."""
    api = stack["api"]

    def completed_collects() -> int:
        flows = requests.post(f"{api}/flows/filter", json={}, auth=PREFECT_AUTH, timeout=10)
        collect = [f["id"] for f in flows.json() if f["name"] == "collect"]
        query = {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
        runs = requests.post(f"{api}/flow_runs/filter", json=query, auth=PREFECT_AUTH, timeout=10)
        return sum(r["flow_id"] in collect for r in runs.json())

    before = completed_collects()
    args = ["--params", str(stack["project"] / "params.yaml")]
    no_keys = run_cli("collect", *args, cwd=stack["project"], env=stack["env"], timeout=600)
    said = no_keys.stdout + no_keys.stderr
    assert no_keys.returncode == 2, said  # DVC cannot push to the bucket: one line says why
    assert "AWS_ACCESS_KEY_ID" in said and "S3_ACCESS_KEY" in said
    assert "Traceback" not in said
    env = {
        **stack["env"],
        "AWS_ACCESS_KEY_ID": SECRETS["S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": SECRETS["S3_SECRET_KEY"],
    }
    done = run_cli("collect", *args, cwd=stack["project"], env=env, timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert f"the server of `loopml stack up` at {api}" in said
    assert completed_collects() == before + 1
    assert not list(stack["project"].rglob("prefect-api.log"))
