"""Validating a snapshot: the declared checks first, then the suite's profiled expectations;
whole when it has at most ``validate.batch_rows`` rows, in batches merged into one report when
it has more (:mod:`loopml.quality.batched`)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

from loopml.config import SchemaConfig, ValidateConfig
from loopml.quality.batched import validate_batches
from loopml.quality.gx_run import validate_frame
from loopml.quality.report import ValidationReport
from loopml.quality.suite import Suite, declared_suite, impossible_suite, without_declared
from loopml.snapshot_batches import SnapshotBatches

log = logging.getLogger(__name__)


def validate_snapshot(
    batches: SnapshotBatches,
    suite: Suite,
    cfg: ValidateConfig,
    snapshot_version: str,
    docs_dir: Path | None = None,
    kinds: Mapping[str, str] | None = None,
) -> ValidationReport:
    """Every failure of ``suite`` on the snapshot (GX's data docs in ``docs_dir``, for a
    snapshot validated whole)."""
    if not batches.batched:
        return validate_frame(batches.whole(), suite, cfg, snapshot_version, docs_dir, kinds)
    if docs_dir is not None:
        shutil.rmtree(docs_dir, ignore_errors=True)  # not another snapshot's docs
        log.info(
            "no data docs for a snapshot validated in batches (%s rows, validate.batch_rows %s):"
            " the merged results are in result.json",
            f"{batches.rows:,}",
            f"{batches.batch_rows:,}",
        )
    return validate_batches(batches, suite, cfg, snapshot_version, dict(kinds or {}))


def check_declared_types(
    batches: SnapshotBatches, schema: SchemaConfig, cfg: ValidateConfig, snapshot_version: str
) -> ValidationReport:
    """Every declared column present and of its declared kind, before anything is profiled or
    fitted (:func:`loopml.quality.suite.declared_suite`, run by GX); then, when they are, no
    impossible value (:func:`loopml.quality.suite.impossible_suite`)."""
    declared = validate_snapshot(
        batches, declared_suite(schema, cfg), cfg, snapshot_version, kinds=schema.kinds
    )
    if not declared.success:
        return declared
    impossible = validate_snapshot(batches, impossible_suite(schema, cfg), cfg, snapshot_version)
    return declared.merged(impossible)


def validate_profiled(
    batches: SnapshotBatches,
    suite: Suite,
    declared: ValidationReport,
    cfg: ValidateConfig,
    docs_dir: Path | None,
) -> ValidationReport:
    """The stored suite's profiled expectations, after the declared ones (``declared``), as one
    report."""
    later = validate_snapshot(batches, without_declared(suite), cfg, declared.snapshot, docs_dir)
    return declared.merged(later)
