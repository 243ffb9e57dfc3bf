"""Request records checked against a model's input columns: each JSON value as its column kind,
or an :class:`InputError` naming the record, the column and the problem. Shared by the server
and the fast path's self-check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from loopml.exceptions import InputError

MAX_RECORDS = 10_000
MAX_STRING = 1024
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
        if isinstance(value, float) and not math.isfinite(value):
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


def check_records(
    records: Any,
    kinds: dict[str, str],
    required: frozenset[str] | set[str],
    max_records: int = MAX_RECORDS,
    max_string: int = MAX_STRING,
) -> list[dict[str, Any]]:
    """Request records as dicts of the model's input columns with typed values.

    Raises :class:`InputError` naming the record, column and problem (all missing columns at
    once). Columns the model does not use are dropped; optional columns may be absent.
    """
    if not isinstance(records, list):
        raise InputError("expected a JSON object, a list of objects or {'records': [...]}")
    if not records:
        raise InputError("no records to predict")
    if len(records) > max_records:
        raise InputError(f"{len(records):,} records in one request > serve.max_records")
    out = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"record {i} is not a JSON object")
        missing = sorted(c for c in required if c not in rec)
        if missing:
            where = f" in record {i}" if len(records) > 1 else ""
            raise InputError(f"missing column(s){where}: {missing}")
        out.append({c: _check_value(c, k, rec.get(c), max_string) for c, k in kinds.items()})
    return out


def records_frame(records: Sequence[dict[str, Any]], kinds: dict[str, str]) -> pd.DataFrame:
    """Checked records as a frame for the reference path (``LoopmlModel.features``)."""
    frame = pd.DataFrame.from_records(list(records), columns=list(kinds))
    for col, kind in kinds.items():
        if kind == "datetime":
            frame[col] = pd.to_datetime(frame[col])
    return frame
