"""Uniqueness over batches: a column's values, or whole rows, that must not repeat anywhere in a
snapshot read in batches.

Every checked row's values are hashed (64 bits, pandas' ``hash_pandas_object``) batch by batch;
the rows whose hash occurs more than once are read again and GX checks only those. A repeat is
always found (equal values hash equal: each batch has the whole snapshot's dtypes, and -0.0 is
hashed as 0.0); a hash collision of two different rows costs a re-read, never a failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

COLUMN = "expect_column_values_to_be_unique"


def columns_of(exp: dict[str, Any]) -> list[str]:
    """The columns whose values together must not repeat."""
    kwargs = exp.get("kwargs") or {}
    return [kwargs["column"]] if exp["type"] == COLUMN else list(kwargs.get("column_list") or [])


def _checked(part: pd.DataFrame, exp: dict[str, Any]) -> pd.Series:
    """The rows GX checks: a column's non-missing values; whole rows by ``ignore_row_if``."""
    nulls = part.isna()
    if exp["type"] == COLUMN:
        return ~nulls.iloc[:, 0]
    ignore = (exp.get("kwargs") or {}).get("ignore_row_if", "all_values_are_missing")
    if ignore == "all_values_are_missing":
        return ~nulls.all(axis=1)
    if ignore == "any_value_is_missing":
        return ~nulls.any(axis=1)
    return pd.Series(True, index=part.index)


@dataclass
class RowHashes:
    """The hashes of one uniqueness expectation's rows, batch by batch."""

    exp: dict[str, Any]
    positions: list[np.ndarray] = field(default_factory=list)
    hashes: list[np.ndarray] = field(default_factory=list)
    missing: int = 0
    rows: int = 0
    absent: bool = False
    """A column is not in the snapshot: GX reports that on the first batch."""

    def add(self, frame: pd.DataFrame) -> None:
        columns = columns_of(self.exp)
        self.rows += len(frame)
        if not columns or any(c not in frame.columns for c in columns):
            self.absent = True
            return
        part = frame[columns]
        checked = _checked(part, self.exp)
        self.missing += int((~checked).sum())
        part = part[checked]
        floats = part.select_dtypes("floating").columns
        if len(floats):
            part = part.assign(**{str(c): part[c] + 0.0 for c in floats})  # -0.0 as 0.0
        self.positions.append(part.index.to_numpy())
        self.hashes.append(pd.util.hash_pandas_object(part, index=False).to_numpy())

    def repeated(self) -> np.ndarray:
        """The positions of the rows whose hash occurs more than once, in file order."""
        if not self.hashes:
            return np.empty(0, dtype=np.int64)
        hashes = np.concatenate(self.hashes)
        _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
        return np.sort(np.concatenate(self.positions)[counts[inverse] > 1])


def gather(
    frames: Iterable[pd.DataFrame], positions: np.ndarray, columns: list[str]
) -> pd.DataFrame:
    """The rows at ``positions`` (sorted) of the batches, only ``columns``."""
    parts = []
    for frame in frames:
        lo, hi = np.searchsorted(positions, [frame.index[0], frame.index[-1] + 1])
        if hi > lo:
            parts.append(frame.loc[positions[lo:hi], columns])
    return pd.concat(parts) if parts else pd.DataFrame(columns=columns)
