"""The validate flow under a real Prefect API with real DVC and GX: an unchanged snapshot with
an unchanged suite and settings is not validated again; any change validates it again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.data import collect, validate

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_validation_runs_again_only_when_something_it_checks_changed(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params = str(write_params())
    summary = dvc_repo / "data" / "validation" / "summary.json"
    batch = collect(params_path=params)
    first = validate(params_path=params, batch=batch)
    assert first.success and not first.reused and first.evaluated > 50
    written = summary.stat().st_mtime_ns

    again = validate(params_path=params, batch=batch)
    assert again.reused and again.success and again.evaluated == first.evaluated
    assert [w.message() for w in again.warnings] == [w.message() for w in first.warnings]
    assert summary.stat().st_mtime_ns == written  # nothing validated, nothing written

    stricter = {"validate": {"severity": {"ranges": "blocking"}}}
    assert not validate(params_path=params, overrides=stricter, batch=batch).reused

    suite = dvc_repo / "gx" / "suite.json"
    raw = json.loads(suite.read_text())
    raw["meta"] = {**raw.get("meta", {}), "reviewed_by": "a person"}
    suite.write_text(json.dumps(raw))
    assert not validate(params_path=params, batch=batch).reused
    assert validate(params_path=params, batch=batch).reused

    other = collect(params_path=params, overrides={"data": {"source": {"generator": {"seed": 7}}}})
    assert not validate(params_path=params, batch=other).reused
