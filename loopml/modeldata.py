"""Model-ready data of one feature set: the float32 matrices and encoded targets of each split,
the raw test rows (models are evaluated from raw rows, as they are served), and the fitted
transformer that every model bundles."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from loopml.config import ColumnKind, FeaturesConfig, SchemaConfig
from loopml.features import SPLITS, FeatureSet

Matrices = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ModelData:
    task: str
    data_version: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_rows: pd.DataFrame
    transformer: ColumnTransformer
    input_kinds: dict[str, ColumnKind]
    target: str
    classes: list[Any] | None
    fingerprint: str
    """Identifies data, schema and feature settings (cache keys, registry fingerprints)."""

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def matrices(self) -> Matrices:
        return self.x_train, self.y_train, self.x_val, self.y_val

    @property
    def test_inputs(self) -> pd.DataFrame:
        """The raw test rows restricted to the model's input columns."""
        return self.test_rows[list(self.input_kinds)]


def load_model_data(
    features: FeatureSet, schema: SchemaConfig, features_cfg: FeaturesConfig
) -> ModelData:
    """Read a feature set's matrices, raw test rows and transformer."""
    arrays = {
        f"{axis}_{name}": np.load(features.path(f"{axis}_{name}.npy"))
        for axis in ("x", "y")
        for name in SPLITS
    }
    fingerprint = hashlib.sha256(
        "|".join(
            [features.data_version, schema.model_dump_json(), features_cfg.model_dump_json()]
        ).encode()
    ).hexdigest()[:32]
    return ModelData(
        task=schema.task,
        data_version=features.data_version,
        test_rows=pd.read_parquet(features.path("test.parquet")),
        transformer=joblib.load(features.path("transformer.joblib")),
        input_kinds=schema.input_kinds,
        target=schema.target,
        classes=features.classes,
        fingerprint=fingerprint,
        **arrays,
    )
