"""A snapshot validated in batches finds what it finds validated whole: real GX on real Parquet
files, once with every row at once and once ``batch_rows`` rows at a time."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.config import SchemaConfig, SeverityConfig, ValidateConfig
from loopml.datagen import SCHEMA, generate_churn
from loopml.quality import (
    Suite,
    ValidationReport,
    check_declared_types,
    load_suite,
    profile_suite,
    validate_profiled,
)
from loopml.snapshot_batches import SnapshotBatches

SCHEMA_CFG = SchemaConfig(
    columns=SCHEMA,
    target="churned",
    id_column="customer_id",
    time_column="event_time",
    drop_columns=["next_month_spend"],
)
CFG = ValidateConfig(min_rows=1000, severity=SeverityConfig(ranges="blocking"))
BATCH_ROWS = 700  # 3,000 rows: five batches, none of them above min_rows


@pytest.fixture(scope="module")
def suite() -> Suite:
    return profile_suite(generate_churn(4000, seed=1), SCHEMA_CFG, CFG)


@pytest.fixture
def batch() -> pd.DataFrame:
    return generate_churn(3000, seed=2, id_start=10_000)


def _opened(frame: pd.DataFrame, path: Path, batch_rows: int) -> SnapshotBatches:
    frame.to_parquet(path, index=False, row_group_size=500)
    return SnapshotBatches(path=path, rows=len(frame), batch_rows=batch_rows)


def _report(batches: SnapshotBatches, suite: Suite, cfg: ValidateConfig = CFG) -> ValidationReport:
    declared = check_declared_types(batches, SCHEMA_CFG, cfg, "v-test")
    if not declared.success:
        return declared
    return validate_profiled(batches, suite, declared, cfg, None)


def _both(
    frame: pd.DataFrame, suite: Suite, tmp_path: Path, cfg: ValidateConfig = CFG
) -> tuple[ValidationReport, ValidationReport]:
    whole = _report(_opened(frame, tmp_path / "whole.parquet", len(frame)), suite, cfg)
    parts = _opened(frame, tmp_path / "parts.parquet", BATCH_ROWS)
    assert parts.batched
    return whole, _report(parts, suite, cfg)


def _found(report: ValidationReport) -> list[tuple[str, str | None, str, str]]:
    """Each finding without its examples (which rows GX shows first is its own business)."""
    return sorted(
        (f.check, f.column, f.severity, f.observed.split(", e.g.")[0])
        for f in (*report.blocking, *report.warnings)
    )


def test_a_clean_snapshot_passes_in_batches_as_it_does_whole(
    batch: pd.DataFrame, suite: Suite, tmp_path: Path
) -> None:
    whole, parts = _both(batch, suite, tmp_path)
    assert whole.success and parts.success
    assert parts.evaluated == whole.evaluated > 100
    assert _found(parts) == _found(whole)
    assert parts.gx_result["meta"]["batches"] == 5


def test_faults_spread_over_batches_are_found_as_in_the_whole_snapshot(
    batch: pd.DataFrame, suite: Suite, tmp_path: Path
) -> None:
    """Counts add up over batches (`mostly` on the totals), repeats are found across batches,
    the row count and the share of missing values are the whole snapshot's."""
    bad = batch.copy()
    # 0.5 % of all rows out of range, all in the first batch (2 % of it): within `mostly`.
    bad.loc[100:114, "monthly_charges"] = 1e6
    # 1.5 % out of range, spread over every batch: beyond `mostly`.
    bad.loc[::66, "tenure_months"] = -5e4
    # 3 % more missing ages than profiled, all in the first batch (13 % of it): within slack.
    bad.loc[200:289, "age"] = np.nan
    # Row 5 repeated in the last batch (its id too); a device only the last batch has.
    bad.loc[2950] = bad.loc[5]
    bad.loc[2999, "device"] = "fridge"
    whole, parts = _both(bad, suite, tmp_path)
    found = _found(whole)
    columns = {(check, column) for check, column, _, _ in found}
    assert ("ranges", "tenure_months") in columns and ("ranges", "monthly_charges") not in columns
    assert {("unique_id", "customer_id"), ("duplicate_rows", None)} <= columns
    assert ("domains", "device") in columns and ("nulls", "age") not in columns
    assert not whole.success
    assert _found(parts) == found


