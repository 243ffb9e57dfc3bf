"""The serving fast path: checked JSON records give exactly the reference features, for every
feature configuration; what it cannot reproduce falls back to the reference path."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer

from loopml.config import FeaturesConfig
from loopml.exceptions import InputError
from loopml.features import fit_transformer, fit_transformers
from loopml.pyfunc import LoopmlModel
from loopml.serving.fastpath import _date_parts, compile_features
from loopml.serving.inputs import COLUMNAR_ROWS, Rows, _check_value, check_rows, rows_frame
from tests.loopml.serving.sample import churn_sample


@pytest.fixture(scope="module")
def churn() -> dict[str, Any]:
    return churn_sample(train_rows=4000, train_seed=11, rows=600, seed=12)


def _model(churn: dict[str, Any], cfg: FeaturesConfig, tree: bool = False) -> LoopmlModel:
    if tree:  # the ordinal pipeline of tree ensembles (numbers passed through)
        transformer = fit_transformers(churn["train"], churn["schema"], cfg).ordinal
    else:
        transformer = fit_transformer(train=churn["train"], schema=churn["schema"], cfg=cfg)
    return LoopmlModel(transformer, None, "classification", churn["kinds"], [False, True])


def _awkward(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Missing values, unseen categories, string booleans, zoned and date-only timestamps."""
    out = []
    for i, rec in enumerate(records[:60]):
        rec = dict(rec)
        if i % 3 == 0:
            rec["country"], rec["plan"] = "Atlantis", None
        if i % 4 == 0:
            rec["age"], rec["nps_score"], rec["autopay"] = None, None, None
        if i % 5 == 0:
            rec["annual_contract"], rec["paperless_billing"] = "TRUE", " no "
        if i % 6 == 0:
            rec["event_time"] = "2024-05-06T07:08:09+02:00"
            rec["signup_date"] = "2023-02-01"
        if i % 7 == 0:
            rec["device"] = "  " + str(rec["device"]) + " "  # training strips whitespace too
        out.append(rec)
    return out


@pytest.mark.parametrize(
    ("cfg", "tree"),
    [
        (FeaturesConfig(), False),
        (FeaturesConfig(scale="robust", numeric_impute="mean"), False),
        (FeaturesConfig(scale="none", categorical_min_frequency=0.0, datetime_parts=[]), False),
        (
            FeaturesConfig(
                categorical_min_frequency=0.05,  # many infrequent categories
                categorical_max_categories=3,
                datetime_parts=["hour", "weekday", "month", "day", "year"],
            ),
            False,
        ),
        (FeaturesConfig(), True),
    ],
    ids=["default", "robust-mean", "no-scale-no-dates", "infrequent-all-parts", "tree-ordinal"],
)
def test_compiled_features_equal_the_fitted_transformer(
    churn: dict[str, Any], cfg: FeaturesConfig, tree: bool
) -> None:
    """Every transformer loopml fits has a fast path (the ordinal one of tree ensembles holds
    its passed-through numbers as a fitted ColumnTransformer's FunctionTransformer)."""
    model = _model(churn, cfg, tree)
    compiled = compile_features(model)
    assert compiled is not None
    for records in (churn["records"], _awkward(churn["records"])):
        checked = check_rows(records, churn["kinds"], frozenset())
        fast = compiled(checked)
        reference = model.features(rows_frame(checked, churn["kinds"]))
        assert fast.dtype == np.float32 and fast.shape == reference.shape
        np.testing.assert_allclose(fast, reference, rtol=1e-6, atol=1e-6)


def test_compiled_features_match_raw_frames_as_trained(churn: dict[str, Any]) -> None:
    """Records through the fast path equal the raw frame through the training-time path."""
    model = _model(churn, FeaturesConfig())
    compiled = compile_features(model)
    assert compiled is not None
    raw = pd.DataFrame.from_records(churn["records"])
    np.testing.assert_allclose(
        compiled(check_rows(churn["records"], churn["kinds"], frozenset())),
        model.features(raw),
        rtol=1e-6,
        atol=1e-6,
    )


