"""End to end with a real Prefect server process: deployments with schedules, a training run
triggered through the API, monitoring on drifted data that triggers training, and the cooldown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from loopml.config import load_params
from loopml.tracking import setup_tracking
from tests.conftest import small_params
from tests.stack import prefect_stack

pytestmark = pytest.mark.slow

DRIFT = {
    "monitor": {"current": "source"},
    "data": {
        "source": {
            "generator": {
                "seed": 5,
                "drift": {
                    "covariate": {
                        "monthly_charges": 1.5,
                        "days_since_last_login": 1.5,
                        "plan": 0.7,
                        "device": 0.7,
                    }
                },
            }
        }
    },
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict]:
    raw = small_params()
    raw["train"]["candidates"] = [{"name": "logreg", "kind": "linear"}]
    raw["promote"]["floors"] = {}
    raw["monitor"].update({"min_rows": 100, "cooldown_minutes": 60, "sample_rows": 3000})
    raw["deploy"] = {"training_cron": "0 3 * * *", "timezone": "UTC"}
    with prefect_stack(tmp_path, raw) as info:
        yield info


def test_deployments_trigger_training_and_respect_the_cooldown(stack: dict) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack["api"]}):
        with get_client(sync_client=True) as client:
            deadline = time.time() + 120
            names: set[str] = set()
            expected = {"training", "monitoring", "batch-scoring"}
            while time.time() < deadline and names != expected:
                names = {d.name for d in client.read_deployments()}
                time.sleep(1)
            assert names == expected, (stack["tmp"] / "deploy.log").read_text()[-3000:]
            training_dep = client.read_deployment_by_name("training/training")
            monitoring_dep = client.read_deployment_by_name("monitoring/monitoring")
            assert [s.schedule.cron for s in training_dep.schedules] == ["0 3 * * *"]
            assert [s.schedule.cron for s in monitoring_dep.schedules] == ["*/30 * * * *"]
            scoring_dep = client.read_deployment_by_name("batch-scoring/batch-scoring")
            assert scoring_dep.schedules == []  # score.schedule_cron is null: on demand
            assert training_dep.parameters["params_path"] == str(stack["repo"] / "params.yaml")

        run = run_deployment("training/training", timeout=600)
        assert run.state.is_completed(), run.state
        params = load_params(stack["repo"] / "params.yaml")
        mlflow = setup_tracking(params).client()
        champion = mlflow.get_model_version_by_alias(params.promote.model_name, "champion")
        assert champion.version in ("1", 1)

        scored = run_deployment("batch-scoring/batch-scoring", timeout=600)
        assert scored.state.is_completed(), scored.state
        [scores_file] = params.path("scores").glob("scores-*-v1-*.parquet")
        assert len(pd.read_parquet(scores_file)) == params.score.source.generator.n_rows

        first = run_deployment(
            "monitoring/monitoring", parameters={"overrides": DRIFT}, timeout=600
        )
        assert first.state.is_completed(), first.state
        second = run_deployment(
            "monitoring/monitoring", parameters={"overrides": DRIFT}, timeout=600
        )
        assert second.state.is_completed(), second.state

        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["training"]))
            )
        assert len(runs) == 2  # the one started through the API, and exactly one from monitoring
        triggered = next(r for r in runs if r.id != run.id)
        assert triggered.parameters["overrides"] == DRIFT  # retrains on what it monitored

    exp = mlflow.get_experiment_by_name(params.monitor.experiment)
    monitoring_runs = mlflow.search_runs(
        [exp.experiment_id], order_by=["attributes.start_time ASC"]
    )
    assert [r.data.tags["loopml.triggered"] for r in monitoring_runs] == ["true", "false"]
    verdict = mlflow.download_artifacts(monitoring_runs[1].info.run_id, "verdict.txt")
    assert "cooldown" in Path(verdict).read_text()
    assert "drift share" in Path(verdict).read_text()