def test_a_declared_type_failure_counts_the_misfits_of_every_batch(
    batch: pd.DataFrame, suite: Suite, tmp_path: Path
) -> None:
    bad = batch.copy()
    bad["age"] = bad["age"].map(lambda v: None if pd.isna(v) else str(v))
    bad.loc[[3, 1500, 2990], "age"] = ["n/a", "unknown", "n/a"]
    whole, parts = _both(bad, suite, tmp_path)
    assert not parts.success
    messages = [f.message() for f in parts.blocking]
    assert messages == [f.message() for f in whole.blocking]
    present = f"{bad['age'].notna().sum():,}"
    assert f"found text (3 of {present} values do not fit, e.g. 'n/a', 'unknown')" in messages[0]


def test_an_expectation_that_does_not_merge_runs_on_a_documented_sample(
    batch: pd.DataFrame, suite: Suite, tmp_path: Path
) -> None:
    mean = {
        "type": "expect_column_mean_to_be_between",
        "kwargs": {"column": "age", "min_value": 500, "max_value": 600},
        "meta": {"check": "ranges"},
    }
    edited = Suite(name=suite.name, expectations=[*suite.expectations, mean], meta=suite.meta)
    parts = _report(_opened(batch, tmp_path / "s.parquet", BATCH_ROWS), edited)
    [finding] = [f for f in parts.blocking if f.expectation == mean["type"]]
    assert finding.observed.endswith("(on a uniform sample of 700 of 3,000 rows)")


def test_a_suite_profiled_from_batches_knows_every_category(
    batch: pd.DataFrame, tmp_path: Path
) -> None:
    """Ranges and shares come from a sample; the value sets from every row, so the snapshot
    the suite was profiled from passes it."""
    rare = batch.copy()
    rare.loc[2999, "payment_method"] = "barter"  # one row: a 700-row sample misses it mostly
    batches = _opened(rare, tmp_path / "p.parquet", BATCH_ROWS)
    profiled = load_suite(tmp_path / "suite.json", batches, SCHEMA_CFG, CFG)
    [domain] = [
        e["kwargs"]["value_set"]
        for e in profiled.expectations
        if e["meta"]["check"] == "domains" and e["kwargs"]["column"] == "payment_method"
    ]
    assert "barter" in domain
    assert profiled.meta["snapshot_rows"] == 3000 and "700 of 3,000 rows" in profiled.meta["sample"]
    report = _report(batches, profiled)
    assert report.success and not report.warnings


class _Watched(SnapshotBatches):
    """Batches that record, as each is read, how many earlier ones are still alive."""

    def __iter__(self):  # type: ignore[override]
        self.alive_at_read: list[int] = []
        earlier: list[weakref.ref[pd.DataFrame]] = []
        for frame in super().__iter__():
            self.alive_at_read.append(sum(ref() is not None for ref in earlier))
            earlier.append(weakref.ref(frame))
            yield frame
            del frame


def test_a_batch_is_released_before_the_next_is_read(
    batch: pd.DataFrame, suite: Suite, tmp_path: Path
) -> None:
    """GX's context of a run holds its batch in reference cycles: they are collected after
    each batch, so memory holds one batch, not all of them."""
    path = tmp_path / "w.parquet"
    batch.to_parquet(path, index=False, row_group_size=500)
    watched = _Watched(path=path, rows=len(batch), batch_rows=BATCH_ROWS)
    declared = check_declared_types(watched, SCHEMA_CFG, CFG, "v-test")
    assert declared.success and watched.alive_at_read == [0] * 5
    assert validate_profiled(watched, suite, declared, CFG, None).success
    assert watched.alive_at_read == [0] * 5
