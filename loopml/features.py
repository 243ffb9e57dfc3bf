"""Features: the scikit-learn ``ColumnTransformer`` fitted on the training split only, and the
feature set on disk (``paths.features``).

On disk: the raw ``train``/``val``/``test`` rows as Parquet, the fitted transformer
(``transformer.joblib``, bundled with every model so serving takes raw rows), the model-ready
float32 matrices and encoded targets (``x_<split>.npy``, ``y_<split>.npy``), and
``features.json`` (input and output feature names, classes, split sizes, data version).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler

from loopml.config import FeaturesConfig, SchemaConfig
from loopml.exceptions import DataValidationError
from loopml.io import read_json, write_atomic, write_json, write_parquet
from loopml.splits import Splits
from loopml.transformers import DateParts, QuantileClipper, ToFloat

log = logging.getLogger(__name__)

MISSING = "__missing__"
SPLITS = ("train", "val", "test")
TREE_MAX_CATEGORIES = 250
"""Histogram gradient boosting takes at most 255 bins, codes included."""
ENCODINGS = ("onehot", "ordinal")
"""The two feature representations on disk: for every model, and for tree ensembles."""


@dataclass(frozen=True)
class FeatureSet:
    """Where the features of one data version live on disk."""

    directory: str
    data_version: str
    split_method: str
    sizes: dict[str, int]
    input_columns: list[str]
    output_features: list[str]
    target: str
    task: str
    classes: list[Any] | None = None
    ordinal_categorical: list[bool] | None = None
    """Which columns of the ordinal matrices are category codes (for tree ensembles)."""
    key: str = ""
    """What built it (:func:`loopml.feature_reuse.features_key`); empty: never reused."""

    def path(self, name: str) -> Path:
        return Path(self.directory) / name


# --------------------------------------------------------------------------- the transformer
def _numeric(cfg: FeaturesConfig) -> Pipeline:
    scaler = {"standard": StandardScaler(), "robust": RobustScaler(), "none": "passthrough"}
    return Pipeline(
        [
            ("clip", QuantileClipper(*cfg.clip_quantiles)),
            ("impute", SimpleImputer(strategy=cfg.numeric_impute, add_indicator=True)),
            ("scale", scaler[cfg.scale]),
        ]
    )


def _categorical(cfg: FeaturesConfig) -> Pipeline:
    encoder = OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        min_frequency=cfg.categorical_min_frequency or None,
        max_categories=cfg.categorical_max_categories,
        sparse_output=False,
        dtype=np.float32,
    )
    return Pipeline(
        [("impute", SimpleImputer(strategy="constant", fill_value=MISSING)), ("onehot", encoder)]
    )


def _ordinal(cfg: FeaturesConfig) -> Pipeline:
    """Categories as integer codes (trees split on them natively); unseen and missing: NaN."""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        min_frequency=cfg.categorical_min_frequency or None,
        max_categories=min(
            cfg.categorical_max_categories or TREE_MAX_CATEGORIES, TREE_MAX_CATEGORIES
        ),
        dtype=np.float32,
    )
    return Pipeline(
        [("impute", SimpleImputer(strategy="constant", fill_value=MISSING)), ("codes", encoder)]
    )


def build_tree_transformer(schema: SchemaConfig, cfg: FeaturesConfig) -> ColumnTransformer:
    """The unfitted feature pipeline for tree ensembles: numbers as they are (missing values
    stay missing: trees route them), categories as codes, booleans as 0/1, date parts."""
    numeric = schema.features_of("numeric") + schema.features_of("integer")
    categorical = schema.features_of("categorical")
    boolean = schema.features_of("boolean")
    datetime = schema.features_of("datetime")
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("num", "passthrough", numeric))
    if categorical:
        parts.append(("cat", _ordinal(cfg), categorical))
    if boolean:
        parts.append(("bool", ToFloat(), boolean))
    if datetime and cfg.datetime_parts:
        parts.append(("date", DateParts(tuple(cfg.datetime_parts)), datetime))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)


def categorical_mask(transformer: ColumnTransformer) -> list[bool]:
    """Which output columns of a fitted tree transformer are category codes."""
    return [str(name).startswith("cat__") for name in transformer.get_feature_names_out()]


def build_transformer(schema: SchemaConfig, cfg: FeaturesConfig) -> ColumnTransformer:
    """The unfitted feature pipeline for the declared schema."""
    numeric = schema.features_of("numeric") + schema.features_of("integer")
    categorical = schema.features_of("categorical")
    boolean = schema.features_of("boolean")
    datetime = schema.features_of("datetime")
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("num", _numeric(cfg), numeric))
    if categorical:
        parts.append(("cat", _categorical(cfg), categorical))
    if boolean:
        steps = [
            ("float", ToFloat()),
            ("impute", SimpleImputer(strategy="most_frequent", add_indicator=True)),
        ]
        parts.append(("bool", Pipeline(steps), boolean))
    if datetime and cfg.datetime_parts:
        steps = [
            ("parts", DateParts(tuple(cfg.datetime_parts))),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("scale", StandardScaler()),
        ]
        parts.append(("date", Pipeline(steps), datetime))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)


def _categorical_as_object(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """SimpleImputer needs object, not pandas' nullable string, for categorical columns."""
    fix = [c for c in columns if c in frame.columns and frame[c].dtype != object]
    if not fix:
        return frame
    out = frame.copy(deep=False)
    for c in fix:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


