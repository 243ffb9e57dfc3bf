"""Splits: by time (ordered, leak-free), stratified or random (seeded)."""

from __future__ import annotations

import pandas as pd
import pytest

from loopml.config import SchemaConfig, SplitConfig
from loopml.datagen import SCHEMA, generate_churn
from loopml.exceptions import DataValidationError
from loopml.splits import split_frame

SCHEMA_CFG = SchemaConfig(
    columns=SCHEMA,
    target="churned",
    id_column="customer_id",
    time_column="event_time",
    drop_columns=["next_month_spend"],
)
NO_TIME = SchemaConfig(
    columns=SCHEMA, target="churned", id_column="customer_id", drop_columns=["next_month_spend"]
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_churn(5000, seed=9).sample(frac=1.0, random_state=0)  # shuffled on purpose


def test_time_split_is_ordered_and_leak_free(frame: pd.DataFrame) -> None:
    s = split_frame(frame=frame, schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    assert s.method == "time"
    assert s.train["event_time"].max() <= s.val["event_time"].min()
    assert s.val["event_time"].max() <= s.test["event_time"].min()
    assert s.sizes() == {"train": 3500, "val": 750, "test": 750}
    assert "next_month_spend" not in s.train.columns  # dropped (leaks the label)


def test_stratified_split_keeps_class_shares(frame: pd.DataFrame) -> None:
    s = split_frame(frame=frame, schema=NO_TIME, cfg=SplitConfig(), seed=1)
    assert s.method == "stratified"
    shares = [part["churned"].mean() for part in (s.train, s.val, s.test)]
    assert max(shares) - min(shares) < 0.01
    ids = pd.concat([s.train, s.val, s.test])["customer_id"]
    assert ids.is_unique and len(ids) == len(frame)


@pytest.mark.parametrize("method", ["random", "stratified"])
def test_split_is_seeded(frame: pd.DataFrame, method: str) -> None:
    a = split_frame(frame=frame, schema=NO_TIME, cfg=SplitConfig(method=method), seed=3)
    b = split_frame(frame=frame, schema=NO_TIME, cfg=SplitConfig(method=method), seed=3)
    c = split_frame(frame=frame, schema=NO_TIME, cfg=SplitConfig(method=method), seed=4)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test["customer_id"].equals(c.test["customer_id"])


def test_random_split_is_a_disjoint_cover_of_the_rows(frame: pd.DataFrame) -> None:
    s = split_frame(frame=frame, schema=NO_TIME, cfg=SplitConfig(method="random"), seed=5)
    parts = [set(p["customer_id"]) for p in (s.train, s.val, s.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(frame["customer_id"])
    assert s.sizes() == {"train": 3500, "val": 750, "test": 750}
    # not file order: the test rows are spread over the whole file
    positions = frame.reset_index(drop=True).index[frame["customer_id"].isin(parts[2])]
    assert positions.min() < len(frame) // 10 and positions.max() > len(frame) * 9 // 10


def test_too_few_rows_and_time_without_column(frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="too few"):
        split_frame(frame=frame.iloc[:3], schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    with pytest.raises(DataValidationError, match="no time_column"):
        split_frame(frame=frame, schema=NO_TIME, cfg=SplitConfig(method="time"), seed=1)


def test_order_split_keeps_file_order(frame: pd.DataFrame) -> None:
    s = split_frame(frame=frame, schema=NO_TIME, cfg=SplitConfig(method="order"), seed=1)
    ids = frame["customer_id"].tolist()  # the file order (shuffled on purpose above)
    assert s.method == "order"
    assert s.train["customer_id"].tolist() == ids[:3500]
    assert s.val["customer_id"].tolist() == ids[3500:4250]
    assert s.test["customer_id"].tolist() == ids[4250:]


def test_group_split_puts_no_group_in_two_splits(frame: pd.DataFrame) -> None:
    grouped = frame.assign(household=frame["customer_id"] % 700)
    cfg = SplitConfig(method="group", group_column="household")
    s = split_frame(frame=grouped, schema=NO_TIME, cfg=cfg, seed=2)
    groups = [set(part["household"]) for part in (s.train, s.val, s.test)]
    assert (
        not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    )
    assert sum(map(len, groups)) == 700
    assert abs(len(s.test) - 750) < 30 and abs(len(s.val) - 750) < 30  # whole groups: close
    again = split_frame(frame=grouped, schema=NO_TIME, cfg=cfg, seed=2)
    pd.testing.assert_frame_equal(s.test, again.test)  # seeded


def test_group_split_with_too_few_groups_fails_clearly(frame: pd.DataFrame) -> None:
    two = frame.assign(site=frame["customer_id"] % 2)
    cfg = SplitConfig(method="group", group_column="site")
    with pytest.raises(DataValidationError, match="too few groups in 'site'"):
        split_frame(frame=two, schema=NO_TIME, cfg=cfg, seed=1)
