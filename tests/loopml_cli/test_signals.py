"""How a command ends: a failure is one clear error and a log path (no traceback unless
--debug); SIGTERM stops a run within seconds and marks it Cancelled; SIGKILL leaves no process
behind (the embedded Prefect API dies with its parent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import make_dvc_repo, run_cli, small_params
from tests.stack import alive, descendants, free_port, wait_http

pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect_home"), "COLUMNS": "200"}
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(key, None)
    return env


def _project(tmp_path: Path, **overrides: object) -> Path:
    repo = make_dvc_repo(tmp_path / "project")
    raw = small_params(**overrides)
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return repo / "params.yaml"


def test_a_failure_is_one_clear_error_with_the_log_path(tmp_path: Path) -> None:
    params = _project(tmp_path)
    env = _env(tmp_path)
    bad = run_cli("run", "-p", str(params), "-S", "data.source.kind=file",
                  "-S", "data.source.file.path=missing.csv", cwd=params.parent, env=env,
                  timeout=600)  # fmt: skip
    said = bad.stdout + bad.stderr
    assert bad.returncode == 2, said
    assert "error:" in said and "missing.csv: no such file or folder" in said
    assert "Traceback" not in said and "Finished in state" not in said
    [log_path] = [
        line.split("full log: ", 1)[1].strip() for line in said.splitlines() if "full log: " in line
    ]
    log_text = Path(log_path).read_text()
    assert "missing.csv" in log_text and "Traceback" in log_text  # the details are in the file
    debug = run_cli("run", "-p", str(params), "-S", "data.source.kind=file",
                    "-S", "data.source.file.path=missing.csv", "--debug", cwd=params.parent,
                    env=env, timeout=600)  # fmt: skip
    assert "Traceback" in debug.stdout + debug.stderr


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**_env(tmp_path), "PREFECT_HOME": str(tmp_path / "server_home")}
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port), "--no-services"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", 120)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _wait_for(path_glob: Path, phrase: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for log in path_glob.parent.glob(path_glob.name):
            if phrase in log.read_text(errors="replace"):
                return
        time.sleep(0.5)
    raise TimeoutError(phrase)


def _default_sigint() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_training_cancels_the_run_within_seconds(
    tmp_path: Path, prefect_server: str, sig: signal.Signals
) -> None:
    """500 epochs would take many minutes: the run ends long before (the bound below is a
    generous timeout, not a timing assertion: the measured time is in the message)."""
    slow = {
        "data": {"source": {"generator": {"n_rows": 20000}}},
        "train": {
            "candidates": [{"name": "mlp", "kind": "lightning"}],
            "lightning": {"max_epochs": 500, "patience": 500, "batch_size": 32},
        },
    }
    params = _project(tmp_path, **slow)
    env = {**_env(tmp_path), "PREFECT_API_URL": prefect_server}
    # As from a terminal: a job a script started with `&` inherits SIGINT ignored, and
    # Python then never raises KeyboardInterrupt, so the child gets the default disposition.
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopml_cli", "run", "-p", str(params)],
        cwd=params.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        logs = params.parent / ".loopml" / "logs" / "run-*.log"
        _wait_for(logs, "Beginning subflow run", 300)  # collect has started ...
        _wait_for(logs, "for flow 'train'", 600)  # ... and training is under way
        time.sleep(3)
        sent = time.monotonic()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:  # a run the signal did not stop must not go on training after the test
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = out.decode(errors="replace")
    took = f"ended {time.monotonic() - sent:.1f} s after {sig.name}"
    assert proc.returncode == 128 + sig, (took, said[-2000:])
    assert "stopped: the run was cancelled" in said and "Traceback" not in said

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as c:
        runs = c.read_flow_runs()
        states = {r.name: (r.state_name, r.flow_id) for r in runs}
        flows = {f.id: f.name for f in c.read_flows()}
    by_flow = {flows[fid]: state for state, fid in states.values()}
    assert by_flow["training"] == "Cancelled", by_flow
    assert by_flow["train"] == "Cancelled", by_flow
    assert by_flow["collect"] == "Completed", by_flow
    del FlowRunFilter, FlowRunFilterName


def test_sigkill_leaves_no_process_behind(tmp_path: Path) -> None:
    params = _project(tmp_path, data={"source": {"generator": {"n_rows": 20000}}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopml_cli", "run", "-p", str(params)],
        cwd=params.parent, env=_env(tmp_path), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for(params.parent / ".loopml" / "logs" / "run-*.log", "Beginning flow run", 300)
    children = descendants(proc.pid)
    assert children, "the embedded Prefect API runs as a child process"
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)], "orphans after SIGKILL"


def test_params_outside_a_repository_name_the_command_that_fixes_it(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    params = outside / "params.yaml"
    params.write_text(yaml.safe_dump(small_params(), sort_keys=False))
    ran = run_cli("run", "-p", str(params), cwd=tmp_path, env=_env(tmp_path), timeout=300)
    said = ran.stdout + ran.stderr
    assert ran.returncode == 2, said
    # refused before any stage: nothing collected, no flow run started
    assert sorted(p.name for p in outside.iterdir()) == [".loopml", "params.yaml"], said  # a log
    assert "Beginning flow run" not in said
    assert f"run `loopml init -p {params}`" in said and "Traceback" not in said
    fixed = run_cli("init", "-p", str(params), cwd=tmp_path, env=_env(tmp_path), timeout=300)
    assert fixed.returncode == 0 and (outside / ".dvc").is_dir(), fixed.stdout + fixed.stderr


def test_sigterm_stops_the_model_server_without_a_traceback(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    """uvicorn re-raises the SIGTERM it caught once it has shut down: the command ends by
    that signal (143), not by a traceback."""
    params = registry["params"].root / "params.yaml"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopml_cli", "serve", "-p", str(params), "--port", str(port)],
        cwd=params.parent, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 120)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    said = out.decode(errors="replace")
    assert proc.returncode in (143, -signal.SIGTERM), said
    assert "Traceback" not in said and "serving churn-classifier@champion" in said, said
