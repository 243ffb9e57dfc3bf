"""The input of batch scoring, checked a chunk at a time: every problem of the whole batch is
collected (:class:`InputProblems`) before scoring stops, so that one message names every
missing column and every column with values that do not fit, with their counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loopml.registry import LoadedVersion
from loopml.schema import conform_frame


@dataclass
class ColumnProblem:
    """Values of one column that do not fit its kind, over the chunks seen so far."""

    expected: str
    """What the values should be: ``numbers``, ``date-times`` or ``true/false``."""
    count: int
    example: object
    """The first such value."""


@dataclass
class InputProblems:
    """Every input problem of a batch: the missing columns and the columns whose values do not
    fit their kind (counted over all chunks)."""

    missing: list[str] = field(default_factory=list)
    columns: dict[str, ColumnProblem] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.missing or self.columns)

    def add(self, column: str, expected: str, bad: pd.Series, values: pd.Series) -> None:
        count = int(bad.sum())
        if not count:
            return
        seen = self.columns.get(column)
        if seen is None:
            self.columns[column] = ColumnProblem(expected, count, values[bad].iloc[0])
        else:
            seen.count += count

    def message(self, source: str) -> str:
        """One message naming ``source`` and every problem."""
        parts = [f"missing column(s) the model needs: {self.missing}"] if self.missing else []
        parts += [
            f"column '{col}': {p.count} value(s) are not {p.expected}, e.g. {p.example!r}"
            for col, p in self.columns.items()
        ]
        return f"cannot score {source}: " + "; ".join(parts)


def _is_bool(value: object) -> bool:
    return value is None or isinstance(value, bool | np.bool_)


def check_chunk(
    frame: pd.DataFrame, scorer: LoadedVersion, problems: InputProblems
) -> pd.DataFrame | None:
    """The model's input columns of ``frame`` typed as in training; None when this chunk has a
    problem (added to ``problems``: a missing column, values that do not fit their kind)."""
    kinds = scorer.model.input_kinds
    missing = sorted(scorer.required - set(frame.columns))
    if missing and not problems.missing:
        problems.missing = missing
    present = {c: k for c, k in kinds.items() if c in frame.columns}
    rows = conform_frame(frame[list(present)], present)
    before = sum(p.count for p in problems.columns.values())
    for col, kind in present.items():
        values = rows[col]
        if kind in ("numeric", "integer") and not pd.api.types.is_numeric_dtype(values):
            bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
            problems.add(col, "numbers", bad, values)
        elif kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(values):
            bad = pd.to_datetime(values, errors="coerce", format="mixed").isna() & values.notna()
            problems.add(col, "date-times", bad, values)
        elif kind == "boolean" and not pd.api.types.is_bool_dtype(values):
            bad = ~values.map(_is_bool).astype(bool)
            problems.add(col, "true/false", bad, values)
    if missing or sum(p.count for p in problems.columns.values()) > before:
        return None
    for col in kinds:
        if col not in rows.columns:
            rows[col] = np.nan  # an optional column the batch does not have
    return rows[list(kinds)]
