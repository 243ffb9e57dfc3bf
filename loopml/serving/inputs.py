"""Request records checked against a model's input columns: each JSON value as its column kind,
or an :class:`InputError` naming the column and the problem (the record too, for a record that
is not an object or lacks required columns). Shared by the server
and the fast path's self-check.

From :data:`COLUMNAR_ROWS` rows up, the check is columnar: a column whose values are all of
the expected JSON type (numbers, booleans, strings) is tested once, as a whole, and kept as it
is; only a column that needs converting (strings to booleans or date-times, numbers to category
strings) or holds a wrong value goes value by value, which also finds the value to name in the
error."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from loopml.exceptions import InputError

MAX_RECORDS = 10_000
MAX_STRING = 1024
COLUMNAR_ROWS = 8
"""Requests of fewer rows are checked value by value: the columnar check's cost per column
(a few microseconds) is more than checking one row's values."""
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _as_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            stamp = pd.to_datetime(value, format="mixed")
        except (ValueError, TypeError, OverflowError):
            return None
        if pd.isna(stamp):
            return None
        parsed = stamp.to_pydatetime()
    # Training drops the zone and keeps the wall time (loopml.schema); so does serving.
    return parsed.replace(tzinfo=None) if parsed.tzinfo is not None else parsed


def _as_bool(col: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    low = value.strip().lower() if isinstance(value, str) else None
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InputError(f"column '{col}': expected true or false, got {value!r}")


def _check_value(col: str, kind: str, value: Any, max_string: int = MAX_STRING) -> Any:
    """One JSON value as its column kind (None for missing), or :class:`InputError`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and len(value) > max_string:
        raise InputError(f"column '{col}': {len(value):,} characters > serve.max_string_length")
    if kind in ("numeric", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"column '{col}': expected a number, got {value!r}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer beyond any float
            finite = False
        if not finite:
            raise InputError(f"column '{col}': expected a finite number, got {value!r}")
        return value
    if kind == "boolean":
        return _as_bool(col, value)
    if kind == "datetime":
        parsed = _as_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise InputError(f"column '{col}': expected a date-time, got {value!r}")
        return parsed
    if isinstance(value, dict | list):
        raise InputError(f"column '{col}': expected a string, got {value!r}")
    return value.strip() if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class Rows:
    """Checked request rows, column by column: each list holds one input column's typed values
    (None where missing), in the model's column order."""

    columns: dict[str, list[Any]]
    count: int

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts (what the prediction log stores)."""
        names = list(self.columns)
        columns = zip(*self.columns.values(), strict=True)
        return [dict(zip(names, values, strict=True)) for values in columns]

    def aligned(self, names: list[str]) -> Rows:
        """The rows with exactly the columns ``names``, in that order: a column they lack is
        missing (None) in every row. Requests checked just before the served model changed
        are predicted by the new one, whose input columns may differ."""
        if list(self.columns) == names:
            return self
        empty = [None] * self.count
        return Rows({c: self.columns.get(c, empty) for c in names}, self.count)

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        """Several requests' rows as one batch (the column order of the first)."""
        if len(parts) == 1:
            return parts[0]
        columns = {c: [v for p in parts for v in p.columns[c]] for c in parts[0].columns}
        return Rows(columns, sum(p.count for p in parts))


_NUMBERS = {int, float, type(None)}
_BOOLS = {bool, type(None)}
_STRINGS = {str, type(None)}


def _numbers(columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The numeric columns of JSON numbers only, as they are (NaN as None), tested together in
    one array; the columns left out are checked value by value."""
    if set(map(type, chain.from_iterable(columns.values()))) <= _NUMBERS:
        names = list(columns)  # the usual case: one test of every value's type
    else:
        names = [c for c, values in columns.items() if set(map(type, values)) <= _NUMBERS]
    if not names:
        return {}
    try:
        array = np.array([columns[c] for c in names], dtype=float)
    except OverflowError:  # an integer beyond a float: find it value by value
        return {}
    infinite = set(np.flatnonzero(np.isinf(array).any(axis=1)).tolist())
    nan = np.isnan(array)
    gaps = set(np.flatnonzero(nan.any(axis=1)).tolist())
    out: dict[str, list[Any]] = {}
    for j, col in enumerate(names):
        if j in infinite:
            continue
        values = columns[col]
        if j in gaps:  # NaN (from Python callers; JSON has none) is missing, as below
            values = [None if gap else v for v, gap in zip(values, nan[j].tolist(), strict=True)]
        out[col] = values
    return out


def _short_strings(values: list[Any], max_string: int) -> bool:
    """Every value a JSON string (or null) of at most ``max_string`` characters."""
    if not set(map(type, values)) <= _STRINGS:
        return False
    return max(map(len, filter(None, values)), default=0) <= max_string  # None, '' left out


def _strings(values: list[Any], max_string: int) -> list[Any] | None:
    """A categorical column of JSON strings, stripped; or None: check value by value."""
    if not _short_strings(values, max_string):
        return None
    if None not in values:
        return list(map(str.strip, values))
    return [None if v is None else v.strip() for v in values]


def _datetimes(values: list[Any], max_string: int) -> list[Any] | None:
    """A date-time column of ISO 8601 strings, parsed (zone dropped, wall time kept); or None:
    check value by value (other formats, wrong values)."""
    if not _short_strings(values, max_string):
        return None
    try:
        parsed = [None if v is None else datetime.fromisoformat(v) for v in values]
    except ValueError:
        return None
    return [d if d is None or d.tzinfo is None else d.replace(tzinfo=None) for d in parsed]


def _column(col: str, kind: str, values: list[Any], max_string: int) -> list[Any]:
    """One column not checked with the numbers: a test of the value types for the whole column,
    then the values as they are; the value-by-value check only for what needs converting or is
    wrong."""
    fast: list[Any] | None = None
    if kind == "boolean":
        fast = values if set(map(type, values)) <= _BOOLS else None
    elif kind == "categorical":
        fast = _strings(values, max_string)
    elif kind == "datetime":
        fast = _datetimes(values, max_string)
    if fast is not None:
        return fast
    return [_check_value(col, kind, v, max_string) for v in values]


def _columns(
    records: list[dict[str, Any]], names: list[str], complete: bool
) -> dict[str, list[Any]]:
    """The records' values column by column (None where a record lacks the column); with
    ``complete``, every record has every column."""
    if complete and len(names) > 1:
        values = map(itemgetter(*names), records)  # every column of a record in one call
        return dict(zip(names, map(list, zip(*values, strict=True)), strict=True))
    return {col: [rec.get(col) for rec in records] for col in names}


def _check_records(records: list[Any], required: frozenset[str] | set[str]) -> None:
    """Each record a JSON object with every required column, or :class:`InputError` naming the
    first that is not."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"record {i} is not a JSON object")
        if not rec.keys() >= required:
            missing = sorted(c for c in required if c not in rec)
            where = f" in record {i}" if len(records) > 1 else ""
            raise InputError(f"missing column(s){where}: {missing}")


def check_rows(
    records: Any,
    kinds: dict[str, str],
    required: frozenset[str] | set[str],
    max_records: int = MAX_RECORDS,
    max_string: int = MAX_STRING,
) -> Rows:
    """Request records as :class:`Rows` of the model's input columns with typed values.

    Raises :class:`InputError` naming the column and problem (for missing columns, the record
    and all its missing columns at once; a request with several problems reports one). Columns
    the model does not use are dropped; optional columns may be absent.
    """
    if not isinstance(records, list):
        raise InputError("expected a JSON object, a list of objects or {'records': [...]}")
    if not records:
        raise InputError("no records to predict")
    if len(records) > max_records:
        raise InputError(f"{len(records):,} records in one request > serve.max_records")
    # The usual request: plain objects with every column, tested without a loop in Python.
    wanted = kinds.keys()
    complete = set(map(type, records)) == {dict} and all(
        map(operator.ge, map(dict.keys, records), repeat(wanted))
    )
    if not complete:
        _check_records(records, required)
    if len(records) < COLUMNAR_ROWS:
        columns = {
            col: [_check_value(col, kind, rec.get(col), max_string) for rec in records]
            for col, kind in kinds.items()
        }
        return Rows(columns, len(records))
    raw = _columns(records, list(kinds), complete)
    numbers = _numbers({c: v for c, v in raw.items() if kinds[c] in ("numeric", "integer")})
    columns = {
        col: numbers[col] if col in numbers else _column(col, kind, raw[col], max_string)
        for col, kind in kinds.items()
    }
    return Rows(columns, len(records))


def rows_frame(rows: Rows, kinds: dict[str, str]) -> pd.DataFrame:
    """Checked rows as a frame for the reference path (``LoopmlModel.features``)."""
    frame = pd.DataFrame({c: rows.columns[c] for c in kinds})
    for col, kind in kinds.items():
        if kind == "datetime":
            frame[col] = pd.to_datetime(frame[col])
    return frame
