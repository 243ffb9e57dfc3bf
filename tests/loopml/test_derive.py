"""The derived-column language: what it computes, and everything it refuses (no eval)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.derive import derive_columns, parse
from loopml.exceptions import ConfigError

FRAME = pd.DataFrame(
    {
        "pickup": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 23:30", None]),
        "dropoff": pd.to_datetime(["2024-01-01 10:45", "2024-01-02 00:10", "2024-01-01 12:00"]),
        "fare": [10.0, 0.0, 25.0],
        "city": [" Paris", "lyon ", None],
        "n-stops": [1, 3, 0],
    }
)
KNOWN = set(FRAME.columns)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("minutes(dropoff - pickup)", [45.0, 40.0, np.nan]),
        ("hours(dropoff - pickup) * 60", [45.0, 40.0, np.nan]),
        ("log1p(fare)", list(np.log1p([10.0, 0.0, 25.0]))),
        ("clip(fare, 5, 20)", [10.0, 5.0, 20.0]),
        ("hour(pickup)", [10.0, 23.0, np.nan]),
        ("weekday(dropoff)", [0.0, 1.0, 0.0]),
        ("col('n-stops') + 1", [2.0, 4.0, 1.0]),
        ("where(fare > 5, fare, 0)", [10.0, 0.0, 25.0]),
        ("-fare + 2 ** 2", [-6.0, 4.0, -21.0]),
    ],
)
def test_numeric_expressions(expr: str, expected: list[float]) -> None:
    parsed = parse(expr, "derived.x", KNOWN)
    out = derive_columns(FRAME, {"x": parsed}, {"x": "numeric"})
    np.testing.assert_allclose(out["x"].to_numpy(dtype=float), expected, equal_nan=True)
    assert "x" not in FRAME.columns  # the input is not modified


def test_text_and_boolean_expressions() -> None:
    exprs = {
        "city_clean": parse("lower(strip(city))", "a", KNOWN),
        "expensive": parse("fare >= 20", "b", KNOWN),
        "label": parse("concat(lower(strip(city)), '-', upper(strip(city)))", "c", KNOWN),
    }
    kinds = {name: e.kind for name, e in exprs.items()}
    assert kinds == {"city_clean": "categorical", "expensive": "boolean", "label": "categorical"}
    out = derive_columns(FRAME, exprs, kinds)
    assert out["city_clean"].tolist() == ["paris", "lyon", None]
    assert out["expensive"].tolist() == [False, False, True]
    assert out["label"].tolist()[:2] == ["paris-PARIS", "lyon-LYON"]


@pytest.mark.parametrize(
    ("expr", "phrase"),
    [
        ("fare +", "not a valid expression"),
        ("eval('1')", "unknown function 'eval'"),
        ("__import__('os').system('x')", "unknown function"),
        ("fare.real", "'Attribute' is not allowed"),
        ("[fare]", "'List' is not allowed"),
        ("lambda: 1", "'Lambda' is not allowed"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("clip(fare)", "clip() takes 3-3 argument(s), got 1"),
        ("distance * 2", "unknown column 'distance'"),
        ("fare < 1 < 2", "only one comparison"),
        ("round(fare, n=1)", "keyword arguments are not allowed"),
    ],
)
def test_refused_with_the_key_and_the_reason(expr: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(expr, "data.schema.derived.x", KNOWN)
    [problem] = info.value.problems
    assert problem.startswith("data.schema.derived.x: ") and phrase in problem, problem
