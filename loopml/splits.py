"""Train/validation/test splits: by time when a time column is declared, stratified (or random
for regression) otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from loopml.config import SchemaConfig, SplitConfig
from loopml.exceptions import DataValidationError


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    method: str

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def resolve_split_method(cfg: SplitConfig, schema: SchemaConfig) -> str:
    if cfg.method != "auto":
        return cfg.method
    if schema.time_column:
        return "time"
    return "stratified" if schema.task == "classification" else "random"


def _ordered(data: pd.DataFrame, n_val: int, n_test: int) -> tuple[pd.DataFrame, ...]:
    n = len(data)
    first_val, first_test = n - n_val - n_test, n - n_test
    return data.iloc[:first_val], data.iloc[first_val:first_test], data.iloc[first_test:]


def _random(
    data: pd.DataFrame, n_val: int, n_test: int, seed: int, stratify: str | None
) -> tuple[pd.DataFrame, ...]:
    strat = data[stratify] if stratify else None
    rest, test = train_test_split(data, test_size=n_test, random_state=seed, stratify=strat)
    strat_rest = rest[stratify] if stratify else None
    train, val = train_test_split(rest, test_size=n_val, random_state=seed + 1, stratify=strat_rest)
    return train, val, test


def _grouped(
    data: pd.DataFrame, n_val: int, n_test: int, seed: int, group: str
) -> tuple[pd.DataFrame, ...]:
    """Whole groups, in a seeded random order, fill test, then validation; the rest trains."""
    keys = data[group].astype(object).where(data[group].notna(), "__missing__")
    sizes = keys.value_counts(sort=False)
    order = sizes.index.to_numpy()[np.random.default_rng(seed).permutation(len(sizes))]
    cumulative = np.cumsum(sizes.loc[order].to_numpy())
    t = min(int(np.searchsorted(cumulative, n_test)) + 1, len(order))
    v = min(int(np.searchsorted(cumulative, cumulative[t - 1] + n_val)) + 1, len(order))
    in_test, in_val = keys.isin(set(order[:t])), keys.isin(set(order[t:v]))
    return data[~in_test & ~in_val], data[in_val], data[in_test]


def split_frame(frame: pd.DataFrame, schema: SchemaConfig, cfg: SplitConfig, seed: int) -> Splits:
    """The three splits of the model's columns (id, time, group, raw inputs, features, target)
    of ``frame``, in the configured way (:class:`loopml.config.SplitConfig`)."""
    method = resolve_split_method(cfg, schema)
    columns = [schema.id_column, schema.time_column, cfg.group_column, *schema.input_kinds]
    keep = [c for c in [*columns, *schema.feature_columns, schema.target] if c]
    data = frame[list(dict.fromkeys(c for c in keep if c in frame.columns))]
    n = len(data)
    n_test = max(1, round(n * cfg.test_size))
    n_val = max(1, round(n * cfg.val_size))
    if n - n_test - n_val < 2:
        raise DataValidationError("split", [f"{n} rows are too few to split into train/val/test"])
    if method == "time" and not schema.time_column:  # params.yaml refuses it; callers may not
        raise DataValidationError("split", ["features.split.method is 'time' but no time_column"])
    if method == "time":
        parts = _ordered(data.sort_values(schema.time_column, kind="stable"), n_val, n_test)
    elif method == "order":
        parts = _ordered(data, n_val, n_test)
    elif method == "group":
        assert cfg.group_column is not None
        parts = _grouped(data, n_val, n_test, seed, cfg.group_column)
        if min(len(p) for p in parts) == 0:
            raise DataValidationError(
                "split", [f"too few groups in '{cfg.group_column}' to fill train, val and test"]
            )
    else:
        stratify = schema.target if method == "stratified" else None
        parts = _random(data, n_val, n_test, seed, stratify)
    train, val, test = (p.reset_index(drop=True) for p in parts)
    return Splits(train=train, val=val, test=test, method=method)
