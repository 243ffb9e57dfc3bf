"""`loopml init --from` on the real Adult and Bike Sharing datasets: the unedited drafts come
within one point of the shipped example configurations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SHARED, needs_shared
from tests.loopml_cli.drafts import example_metrics, init_and_run

pytestmark = pytest.mark.slow


@pytest.mark.data
@needs_shared("adult")
def test_adult_draft_is_within_a_point_of_the_example(tmp_path: Path, env: dict[str, str]) -> None:
    drafted, _ = init_and_run(str(SHARED / "adult"), tmp_path / "adult", env, "--target", "last")
    example = example_metrics("adult", SHARED / "adult", tmp_path, env)
    assert drafted["test"]["roc_auc"] >= example["test"]["roc_auc"] - 0.01, (drafted, example)


@pytest.mark.data
@needs_shared("bike_sharing", "hour.csv")
def test_bike_sharing_draft_is_within_a_point_of_the_example(
    tmp_path: Path, env: dict[str, str]
) -> None:
    hour = SHARED / "bike_sharing" / "hour.csv"
    drafted, _ = init_and_run(str(hour), tmp_path / "bike", env, "--target", "cnt")
    example = example_metrics("bike_sharing", hour, tmp_path, env)
    assert drafted["test"]["r2"] >= example["test"]["r2"] - 0.01, (drafted, example)
    assert pd.notna(drafted["test"]["rmse"])
