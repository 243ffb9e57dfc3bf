"""`loopml up` starts the whole local stack on real processes; `loopml down` stops exactly that.

Real parts: a Prefect server process, the MLflow UI, the deployment process (`loopml deploy`)
and the model server on a registry with a champion; a bystander process proves that `down`
stops nothing it did not start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from loopml.config import load_params
from loopml_cli.prefect_api import UP_API_FILE
from loopml_cli.processes import running
from loopml_cli.stack import SERVICES
from tests.conftest import make_dvc_repo, run_cli
from tests.registry import build_registry
from tests.stack import free_port

pytestmark = pytest.mark.slow


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, env=env, timeout=600)


def _project_with_champion(project: Path) -> tuple[Path, Any, dict[str, Any]]:
    """A real MLflow store with a champion (so the model server starts), on a free port."""
    reg = build_registry(project)
    params_path = project / "params.yaml"
    raw = yaml.safe_load(params_path.read_text())
    raw["serve"]["port"] = free_port()
    params_path.write_text(yaml.safe_dump(raw))
    return params_path, load_params(params_path), reg


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The commands' environment: their own Prefect home, no inherited API or store."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect_home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLUMNS": "200",  # rich wraps the CLI's lines at the terminal width
        **extra,
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _deployments(api: str) -> set[str]:
    resp = requests.post(f"{api}/deployments/filter", json={}, timeout=10)
    return {d["name"] for d in resp.json()} if resp.status_code == 200 else set()


def test_up_starts_every_service_and_down_stops_only_those(tmp_path: Path) -> None:
    project = tmp_path / "project"
    params_path, params, reg = _project_with_champion(project)
    prefect_port, mlflow_port = free_port(), free_port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    env = _env(tmp_path)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started = _cli(
            [
                "up",
                "--params",
                str(params_path),
                "--prefect-port",
                str(prefect_port),
                "--mlflow-port",
                str(mlflow_port),
            ],
            env,
            project,
        )
        said = started.stdout + started.stderr  # the CLI reports on stderr
        assert started.returncode == 0, said
        assert f"Prefect UI      http://127.0.0.1:{prefect_port}" in said
        assert f"MLflow UI       http://127.0.0.1:{mlflow_port}" in said
        assert f"model server    http://127.0.0.1:{params.serve.port}" in said

        pids = running(params.path("runtime"))
        assert set(pids) == set(SERVICES), pids
        assert requests.get(f"{api}/health", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{mlflow_port}/health", timeout=10).ok
        health = requests.get(f"http://127.0.0.1:{params.serve.port}/health", timeout=10).json()
        assert health["version"] == reg["versions"][0]  # the champion
        deadline, names = time.time() + 120, set()
        while time.time() < deadline and names != {"training", "monitoring", "batch-scoring"}:
            names = _deployments(api)
            time.sleep(1)
        assert names == {"training", "monitoring", "batch-scoring"}

        # A command of this project in another shell (no PREFECT_API_URL) runs on this server:
        # the run shows in its UI and no embedded server is started for it.
        make_dvc_repo(project)
        collected = _cli(["collect", "--params", str(params_path)], env, project)
        said = collected.stdout + collected.stderr
        assert collected.returncode == 0, said
        assert f"the server of `loopml up` at {api}" in said
        runs = requests.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        flows = requests.post(f"{api}/flows/filter", json={}, timeout=10).json()
        collect_id = next(f["id"] for f in flows if f["name"] == "collect")
        assert [r["state_type"] for r in runs if r["flow_id"] == collect_id] == ["COMPLETED"]
        assert not (project / ".loopml" / "logs" / "prefect-api.log").exists()

        again = _cli(["up", "--params", str(params_path)], env, project)
        assert again.returncode != 0 and "already running" in again.stdout + again.stderr

        stopped = _cli(["down", "--params", str(params_path)], env, project)
        said = stopped.stdout + stopped.stderr
        assert stopped.returncode == 0, said
        for name in SERVICES:
            assert f"{name} (pid {pids[name]})" in said
        for pid in pids.values():
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)  # the whole process group is gone
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{params.serve.port}/health", timeout=5)
        wait_gone = time.time() + 10
        while time.time() < wait_gone:
            try:
                requests.get(f"{api}/health", timeout=2)
            except requests.ConnectionError:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the Prefect server still answers after `loopml down`")
        assert bystander.poll() is None  # not ours to stop
        assert running(params.path("runtime")) == {}
        assert not (params.path("runtime") / UP_API_FILE).exists()  # commands embed again
        nothing = _cli(["down", "--params", str(params_path)], env, project)
        assert "nothing was running" in nothing.stdout + nothing.stderr
    finally:
        _cli(["down", "--params", str(params_path)], env, project)
        bystander.kill()


def test_up_on_an_open_address_authenticates_every_server(tmp_path: Path) -> None:
    """`up --host 0.0.0.0` with the three credentials: MLflow's basic-auth app, Prefect's auth
    string and the model token each turn away a request without them and accept one with them;
    the deployment process, a Prefect client, registers the deployments through the auth."""
    project = tmp_path / "project"
    params_path, params, _ = _project_with_champion(project)
    prefect_port, mlflow_port = free_port(), free_port()
    api, mlflow = f"http://127.0.0.1:{prefect_port}/api", f"http://127.0.0.1:{mlflow_port}"
    model = f"http://127.0.0.1:{params.serve.port}"
    env = _env(
        tmp_path,
        MLFLOW_TRACKING_USERNAME="ops",
        MLFLOW_TRACKING_PASSWORD="mlflow-s3cret",
        PREFECT_API_AUTH_STRING="ops:prefect-s3cret",
        LOOPML_API_TOKEN="model-s3cret",
    )
    args = ["--params", str(params_path)]
    ports = ["--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port)]
    try:
        started = _cli(["up", *args, *ports, "--host", "0.0.0.0"], env, project)
        said = started.stdout + started.stderr
        assert started.returncode == 0, said
        assert "no authentication" not in said
        search = f"{mlflow}/api/2.0/mlflow/registered-models/search"
        assert requests.get(search, timeout=10).status_code == 401
        assert requests.get(search, auth=("ops", "wrong"), timeout=10).status_code == 401
        found = requests.get(search, auth=("ops", "mlflow-s3cret"), timeout=10)
        assert found.status_code == 200, found.text
        assert [m["name"] for m in found.json()["registered_models"]] == [params.promote.model_name]
        flows = f"{api}/flows/filter"
        assert requests.post(flows, json={}, timeout=10).status_code == 401
        assert requests.post(flows, json={}, auth=("ops", "prefect-s3cret"), timeout=10).ok
        assert requests.post(f"{model}/predict", json=[{}], timeout=10).status_code == 401
        assert requests.get(f"{model}/docs", timeout=10).status_code == 401
        bearer = {"Authorization": "Bearer model-s3cret"}
        assert requests.get(f"{model}/model", headers=bearer, timeout=10).ok
        deadline, names = time.time() + 120, set()
        while time.time() < deadline and names != {"training", "monitoring", "batch-scoring"}:
            resp = requests.post(
                f"{api}/deployments/filter", json={}, auth=("ops", "prefect-s3cret"), timeout=10
            )
            names = {d["name"] for d in resp.json()} if resp.ok else set()
            time.sleep(1)
        assert names == {"training", "monitoring", "batch-scoring"}
        runtime = params.path("runtime")
        for path in runtime.iterdir():  # logs, pid files, the auth database: no secret
            if path.suffix != ".db":
                assert "s3cret" not in path.read_text(errors="replace"), path
    finally:
        _cli(["down", *args], env, project)
