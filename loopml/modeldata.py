"""Model-ready data of one feature set: the float32 matrices and encoded targets of each split,
the raw test rows (models are evaluated from raw rows, as they are served), and the fitted
transformer that every model bundles."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from loopml.config import ColumnKind, FeaturesConfig, SchemaConfig
from loopml.exceptions import IntegrityError
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
    x_test: np.ndarray | None = None
    """The test matrix the features stage wrote, memory-mapped (read only where used)."""


@dataclass(frozen=True)
class FeatureSource:
    """What :func:`load_model_data` read, and the files as they were (size, mtime) then."""

    features: FeatureSet
    schema: SchemaConfig
    features_cfg: FeaturesConfig
    stamp: tuple[tuple[str, int, int], ...]


def _stamp(features: FeatureSet) -> tuple[tuple[str, int, int], ...]:
    stats = [(p.name, p.stat()) for p in sorted(features.path(".").iterdir()) if p.is_file()]
    return tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats)


_READ: dict[str, ModelData] = {}
"""The model data last re-read in this process (a Dask worker keeps one, by fingerprint)."""


def _reread(source: FeatureSource, fingerprint: str) -> ModelData:
    """A pickled :class:`ModelData` in another process: read its feature set once per process,
    refusing files changed since it was first read."""
    cached = _READ.get(fingerprint)
    if cached is not None:
        return cached
    if _stamp(source.features) != source.stamp:
        raise IntegrityError(
            f"{source.features.directory}: the feature files changed after this run read them; "
            "run the train stage again"
        )
    data = load_model_data(source.features, source.schema, source.features_cfg)
    if data.fingerprint != fingerprint:
        raise IntegrityError(f"{source.features.directory}: not the feature set this run read")
    _READ.clear()
    _READ[fingerprint] = data
    return data


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
    source: FeatureSource | None = None
    """Where it was read from: what it pickles as (see :meth:`__reduce__`)."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled (sent to a Dask worker), it travels as the feature set it was read from and
        is read there once per process (:func:`_reread`), not as its matrices each time."""
        if self.source is None:
            return ModelData, tuple(getattr(self, f.name) for f in fields(self))
        return _reread, (self.source, self.fingerprint)

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
    stamp = _stamp(features)
    encodings = {
        encoding: Encoding(
            transformer=joblib.load(features.path(transformer_file(encoding))),
            x_train=np.load(features.path(matrix_file("train", encoding))),
            x_val=np.load(features.path(matrix_file("val", encoding))),
            x_test=np.load(features.path(matrix_file("test", encoding)), mmap_mode="r"),
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
        source=FeatureSource(features, schema, features_cfg, stamp),
    )
