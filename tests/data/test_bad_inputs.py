"""The bad-input corpus (tests/data/bad_inputs/): every case through the real training flow
(Prefect test harness, real DVC, GX and MLflow) in a project whose suite was profiled on the
clean sample and whose champion was trained on it. Each asserts its outcome, the key words of
the message, and that nothing is left behind: no snapshot outside quarantine, the current
pointer unchanged, the features unchanged, no new model version, the champion unchanged. A
batch that passes (with or without warnings) trains to the end without a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from flows.data import featurize
from flows.training import training
from loopml.aliases import CHAMPION
from loopml.config import deep_merge, load_params
from loopml.exceptions import DataValidationError, SourceError
from loopml.registry import alias_version
from loopml.tracking import setup_tracking
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
    """A project whose suite is profiled on the clean sample and whose champion is trained on
    it, by one run of the training flow."""
    repo = make_dvc_repo(tmp_path_factory.mktemp("bad_inputs") / "project")
    clean = repo / "incoming" / "clean.csv"
    clean.parent.mkdir()
    sample.to_csv(clean, index=False)
    params = repo / "params.yaml"
    params.write_text(yaml.safe_dump(_params(clean), sort_keys=False))
    result = training(params_path=str(params))
    assert result.decision is not None and result.decision.promoted
    return repo


def _state(repo: Path) -> dict[str, Any]:
    """What a bad batch must not change: snapshots, pointer, features, registry."""
    params = load_params(repo / "params.yaml")
    client = setup_tracking(params).client()
    name = params.promote.model_name
    return {
        "snapshots": {p.name for p in (repo / "data" / "snapshots").glob("*.parquet")},
        "current": (repo / "data" / "current.json").read_text(),
        "features": (params.path("features") / "features.json").read_text(),
        "versions": len(client.search_model_versions(f"name='{name}'")),
        "champion": alias_version(client, name, CHAMPION),
    }


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input(case: dict[str, Any], project: Path, sample: pd.DataFrame) -> None:
    path = project / "incoming" / f"{case['mutation']}{case.get('suffix', '.csv')}"
    MUTATIONS[case["mutation"]](sample, path)
    source = {"file": {"path": str(path), "csv": case.get("csv", {})}}
    overrides = {"data": {"source": deep_merge(_params(path)["data"]["source"], source)}}
    params = str(project / "params.yaml")
    before = _state(project)
    outcome, message = _run(params, overrides)
    assert outcome == case["outcome"], message
    for word in case.get("words", []):
        assert word in message, f"{word!r} not in: {message}"
    after = _state(project)
    kept = ("features", "versions", "champion")
    if outcome == "refused":  # nothing written at all
        assert after == before
    if outcome == "blocked":  # the batch is in quarantine only, and nothing downstream ran
        assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
        version = json.loads(after["current"])["version"]
        assert f"{version}.parquet" not in after["snapshots"]
        assert (project / "data" / "quarantine" / f"{version}.parquet").is_file()
        with pytest.raises(DataValidationError, match="has not passed validation"):
            featurize(params_path=params, overrides=overrides)


def _run(params: str, overrides: dict[str, Any]) -> tuple[str, str]:
    """The outcome of the training flow, and the message (errors or warnings) that says why."""
    try:
        training(params_path=params, overrides=overrides)
    except SourceError as exc:
        return "refused", str(exc)
    except DataValidationError as exc:
        return "blocked", str(exc)
    summary = load_params(Path(params)).path("validation") / "summary.json"
    warnings = "\n".join(json.loads(summary.read_text())["warnings"])
    return ("warning" if warnings else "accepted"), warnings
