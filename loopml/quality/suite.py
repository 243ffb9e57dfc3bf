"""The expectation suite: built once from the declared schema plus a profile of the first
accepted snapshot, saved as a reviewable JSON file (``paths.suite``), enforced on every snapshot.

Every expectation carries a check category (``meta.check``: columns, types, nulls, ranges,
domains, unique_id, row_count, target, class_balance) whose severity comes from
``validate.severity``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.config import SchemaConfig, ValidateConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suite:
    """An expectation suite in GX's JSON form (what ``paths.suite`` holds)."""

    name: str
    expectations: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "expectations": self.expectations, "meta": self.meta}


NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Float32",
    "Float64",
]
TYPE_LISTS: dict[str, list[str]] = {
    "numeric": NUMERIC_TYPES,
    "integer": NUMERIC_TYPES,
    "boolean": [
        "bool",
        "object",
    ],  # object: booleans with nulls; the domain check below pins values
    "datetime": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"],
    "categorical": ["object", "str", "string", "category"],
}
MAX_BALANCE_CLASSES = 20


def _py(v: Any) -> Any:
    """numpy scalars to plain Python (the suite is JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _expectation(kind: str, check: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "kwargs": {k: _py(v) for k, v in kwargs.items()},
        "meta": {"check": check},
    }


def _null_check(
    col: str, present: pd.Series, schema: SchemaConfig, cfg: ValidateConfig
) -> dict[str, Any]:
    if col in (schema.target, schema.id_column):
        check = "target" if col == schema.target else "unique_id"
        return _expectation("expect_column_values_to_not_be_null", check, column=col)
    null_frac = float(present.isna().mean()) if len(present) else 0.0
    floor = max(0.0, 1.0 - null_frac - cfg.null_fraction_slack)
    return _expectation(
        "expect_column_proportion_of_non_null_values_to_be_between",
        "nulls",
        column=col,
        min_value=round(floor, 4),
        max_value=1.0,
    )


def _value_checks(
    col: str, kind: str, values: pd.Series, schema: SchemaConfig, cfg: ValidateConfig
) -> list[dict[str, Any]]:
    """Profiled range (numeric) or domain (boolean, categorical) of one column."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if kind in ("numeric", "integer") and numeric and len(values) and col != schema.id_column:
        lo, hi = values.quantile([0.001, 0.999]).astype(float)
        pad = cfg.range_margin * max(hi - lo, abs(hi) * 0.01, 1e-9)
        check = "target" if col == schema.target else "ranges"
        return [
            _expectation(
                "expect_column_values_to_be_between",
                check,
                column=col,
                min_value=lo - pad,
                max_value=hi + pad,
                mostly=0.99,
            )
        ]
    if kind == "categorical" and col != schema.target:
        domain = sorted(map(_py, pd.unique(values)), key=str)
        if 0 < len(domain) <= cfg.domain_max_values:
            return [
                _expectation(
                    "expect_column_values_to_be_in_set", "domains", column=col, value_set=domain
                )
            ]
    return []


def _target_checks(
    frame: pd.DataFrame, schema: SchemaConfig, cfg: ValidateConfig
) -> list[dict[str, Any]]:
    """The classes seen, and each class's share within ``class_share_slack``."""
    if schema.task != "classification" or schema.target not in frame.columns:
        return []
    shares = frame[schema.target].value_counts(normalize=True, dropna=True)
    classes = sorted(map(_py, shares.index), key=str)
    exps = [
        _expectation(
            "expect_column_distinct_values_to_be_in_set",
            "target",
            column=schema.target,
            value_set=classes,
        )
    ]
    if len(shares) > MAX_BALANCE_CLASSES:
        return exps
    for cls, share in shares.items():
        lo = max(0.0, float(share) - cfg.class_share_slack)
        hi = min(1.0, float(share) + cfg.class_share_slack)
        # Share of `cls` >= lo, and share of `cls` <= hi, both stated as GX `mostly`.
        for kind, mostly in (
            ("expect_column_values_to_be_in_set", lo),
            ("expect_column_values_to_not_be_in_set", 1.0 - hi),
        ):
            exps.append(
                _expectation(
                    kind,
                    "class_balance",
                    column=schema.target,
                    value_set=[_py(cls)],
                    mostly=round(mostly, 4),
                )
            )
    return exps


