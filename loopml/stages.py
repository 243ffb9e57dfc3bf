"""The DVC pipeline's stage commands: read inputs from the declared paths, call the same task
functions the Prefect flow calls (through ``.fn``), write the declared outputs."""

from __future__ import annotations

from pathlib import Path

from loopml.config import Params
from tasks.collect import (
    Snapshot,
    conform,
    describe_source,
    load_snapshot_pointer,
    read_snapshot,
    read_source,
    write_snapshot,
)
from tasks.features import FeatureSet, fit_transformer, split, write_features
from tasks.validate import ValidationReport, enforce, load_or_create_suite, run_validation


def collect(params: Params) -> Snapshot:
    frame = read_source.fn(source=params.data.source, root=params.root)
    frame = conform.fn(frame=frame, schema=params.data.schema_, clean=params.data.clean)
    return write_snapshot.fn(
        frame=frame,
        snapshots_dir=params.path("snapshots"),
        current_pointer=params.path("current"),
        source=describe_source(params.data.source),
        versioning=params.data.versioning,
    )


def validate(params: Params) -> ValidationReport:
    snapshot = load_snapshot_pointer(params.path("current"))
    frame = read_snapshot(snapshot)
    suite = load_or_create_suite.fn(
        suite_path=params.path("suite"),
        frame=frame,
        schema=params.data.schema_,
        cfg=params.validate_,
    )
    report = run_validation.fn(
        frame=frame,
        suite=suite,
        cfg=params.validate_,
        snapshot_version=snapshot.version,
        docs_dir=params.path("validation") / "docs" if params.validate_.data_docs else None,
    )
    return enforce.fn(
        report=report,
        snapshot_path=Path(snapshot.path),
        validation_dir=params.path("validation"),
        quarantine_dir=params.path("quarantine"),
    )


def features(params: Params) -> FeatureSet:
    from loopml.exceptions import DataValidationError
    from loopml.io import read_json

    snapshot = load_snapshot_pointer(params.path("current"))
    summary = read_json(params.path("validation") / "summary.json")
    if summary.get("snapshot") != snapshot.version or not summary.get("success"):
        raise DataValidationError(
            snapshot.version,
            ["the current snapshot has not passed validation; run `loopml validate`"],
        )
    frame = read_snapshot(snapshot)
    splits = split.fn(
        frame=frame, schema=params.data.schema_, cfg=params.features.split, seed=params.project.seed
    )
    transformer = fit_transformer.fn(
        train=splits.train, schema=params.data.schema_, cfg=params.features
    )
    return write_features.fn(
        splits=splits,
        transformer=transformer,
        out_dir=params.path("features"),
        data_version=snapshot.version,
        schema=params.data.schema_,
    )