def test_unknown_step_falls_back_to_the_reference_path(
    churn: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    model = _model(churn, FeaturesConfig())
    name, _, cols = model.transformer.transformers_[0]
    custom = ColumnTransformer([(name, FunctionTransformer(np.log1p), cols)]).fit(churn["train"])
    odd = LoopmlModel(custom, None, "classification", churn["kinds"], [False, True])
    with caplog.at_level("WARNING"):
        assert compile_features(odd) is None
    assert "no fast path for FunctionTransformer" in caplog.text


def test_a_fast_path_that_disagrees_is_refused(
    churn: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe comparison is a real gate: a reference that differs disables the fast path."""
    model = _model(churn, FeaturesConfig())
    real = model.features
    monkeypatch.setattr(model, "features", lambda frame: real(frame) + 1e-3)
    assert compile_features(model) is None


KINDS = {
    "age": "numeric",
    "n": "integer",
    "flag": "boolean",
    "at": "datetime",
    "plan": "categorical",
}
GOOD = {"age": 41.5, "n": 3, "flag": True, "at": "2024-01-02T03:04:05", "plan": "pro"}


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"age": "forty"}, "column 'age': expected a number, got 'forty'"),
        ({"n": True}, "column 'n': expected a number, got True"),
        ({"flag": "maybe"}, "column 'flag': expected true or false, got 'maybe'"),
        ({"flag": 2}, "column 'flag': expected true or false, got 2"),
        ({"at": "yesterday-ish"}, "column 'at': expected a date-time, got 'yesterday-ish'"),
        ({"at": 1700000000}, "column 'at': expected a date-time"),
        ({"plan": ["a"]}, "column 'plan': expected a string"),
    ],
)
def test_bad_values_name_the_column(change: dict[str, Any], phrase: str) -> None:
    with pytest.raises(InputError) as err:
        check_rows([{**GOOD, **change}], KINDS, frozenset(KINDS))
    assert phrase in str(err.value)


@pytest.mark.parametrize(
    ("records", "phrase"),
    [
        ([], "no records to predict"),
        ("text", "expected a JSON object, a list of objects"),
        ([GOOD, 5], "record 1 is not a JSON object"),
        ([GOOD, {"age": 1}], "missing column(s) in record 1: ['at', 'flag', 'n', 'plan']"),
        ([GOOD] * 10_001, "10,001 records in one request > serve.max_records"),
    ],
)
def test_bad_requests_say_what_is_wrong(records: Any, phrase: str) -> None:
    with pytest.raises(InputError) as err:
        check_rows(records, KINDS, frozenset(KINDS))
    assert phrase in str(err.value)


def test_values_are_typed_as_training_reads_them() -> None:
    [rec] = check_rows(
        [{"age": None, "n": 2, "flag": "Yes", "at": "2024-01-02T03:04:05Z", "plan": 7, "x": 1}],
        KINDS,
        frozenset(),
    ).records()
    assert rec == {
        "age": None,
        "n": 2,
        "flag": True,
        "at": pd.Timestamp("2024-01-02T03:04:05").to_pydatetime(),
        "plan": "7",
    }  # unknown column "x" dropped, zone dropped keeping the wall time, as in loopml.schema


def test_transformed_features_are_separable_by_input_column(churn: dict[str, Any]) -> None:
    """What permutation importance relies on: shuffling a raw column equals permuting the rows
    of the features it owns, and each feature has exactly one owner."""
    model = _model(churn, FeaturesConfig())
    rows = churn["train"].head(800)[list(churn["kinds"])]
    x = model.features(rows)
    owners = np.zeros(x.shape[1], dtype=int)
    rng = np.random.default_rng(0)
    for col in churn["kinds"]:
        order = rng.permutation(len(rows))
        shuffled = rows.copy()
        shuffled[col] = shuffled[col].to_numpy()[order]
        xs = model.features(shuffled)
        block = np.flatnonzero(~np.isclose(xs, x, equal_nan=True).all(axis=0))
        owners[block] += 1
        expected = x.copy()
        expected[:, block] = x[order][:, block]
        np.testing.assert_allclose(xs, expected, rtol=0, atol=0)
    assert (owners <= 1).all() and owners.sum() > 0.9 * len(owners)  # the rest are constant here


def test_a_wrong_value_anywhere_in_a_column_is_named() -> None:
    """The columnar check tests a column as a whole; a bad value in its 58th row is still found
    and named, as are values no float can hold."""
    records = [dict(GOOD) for _ in range(100)]
    records[57]["age"] = "forty"
    with pytest.raises(InputError, match="column 'age': expected a number, got 'forty'"):
        check_rows(records, KINDS, frozenset(KINDS))
    huge = [GOOD] * COLUMNAR_ROWS + [{**GOOD, "n": 10**400}]
    with pytest.raises(InputError, match="column 'n': expected a finite number"):
        check_rows(huge, KINDS, frozenset(KINDS))
    long = [GOOD] * COLUMNAR_ROWS + [{**GOOD, "plan": "p" * 2000}]
    with pytest.raises(InputError, match=r"column 'plan': 2,000 characters > serve\.max_string"):
        check_rows(long, KINDS, frozenset(KINDS), max_string=1000)


VALUE = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["pro", " basic ", "Yes", "no", "2024-01-02T03:04:05", "x" * 30])
    | st.lists(st.integers(), max_size=2)
)

NUMBER = st.none() | st.integers(-(10**6), 10**6) | st.floats(-1e9, 1e9, allow_nan=False)
VALID = {
    "numeric": NUMBER,
    "integer": NUMBER,
    "boolean": st.none() | st.booleans(),
    "datetime": st.none()
    | st.sampled_from(["2024-01-02T03:04:05", "2024-05-06T07:08:09.250+02:00", "2023-02-01"]),
    "categorical": st.none() | st.sampled_from(["pro", " basic ", "x" * 20]),
}
ROWS = {"min_size": 1, "max_size": 2 * COLUMNAR_ROWS}  # both ways of checking
RECORDS = st.lists(st.fixed_dictionaries({c: VALID[k] for c, k in KINDS.items()}), **ROWS) | (
    st.lists(st.fixed_dictionaries({c: VALID[k] | VALUE for c, k in KINDS.items()}), **ROWS)
)


@settings(max_examples=400, deadline=None)
@given(RECORDS)
def test_the_columnar_check_equals_the_value_by_value_check(records: list[dict]) -> None:
    """Whatever the values, the columnar check gives what checking each value gives: the same
    typed rows, or an error naming a column whose values include a wrong one."""
    expected: list[dict[str, Any]] | None = []
    bad: set[str] = set()
    for rec in records:
        try:
            expected.append({c: _check_value(c, k, rec[c], 20) for c, k in KINDS.items()})
        except InputError:
            expected = None
            break
    if expected is None:
        for c, k in KINDS.items():
            for rec in records:
                try:
                    _check_value(c, k, rec[c], 20)
                except InputError:
                    bad.add(c)
        with pytest.raises(InputError) as err:
            check_rows(records, KINDS, frozenset(), max_string=20)
        assert any(f"column '{c}'" in str(err.value) for c in bad)
    else:
        got = check_rows(records, KINDS, frozenset(), max_string=20).records()
        assert got == expected
        assert [list(map(type, r.values())) for r in got] == [
            list(map(type, r.values())) for r in expected
        ]


def test_rows_checked_for_one_model_are_aligned_to_the_next() -> None:
    """A request checked just before the alias moved is predicted by the new model: columns it
    lacks are missing, columns it no longer uses are dropped, and batches of both kinds join."""
    old = check_rows([GOOD, GOOD], {"age": "numeric", "plan": "categorical"}, frozenset())
    new = check_rows([GOOD], KINDS, frozenset())
    names = list(KINDS)
    aligned = old.aligned(names)
    assert list(aligned.columns) == names
    assert aligned.columns["n"] == [None, None] and aligned.columns["plan"] == ["pro", "pro"]
    assert new.aligned(names) is new
    joined = Rows.concat([aligned, new.aligned(names)])
    assert joined.count == 3 and joined.columns["age"] == [41.5, 41.5, 41.5]
    assert old.aligned(["age"]).records() == [{"age": 41.5}, {"age": 41.5}]


PARTS = ("hour", "weekday", "month", "day", "year")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.none() | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        min_size=1,
        max_size=12,
    )
)
def test_date_parts_are_the_calendar_parts(stamps: list[datetime | None]) -> None:
    """The array arithmetic on ``datetime64`` gives each stamp's calendar parts, before 1970
    and far from it too; a missing stamp is NaN in every part."""
    got = _date_parts(Rows({"t": stamps}, len(stamps)), ["t"], PARTS)
    expected = [
        [np.nan] * 5 if d is None else [d.hour, d.weekday(), d.month, d.day, d.year] for d in stamps
    ]
    np.testing.assert_array_equal(got, np.array(expected, dtype=float))


def test_records_lacking_optional_columns_are_checked_by_column() -> None:
    """Records without some optional columns, and one that is a dict subclass, are checked the
    columnar way too: the absent values are missing, the others typed."""

    class Record(dict):
        pass

    records = [dict(GOOD) for _ in range(COLUMNAR_ROWS)] + [Record(GOOD)]
    del records[2]["plan"], records[5]["age"]
    rows = check_rows(records, KINDS, frozenset({"n", "flag", "at"}))
    assert rows.count == len(records)
    assert rows.columns["plan"][2] is None and rows.columns["plan"][3] == "pro"
    assert rows.columns["age"][5] is None and rows.columns["age"][8] == 41.5
    with pytest.raises(InputError, match=r"missing column\(s\) in record 2: \['plan'\]"):
        check_rows(records, KINDS, frozenset(KINDS))
