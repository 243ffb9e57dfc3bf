"""Conforming raw rows to the declared column kinds (shared by collect and the served model)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopml.config import SchemaConfig
from loopml.datagen import SCHEMA
from loopml.schema import conform_frame

CHURN_SCHEMA = SchemaConfig(
    columns=SCHEMA, target="churned", id_column="customer_id", time_column="event_time"
)


def test_conform_restores_declared_kinds_from_csv(
    tmp_path: Path, churn_frame: pd.DataFrame
) -> None:
    path = tmp_path / "b.csv"
    churn_frame.to_csv(path, index=False)
    raw = pd.read_csv(path)
    out = conform_frame(raw, CHURN_SCHEMA.columns)
    pd.testing.assert_frame_equal(out, churn_frame, check_dtype=True)


def test_conform_keeps_wrong_types_as_text_and_does_not_mutate(churn_frame: pd.DataFrame) -> None:
    raw = churn_frame.astype({"age": object})
    raw.loc[5, "age"] = "thirty"
    before = raw.copy()
    out = conform_frame(raw, CHURN_SCHEMA.columns)
    assert out["age"].dtype == object and out.loc[5, "age"] == "thirty"
    pd.testing.assert_frame_equal(raw, before)


def test_conform_drops_undeclared_and_strips(churn_frame: pd.DataFrame) -> None:
    raw = churn_frame.assign(extra=1, plan=" " + churn_frame["plan"] + ".")
    out = conform_frame(raw, CHURN_SCHEMA.columns, rstrip={"plan": "."})
    assert "extra" not in out.columns
    assert set(out["plan"]) <= {"basic", "standard", "premium", "enterprise"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 0, 1], [True, False, True]),
        (["yes", "No", "TRUE"], [True, False, True]),
        (["true", None, "false"], [True, None, False]),
    ],
)
def test_conform_booleans(values: list, expected: list) -> None:
    schema = SchemaConfig(columns={"flag": "boolean", "y": "numeric"}, target="y")
    out = conform_frame(pd.DataFrame({"flag": values, "y": 1.0}), schema.columns)
    assert out["flag"].tolist() == expected
