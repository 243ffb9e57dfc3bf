"""The Great Expectations quality gate: the suite, running it, and the gate that quarantines."""

from loopml.quality.gate import enforce_report, require_validated
from loopml.quality.gx_run import validate_frame
from loopml.quality.report import Finding, ValidationReport
from loopml.quality.suite import Suite, load_suite, profile_suite

__all__ = [
    "Finding",
    "Suite",
    "ValidationReport",
    "enforce_report",
    "load_suite",
    "profile_suite",
    "require_validated",
    "validate_frame",
]
