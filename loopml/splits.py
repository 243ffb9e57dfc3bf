"""Train/validation/test splits: by time when a time column is declared, stratified (or random
for regression) otherwise."""

from __future__ import annotations

from dataclasses import dataclass

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


def split_frame(frame: pd.DataFrame, schema: SchemaConfig, cfg: SplitConfig, seed: int) -> Splits:
    """The three splits of the model's columns (id, time, features, target) of ``frame``."""
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
