"""`loopml serve` with `serve.workers: 2`: two server processes on one port, sharing a new SQLite
prediction log, answer concurrent requests as the registered model does, log every prediction
once, and leave no process behind on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from loopml.predlog import read_prediction_log
from tests.stack import alive, descendants, free_port, wait_http

pytestmark = pytest.mark.slow

REQUESTS, ROWS = 40, 3


def _records(registry: dict[str, Any], start: int) -> list[dict[str, Any]]:
    rows = registry["test_rows"].iloc[start : start + ROWS].drop(columns=["churned", "customer_id"])
    return json.loads(rows.to_json(orient="records", date_format="iso"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return "?"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect_home"), "COLUMNS": "200"}
    for key in ("PREFECT_API_URL", "LOOPML_PREDICTION_LOG_URL"):
        env.pop(key, None)
    return env


def test_two_workers_serve_log_every_prediction_once_and_stop_cleanly(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    import mlflow.pyfunc

    params = registry["params"].root / "params.yaml"
    log_path = tmp_path / "new" / "predictions.sqlite"  # no log yet: both workers create it
    log_path.parent.mkdir()
    port = free_port()
    cmd = [sys.executable, "-m", "loopml_cli", "serve", "-p", str(params), "--port", str(port),
           "-S", "serve.workers=2", "-S", f"paths.prediction_log={log_path}"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=params.parent, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 180)
        workers = descendants(proc.pid)
        assert len(workers) >= 2, workers  # the supervisor's two server processes (and helpers)

        def predict(i: int) -> dict[str, Any]:
            with requests.Session() as session:  # a connection of its own, as separate clients
                resp = session.post(
                    f"http://127.0.0.1:{port}/predict",
                    json={"records": _records(registry, i * ROWS)},
                    timeout=60,
                )
            assert resp.status_code == 200, resp.text
            return resp.json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(predict, range(REQUESTS)))
        time.sleep(1.0)  # the log writers drain on a 0.1 s timer
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    said = out.decode(errors="replace")
    assert proc.returncode in (0, 143, -signal.SIGTERM), said
    assert "Traceback" not in said and "database is locked" not in said, said
    assert "(2 workers)" in said, said
    deadline = time.monotonic() + 15
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: _cmdline(pid) for pid in workers if alive(pid)}
    assert not left, f"left behind: {left}"

    records = [r for i in range(REQUESTS) for r in _records(registry, i * ROWS)]
    registry["tracking"].activate()
    expected = mlflow.pyfunc.load_model("models:/churn-classifier@champion").predict(
        pd.DataFrame.from_records(records)
    )
    served = [p for answer in answers for p in answer["predictions"]]
    assert [p["prediction"] for p in served] == expected["prediction"].tolist()
    assert [p["probability"] for p in served] == pytest.approx(
        expected["probability"].tolist(), rel=1e-6, abs=1e-9
    )

    logged = read_prediction_log(log_path)
    assert len(logged) == REQUESTS * ROWS  # every prediction once
    assert logged["request_id"].nunique() == REQUESTS
    assert sorted(logged["request_id"]) == sorted(
        a["request_id"] for a in answers for _ in range(ROWS)
    )
