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
from loopml.features import ENCODINGS, SPLITS, FeatureSet, matrix_file, transformer_file

Matrices = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Encoding:
    """One feature representation of a feature set: its fitted transformer and matrices."""

    transformer: ColumnTransformer
    x_train: np.ndarray
    x_val: np.ndarray
    categorical: list[bool] | None = None
    """Which columns are category codes (the ordinal representation)."""


@dataclass(frozen=True)
class ModelData:
    task: str
    data_version: str
    encodings: dict[str, Encoding]
    """``onehot`` (every model) and ``ordinal`` (tree ensembles)."""
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    test_rows: pd.DataFrame
    input_kinds: dict[str, ColumnKind]
    target: str
    classes: list[Any] | None
    derived: dict[str, tuple[str, str]]
    """Derived feature columns the served model computes: name -> (expression, kind)."""
    fingerprint: str
    """Identifies data, schema and feature settings (cache keys, registry fingerprints)."""

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def matrices(self, encoding: str = "onehot") -> Matrices:
        enc = self.encodings[encoding]
        return enc.x_train, self.y_train, enc.x_val, self.y_val

    @property
    def test_inputs(self) -> pd.DataFrame:
        """The raw test rows restricted to the model's input columns."""
        return self.test_rows[list(self.input_kinds)]


def load_model_data(
    features: FeatureSet, schema: SchemaConfig, features_cfg: FeaturesConfig
) -> ModelData:
    """Read a feature set's matrices (both representations), raw test rows and transformers."""
    encodings = {
        encoding: Encoding(
            transformer=joblib.load(features.path(transformer_file(encoding))),
            x_train=np.load(features.path(matrix_file("train", encoding))),
            x_val=np.load(features.path(matrix_file("val", encoding))),
            categorical=features.ordinal_categorical if encoding == "ordinal" else None,
        )
        for encoding in ENCODINGS
    }
    ys = {name: np.load(features.path(f"y_{name}.npy")) for name in SPLITS}
    fingerprint = hashlib.sha256(
        "|".join(
            [features.data_version, schema.model_dump_json(), features_cfg.model_dump_json()]
        ).encode()
    ).hexdigest()[:32]
    return ModelData(
        task=schema.task,
        data_version=features.data_version,
        encodings=encodings,
        y_train=ys["train"],
        y_val=ys["val"],
        y_test=ys["test"],
        test_rows=pd.read_parquet(features.path("test.parquet")),
        input_kinds=schema.input_kinds,
        target=schema.target,
        classes=features.classes,
        derived=schema.feature_derivations,
        fingerprint=fingerprint,
    )
