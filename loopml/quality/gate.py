"""The quality gate: write the validation report; on a blocking failure quarantine the snapshot
(``dvc move``, so its version stays in the DVC cache) and raise, listing every failure."""

from __future__ import annotations

import shutil
from pathlib import Path

from loopml.exceptions import DataValidationError
from loopml.io import read_json, write_json
from loopml.quality.report import ValidationReport
from loopml.quality.reuse import SUMMARY
from loopml.versioning import dvc_move, find_repo_root, remove_quietly


def enforce_report(
    report: ValidationReport,
    snapshot_path: Path,
    validation_dir: Path,
    quarantine_dir: Path,
    key: str = "",
) -> ValidationReport:
    """Write the report (with ``key``, :func:`loopml.quality.reuse.validation_key`); on a
    blocking failure move the snapshot to quarantine and raise.

    Raises :class:`DataValidationError` listing every blocking failure with its observed value.
    """
    validation_dir.mkdir(parents=True, exist_ok=True)
    write_json(validation_dir / "result.json", report.gx_result)
    write_json(validation_dir / SUMMARY, {**report.summary(), "key": key})  # last: the commit
    if report.success:
        return report
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    target = quarantine_dir / snapshot_path.name
    write_json(quarantine_dir / f"{snapshot_path.stem}.validation.json", report.summary())
    dvc_file = snapshot_path.with_name(snapshot_path.name + ".dvc")
    root = find_repo_root(snapshot_path.resolve().parent)
    if target.exists():
        # The same batch was quarantined before: its copy (and DVC version) is already there.
        remove_quietly(snapshot_path, dvc_file)
    elif dvc_file.exists() and root is not None:
        dvc_move(snapshot_path, target, root)
    elif snapshot_path.exists():
        shutil.move(str(snapshot_path), target)
    raise DataValidationError(
        report.snapshot, [f.message() for f in report.blocking], quarantined_to=str(target)
    )


def require_validated(snapshot_version: str, validation_dir: Path) -> None:
    """Raise unless the last validation report is a success for this snapshot."""
    summary_path = validation_dir / SUMMARY
    summary = read_json(summary_path) if summary_path.is_file() else {}
    if summary.get("snapshot") != snapshot_version or not summary.get("success"):
        raise DataValidationError(
            snapshot_version,
            ["the current snapshot has not passed validation; run `loopml validate`"],
        )
