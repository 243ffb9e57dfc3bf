"""The bundled churn generator: realistic, deterministic, documented, with drift knobs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.config import DriftConfig
from loopml.datagen import SCHEMA, churn_logit, generate_churn


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_churn(50_000, seed=3)


def test_schema_and_kinds(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(SCHEMA)
    kinds = pd.Series(SCHEMA)
    assert (kinds != "categorical").sum() >= 15 and len(
        kinds
    ) - 3 >= 15  # >= 15 features beside id/targets
    for col, kind in SCHEMA.items():
        dtype = frame[col].dtype
        if kind == "datetime":
            assert pd.api.types.is_datetime64_any_dtype(dtype), col
        elif kind == "boolean":
            assert pd.api.types.is_bool_dtype(dtype), col
        elif kind == "categorical":
            assert pd.api.types.is_object_dtype(dtype), col
        else:
            assert pd.api.types.is_numeric_dtype(dtype), col


def test_deterministic_for_a_seed() -> None:
    a = generate_churn(2000, seed=11)
    b = generate_churn(2000, seed=11)
    c = generate_churn(2000, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_realistic_properties(frame: pd.DataFrame) -> None:
    assert 0.10 <= frame["churned"].mean() <= 0.30
    assert frame["customer_id"].is_unique
    assert frame["event_time"].is_monotonic_increasing
    assert 0.25 <= frame["nps_score"].isna().mean() <= 0.45
    assert 0.05 <= frame["avg_session_minutes"].isna().mean() <= 0.12
    assert frame["total_charges"].isna().any()
    assert (frame["age"] == 999).any()  # data-entry outliers
    assert frame["monthly_charges"].max() > 10 * frame["monthly_charges"].median()
    country_share = frame["country"].value_counts(normalize=True)
    assert (
        len(country_share) >= 50 and country_share.iloc[0] > 0.15 and country_share.iloc[-1] < 0.005
    )
    assert frame["next_month_spend"].ge(0).all() and frame["next_month_spend"].std() > 1


def test_label_follows_documented_relation(frame: pd.DataFrame) -> None:
    p = 1 / (1 + np.exp(-churn_logit(frame)))
    # Calibrated: observed churn rate per decile of the documented probability matches it.
    deciles = pd.qcut(p, 10, labels=False)
    observed = frame.groupby(deciles)["churned"].mean().to_numpy()
    expected = pd.Series(p).groupby(deciles).mean().to_numpy()
    assert np.abs(observed - expected).max() < 0.05
    inactive = frame["days_since_last_login"] > 40
    assert frame.loc[inactive, "churned"].mean() > frame.loc[~inactive, "churned"].mean() + 0.1


def test_covariate_drift_moves_inputs_not_relation() -> None:
    base = generate_churn(20_000, seed=5)
    drifted = generate_churn(
        20_000, seed=5, drift=DriftConfig(covariate={"monthly_charges": 1.0, "plan": 0.8})
    )
    shift = drifted["monthly_charges"].mean() - base["monthly_charges"].mean()
    assert shift > 0.8 * base["monthly_charges"].std()
    assert drifted["plan"].value_counts(normalize=True)["enterprise"] > 0.3
    # P(y|x) unchanged: the documented logit explains the drifted labels equally well.
    p = 1 / (1 + np.exp(-churn_logit(drifted)))
    assert abs(drifted["churned"].mean() - p.mean()) < 0.02


def test_concept_drift_changes_the_relation() -> None:
    base = generate_churn(20_000, seed=5)
    shifted = generate_churn(20_000, seed=5, drift=DriftConfig(concept=1.0))
    pd.testing.assert_frame_equal(
        base.drop(columns=["churned", "next_month_spend"]),
        shifted.drop(columns=["churned", "next_month_spend"]),
    )
    p_old = 1 / (1 + np.exp(-churn_logit(shifted)))
    assert abs(shifted["churned"].mean() - p_old.mean()) > 0.02 or (
        np.corrcoef(shifted["churned"], p_old)[0, 1]
        < np.corrcoef(base["churned"], p_old)[0, 1] - 0.05
    )


@pytest.mark.parametrize(
    "bad", [{"n_rows": 0}, {"n_rows": 10, "drift": DriftConfig(covariate={"nope": 1.0})}]
)
def test_rejects_bad_arguments(bad: dict) -> None:
    with pytest.raises(ValueError):
        generate_churn(**bad)
