"""validate: the Great Expectations quality gate."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml import quality, snapshot_batches
from loopml.config import SchemaConfig, ValidateConfig
from loopml.quality import Suite, ValidationReport
from loopml.snapshot_batches import SnapshotBatches
from loopml.snapshots import Snapshot
from tasks._policies import IO


@task(name="open-snapshot", cache_policy=NO_CACHE)
def open_snapshot(snapshot: Snapshot, cfg: ValidateConfig) -> SnapshotBatches:
    """The verified snapshot, to be read whole or ``validate.batch_rows`` rows at a time
    (:func:`loopml.snapshot_batches.open_batches`)."""
    return snapshot_batches.open_batches(snapshot, cfg.batch_rows)


@task(name="load-suite", cache_policy=NO_CACHE)
def load_suite(
    suite_path: Path,
    batches: SnapshotBatches,
    table: SchemaConfig,
    cfg: ValidateConfig,
    declared: ValidationReport,
) -> Suite:
    """The reviewable suite, profiled from the snapshot the first time if its declared types are
    right (:func:`loopml.quality.load_suite`)."""
    return quality.load_suite(suite_path, batches, table, cfg, types_ok=declared.success)


@task(name="check-types", cache_policy=NO_CACHE)
def check_types(
    batches: SnapshotBatches, table: SchemaConfig, cfg: ValidateConfig, snapshot_version: str
) -> ValidationReport:
    """Every declared column present and of its declared kind
    (:func:`loopml.quality.check_declared_types`)."""
    return quality.check_declared_types(batches, table, cfg, snapshot_version)


@task(name="run-validation", cache_policy=NO_CACHE)
def run_validation(
    batches: SnapshotBatches,
    suite: Suite,
    declared: ValidationReport,
    cfg: ValidateConfig,
    validation_dir: Path,
) -> ValidationReport:
    """Every failure of the profiled suite on the snapshot, after the declared checks
    (:func:`loopml.quality.validate_profiled`)."""
    docs = validation_dir / "docs" if cfg.data_docs else None
    return quality.validate_profiled(batches, suite, declared, cfg, docs)


@task(name="enforce-validation", cache_policy=NO_CACHE, **IO)
def enforce(
    report: ValidationReport,
    snapshot_path: Path,
    validation_dir: Path,
    quarantine_dir: Path,
    key: str,
) -> ValidationReport:
    """Write the report; quarantine and raise on a blocking failure
    (:func:`loopml.quality.enforce_report`)."""
    return quality.enforce_report(report, snapshot_path, validation_dir, quarantine_dir, key)


@task(name="validation-key", cache_policy=NO_CACHE)
def validation_key(
    snapshot_version: str, suite_path: Path, table: SchemaConfig, cfg: ValidateConfig
) -> str:
    """What a report depends on, as one hash (:func:`loopml.quality.validation_key`)."""
    return quality.validation_key(snapshot_version, suite_path, table, cfg)


@task(name="previous-validation", cache_policy=NO_CACHE)
def previous_validation(validation_dir: Path, key: str) -> ValidationReport | None:
    """The successful report of the same inputs, if any (:func:`loopml.quality.previous_report`)."""
    return quality.previous_report(validation_dir, key)


@task(name="require-validated", cache_policy=NO_CACHE)
def require_validated(snapshot_version: str, validation_dir: Path) -> None:
    """Refuse a snapshot that has not passed validation
    (:func:`loopml.quality.require_validated`)."""
    quality.require_validated(snapshot_version, validation_dir)
