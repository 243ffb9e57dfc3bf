"""The bad-input corpus (tests/data/bad_inputs/): every case through the real collect and validate
flows (Prefect test harness, real DVC and GX) in a project whose suite was profiled on the clean
sample. Each asserts its outcome, the key words of the message, and that nothing is left behind:
no snapshot outside quarantine, the current pointer unchanged, no features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from flows.data import collect, featurize, validate
from loopml.config import deep_merge
from loopml.exceptions import DataValidationError, SourceError
from tests.conftest import SHARED, make_dvc_repo, needs_shared
from tests.data.bad_inputs.mutations import MUTATIONS

HERE = Path(__file__).parent / "bad_inputs"
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "cases.yaml").read_text())
ADULT = SHARED / "adult" / "adult-train.csv"
pytestmark = [pytest.mark.slow, needs_shared("adult"), pytest.mark.usefixtures("prefect_harness")]

COLUMNS = {
    "age": {"type": "integer", "min": 0, "max": 130},
    "workclass": "categorical",
    "fnlwgt": "integer",
    "education": "categorical",
    "education-num": "integer",
    "marital-status": "categorical",
    "occupation": "categorical",
    "relationship": "categorical",
    "race": "categorical",
    "sex": "categorical",
    "capital-gain": "integer",
    "capital-loss": "integer",
    "hours-per-week": "integer",
    "native-country": "categorical",
    "income": "categorical",
}


def _params(path: Path) -> dict[str, Any]:
    return {
        "project": {"name": "adult-bad-inputs"},
        "paths": {"suite": "gx/suite.json"},
        "data": {
            "source": {"kind": "file", "file": {"path": str(path), "csv": {"na_values": ["?"]}}},
            "schema": {"task": "classification", "target": "income", "columns": COLUMNS},
            "versioning": {"push": False},
        },
        "validate": {"min_rows": 1000, "data_docs": False},
        "train": {"candidates": [{"name": "baseline", "kind": "dummy"}]},
        "promote": {"floors": {}},
    }


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    names = list(COLUMNS)
    frame = pd.read_csv(
        ADULT, header=None, names=names, skipinitialspace=True, na_values=["?"], nrows=4000
    )
    return frame


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sample: pd.DataFrame, prefect_harness: None):
    """A project whose suite is profiled on the clean sample, collected and validated once."""
    repo = make_dvc_repo(tmp_path_factory.mktemp("bad_inputs") / "project")
    clean = repo / "incoming" / "clean.csv"
    clean.parent.mkdir()
    sample.to_csv(clean, index=False)
    params = repo / "params.yaml"
    params.write_text(yaml.safe_dump(_params(clean), sort_keys=False))
    batch = collect(params_path=str(params))
    assert validate(params_path=str(params), batch=batch).success
    return repo


def _state(repo: Path) -> tuple[set[str], str]:
    snapshots = {p.name for p in (repo / "data" / "snapshots").glob("*.parquet")}
    return snapshots, (repo / "data" / "current.json").read_text()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input(case: dict[str, Any], project: Path, sample: pd.DataFrame) -> None:
    path = project / "incoming" / f"{case['mutation']}{case.get('suffix', '.csv')}"
    MUTATIONS[case["mutation"]](sample, path)
    source = {"file": {"path": str(path), "csv": case.get("csv", {})}}
    overrides = {"data": {"source": deep_merge(_params(path)["data"]["source"], source)}}
    params = str(project / "params.yaml")
    snapshots_before, current_before = _state(project)
    outcome, message = _run(params, overrides)
    assert outcome == case["outcome"], message
    for word in case.get("words", []):
        assert word in message, f"{word!r} not in: {message}"
    snapshots_after, current_after = _state(project)
    if outcome == "refused":  # nothing written at all
        assert (snapshots_after, current_after) == (snapshots_before, current_before)
    if outcome == "blocked":  # the batch is in quarantine only, and nothing downstream runs
        version = json.loads(current_after)["version"]
        assert f"{version}.parquet" not in snapshots_after
        assert (project / "data" / "quarantine" / f"{version}.parquet").is_file()
        with pytest.raises(DataValidationError, match="has not passed validation"):
            featurize(params_path=params, overrides=overrides)
        assert not (project / "data" / "features").exists()


def _run(params: str, overrides: dict[str, Any]) -> tuple[str, str]:
    """The outcome of collect + validate, and the message (errors or warnings) that says why."""
    try:
        batch = collect(params_path=params, overrides=overrides)
    except SourceError as exc:
        return "refused", str(exc)
    try:
        report = validate(params_path=params, overrides=overrides, batch=batch)
    except DataValidationError as exc:
        return "blocked", str(exc)
    warnings = "\n".join(f.message() for f in report.warnings)
    return ("warning" if warnings else "accepted"), warnings
