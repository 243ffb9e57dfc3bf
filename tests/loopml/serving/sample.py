"""Churn rows for the fast-path tests: a training frame and request records, by seed."""

from __future__ import annotations

import json
from typing import Any

from loopml.config import load_params
from loopml.datagen import generate_churn
from loopml.schema import conform_frame
from tests.conftest import REPO_ROOT


def churn_sample(train_rows: int, train_seed: int, rows: int, seed: int) -> dict[str, Any]:
    """``schema``, ``train`` (a conformed frame), ``kinds`` (the feature columns' kinds) and
    ``records`` (JSON records of other rows, as a client sends them)."""
    schema = load_params(REPO_ROOT / "params.yaml").data.table
    train = conform_frame(generate_churn(train_rows, seed=train_seed), schema.columns)
    kinds = {c: schema.columns[c] for c in schema.feature_columns}
    frame = conform_frame(generate_churn(rows, seed=seed), schema.columns)[list(kinds)]
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    return {"schema": schema, "train": train, "kinds": kinds, "records": records}
