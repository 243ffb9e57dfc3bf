"""features: split the accepted snapshot, fit the transformer on train only, write the features."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml import feature_reuse, features, modeldata
from loopml import splits as splitting
from loopml.config import FeaturesConfig, SchemaConfig, SplitConfig
from loopml.features import FeatureSet, Transformers
from loopml.modeldata import ModelData
from loopml.splits import Splits
from tasks._policies import IO


@task(name="split", cache_policy=NO_CACHE)
def split(frame: pd.DataFrame, table: SchemaConfig, cfg: SplitConfig, seed: int) -> Splits:
    """Train, validation and test rows (:func:`loopml.splits.split_frame`)."""
    return splitting.split_frame(frame, table, cfg, seed)


@task(name="fit-transformers", cache_policy=NO_CACHE)
def fit_transformers(
    train: pd.DataFrame, table: SchemaConfig, cfg: FeaturesConfig, seed: int
) -> Transformers:
    """Both feature pipelines fitted on train (:func:`loopml.features.fit_transformers`)."""
    return features.fit_transformers(train, table, cfg, seed)


@task(name="write-features", cache_policy=NO_CACHE, **IO)
def write_features(
    splits: Splits,
    transformers: Transformers,
    out_dir: Path,
    data_version: str,
    table: SchemaConfig,
    key: str,
) -> FeatureSet:
    """Splits, transformer and matrices on disk (:func:`loopml.features.write_features`)."""
    return features.write_features(splits, transformers, out_dir, data_version, table, key)


@task(name="features-key", cache_policy=NO_CACHE)
def features_key(snapshot_version: str, table: SchemaConfig, cfg: FeaturesConfig, seed: int) -> str:
    """What a feature set depends on, as one hash (:func:`loopml.feature_reuse.features_key`)."""
    return feature_reuse.features_key(snapshot_version, table, cfg, seed)


@task(name="previous-features", cache_policy=NO_CACHE)
def previous_features(features_dir: Path, key: str) -> FeatureSet | None:
    """The feature set built under the same key, if any
    (:func:`loopml.feature_reuse.previous_features`)."""
    return feature_reuse.previous_features(features_dir, key)


@task(name="current-features", cache_policy=NO_CACHE)
def current_features(features_dir: Path) -> FeatureSet:
    """The feature set on disk (:func:`loopml.features.load_feature_set`)."""
    return features.load_feature_set(features_dir)


@task(name="load-model-data", cache_policy=NO_CACHE, **IO)
def load_model_data(feature_set: FeatureSet, table: SchemaConfig, cfg: FeaturesConfig) -> ModelData:
    """The model-ready matrices of a feature set (:func:`loopml.modeldata.load_model_data`)."""
    return modeldata.load_model_data(feature_set, table, cfg)
