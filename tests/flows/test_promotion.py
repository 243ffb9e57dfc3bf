"""Champion and challenger through the whole training flow: real Prefect, MLflow, DVC, Lightning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient

from flows.training import training
from loopml.config import load_params
from loopml.datagen import generate_churn
from loopml.exceptions import ConfigError, DataValidationError
from loopml.registry import rollback
from loopml.tracking import setup_tracking

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

MODEL = "churn-classifier"
WEAK = {  # a single shallow tree: passes a low floor, easy to beat
    "train": {
        "candidates": [
            {
                "name": "weak",
                "kind": "hist_gradient_boosting",
                "params": {"max_iter": 1, "max_depth": 2, "early_stopping": False},
            }
        ]
    }
}
DUMMY = {"train": {"candidates": [{"name": "baseline", "kind": "dummy"}]}}
STRONG = {
    "train": {
        "candidates": [
            {"name": "logreg", "kind": "linear"},
            {"name": "mlp", "kind": "lightning"},
        ]
    }
}


def _versions(client: MlflowClient) -> dict[str, Any]:
    return {str(v.version): v for v in client.search_model_versions(f"name='{MODEL}'")}


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(MODEL).aliases.items()}


def test_champion_challenger_rollback_and_failures(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params_path = write_params(promote={"floors": {"roc_auc": 0.55}, "min_improvement": 0.005})
    client = setup_tracking(load_params(params_path)).client()

    # 1. The first model that passes the floors becomes champion.
    first = training(params_path=str(params_path), overrides=WEAK)
    assert first.decision.promoted and first.decision.version == "1"
    assert _aliases(client) == {"champion": "1"}
    v1 = _versions(client)["1"]
    assert v1.tags["loopml.data_version"] == first.data_version
    assert v1.tags["loopml.decision"] == "promoted"
    assert {"loopml.git_commit", "loopml.params_digest", "metric.roc_auc"} <= set(v1.tags)
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["data.source.generator.n_rows"] == "3000"
    assert parent.inputs.dataset_inputs[0].dataset.digest == first.data_version[:36]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{first.parent_run_id}'"
    )
    assert {r.data.tags["loopml.candidate"] for r in children} == {"weak"}

    # 2. A worse configuration leaves the champion alone; the new version is the challenger.
    worse = training(params_path=str(params_path), overrides=DUMMY)
    assert not worse.decision.promoted
    assert _aliases(client) == {"champion": "1", "challenger": "2"}
    reasons = _versions(client)["2"].tags["loopml.reasons"]
    assert "does not beat the champion" in reasons and "fails the floor" in reasons

    # 3. A better configuration on the same data is promoted; the old champion becomes previous.
    better = training(params_path=str(params_path), overrides=STRONG)
    assert better.decision.promoted, better.decision.reasons
    assert better.decision.champion_version == "1"
    assert better.decision.challenger_score > better.decision.champion_score + 0.005
    assert _aliases(client) == {"champion": "3", "previous": "1", "challenger": "2"}
    mlp_runs = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{better.parent_run_id}' and tags.`loopml.candidate` = 'mlp'",
    )
    history = client.get_metric_history(mlp_runs[0].info.run_id, "val_loss")
    assert len(history) >= 2 and [m.step for m in history] == sorted(m.step for m in history)

    # 4. Rollback restores the previous champion.
    demoted, restored = rollback(setup_tracking(load_params(params_path)).client(), MODEL)
    assert (demoted, restored) == ("3", "1")
    assert _aliases(client)["champion"] == "1" and "previous" not in _aliases(client)
    assert _versions(client)["3"].tags["loopml.decision"] == "rolled_back"

    # 5. Runs that fail at validate or at train move nothing and register nothing.
    before = (_aliases(client), sorted(_versions(client)))
    bad = generate_churn(3000, seed=8)
    bad.loc[np.arange(len(bad)) % 2 == 0, "monthly_charges"] = np.nan
    bad_file = dvc_repo / "bad.parquet"
    bad.to_parquet(bad_file)
    with pytest.raises(DataValidationError):
        training(
            params_path=str(params_path),
            overrides={"data": {"source": {"kind": "file", "file": {"path": str(bad_file)}}}},
        )
    broken = {"train": {"candidates": [{"name": "bad", "kind": "linear", "params": {"nope": 1}}]}}
    with pytest.raises(ConfigError, match=r"train\.candidates\[0\]\.params\.nope"):
        training(params_path=str(params_path), overrides=broken)
    assert (_aliases(client), sorted(_versions(client))) == before
    failed = client.search_runs(
        [parent.info.experiment_id],
        "attributes.status = 'FAILED' and attributes.run_name = 'training'",
    )
    assert len(failed) == 2


def test_unchanged_rerun_is_cached_and_registers_nothing(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params_path = write_params()
    first = training(params_path=str(params_path), overrides=WEAK)
    again = training(params_path=str(params_path), overrides=WEAK)
    assert again.decision.version == first.decision.version
    assert "unchanged" in again.decision.reasons[0]
    client = setup_tracking(load_params(params_path)).client()
    assert sorted(_versions(client)) == ["1"]
