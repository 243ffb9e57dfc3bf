"""Drafting params.yaml from a sample: format and dialect, missing tokens, column kinds, roles,
task, target spellings, leak suspects and the split; the draft always loads as params.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.drafting import draft_params, infer, read_sample
from loopml.exceptions import ConfigError
from tests.conftest import SHARED, needs_shared


def _churn(n: int = 3000) -> pd.DataFrame:
    from loopml.datagen import generate_churn

    return generate_churn(n, seed=3)


def test_bundled_data_as_csv(tmp_path: Path) -> None:
    frame = _churn()
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    d = draft_params(str(path), tmp_path / "p" / "params.yaml", target="churned")
    table = d.params.data.table
    assert table.task == "classification" and table.target == "churned"
    assert table.id_column == "customer_id" and table.time_column == "event_time"
    assert table.columns["plan"] == "categorical" and table.columns["autopay"] == "boolean"
    assert table.columns["sessions_last_30d"] == "integer"
    assert table.columns["monthly_charges"] == "numeric"
    assert table.columns["signup_date"] == "datetime"
    assert d.params.features.split.method == "time"
    assert "next_month_spend" in table.feature_columns  # a regression target: not a leak here
    assert "# check: " not in d.text or "signup_date" not in d.text


def test_header_less_csv_with_question_marks_and_spaces(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = ["<=50K", ">50K", "<=50K.", ">50K."]  # two spellings of each class
    rows = [
        f"{int(a)}, {w}, {'?' if i % 9 == 0 else round(h, 1)}, {labels[i % 4]}"
        for i, (a, w, h) in enumerate(
            zip(rng.integers(18, 80, 500), rng.choice(["Private", "State-gov"], 500),
                rng.normal(40, 5, 500), strict=True)
        )
    ]  # fmt: skip
    path = tmp_path / "people.data.csv"
    path.write_text("\n".join(rows) + "\n")
    d = draft_params(str(path), tmp_path / "params.yaml", target="last")
    csv = d.params.data.source.file.csv
    assert csv.header is False and csv.skipinitialspace is True and csv.na_values == ["?"]
    assert csv.names == ["column_1", "column_2", "column_3", "column_4"]
    table = d.params.data.table
    assert table.target == "column_4" and table.columns["column_3"] == "numeric"
    assert d.params.data.clean.rstrip == {"column_4": "."}  # '>50K.' and '>50K' are one class
    assert d.draft.classes == ["<=50K", ">50K"]


def test_parquet_file_and_folder_of_csvs(tmp_path: Path) -> None:
    frame = _churn(2000)
    frame.to_parquet(tmp_path / "batch.parquet")
    d = draft_params(str(tmp_path / "batch.parquet"), tmp_path / "a" / "params.yaml")
    assert d.params.data.source.file.format == "parquet"
    assert d.params.data.table.target == "next_month_spend"  # the last column, by default
    assert d.params.data.table.task == "regression"
    folder = tmp_path / "batches"
    folder.mkdir()
    frame.iloc[:1000].to_csv(folder / "jan.csv", index=False)
    frame.iloc[1000:].to_csv(folder / "feb.csv", index=False)
    (folder / "README.txt").write_text("not data")
    d = draft_params(str(folder), tmp_path / "b" / "params.yaml", target="churned")
    assert d.params.data.source.file.pattern == "*.csv"
    assert d.sample.frame.shape[0] == 2000


def test_leaks_and_ids_are_dropped_with_reasons() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    frame = pd.DataFrame(
        {
            "order_id": [f"o-{i:06d}" for i in range(n)],
            "x": rng.normal(size=n),
            "casual": rng.integers(0, 50, n),
            "registered": rng.integers(0, 500, n),
        }
    )
    frame["total"] = frame["casual"] + frame["registered"]
    frame["total_copy"] = frame["total"] * 2.0 + rng.normal(0, 0.01, n)
    d = infer(frame.astype(str), target="total")
    assert d.task == "regression" and d.id_column == "order_id"
    assert {"casual", "registered", "total_copy"} <= set(d.drop)
    assert "leak suspect" in d.drop["casual"] and "x" not in d.drop


def test_post_outcome_timestamps_are_flagged() -> None:
    start = pd.date_range("2024-01-01", periods=500, freq="h")
    frame = pd.DataFrame(
        {
            "pickup_time": start.astype(str),
            "dropoff_time": (start + pd.Timedelta(minutes=20)).astype(str),
            "fare": np.linspace(5, 50, 500).astype(str),
        }
    )
    d = infer(frame, target="fare")
    assert d.time_column == "pickup_time" and d.split == "time"
    assert any("dropoff_time is later than pickup_time" in w for w in d.warnings)


def test_unknown_target_names_the_columns() -> None:
    with pytest.raises(ConfigError, match="--target: 'income' is not a column"):
        infer(pd.DataFrame({"a": ["1"], "b": ["x"]}), target="income")


@needs_shared("adult")
def test_adult_folder() -> None:
    sample = read_sample(str(SHARED / "adult"))
    d = infer(sample.frame, target="last")
    assert sample.source["file"]["csv"]["header"] is False
    assert d.task == "classification" and d.classes == ["<=50K", ">50K"]
    assert d.rstrip == {"column_15": "."}


@needs_shared("bike_sharing", "hour.csv")
def test_bike_sharing_hourly() -> None:
    d = infer(read_sample(str(SHARED / "bike_sharing" / "hour.csv")).frame, target="cnt")
    assert d.task == "regression" and d.id_column == "instant" and d.time_column == "dteday"
    assert set(d.drop) == {"casual", "registered"}


def test_missing_tokens_multiclass_ordered_rows_and_comments(tmp_path: Path) -> None:
    """`NA` and blank cells are missing values; a 3-class text target is multiclass; rows
    declared in time order (`--ordered`) are split in file order; leak suspects are comments."""
    rng = np.random.default_rng(2)
    n = 600
    grade = rng.choice(["low", "mid", "high"], n)
    frame = pd.DataFrame(
        {
            "height": [
                "NA" if i % 7 == 0 else f"{v:.1f}" for i, v in enumerate(rng.normal(170, 9, n))
            ],
            "width": ["" if i % 5 == 0 else f"{v:.2f}" for i, v in enumerate(rng.normal(3, 1, n))],
            "grade_code": np.where(grade == "low", 0, np.where(grade == "mid", 1, 2)),
            "grade": grade,
        }
    )
    path = tmp_path / "parts.csv"
    frame.to_csv(path, index=False)
    d = draft_params(str(path), tmp_path / "p" / "params.yaml", target="grade", ordered=True)
    assert d.params.data.source.file.csv.na_values == ["NA"]
    table = d.params.data.table
    assert table.columns["height"] == "numeric" and table.columns["width"] == "numeric"
    assert d.draft.classes == ["high", "low", "mid"] and table.task == "classification"
    assert d.params.features.split.method == "order"
    assert "leak suspect" in d.draft.drop["grade_code"]
    assert "      - grade_code   # leak suspect: it determines the target" in d.text
    loaded = pd.read_csv(path, na_values=["NA"])
    assert loaded["width"].isna().sum() == n // 5 + (n % 5 > 0)  # blanks: pandas' own NaN
