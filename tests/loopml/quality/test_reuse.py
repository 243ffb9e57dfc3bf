"""A validation report is reused only for exactly the same snapshot, suite, schema, settings
and checks, and only when it passed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopml.config import SchemaConfig, SeverityConfig, ValidateConfig
from loopml.datagen import SCHEMA
from loopml.quality import Finding, ValidationReport, enforce_report, previous_report
from loopml.quality.reuse import validation_key

TABLE = SchemaConfig(columns=SCHEMA, target="churned", id_column="customer_id")
CFG = ValidateConfig(min_rows=100)
WARNING = Finding(
    check="ranges",
    severity="warning",
    expectation="expect_column_values_to_be_between",
    column="age",
    expected={"min_value": 18, "max_value": 90},
    observed="3 unexpected",
)


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"name": "s", "expectations": []}))
    return path


def test_the_key_changes_with_each_input(suite_file: Path) -> None:
    key = validation_key("v1", suite_file, TABLE, CFG)
    assert validation_key("v1", suite_file, TABLE, CFG) == key
    assert validation_key("v2", suite_file, TABLE, CFG) != key
    assert validation_key("v1", suite_file.with_name("none.json"), TABLE, CFG) != key
    stricter = CFG.model_copy(update={"severity": SeverityConfig(ranges="blocking")})
    assert validation_key("v1", suite_file, TABLE, stricter) != key
    other_target = TABLE.model_copy(update={"id_column": None})
    assert validation_key("v1", suite_file, other_target, CFG) != key
    suite_file.write_text(json.dumps({"name": "s", "expectations": [{"type": "x"}]}))
    assert validation_key("v1", suite_file, TABLE, CFG) != key


def test_a_passed_report_comes_back_with_its_warnings(tmp_path: Path, suite_file: Path) -> None:
    key = validation_key("v1", suite_file, TABLE, CFG)
    report = ValidationReport(snapshot="v1", success=True, evaluated=42, warnings=[WARNING])
    assert previous_report(tmp_path / "validation", key) is None  # nothing stored yet
    enforce_report(report, tmp_path / "v1.parquet", tmp_path / "validation", tmp_path / "q", key)
    again = previous_report(tmp_path / "validation", key)
    assert again == ValidationReport(
        snapshot="v1", success=True, evaluated=42, warnings=[WARNING], reused=True
    )
    assert previous_report(tmp_path / "validation", "another key") is None


def test_a_failed_or_unreadable_report_is_never_reused(tmp_path: Path) -> None:
    validation = tmp_path / "validation"
    validation.mkdir()
    summary = validation / "summary.json"
    summary.write_text(json.dumps({"snapshot": "v1", "success": False, "key": "k"}))
    assert previous_report(validation, "k") is None
    summary.write_text("{not json")
    assert previous_report(validation, "k") is None
    summary.write_text(
        json.dumps({"snapshot": "v1", "success": True, "key": "k", "findings": [{"x": 1}]})
    )
    assert previous_report(validation, "k") is None  # another version's findings
