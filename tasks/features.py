"""features: split the accepted snapshot and fit the feature transformer on train only.

Output (``paths.features``): the raw ``train``/``val``/``test`` rows as Parquet, the fitted
``ColumnTransformer`` (``transformer.joblib``, bundled with every model so serving takes raw
rows) and ``features.json`` (input and output feature names, split sizes, data version).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from prefect import task
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, RobustScaler, StandardScaler

from loopml.config import FeaturesConfig, SchemaConfig, SplitConfig
from loopml.exceptions import DataValidationError
from loopml.io import write_atomic, write_json, write_parquet
from loopml.transformers import DateParts, QuantileClipper, ToFloat

log = logging.getLogger(__name__)

MISSING = "__missing__"


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    method: str

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


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

    def path(self, name: str) -> Path:
        return Path(self.directory) / name


# --------------------------------------------------------------------------- split
def resolve_split_method(cfg: SplitConfig, schema: SchemaConfig) -> str:
    if cfg.method != "auto":
        return cfg.method
    if schema.time_column:
        return "time"
    return "stratified" if schema.task == "classification" else "random"


@task(name="split")
def split(frame: pd.DataFrame, schema: SchemaConfig, cfg: SplitConfig, seed: int) -> Splits:
    """Train/validation/test split: by time when a time column is declared, else stratified."""
    method = resolve_split_method(cfg, schema)
    keep = [
        c
        for c in [schema.id_column, schema.time_column, *schema.feature_columns, schema.target]
        if c
    ]
    keep = list(dict.fromkeys(c for c in keep if c in frame.columns))
    data = frame[keep]
    n = len(data)
    n_test = max(1, round(n * cfg.test_size))
    n_val = max(1, round(n * cfg.val_size))
    if n - n_test - n_val < 2:
        raise DataValidationError("split", [f"{n} rows are too few to split into train/val/test"])
    if method == "time":
        if not schema.time_column:
            raise DataValidationError(
                "split", ["features.split.method is 'time' but no time_column"]
            )
        ordered = data.sort_values(schema.time_column, kind="stable")
        train = ordered.iloc[: n - n_val - n_test]
        val = ordered.iloc[n - n_val - n_test : n - n_test]
        test = ordered.iloc[n - n_test :]
    else:
        strat = data[schema.target] if method == "stratified" else None
        rest, test = train_test_split(data, test_size=n_test, random_state=seed, stratify=strat)
        strat_rest = rest[schema.target] if method == "stratified" else None
        train, val = train_test_split(
            rest, test_size=n_val, random_state=seed + 1, stratify=strat_rest
        )
    return Splits(
        train=train.reset_index(drop=True),
        val=val.reset_index(drop=True),
        test=test.reset_index(drop=True),
        method=method,
    )


# --------------------------------------------------------------------------- transformer
def build_transformer(schema: SchemaConfig, cfg: FeaturesConfig) -> ColumnTransformer:
    """The unfitted feature pipeline for the declared schema."""
    numeric = schema.features_of("numeric") + schema.features_of("integer")
    categorical = schema.features_of("categorical")
    boolean = schema.features_of("boolean")
    datetime = schema.features_of("datetime")
    scaler = {"standard": StandardScaler(), "robust": RobustScaler(), "none": "passthrough"}[
        cfg.scale
    ]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            (
                "num",
                Pipeline(
                    [
                        ("clip", QuantileClipper(*cfg.clip_quantiles)),
                        ("impute", SimpleImputer(strategy=cfg.numeric_impute, add_indicator=True)),
                        ("scale", scaler),
                    ]
                ),
                numeric,
            )
        )
    if categorical:
        parts.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                min_frequency=cfg.categorical_min_frequency or None,
                                max_categories=cfg.categorical_max_categories,
                                sparse_output=False,
                                dtype=np.float32,
                            ),
                        ),
                    ]
                ),
                categorical,
            )
        )
    if boolean:
        parts.append(
            (
                "bool",
                Pipeline(
                    [
                        ("float", ToFloat()),
                        ("impute", SimpleImputer(strategy="most_frequent", add_indicator=True)),
                    ]
                ),
                boolean,
            )
        )
    if datetime and cfg.datetime_parts:
        parts.append(
            (
                "date",
                Pipeline(
                    [
                        ("parts", DateParts(tuple(cfg.datetime_parts))),
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("scale", StandardScaler()),
                    ]
                ),
                datetime,
            )
        )
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


@task(name="fit-transformer")
def fit_transformer(
    train: pd.DataFrame, schema: SchemaConfig, cfg: FeaturesConfig
) -> ColumnTransformer:
    """Fit the feature pipeline on the training split only."""
    transformer = build_transformer(schema, cfg)
    transformer.fit(_categorical_as_object(train, schema.features_of("categorical")))
    return transformer


def transform(
    transformer: ColumnTransformer, frame: pd.DataFrame, schema: SchemaConfig
) -> np.ndarray:
    """Apply a fitted transformer to raw rows; returns a float32 matrix."""
    out = transformer.transform(_categorical_as_object(frame, schema.features_of("categorical")))
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- writing
@task(name="write-features", retries=1, retry_delay_seconds=2)
def write_features(
    splits: Splits,
    transformer: ColumnTransformer,
    out_dir: Path,
    data_version: str,
    schema: SchemaConfig,
) -> FeatureSet:
    """Write the splits, the fitted transformer and ``features.json`` (each file atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("train", "val", "test"):
        write_parquet(out_dir / f"{name}.parquet", getattr(splits, name))
    write_atomic(out_dir / "transformer.joblib", lambda p: joblib.dump(transformer, p))
    features = FeatureSet(
        directory=str(out_dir),
        data_version=data_version,
        split_method=splits.method,
        sizes=splits.sizes(),
        input_columns=list(schema.feature_columns),
        output_features=[str(f) for f in transformer.get_feature_names_out()],
        target=schema.target,
        task=schema.task,
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


def load_feature_set(out_dir: Path) -> FeatureSet:
    from loopml.io import read_json

    meta = read_json(out_dir / "features.json")
    return FeatureSet(directory=str(out_dir), **meta)
