"""`loopml init --from` then `loopml run -p` on the draft, unedited, for data loopml has never
seen: a folder of header-less CSVs, a Parquet file and a PostgreSQL table
(the real datasets: test_init_from_shared.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from loopml.config import load_params
from loopml.datagen import generate_churn
from loopml.snapshots import current_snapshot
from tests.loopml_cli.drafts import init_and_run

pytestmark = pytest.mark.slow
PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL")


def test_a_folder_of_header_less_csvs(tmp_path: Path, env: dict[str, str]) -> None:
    frame = generate_churn(2500, seed=11).drop(columns=["next_month_spend"])
    folder = tmp_path / "monthly"
    folder.mkdir()
    for i, part in enumerate((frame.iloc[:1200], frame.iloc[1200:])):
        part.to_csv(folder / f"m{i}.csv", index=False, header=False)
    position = str(list(frame.columns).index("churned") + 1)
    metrics, said = init_and_run(str(folder), tmp_path / "project", env, "--target", position)
    assert metrics["primary_metric"] == "roc_auc" and metrics["test"]["roc_auc"] > 0.7
    snapshot = current_snapshot(load_params(tmp_path / "project" / "params.yaml").path("current"))
    assert snapshot.rows == 2500  # both files, no header row taken for data or lost
    # the summary: every metric of every candidate, the decision, where the UI is
    for phrase in ("test pr_auc", "test log_loss", "95% interval", "promoted to champion"):
        assert phrase in said, phrase
    # the store this run used (the project's, not the repository's) and the command that opens it
    project, words = tmp_path / "project", " ".join(said.split())  # unwrapped
    assert (
        f"store sqlite:///{project}/mlflow.db: open it with loopml ui -p {project}/params.yaml)"
        in words
    ), said[-3000:]


def test_parquet_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "incoming" / "batch.parquet"
    path.parent.mkdir()
    generate_churn(2500, seed=12).to_parquet(path)
    metrics, _ = init_and_run(str(path), tmp_path / "p1", env, "--target", "next_month_spend")
    assert metrics["primary_metric"] == "rmse" and metrics["test"]["r2"] > 0.5


@pytest.mark.db
@pytest.mark.skipif(not PG_URL, reason="LOOPML_TEST_POSTGRES_URL is not set")
def test_postgresql_table(
    tmp_path: Path, env: dict[str, str], pg_table: Callable[[pd.DataFrame], str]
) -> None:
    table = pg_table(generate_churn(2500, seed=13).drop(columns=["next_month_spend"]))
    metrics, _ = init_and_run(
        PG_URL, tmp_path / "project", env, "--table", table, "--target", "churned"
    )
    assert metrics["test"]["roc_auc"] > 0.7
