"""validate: the GX suite from schema + profile, blocking vs warning, quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.config import SchemaConfig, SeverityConfig, ValidateConfig, VersioningConfig
from loopml.datagen import SCHEMA, generate_churn
from loopml.exceptions import ConfigError, DataValidationError
from loopml.quality import (
    Suite,
    enforce_report,
    load_suite,
    profile_suite,
    validate_frame,
)
from loopml.snapshot_batches import SnapshotBatches
from loopml.snapshots import write_snapshot

SCHEMA_CFG = SchemaConfig(
    columns=SCHEMA,
    target="churned",
    id_column="customer_id",
    time_column="event_time",
    drop_columns=["next_month_spend"],
)
CFG = ValidateConfig(min_rows=100)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_churn(4000, seed=1)


@pytest.fixture(scope="module")
def suite(reference: pd.DataFrame) -> Suite:
    return profile_suite(reference, SCHEMA_CFG, CFG)


@pytest.fixture(scope="module")
def batch() -> pd.DataFrame:
    return generate_churn(3000, seed=2, id_start=10_000)


def _validate(frame: pd.DataFrame, suite: Suite, cfg: ValidateConfig = CFG):
    return validate_frame(frame=frame, suite=suite, cfg=cfg, snapshot_version="v-test")


def test_suite_covers_every_check_and_is_json(suite: Suite) -> None:
    checks = {e["meta"]["check"] for e in suite.expectations}
    assert checks == {
        "columns",
        "types",
        "nulls",
        "ranges",
        "domains",
        "unique_id",
        "row_count",
        "target",
        "class_balance",
    }
    json.dumps(suite.to_json())  # reviewable file: plain JSON
    nps = next(
        e
        for e in suite.expectations
        if e["type"] == "expect_column_proportion_of_non_null_values_to_be_between"
        and e["kwargs"]["column"] == "nps_score"
    )
    assert 0.5 < nps["kwargs"]["min_value"] < 0.65  # ~35 % missing observed, minus the slack


def test_same_distribution_passes(batch: pd.DataFrame, suite: Suite) -> None:
    report = _validate(batch, suite)
    assert report.success, [f.message() for f in report.blocking]
    assert report.evaluated == len(suite.expectations)


def test_new_category_is_a_warning_not_a_block(batch: pd.DataFrame, suite: Suite) -> None:
    frame = batch.copy()
    frame.loc[frame.index[:50], "device"] = "smart_fridge"
    report = _validate(frame, suite)
    assert report.success
    [warning] = [w for w in report.warnings if w.column == "device"]
    assert warning.check == "domains" and "smart_fridge" in warning.observed


def test_forty_percent_nulls_blocks_with_observed_value(batch: pd.DataFrame, suite: Suite) -> None:
    frame = batch.copy()
    rng = np.random.default_rng(0)
    frame.loc[rng.random(len(frame)) < 0.4, "monthly_charges"] = np.nan
    report = _validate(frame, suite)
    assert not report.success
    [finding] = report.blocking
    assert finding.check == "nulls" and finding.column == "monthly_charges"
    assert float(finding.observed) == pytest.approx(
        1 - frame["monthly_charges"].isna().mean(), abs=1e-3
    )
    assert "monthly_charges" in finding.message() and "min_value=0.95" in finding.message()


def test_wrong_type_blocks(batch: pd.DataFrame, suite: Suite) -> None:
    frame = batch.astype({"age": str})
    report = _validate(frame, suite)
    types = [f for f in report.blocking if f.check == "types"]
    assert [f.column for f in types] == ["age"]


def test_every_failure_is_collected(batch: pd.DataFrame, suite: Suite) -> None:
    frame = batch.drop(columns=["plan"]).copy()
    frame.loc[frame.index[:10], "customer_id"] = frame["customer_id"].iloc[0]
    frame["churned"] = True
    report = _validate(frame, suite)
    checks = {f.check for f in report.blocking}
    assert {"columns", "unique_id", "class_balance"} <= checks
    assert any(f.column == "plan" for f in report.blocking)


def test_row_count_floor(batch: pd.DataFrame, suite: Suite) -> None:
    report = _validate(batch.iloc[:50], suite)
    [finding] = [f for f in report.blocking if f.check == "row_count"]
    assert finding.observed == "50" and "min_value=100" in finding.message()


@pytest.mark.parametrize(
    ("level", "blocked", "warned"), [("blocking", 1, 0), ("warning", 0, 1), ("off", 0, 0)]
)
def test_severity_comes_from_configuration(
    batch: pd.DataFrame, suite: Suite, level: str, blocked: int, warned: int
) -> None:
    frame = batch.copy()
    frame["age"] = np.nan
    cfg = ValidateConfig(min_rows=100, severity=SeverityConfig(nulls=level))
    report = _validate(frame, suite, cfg)
    assert len([f for f in report.blocking if f.column == "age"]) == blocked
    assert len([f for f in report.warnings if f.column == "age" and f.check == "nulls"]) == warned


def test_suite_file_is_created_once_and_then_reused(
    tmp_path: Path, reference: pd.DataFrame, batch: pd.DataFrame
) -> None:
    path = tmp_path / "gx" / "suite.json"
    first = load_suite(
        suite_path=path, batches=SnapshotBatches.of(reference), schema=SCHEMA_CFG, cfg=CFG
    )
    assert path.is_file()
    second = load_suite(
        suite_path=path, batches=SnapshotBatches.of(batch), schema=SCHEMA_CFG, cfg=CFG
    )
    assert second.to_json() == json.loads(json.dumps(first.to_json()))


def test_missing_suite_can_be_an_error(tmp_path: Path, reference: pd.DataFrame) -> None:
    cfg = ValidateConfig(on_missing_suite="error")
    with pytest.raises(ConfigError, match="on_missing_suite"):
        load_suite(
            suite_path=tmp_path / "s.json",
            batches=SnapshotBatches.of(reference),
            schema=SCHEMA_CFG,
            cfg=cfg,
        )
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_suite(
            suite_path=tmp_path / "s.json",
            batches=SnapshotBatches.of(reference),
            schema=SCHEMA_CFG,
            cfg=CFG,
        )


def test_enforce_quarantines_with_dvc_and_lists_everything(
    dvc_repo: Path, batch: pd.DataFrame, suite: Suite
) -> None:
    bad = batch.copy()
    bad["monthly_charges"] = np.nan
    bad["age"] = np.nan
    snap = write_snapshot(
        frame=bad,
        snapshots_dir=dvc_repo / "data" / "snapshots",
        current_pointer=dvc_repo / "data" / "current.json",
        source="test",
        versioning=VersioningConfig(),
    )
    report = validate_frame(frame=bad, suite=suite, cfg=CFG, snapshot_version=snap.version)
    with pytest.raises(DataValidationError) as info:
        enforce_report(
            report=report,
            snapshot_path=Path(snap.path),
            validation_dir=dvc_repo / "data" / "validation",
            quarantine_dir=dvc_repo / "data" / "quarantine",
        )
    err = info.value
    assert len(err.failures) == 2 and "monthly_charges" in str(err) and "age" in str(err)
    quarantined = dvc_repo / "data" / "quarantine" / f"{snap.version}.parquet"
    assert quarantined.is_file() and quarantined.with_name(quarantined.name + ".dvc").is_file()
    assert not Path(snap.path).exists()
    summary = json.loads((dvc_repo / "data" / "validation" / "summary.json").read_text())
    assert summary["success"] is False and len(summary["blocking"]) == 2


def test_data_docs_are_written(tmp_path: Path, batch: pd.DataFrame, suite: Suite) -> None:
    report = validate_frame(
        frame=batch, suite=suite, cfg=CFG, snapshot_version="v1", docs_dir=tmp_path / "docs"
    )
    assert report.success
    assert (tmp_path / "docs" / "index.html").is_file()
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))


def test_a_wrongly_declared_type_is_named_with_examples_before_profiling(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    """A coded categorical column declared integer: the declared-type check names the column,
    what it holds and two examples, and no suite is profiled from the batch."""
    from loopml.quality import check_declared_types

    frame = reference.assign(plan_code=reference["plan"].map(lambda p: f"A{len(p)}"))
    schema = SchemaConfig(
        columns={**SCHEMA, "plan_code": "integer"}, target="churned", id_column="customer_id"
    )
    report = check_declared_types(SnapshotBatches.of(frame), schema, CFG, "v-bad")
    assert not report.success
    [finding] = report.blocking
    message = finding.message()
    assert message.startswith("[types] column 'plan_code': declared integer, found text")
    assert "e.g. 'A" in message and message.count("'A") == 2
    good = check_declared_types(SnapshotBatches.of(reference), SCHEMA_CFG, CFG, "v-good")
    assert good.success and good.evaluated >= 2 * len(SCHEMA)


def test_a_frame_read_from_parquet_is_validated_in_place_and_left_unchanged(
    tmp_path: Path, batch: pd.DataFrame, suite: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot read from Parquet is consolidated already: GX gets it as it is (a copy of the
    whole batch was the peak of a validation) and it comes back unchanged. A frame that is not
    consolidated is still copied (consolidated) first."""
    from loopml.quality import gx_run

    given: list[pd.DataFrame] = []
    run_gx = gx_run.run_gx

    def spy(frame: pd.DataFrame, *args: object, **kwargs: object) -> object:
        given.append(frame)
        return run_gx(frame, *args, **kwargs)

    monkeypatch.setattr(gx_run, "run_gx", spy)
    batch.to_parquet(tmp_path / "snapshot.parquet", index=False)
    snapshot = pd.read_parquet(tmp_path / "snapshot.parquet")
    before = snapshot.copy()
    assert _validate(snapshot, suite).success
    assert given and all(frame is snapshot for frame in given)
    pd.testing.assert_frame_equal(snapshot, before)

    given.clear()
    scattered = snapshot.copy()
    scattered["extra"] = 1.0  # one more block: no longer consolidated
    _validate(scattered, suite)
    assert given and all(frame is not scattered for frame in given)
