"""Where the candidates run: inline, or on a real Dask ``LocalCluster`` whose workers report
their task runs to the flow's own Prefect API, also when that is Prefect's ephemeral server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopml.config import ExecutorConfig
from tasks._executors import Inline, candidate_runner

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from loopml.config import ExecutorConfig
from tasks._executors import candidate_runner

@task
def square(x: int) -> int:
    return x * x

@flow
def on_dask() -> list[int]:
    with candidate_runner(ExecutorConfig(kind="dask", n_workers=1)) as runner:
        futures = [runner.submit(square, parameters={"x": i}) for i in range(3)]
        return [f.result() for f in futures]

if __name__ == "__main__":
    state = on_dask(return_state=True)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    names = sorted(r.name.rsplit("-", 1)[0] for r in runs)
    print(json.dumps({"result": state.result(), "task_runs": names}))
"""


def test_sequential_runs_the_task_inline() -> None:
    calls: list[int] = []
    with candidate_runner(ExecutorConfig()) as runner:
        assert isinstance(runner, Inline)
        done = runner.submit(lambda x: calls.append(x) or x + 1, parameters={"x": 1})
    assert done.result() == 2 and calls == [1]


@pytest.mark.slow
def test_workers_report_to_the_ephemeral_api_of_the_flow(tmp_path: Path) -> None:
    """No PREFECT_API_URL: the flow runs on Prefect's ephemeral server; the workers report their
    task runs to it instead of each starting a server of its own (seconds per worker)."""
    script = tmp_path / "on_dask.py"
    script.write_text(SCRIPT)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_API") and k != "PREFECT_HOME"
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_HOME=str(tmp_path / ".prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["result"] == [0, 1, 4]
    assert out["task_runs"] == ["square", "square", "square"]
    assert done.stderr.count("Starting temporary server") == 1  # the flow's, none per worker