@dataclass(frozen=True)
class Transformers:
    """Both fitted feature pipelines: one-hot (every model), ordinal (tree ensembles)."""

    onehot: ColumnTransformer
    ordinal: ColumnTransformer

    def of(self, encoding: str) -> ColumnTransformer:
        return self.ordinal if encoding == "ordinal" else self.onehot


def fit_transformer(
    train: pd.DataFrame, schema: SchemaConfig, cfg: FeaturesConfig
) -> ColumnTransformer:
    """Fit the one-hot feature pipeline on the training split only."""
    transformer = build_transformer(schema, cfg)
    transformer.fit(_categorical_as_object(train, schema.features_of("categorical")))
    return transformer


def unusable_values(frame: pd.DataFrame, schema: SchemaConfig) -> list[str]:
    """Every numeric feature (and a regression target) that holds text or non-finite numbers:
    what validation would block by default, found again here so that a batch let through with
    those checks off fails with the column's name instead of a scikit-learn traceback."""
    numeric = [*schema.features_of("numeric"), *schema.features_of("integer")]
    if schema.task == "regression":
        numeric.append(schema.target)
    problems = []
    for c in (c for c in numeric if c in frame.columns):
        col = frame[c]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            problems.append(f"column '{c}': declared numeric but holds {col.dtype} values")
            continue
        bad = int(np.isinf(col.to_numpy(dtype=float, na_value=np.nan)).sum())
        if bad:
            problems.append(f"column '{c}': {bad} non-finite value(s) (inf or -inf)")
    return problems


def fit_sample(train: pd.DataFrame, fit_rows: int | None, seed: int) -> pd.DataFrame:
    """The training rows the transformers are fitted on: all of them, or a seeded random
    sample of ``fit_rows`` (``features.fit_rows``) when there are more. Counting the categories
    of every row is most of the time of a fit; the frequencies, quantiles and scales a sample
    estimates are as good for a transformer."""
    if fit_rows is None or len(train) <= fit_rows:
        return train
    return train.sample(n=fit_rows, random_state=seed).sort_index()


def fit_transformers(
    train: pd.DataFrame, schema: SchemaConfig, cfg: FeaturesConfig, seed: int = 0
) -> Transformers:
    """Both feature pipelines, fitted on the training split only (on :func:`fit_sample` of it).

    Raises :class:`DataValidationError` naming every column whose values cannot be features."""
    problems = unusable_values(train, schema)
    if problems:
        raise DataValidationError(
            "features",
            [
                *problems,
                "fix the source (validation blocks these unless validate.severity.finite "
                "or .types is off)",
            ],
        )
    sample = fit_sample(train, cfg.fit_rows, seed)
    rows = _categorical_as_object(sample, schema.features_of("categorical"))
    ordinal = build_tree_transformer(schema, cfg).fit(rows)
    return Transformers(onehot=fit_transformer(sample, schema, cfg), ordinal=ordinal)


