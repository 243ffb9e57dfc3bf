"""Multiclass classification by configuration alone: the bundled data with `plan` as target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flows.training import training

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def test_multiclass_target_trains_evaluates_and_promotes(write_params: Callable[..., Path]) -> None:
    params = write_params(
        data={"schema": {"target": "plan", "drop_columns": ["next_month_spend", "churned"]}},
        train={
            "candidates": [
                {"name": "baseline", "kind": "dummy"},
                {"name": "hgb", "kind": "hist_gradient_boosting", "params": {"max_iter": 50}},
                {"name": "mlp", "kind": "lightning"},
            ]
        },
        promote={"model_name": "plan-classifier", "floors": {"roc_auc": 0.6}},
    )
    result = training(params_path=str(params))
    scores = {c.name: c.test for c in result.candidates}
    assert scores["baseline"] == pytest.approx(0.5)
    assert scores[result.best] > 0.8  # monthly charges give the plan away
    assert result.decision.promoted
    metrics = Path(result.metrics_file).read_text()
    for key in ("roc_auc_macro", "roc_auc_weighted", "f1_macro", "f1_weighted", "log_loss"):
        assert key in metrics
