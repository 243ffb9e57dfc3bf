"""Data tests: the example configurations on the real UCI datasets, with real GX suites."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.training import training
from loopml.config import deep_merge, load_params
from loopml.exceptions import SourceError
from loopml.quality import load_suite, validate_frame
from loopml.schema import conform_frame
from loopml.snapshot_batches import SnapshotBatches
from loopml.sources import read_batch
from tests.conftest import REPO_ROOT, SHARED, needs_shared

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("prefect_harness")]


def _example_in(repo: Path, name: str, source_path: Path, **overrides: object) -> Path:
    raw = yaml.safe_load((REPO_ROOT / "examples" / name / "params.yaml").read_text())
    raw = deep_merge(raw, {"data": {"source": {"file": {"path": str(source_path)}}}})
    raw = deep_merge(raw, overrides)
    path = repo / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@needs_shared("adult")
def test_adult_runs_through_validate_and_features(dvc_repo: Path) -> None:
    params = _example_in(dvc_repo, "adult", SHARED / "adult")
    fs = training(params_path=str(params)).features
    assert sum(fs.sizes.values()) == 48_842
    assert fs.split_method == "stratified"
    train = pd.read_parquet(Path(fs.directory) / "train.parquet")
    assert set(train["income"]) == {"<=50K", ">50K"}  # the test file's trailing dots are gone
    assert train["workclass"].isna().any()  # '?' became missing, then imputed by the transformer
    summary = json.loads((dvc_repo / "data" / "validation" / "summary.json").read_text())
    assert summary["success"] is True


@needs_shared("bike_sharing", "hour.csv")
def test_bike_sharing_runs_through_validate_and_features(dvc_repo: Path) -> None:
    params = _example_in(dvc_repo, "bike_sharing", SHARED / "bike_sharing" / "hour.csv")
    fs = training(params_path=str(params)).features
    assert fs.task == "regression" and fs.split_method == "time"
    assert "casual" not in fs.input_columns and "registered" not in fs.input_columns
    test = pd.read_parquet(Path(fs.directory) / "test.parquet")
    train = pd.read_parquet(Path(fs.directory) / "train.parquet")
    assert train["dteday"].max() <= test["dteday"].min()
    assert test["dteday"].max() == pd.Timestamp("2012-12-31")


@needs_shared("adult")
def test_committed_adult_suite_accepts_the_test_file_and_rejects_corruption() -> None:
    params = load_params(REPO_ROOT / "examples" / "adult" / "params.yaml")
    table, clean = params.data.table, params.data.clean
    suite = load_suite(
        params.path("suite"), SnapshotBatches.of(pd.DataFrame()), table, params.validation
    )
    source = params.data.source.model_copy(
        update={
            "file": params.data.source.file.model_copy(
                update={"path": SHARED / "adult", "pattern": "adult-test.csv"}
            )
        }
    )
    frame = read_batch(source, REPO_ROOT)
    frame = conform_frame(frame, table.columns, clean.strip_whitespace, clean.rstrip)
    report = validate_frame(frame, suite, params.validation, "adult-test")
    assert report.success, [f.message() for f in report.blocking]

    broken = frame.copy()
    broken["income"] = broken["income"].where(broken.index % 3 != 0, None)  # labels lost
    broken = broken.drop(columns=["education"])
    report = validate_frame(broken, suite, params.validation, "broken")
    checks = {(f.check, f.column) for f in report.blocking}
    assert ("target", "income") in checks and ("columns", "education") in checks


@needs_shared("bike_sharing", "hour.csv")
def test_bike_batch_with_a_leaking_column_missing_target_fails(
    dvc_repo: Path, tmp_path: Path
) -> None:
    raw = pd.read_csv(SHARED / "bike_sharing" / "hour.csv")
    training(
        params_path=str(_example_in(dvc_repo, "bike_sharing", SHARED / "bike_sharing" / "hour.csv"))
    )
    bad = raw.drop(columns=["cnt"]).assign(hum=raw["hum"] * 100)  # no target, humidity in percent
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(SourceError) as info:  # stopped at collect: nothing is snapshotted
        training(params_path=str(_example_in(dvc_repo, "bike_sharing", path)))
    assert "missing: 'cnt'" in str(info.value)
