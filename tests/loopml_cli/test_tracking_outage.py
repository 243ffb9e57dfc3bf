"""The MLflow server going away in the middle of `loopml run`: the run fails with one clear
line (no traceback), and once the server is back a re-run takes the fitted candidates from the
cache, registers the model once (a version registered before the outage is recognised) and
promotes it.

Real parts: an `mlflow server` process on SQLite, killed with SIGKILL after the last candidate
is fitted (the log says so) and started again on the same store and port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import make_dvc_repo, small_params
from tests.stack import free_port, wait_http

pytestmark = pytest.mark.slow


def _mlflow_server(tmp_path: Path, port: int) -> subprocess.Popen:
    store = tmp_path / "server"
    store.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--workers", "1"]
    cmd += ["--artifacts-destination", str(store / "artifacts")]
    out = (tmp_path / "mlflow-server.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/health", 90)
    return proc


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _run(params_path: Path, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "loopml_cli", "run", "--params", str(params_path)]
    return subprocess.Popen(
        cmd,
        cwd=params_path.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _newest_log(project: Path) -> Path | None:
    logs = sorted((project / ".loopml" / "logs").glob("run-*.log"), key=os.path.getmtime)
    return logs[-1] if logs else None


def test_the_tracking_server_going_away_fails_cleanly_and_a_rerun_resumes(
    tmp_path: Path, env: dict[str, str]
) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    project = make_dvc_repo(tmp_path / "project")
    raw = small_params(tracking={"uri": uri})
    raw["train"]["candidates"] = raw["train"]["candidates"][:2]  # baseline, logreg: quick
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env |= {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    last = raw["train"]["candidates"][-1]["name"]
    server = _mlflow_server(tmp_path, port)
    try:
        run = _run(project / "params.yaml", env)
        deadline = time.time() + 600
        while time.time() < deadline and run.poll() is None:
            log = _newest_log(project)
            if log is not None and f"candidate {last} (" in log.read_text():
                break  # every candidate is fitted; logging them to MLflow comes next
            time.sleep(0.2)
        else:
            pytest.fail(f"the run ended or hung before fitting {last}: {run.communicate()[0]}")
        _kill(server)
        said, _ = run.communicate(timeout=300)
        assert run.returncode == 2, said
        assert "Traceback" not in said and "View run" not in said  # one line, no MLflow chatter
        assert f"the MLflow tracking server {uri} stopped answering" in said
        assert "Start the server again" in said and "not registered twice" in said

        server = _mlflow_server(tmp_path, port)
        # the registry too: another test of this process may have set mlflow's global one
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        model = raw["promote"]["model_name"]
        before = client.search_model_versions(f"name='{model}'")
        assert len(before) <= 1  # at most what was registered before the server went away
        again = _run(project / "params.yaml", env)
        said, _ = again.communicate(timeout=600)
        assert again.returncode == 0, said
        rerun_log = (_newest_log(project) or Path("missing")).read_text()
        cached = rerun_log.count("Finished in state Cached(")
        assert cached >= len(raw["train"]["candidates"]), cached  # the fits were not redone
        assert f"candidate {last} (" not in rerun_log  # no candidate was fitted again
        assert len(client.search_model_versions(f"name='{model}'")) == 1  # never twice
        assert client.get_model_version_by_alias(model, "champion").version == "1"
    finally:
        if server.poll() is None:
            _kill(server)
