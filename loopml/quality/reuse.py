"""Validation that does not run twice: a successful report is kept with the key of what it
checked (the snapshot, the suite file, the declared schema, the validation settings and the
code of the checks); the same key later gives that report back without reading the snapshot
or starting Great Expectations. A failed report is never reused (its batch was quarantined)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from loopml.caching import library_versions
from loopml.config import SchemaConfig, ValidateConfig
from loopml.io import read_json
from loopml.quality.report import Finding, ValidationReport

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
_CODE = sorted(
    [
        *Path(__file__).parent.glob("*.py"),
        Path(__file__).parents[1] / "schema.py",
        Path(__file__).parents[1] / "snapshot_batches.py",
    ],
    key=lambda p: p.name,
)
"""The modules whose change changes what a validation finds."""
LIBRARIES = ("great-expectations", "numpy", "pandas", "pyarrow")
"""The libraries that read the snapshot and run the checks."""


def validation_key(
    snapshot_version: str, suite_path: Path, table: SchemaConfig, cfg: ValidateConfig
) -> str:
    """What a validation report depends on, as one hash (no suite file yet: that too; the
    libraries' versions included)."""
    h = hashlib.sha256(f"{snapshot_version}|{library_versions(LIBRARIES)}".encode())
    h.update(suite_path.read_bytes() if suite_path.is_file() else b"<no suite>")
    for section in (table, cfg):
        h.update(json.dumps(section.model_dump(mode="json"), sort_keys=True).encode())
    for module in _CODE:
        h.update(module.read_bytes())
    return h.hexdigest()


def previous_report(validation_dir: Path, key: str) -> ValidationReport | None:
    """The successful report stored under ``key`` in ``validation_dir``, if there is one."""
    path = validation_dir / SUMMARY
    try:
        summary = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("key") != key or not summary.get("success"):
        return None
    try:
        findings = [Finding(**f) for f in summary.get("findings", [])]
    except TypeError:  # written by another version of loopml
        return None
    log.info(
        "validation of %s: passed before with the same suite, schema, settings and checks "
        "(%s); not run again",
        str(summary["snapshot"])[:12],
        path,
    )
    return ValidationReport(
        snapshot=str(summary["snapshot"]),
        success=True,
        evaluated=int(summary.get("evaluated", 0)),
        warnings=[f for f in findings if f.severity != "blocking"],
        reused=True,
    )
