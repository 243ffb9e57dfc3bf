"""The data stages: collect -> validate -> features. Each is a flow of its own (a DVC stage) and
a subflow of ``training``; given no input, a stage reads what the previous one wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from loopml.config import load_params
from loopml.features import FeatureSet
from loopml.quality import ValidationReport
from loopml.snapshots import Snapshot
from tasks._policies import STOPPABLE
from tasks.collect import (
    collect_snapshot,
    current_snapshot,
    read_snapshot,
    verify_snapshot,
)
from tasks.features import (
    features_key,
    fit_transformers,
    previous_features,
    split,
    write_features,
)
from tasks.validate import (
    check_types,
    enforce,
    load_suite,
    open_snapshot,
    previous_validation,
    require_validated,
    run_validation,
    validation_key,
)


@flow(name="collect", **STOPPABLE)
def collect(params_path: str = "params.yaml", overrides: dict[str, Any] | None = None) -> Snapshot:
    """Read a batch from ``data.source``, conform it to ``data.schema``, snapshot it with DVC
    (``data.chunk_rows`` rows at a time)."""
    params = load_params(params_path, overrides)
    return collect_snapshot(
        data=params.data,
        root=params.root,
        snapshots_dir=params.path("snapshots"),
        current_pointer=params.path("current"),
    )


@flow(name="validate", **STOPPABLE)
def validate(
    params_path: str = "params.yaml",
    overrides: dict[str, Any] | None = None,
    batch: Snapshot | None = None,
) -> ValidationReport:
    """Run the expectation suite on the snapshot (default: the last collected); quarantine it
    and stop on a blocking failure."""
    params = load_params(params_path, overrides)
    batch = batch or current_snapshot(current_pointer=params.path("current"))
    inputs = {
        "snapshot_version": batch.version,
        "suite_path": params.path("suite"),
        "table": params.data.table,
        "cfg": params.validation,
    }
    earlier = previous_validation(
        validation_dir=params.path("validation"), key=validation_key(**inputs)
    )
    if earlier is not None:  # same snapshot, suite, settings and checks: passed before
        return earlier
    gate = {
        "snapshot_path": Path(batch.path),
        "validation_dir": params.path("validation"),
        "quarantine_dir": params.path("quarantine"),
    }
    batches = open_snapshot(snapshot=batch, cfg=params.validation)
    declared = check_types(
        batches=batches,
        table=params.data.table,
        cfg=params.validation,
        snapshot_version=batch.version,
    )
    suite = load_suite(
        suite_path=params.path("suite"),
        batches=batches,
        table=params.data.table,
        cfg=params.validation,
        declared=declared,
    )
    report = run_validation(
        batches=batches,
        suite=suite,
        declared=declared,
        cfg=params.validation,
        validation_dir=params.path("validation"),
    )
    return enforce(report=report, **gate, key=validation_key(**inputs))  # the suite may be new


@flow(name="features", **STOPPABLE)
def featurize(
    params_path: str = "params.yaml",
    overrides: dict[str, Any] | None = None,
    batch: Snapshot | None = None,
) -> FeatureSet:
    """Split the validated snapshot (default: the last collected), fit the transformer on train,
    write the features; unless the features on disk were built from the same snapshot, schema,
    settings and seed."""
    params = load_params(params_path, overrides)
    batch = batch or current_snapshot(current_pointer=params.path("current"))
    require_validated(snapshot_version=batch.version, validation_dir=params.path("validation"))
    key = features_key(
        snapshot_version=batch.version,
        table=params.data.table,
        cfg=params.features,
        seed=params.project.seed,
    )
    earlier = previous_features(features_dir=params.path("features"), key=key)
    if earlier is not None:
        verify_snapshot(snapshot=batch)  # what they were built from is still intact (or restored)
        return earlier
    frame = read_snapshot(snapshot=batch)
    splits = split(
        frame=frame, table=params.data.table, cfg=params.features.split, seed=params.project.seed
    )
    transformers = fit_transformers(
        train=splits.train, table=params.data.table, cfg=params.features, seed=params.project.seed
    )
    return write_features(
        splits=splits,
        transformers=transformers,
        out_dir=params.path("features"),
        data_version=batch.version,
        table=params.data.table,
        key=key,
    )