def transform(
    transformer: ColumnTransformer, frame: pd.DataFrame, schema: SchemaConfig
) -> np.ndarray:
    """Apply a fitted transformer to raw rows; returns a float32 matrix."""
    out = transformer.transform(_categorical_as_object(frame, schema.features_of("categorical")))
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- the target
def target_classes(train: pd.DataFrame, schema: SchemaConfig) -> list[Any] | None:
    """The classes seen in training (sorted as text), or None for regression."""
    if schema.task != "classification":
        return None
    return sorted(pd.unique(train[schema.target].dropna()).tolist(), key=str)


def encode_target(values: pd.Series, classes: list[Any] | None) -> np.ndarray:
    """Class indices (classification) or floats (regression)."""
    if classes is None:
        return values.to_numpy(dtype=float)
    index = {c: i for i, c in enumerate(classes)}
    codes = values.map(index)
    if codes.isna().any():
        unknown = sorted(map(str, pd.unique(values[codes.isna()])))[:5]
        raise DataValidationError(
            "features", [f"target '{values.name}' has classes not seen in training: {unknown}"]
        )
    return codes.to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------- on disk
def matrix_file(split: str, encoding: str) -> str:
    return f"x_{split}.npy" if encoding == "onehot" else f"x_{split}.{encoding}.npy"


def transformer_file(encoding: str) -> str:
    return "transformer.joblib" if encoding == "onehot" else f"transformer.{encoding}.joblib"


def write_features(
    splits: Splits,
    transformers: Transformers,
    out_dir: Path,
    data_version: str,
    schema: SchemaConfig,
    key: str = "",
) -> FeatureSet:
    """Write the splits, both transformers, their matrices and ``features.json`` (each file
    atomically; ``features.json`` is removed first and written last, so that files half
    replaced by a run that failed are never taken for a feature set)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "features.json").unlink(missing_ok=True)
    classes = target_classes(splits.train, schema)
    for name in SPLITS:
        rows = getattr(splits, name)
        write_parquet(out_dir / f"{name}.parquet", rows)
        y = encode_target(rows[schema.target], classes)
        write_atomic(out_dir / f"y_{name}.npy", lambda p, a=y: _save_npy(p, a))
        for encoding in ENCODINGS:
            x = transform(transformers.of(encoding), rows, schema)
            write_atomic(out_dir / matrix_file(name, encoding), lambda p, a=x: _save_npy(p, a))
    for encoding in ENCODINGS:
        fitted = transformers.of(encoding)
        write_atomic(out_dir / transformer_file(encoding), lambda p, t=fitted: joblib.dump(t, p))
    transformer = transformers.onehot
    features = FeatureSet(
        directory=str(out_dir),
        data_version=data_version,
        split_method=splits.method,
        sizes=splits.sizes(),
        input_columns=list(schema.feature_columns),
        output_features=[str(f) for f in transformer.get_feature_names_out()],
        target=schema.target,
        task=schema.task,
        classes=classes,
        ordinal_categorical=categorical_mask(transformers.ordinal),
        key=key,
    )
    meta = asdict(features)
    meta.pop("directory")
    write_json(out_dir / "features.json", meta)
    log.info(
        "features for %s: %s, %d model inputs -> %s",
        data_version[:12],
        splits.sizes(),
        len(features.output_features),
        out_dir,
    )
    return features


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as fh:
        np.save(fh, array, allow_pickle=False)


def load_feature_set(out_dir: Path) -> FeatureSet:
    """The feature set written by :func:`write_features`."""
    if not (out_dir / "features.json").is_file():
        raise DataValidationError(
            "features", [f"{out_dir}: no features yet; run `loopml features` (or `loopml run`)"]
        )
    return FeatureSet(directory=str(out_dir), **read_json(out_dir / "features.json"))
