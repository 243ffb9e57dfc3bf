"""``train.executor: dask`` through the whole training flow (real Prefect, MLflow, DVC, Lightning,
and a real ``distributed`` cluster): a local cluster of 2 worker processes and an external
scheduler started from the ``dask`` command line give the sequential run's results; a worker
killed mid-training does not lose the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

from flows.training import training
from loopml.config import load_params
from loopml.summary import TrainingResult
from loopml.tracking import setup_tracking
from tests.stack import free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

ROOT = Path(__file__).resolve().parents[2]


def _outcome(result: TrainingResult, params: Path) -> dict[str, Any]:
    """The selected candidate, every candidate's scores, and the trials MLflow holds for each
    (on Dask each trial of a search is a task of its own, put back together)."""
    client = setup_tracking(load_params(params)).client()
    experiment = client.get_run(result.parent_run_id).info.experiment_id

    def trials(run_id: str) -> list[tuple[str, float]]:
        runs = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{run_id}'")
        return sorted((r.info.run_name, round(r.data.metrics["val_roc_auc"], 6)) for r in runs)

    return {
        "best": result.best,
        "val": {c.name: round(c.val, 6) for c in result.candidates},
        "test": {c.name: round(c.test, 6) for c in result.candidates},
        "trials": {c.name: trials(c.run_id) for c in result.candidates},
    }


def _train(params: Path, executor: dict[str, Any]) -> TrainingResult:
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):  # fit again, never from cache
        return training(
            params_path=str(params),
            overrides={"train": {"executor": executor}, "promote": {"dry_run": True}},
        )


def _params(write_params: Callable[..., Path], **overrides: Any) -> Path:
    """torch's sums depend on its thread count (all cores in the flow's process, one in a
    worker): ``train.lightning.threads`` fixes it, for the same model wherever it trains."""
    return write_params(
        **{
            **overrides,
            "train": {"lightning": {"max_epochs": 3, "hidden_sizes": [32], "threads": 1}},
        }
    )


def test_a_local_cluster_gives_the_sequential_results(write_params: Callable[..., Path]) -> None:
    params = _params(write_params)
    sequential = _train(params, {"kind": "sequential"})
    on_dask = _train(params, {"kind": "dask", "n_workers": 2, "threads_per_worker": 1})
    assert len(on_dask.candidates) == 4
    outcome = _outcome(on_dask, params)
    assert len(outcome["trials"]["hgb"]) == 3  # the shipped search: 3 trials, 3 tasks on Dask
    assert outcome == _outcome(sequential, params)


@pytest.fixture
def scheduler() -> Iterator[tuple[str, dict[str, subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and two ``dask worker`` processes, as a user starts them; the workers
    find the project's code on PYTHONPATH."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent))
    assert dask, "the dask command line (distributed) is not installed"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    workers = {
        name: subprocess.Popen(
            [dask, "worker", address, "--name", name, "--nthreads", "1", "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("w1", "w2")
    }
    from distributed import Client

    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for proc in [*workers.values(), *procs]:
            proc.kill()
            proc.wait(timeout=30)


def test_an_external_scheduler_gives_the_sequential_results(
    write_params: Callable[..., Path], scheduler: tuple[str, dict]
) -> None:
    address, _ = scheduler
    params = _params(write_params)
    sequential = _train(params, {"kind": "sequential"})
    on_dask = _train(params, {"kind": "dask", "address": address})
    assert _outcome(on_dask, params) == _outcome(sequential, params)


def _kill_a_busy_worker(address: str, workers: dict[str, subprocess.Popen[bytes]]) -> list[str]:
    """Wait until a worker runs a task, kill it; returns the killed worker's name."""
    from distributed import Client

    with Client(address, timeout=60) as client:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            busy = [addr for addr, keys in client.processing().items() if keys]
            if busy:
                names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
                name = names[busy[0]]
                workers[name].kill()
                return [name]
            time.sleep(0.05)
    return []


def test_a_worker_killed_mid_training_does_not_lose_the_run(
    write_params: Callable[..., Path], scheduler: tuple[str, dict]
) -> None:
    address, workers = scheduler
    slow_mlp = {"max_epochs": 40, "patience": 40, "batch_size": 64, "hidden_sizes": [64]}
    params = write_params(
        train={
            "candidates": [{"name": "mlp", "kind": "lightning"}],
            "lightning": slow_mlp,
        }
    )
    killed: list[str] = []
    watcher = threading.Thread(target=lambda: killed.extend(_kill_a_busy_worker(address, workers)))
    watcher.start()
    try:
        result = _train(params, {"kind": "dask", "address": address})
    finally:
        watcher.join(timeout=600)
    assert killed, "no worker was seen running the candidate"
    assert workers[killed[0]].poll() is not None  # it is gone
    assert [c.name for c in result.candidates] == ["mlp"]  # trained again on the other worker
    assert 0.5 < result.candidates[0].val <= 1.0
