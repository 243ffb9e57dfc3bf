"""Fixtures shared by the library's tests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from loopml.config import load_params
from loopml.datagen import generate_churn
from loopml.features import fit_transformers, write_features
from loopml.modeldata import load_model_data
from loopml.models import train_candidate
from loopml.schema import conform_frame
from loopml.splits import split_frame
from tests.conftest import small_params


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real fits of a linear model (one-hot features) and a tree ensemble (ordinal features)."""
    root = tmp_path_factory.mktemp("evaluation")
    raw = small_params()
    raw["train"]["candidates"] = [
        {"name": "logreg", "kind": "linear"},
        {"name": "hgb", "kind": "hist_gradient_boosting", "params": {"max_iter": 30}},
    ]
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(root / "params.yaml")
    table = params.data.table
    frame = conform_frame(generate_churn(4000, seed=5), table.columns)
    splits = split_frame(frame, table, params.features.split, seed=1)
    transformers = fit_transformers(splits.train, table, params.features)
    features = write_features(splits, transformers, root / "features", "v-eval", table)
    data = load_model_data(features, table, params.features)
    fits = {
        c.name: train_candidate(c, i, data, "roc_auc", params.train.lightning, 1)
        for i, c in params.train.enabled
    }
    return {"data": data, "fits": fits}
