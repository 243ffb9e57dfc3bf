"""The Great Expectations quality gate: the suite, running it, and the gate that quarantines."""

from loopml.quality.gate import enforce_report, require_validated
from loopml.quality.gx_run import validate_frame
from loopml.quality.profiling import load_suite
from loopml.quality.report import Finding, ValidationReport
from loopml.quality.reuse import previous_report, validation_key
from loopml.quality.suite import Suite, profile_suite
from loopml.quality.validation import check_declared_types, validate_profiled, validate_snapshot

__all__ = [
    "Finding",
    "Suite",
    "ValidationReport",
    "check_declared_types",
    "enforce_report",
    "load_suite",
    "previous_report",
    "profile_suite",
    "require_validated",
    "validate_frame",
    "validate_profiled",
    "validate_snapshot",
    "validation_key",
]
