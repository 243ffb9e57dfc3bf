"""Custom scikit-learn transformers used inside the feature ``ColumnTransformer``.

They live in the installed package (not in ``tasks/``) so that a pickled transformer, bundled
with a model, loads wherever loopml is installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin


class QuantileClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip each column to quantiles learned on the training data (NaN passes through)."""

    def __init__(self, lower: float = 0.001, upper: float = 0.999) -> None:
        self.lower = lower
        self.upper = upper

    def fit(self, X: Any, y: Any = None) -> QuantileClipper:
        arr = np.asarray(X, dtype=float)
        self.n_features_in_ = arr.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        with np.errstate(all="ignore"):
            self.low_ = (
                np.nanquantile(arr, self.lower, axis=0) if len(arr) else np.zeros(arr.shape[1])
            )
            self.high_ = (
                np.nanquantile(arr, self.upper, axis=0) if len(arr) else np.zeros(arr.shape[1])
            )
        self.low_ = np.where(np.isnan(self.low_), -np.inf, self.low_)
        self.high_ = np.where(np.isnan(self.high_), np.inf, self.high_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        arr = np.asarray(X, dtype=float)
        return np.clip(arr, self.low_, self.high_)


class ToFloat(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Booleans (also nullable and 'true'/'false' strings) to floats, missing as NaN."""

    def fit(self, X: Any, y: Any = None) -> ToFloat:
        self.n_features_in_ = np.asarray(X).shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.empty(frame.shape, dtype=float)
        for i, (_, col) in enumerate(frame.items()):
            if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
                out[:, i] = pd.to_numeric(col, errors="coerce").astype(float).to_numpy()
            else:
                low = col.astype("string").str.strip().str.lower()
                out[:, i] = low.map({"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}).astype(float)
        return out


class DateParts(TransformerMixin, BaseEstimator):
    """Datetime columns to numeric parts (hour, weekday, month, day, year)."""

    def __init__(self, parts: tuple[str, ...] = ("hour", "weekday", "month")) -> None:
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DateParts:
        frame = pd.DataFrame(X)
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        cols = []
        for _, col in frame.items():
            # Already datetimes (the usual case): to_datetime would still scan every value.
            ts = (
                col
                if pd.api.types.is_datetime64_any_dtype(col)
                else pd.to_datetime(col, errors="coerce")
            )
            for part in self.parts:
                values = ts.dt.dayofweek if part == "weekday" else getattr(ts.dt, part)
                cols.append(values.astype(float).to_numpy())
        return np.column_stack(cols) if cols else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray([f"{c}_{p}" for c in names for p in self.parts], dtype=object)
