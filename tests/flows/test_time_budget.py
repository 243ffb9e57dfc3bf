"""``train.time_budget`` through the whole training flow (real Prefect, MLflow, DVC, Lightning):
the candidate running when it expires stops and is marked out of time, the one after it is
skipped and recorded as such, and the best finished candidate is still promoted by the policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.training import training
from loopml.config import load_params
from loopml.tracking import setup_tracking

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

# Far more work than the budget allows anywhere: 5 grid trials of 5,000 boosting rounds with no
# early stopping. The boosting candidate can only stop at a chunk of rounds after the deadline,
# so the Lightning candidate after it always starts too late, whatever the machine's speed.
CANDIDATES = [
    {"name": "logreg", "kind": "linear"},
    {
        "name": "slow_hgb",
        "kind": "hist_gradient_boosting",
        "params": {"max_iter": 5000, "early_stopping": False, "max_leaf_nodes": 63},
        "search": {"method": "grid", "space": {"learning_rate": [0.01, 0.02, 0.03, 0.04, 0.05]}},
    },
    {"name": "mlp", "kind": "lightning"},
]


def test_an_expired_budget_cuts_one_candidate_skips_the_next_and_still_promotes(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params_path = write_params(
        train={"candidates": CANDIDATES, "time_budget": 2.0},
        promote={"floors": {"roc_auc": 0.55}},
    )
    result = training(params_path=str(params_path))

    recorded = json.loads((dvc_repo / "data" / "models" / "candidates.json").read_text())
    assert [c["name"] for c in recorded["candidates"]] == ["logreg", "slow_hgb"]
    assert [c["out_of_time"] for c in recorded["candidates"]] == [False, True]
    assert recorded["skipped"] == ["mlp"]
    assert result.skipped == ("mlp",)
    assert "skipped, `train.time_budget` ran out before they started: mlp" in result.markdown
    assert "hist_gradient_boosting (out of time)" in result.markdown

    # The best finished candidate went through the policy as usual and became champion.
    assert result.best in {"logreg", "slow_hgb"}
    assert result.decision is not None and result.decision.promoted
    client = setup_tracking(load_params(params_path)).client()
    version = client.get_model_version_by_alias("churn-classifier", "champion")
    best_run = next(c.run_id for c in result.candidates if c.name == result.best)
    assert version.run_id == best_run

    # MLflow holds all three: the cut one tagged out of time, the skipped one killed, no model.
    children = client.search_runs(
        [client.get_run(result.parent_run_id).info.experiment_id],
        f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    runs = {r.data.tags["loopml.candidate"]: r for r in children}
    assert set(runs) == {"logreg", "slow_hgb", "mlp"}
    assert runs["slow_hgb"].data.tags["loopml.out_of_time"] == "true"
    assert runs["logreg"].data.tags["loopml.out_of_time"] == "false"
    assert runs["mlp"].data.tags["loopml.skipped"] == "train.time_budget"
    assert runs["mlp"].info.status == "KILLED"

    def models_of(name: str) -> list:
        return client.search_logged_models(
            experiment_ids=[runs[name].info.experiment_id],
            filter_string=f"source_run_id = '{runs[name].info.run_id}'",
        )

    assert len(models_of("logreg")) == 1 and not models_of("mlp")
