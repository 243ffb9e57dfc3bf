"""Evidently drift on the bundled generator: few false alarms, real drift found, decay found."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from loopml.config import DriftConfig, MonitorConfig, SchemaConfig
from loopml.datagen import SCHEMA, generate_churn
from loopml.monitoring.drift import drift_report
from loopml.registry import load_alias

SCHEMA_CFG = SchemaConfig(
    columns=SCHEMA,
    target="churned",
    id_column="customer_id",
    time_column="event_time",
    drop_columns=["next_month_spend"],
)
CFG = MonitorConfig(sample_rows=5000, min_labelled_rows=100)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_churn(5000, seed=4)


def _report(reference: pd.DataFrame, current: pd.DataFrame, **kw: Any):
    return drift_report(
        reference=reference, current=current, schema=SCHEMA_CFG, cfg=CFG, seed=0, **kw
    )


@pytest.mark.slow
def test_at_most_one_false_alarm_over_twenty_seeds(reference: pd.DataFrame) -> None:
    alarms, shares = 0, []
    for seed in range(100, 120):
        result = _report(reference, generate_churn(2000, seed=seed, id_start=10**6))
        shares.append(result.drift_share)
        alarms += result.drifted(CFG.drift_share_threshold)
    assert alarms <= 1, shares


def test_column_statistics_are_in_the_report_only_when_asked_for(reference: pd.DataFrame) -> None:
    current = generate_churn(1000, seed=5)
    plain = _report(reference, current)
    with_summary = drift_report(
        reference=reference,
        current=current,
        schema=SCHEMA_CFG,
        cfg=CFG.model_copy(update={"data_summary": True}),
        seed=0,
    )
    assert "Dataset Summary" not in plain.html
    assert "Dataset Summary" in with_summary.html
    assert with_summary.drift_share == plain.drift_share


@pytest.mark.parametrize(
    "covariate",
    [
        {"monthly_charges": 1.0, "days_since_last_login": 1.0, "plan": 0.6},
        {"sessions_last_30d": 1.0, "device": 0.8, "age": 1.0, "discount_pct": 1.0},
    ],
)
def test_covariate_shift_is_detected_on_the_shifted_features(
    reference: pd.DataFrame, covariate: dict
) -> None:
    current = generate_churn(2000, seed=7, drift=DriftConfig(covariate=covariate))
    result = _report(reference, current)
    assert result.drifted(CFG.drift_share_threshold), result.drift_share
    assert set(covariate) <= set(result.drifted_columns)
    assert "<html" in result.html.lower()


def test_performance_decay_is_detected_when_concept_shifts_and_labels_arrive(
    registry: dict,
) -> None:
    model = load_alias(registry["tracking"].client(), "churn-classifier", "champion").model
    reference = generate_churn(3000, seed=4)
    metrics = {"roc_auc": 0.78}
    same = _report(reference, generate_churn(3000, seed=31), model=model, reference_metrics=metrics)
    shifted = _report(
        reference,
        generate_churn(3000, seed=31, drift=DriftConfig(concept=1.0)),
        model=model,
        reference_metrics=metrics,
    )
    assert same.labelled_rows == shifted.labelled_rows == 3000
    assert not same.decayed(CFG.decay_threshold), same.decay
    assert shifted.decayed(CFG.decay_threshold), shifted.decay
    assert shifted.current_metric < same.current_metric - 0.05
    # concept shift alone moves no input: the inputs did not drift
    assert not shifted.drifted(CFG.drift_share_threshold)


def test_unlabelled_current_data_gives_no_decay(registry: dict) -> None:
    model = load_alias(registry["tracking"].client(), "churn-classifier", "champion").model
    current = generate_churn(1000, seed=3).assign(churned=None)
    result = _report(
        generate_churn(3000, seed=4), current, model=model, reference_metrics={"roc_auc": 0.8}
    )
    assert result.decay is None and result.labelled_rows == 0
