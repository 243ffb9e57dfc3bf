"""Derived columns are computed once, the same way, everywhere: in the snapshot (collect), by
the trained model from raw rows (batch scoring and serving), and for monitoring."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from flows.scoring import batch_scoring
from flows.training import training
from loopml.config import ServeConfig, load_params
from loopml.datagen import generate_churn
from loopml.registry import load_alias
from loopml.serving.app import create_app
from loopml.tracking import setup_tracking

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

DERIVED = {
    "data": {
        "schema": {
            "derived": {
                "tenure_years": "tenure_months / 12",
                "charges_per_session": "monthly_charges / (sessions_last_30d + 1)",
                "signup_hour": "hour(event_time)",
                "late_signup": "days(event_time - signup_date) > 365",
            },
            "drop_columns": ["next_month_spend", "tenure_months"],
        }
    },
    "train": {"candidates": [{"name": "hgb", "kind": "hist_gradient_boosting"}]},
    "promote": {"floors": {}},
}


def test_derived_columns_match_in_training_scoring_and_serving(
    write_params: Callable[..., Path], tmp_path: Path
) -> None:
    params_path = write_params(**DERIVED)
    result = training(params_path=str(params_path))
    assert result.decision.promoted
    snapshot = pd.read_parquet(
        Path(params_path).parent / "data" / "snapshots" / f"{result.data_version}.parquet"
    )
    np.testing.assert_allclose(snapshot["tenure_years"], snapshot["tenure_months"] / 12)
    assert set(snapshot["late_signup"].dropna().unique()) <= {True, False}

    params = load_params(params_path)
    client = setup_tracking(params).client()
    champion = load_alias(client, params.promote.model_name, "champion")
    assert "tenure_months" in champion.model.input_kinds  # raw input, not a feature
    assert "tenure_years" not in champion.model.input_kinds  # derived by the model itself

    raw = generate_churn(300, seed=77).drop(columns=["churned", "next_month_spend"])
    raw_file = tmp_path / "raw.csv"
    raw.to_csv(raw_file, index=False)
    scored = batch_scoring(
        params_path=str(params_path),
        overrides={"score": {"source": {"kind": "file", "file": {"path": str(raw_file)}}}},
    )
    batch = pd.read_parquet(scored.path)

    records = json.loads(raw.head(40).to_json(orient="records", date_format="iso"))
    app = create_app(client, params.promote.model_name, ServeConfig(), tmp_path / "log.sqlite")
    with TestClient(app) as http:
        served = http.post("/predict", json={"records": records})
    assert served.status_code == 200, served.text
    served_p = [p["probability"] for p in served.json()["predictions"]]
    np.testing.assert_allclose(served_p, batch["probability"].head(40), rtol=1e-6)
    # the same rows through the training path: snapshot-style derivation, then the transformer
    from loopml.schema import with_derived

    derived = with_derived(raw.head(40), params.data.table)
    np.testing.assert_allclose(derived["tenure_years"], raw["tenure_months"].head(40) / 12)
    expected = champion.model.predict(None, raw.head(40))["probability"]
    np.testing.assert_allclose(served_p, expected, rtol=1e-6)
