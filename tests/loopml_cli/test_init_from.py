"""`loopml init --from` then `loopml run -p` on the draft, unedited, for data loopml has never
seen: a header-less CSV, a Parquet file, a folder of CSVs, a PostgreSQL table, and the real
Adult and Bike Sharing datasets (within one point of the shipped example configurations)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from loopml.config import load_params
from loopml.datagen import generate_churn
from tests.conftest import REPO_ROOT, SHARED, needs_shared, run_cli

pytestmark = pytest.mark.slow
PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect_home"), "COLUMNS": "200"}
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        out.pop(key, None)
    return out


def _init_and_run(
    source: str, project: Path, env: dict[str, str], *init_args: str
) -> tuple[dict, str]:
    """Draft, then run the draft as it is; returns the DVC metrics of the run and its output."""
    params = project / "params.yaml"
    drafted = run_cli(
        "init", "--from", source, "-p", str(params), *init_args, cwd=project.parent, env=env,
        timeout=300,
    )  # fmt: skip
    assert drafted.returncode == 0, drafted.stdout + drafted.stderr
    assert (project / ".dvc").is_dir()  # git and DVC set up where the file lives
    ran = run_cli("run", "-p", str(params), cwd=project.parent, env=env, timeout=1500)
    said = ran.stdout + ran.stderr
    assert ran.returncode == 0, said[-4000:]
    reports = load_params(params).path("reports") / "metrics.json"
    return json.loads(reports.read_text()), said


def test_header_less_csv(tmp_path: Path, env: dict[str, str]) -> None:
    frame = generate_churn(2500, seed=11).drop(columns=["next_month_spend"])
    path = tmp_path / "incoming" / "customers.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False, header=False)
    position = str(list(frame.columns).index("churned") + 1)
    metrics, said = _init_and_run(str(path), tmp_path / "project", env, "--target", position)
    assert metrics["primary_metric"] == "roc_auc" and metrics["test"]["roc_auc"] > 0.7
    # the summary: every metric of every candidate, the decision, where the UI is
    for phrase in ("test pr_auc", "test log_loss", "95% interval", "promoted to champion"):
        assert phrase in said, phrase
    assert "loopml ui -p" in said


def test_parquet_file_and_a_folder_of_csvs(tmp_path: Path, env: dict[str, str]) -> None:
    frame = generate_churn(2500, seed=12)
    path = tmp_path / "incoming" / "batch.parquet"
    path.parent.mkdir()
    frame.to_parquet(path)
    metrics, _ = _init_and_run(str(path), tmp_path / "p1", env, "--target", "next_month_spend")
    assert metrics["primary_metric"] == "rmse" and metrics["test"]["r2"] > 0.5

    folder = tmp_path / "monthly"
    folder.mkdir()
    for i, part in enumerate((frame.iloc[:1200], frame.iloc[1200:])):
        part.drop(columns=["next_month_spend"]).to_csv(folder / f"m{i}.csv", index=False)
    metrics, _ = _init_and_run(str(folder), tmp_path / "p2", env, "--target", "churned")
    assert metrics["test"]["roc_auc"] > 0.7


@pytest.fixture
def pg_table() -> Iterator[str]:
    import sqlalchemy as sa

    name = f"loopml_init_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    generate_churn(2500, seed=13).drop(columns=["next_month_spend"]).to_sql(
        name, engine, index=False
    )
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


@pytest.mark.db
@pytest.mark.skipif(not PG_URL, reason="LOOPML_TEST_POSTGRES_URL is not set")
def test_postgresql_table(tmp_path: Path, env: dict[str, str], pg_table: str) -> None:
    metrics, _ = _init_and_run(
        PG_URL, tmp_path / "project", env, "--table", pg_table, "--target", "churned"
    )
    assert metrics["test"]["roc_auc"] > 0.7


def _example_metrics(name: str, source: Path, tmp_path: Path, env: dict[str, str]) -> dict:
    """The shipped example, on the same data, its gradient-boosting candidate (its best)."""
    raw = yaml.safe_load((REPO_ROOT / "examples" / name / "params.yaml").read_text())
    raw["data"]["source"]["file"]["path"] = str(source)
    raw["train"]["candidates"] = [c for c in raw["train"]["candidates"] if c["kind"] != "lightning"]
    project = tmp_path / f"example-{name}"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert run_cli("init", "-p", str(project / "params.yaml"), cwd=project, env=env).returncode == 0
    ran = run_cli("run", "-p", str(project / "params.yaml"), cwd=project, env=env, timeout=1500)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    return json.loads((project / "reports" / "metrics.json").read_text())


@pytest.mark.data
@needs_shared("adult")
def test_adult_draft_is_within_a_point_of_the_example(tmp_path: Path, env: dict[str, str]) -> None:
    drafted, _ = _init_and_run(str(SHARED / "adult"), tmp_path / "adult", env, "--target", "last")
    example = _example_metrics("adult", SHARED / "adult", tmp_path, env)
    assert drafted["test"]["roc_auc"] >= example["test"]["roc_auc"] - 0.01, (drafted, example)


@pytest.mark.data
@needs_shared("bike_sharing", "hour.csv")
def test_bike_sharing_draft_is_within_a_point_of_the_example(
    tmp_path: Path, env: dict[str, str]
) -> None:
    hour = SHARED / "bike_sharing" / "hour.csv"
    drafted, _ = _init_and_run(str(hour), tmp_path / "bike", env, "--target", "cnt")
    example = _example_metrics("bike_sharing", hour, tmp_path, env)
    assert drafted["test"]["r2"] >= example["test"]["r2"] - 0.01, (drafted, example)
    assert pd.notna(drafted["test"]["rmse"])