DECLARED = frozenset({"columns", "types", "finite", "bounds", "duplicate_rows"})
"""Check categories that follow from the declared schema alone (checked before profiling)."""

FLOAT_MAX = float(np.finfo(np.float64).max)


def _declared(col: str, kind: str) -> list[dict[str, Any]]:
    exps = [
        _expectation("expect_column_to_exist", "columns", column=col),
        _expectation(
            "expect_column_values_to_be_in_type_list",
            "types",
            column=col,
            type_list=TYPE_LISTS[kind],
        ),
    ]
    if kind == "boolean":
        exps.append(
            _expectation(
                "expect_column_values_to_be_in_set", "types", column=col, value_set=[False, True]
            )
        )
    return exps


def _impossible(col: str, kind: str, schema: SchemaConfig) -> list[dict[str, Any]]:
    """Values no numeric column may hold (inf, -inf), and the column's declared hard bounds."""
    if kind not in ("numeric", "integer"):
        return []
    exps = [
        _expectation(
            "expect_column_values_to_be_between",
            "finite",
            column=col,
            min_value=-FLOAT_MAX,
            max_value=FLOAT_MAX,
        )
    ]
    bounds = schema.bounds.get(col)
    if bounds is not None:
        exps.append(
            _expectation(
                "expect_column_values_to_be_between",
                "bounds",
                column=col,
                min_value=bounds.min,
                max_value=bounds.max,
            )
        )
    return exps


def declared_suite(schema: SchemaConfig, cfg: ValidateConfig) -> Suite:
    """The expectations the declared schema alone implies: every column present, every value of
    its declared kind. The schema, not a stored suite, is their source."""
    exps = [e for col, kind in schema.kinds.items() for e in _declared(col, kind)]
    return Suite(name=f"{cfg.suite_name}-declared", expectations=exps)


def impossible_suite(schema: SchemaConfig, cfg: ValidateConfig) -> Suite:
    """What no batch of the declared schema may hold, checked once the columns and kinds are
    right: infinite numbers, values outside declared hard bounds, repeated rows."""
    kinds = schema.kinds
    exps = [e for col, kind in kinds.items() for e in _impossible(col, kind, schema)]
    exps.append(
        _expectation(
            "expect_compound_columns_to_be_unique",
            "duplicate_rows",
            column_list=list(kinds),
            ignore_row_if="never",
        )
    )
    return Suite(name=f"{cfg.suite_name}-impossible", expectations=exps)


def without_declared(suite: Suite) -> Suite:
    """The stored suite's profiled expectations (the declared ones are checked from the schema)."""
    kept = [e for e in suite.expectations if (e.get("meta") or {}).get("check") not in DECLARED]
    return Suite(name=suite.name, expectations=kept, meta=suite.meta)


def profile_suite(
    frame: pd.DataFrame,
    schema: SchemaConfig,
    cfg: ValidateConfig,
    domains: Mapping[str, list[Any]] | None = None,
) -> Suite:
    """Build the suite (as GX's JSON form) from the declared schema and a profile of ``frame``;
    ``domains``: the values of categorical columns, where known from more rows than ``frame``."""
    exps: list[dict[str, Any]] = []
    for col, kind in schema.kinds.items():
        present = frame[col] if col in frame.columns else pd.Series(dtype=float)
        values = present.dropna()
        if domains and col in domains:
            values = pd.Series(domains[col], dtype=object)
        exps.extend(_declared(col, kind))
        exps.append(_null_check(col, present, schema, cfg))
        exps.extend(_value_checks(col, kind, values, schema, cfg))
    if schema.id_column:
        exps.append(
            _expectation("expect_column_values_to_be_unique", "unique_id", column=schema.id_column)
        )
    exps.append(
        _expectation(
            "expect_table_row_count_to_be_between",
            "row_count",
            min_value=cfg.min_rows,
            max_value=cfg.max_rows,
        )
    )
    exps.extend(_target_checks(frame, schema, cfg))
    return Suite(
        name=cfg.suite_name,
        expectations=exps,
        meta={
            "generated_by": "loopml profile_suite",
            "profiled_rows": len(frame),
            "note": "Review and edit freely. Severities come from params.yaml validate.severity "
            "by meta.check category.",
        },
    )
