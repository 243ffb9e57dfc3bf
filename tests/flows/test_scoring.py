"""Batch scoring under the Prefect test harness, on a real MLflow registry: every row scored by
the champion, the output file and the prediction log written; bad input names the column and
writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.scoring import batch_scoring
from loopml.datagen import generate_churn
from loopml.exceptions import InputError
from loopml.predlog import read_prediction_log
from loopml.registry import load_alias

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _params_path(registry: dict[str, Any]) -> str:
    return str(registry["params"].root / "params.yaml")


def _log(registry: dict[str, Any]) -> pd.DataFrame:
    path = registry["params"].path("prediction_log")
    return read_prediction_log(path) if path.exists() else pd.DataFrame({"request_id": []})


def test_batch_scoring_writes_every_prediction_of_the_champion(registry: dict[str, Any]) -> None:
    params = registry["params"]
    before = set(_log(registry)["request_id"])
    overrides = {
        "score": {"source": {"generator": {"n_rows": 1200, "seed": 31}}, "chunk_rows": 500}
    }
    result = batch_scoring(params_path=_params_path(registry), overrides=overrides)

    champion = load_alias(registry["tracking"].client(), "churn-classifier", "champion")
    assert (result.model_version, result.rows) == (champion.version, 1200)
    scores = pd.read_parquet(result.path)
    assert Path(result.path).parent == params.path("scores")
    assert list(scores.columns) == ["customer_id", "prediction", "probability", "model_version"]
    inputs = generate_churn(1200, seed=31, start="2024-01-01", days=30.0)
    assert scores["customer_id"].tolist() == inputs["customer_id"].tolist()
    expected = champion.model.predict(None, inputs)  # chunking changes nothing
    pd.testing.assert_series_equal(scores["probability"], expected["probability"])
    assert (scores["model_version"] == champion.version).all()

    logged = _log(registry)
    new = logged[~logged["request_id"].isin(before)].sort_values("row")
    assert len(new) == 1200 and new["request_id"].nunique() == 1  # one request id per batch
    assert new["request_id"].iloc[0].startswith("batch-")
    assert new["model_version"].eq(champion.version).all()
    assert new["probability"].tolist() == pytest.approx(scores["probability"].tolist())
    assert new["prediction"].tolist() == scores["prediction"].tolist()
    # the inputs as scored, row by row (logged in parts of chunk_rows)
    assert new["tenure_months"].tolist() == pytest.approx(
        inputs["tenure_months"].tolist(), nan_ok=True
    )
    assert new["plan"].tolist() == inputs["plan"].tolist()


def test_bad_scoring_input_names_the_column_and_writes_nothing(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    params = registry["params"]
    bad = generate_churn(300, seed=2).drop(columns=["plan"])
    bad["age"] = bad["age"].astype(object)
    bad.loc[5, "age"] = "forty"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    before_files = set(params.path("scores").glob("*")) if params.path("scores").exists() else set()
    before_log = len(_log(registry))
    overrides = {"score": {"source": {"kind": "file", "file": {"path": str(tmp_path / "bad.csv")}}}}
    with pytest.raises(InputError) as err:
        batch_scoring(params_path=_params_path(registry), overrides=overrides)
    message = str(err.value)
    assert "bad.csv" in message
    assert "missing column(s) the model needs: ['plan']" in message
    assert "column 'age': 1 value(s) are not numbers, e.g. 'forty'" in message
    after_files = set(params.path("scores").glob("*")) if params.path("scores").exists() else set()
    assert after_files == before_files
    assert len(_log(registry)) == before_log


def test_a_bad_value_in_the_last_chunk_of_a_file_keeps_nothing(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    """The file is read a chunk at a time: the first two chunks score fine, the third has a
    bad value; no output file and no logged row, though two chunks were already predicted."""
    params = registry["params"]
    bad = generate_churn(2500, seed=5)
    bad["age"] = bad["age"].astype(object)
    bad.loc[2400, "age"] = "sixty"
    bad.to_csv(tmp_path / "late.csv", index=False)
    scores_dir = params.path("scores")
    before_files = set(scores_dir.glob("*")) | set(scores_dir.glob(".*"))
    before_log = len(_log(registry))
    source = {"kind": "file", "file": {"path": str(tmp_path / "late.csv")}}
    overrides = {"score": {"source": source, "chunk_rows": 1000}}
    said = r"late.csv\): column 'age': 1 value.s. are not numbers, e.g. 'sixty'$"
    with pytest.raises(InputError, match=said):
        batch_scoring(params_path=_params_path(registry), overrides=overrides)
    assert set(scores_dir.glob("*")) | set(scores_dir.glob(".*")) == before_files
    assert len(_log(registry)) == before_log


def test_without_a_champion_scoring_says_what_to_do(registry: dict[str, Any]) -> None:
    """An alias no version has: one message naming the model, the alias and the fix."""
    from loopml.exceptions import NoModelYet

    with pytest.raises(NoModelYet) as info:
        batch_scoring(params_path=_params_path(registry), overrides={"score": {"alias": "staging"}})
    message = str(info.value)
    assert "no version of churn-classifier has the alias 'staging'" in message, message
    assert "`loopml run`" in message


def test_a_csv_batch_logs_category_codes_as_collect_reads_them(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    """A categorical column of number-like codes with gaps is read as text, as collect reads
    it: the log holds ``"3"``, not ``3.0``, so monitoring compares like with like."""
    before = set(_log(registry)["request_id"])
    batch = generate_churn(400, seed=12)
    batch["country"] = (batch.index % 5).astype(str)
    batch.loc[::9, "country"] = None
    batch.to_csv(tmp_path / "codes.csv", index=False)
    source = {"kind": "file", "file": {"path": str(tmp_path / "codes.csv")}}
    overrides = {"score": {"source": source, "chunk_rows": 150}}
    result = batch_scoring(params_path=_params_path(registry), overrides=overrides)
    assert result.rows == 400
    logged = _log(registry)
    new = logged[~logged["request_id"].isin(before)].sort_values("row")
    assert len(new) == 400
    assert set(new["country"].dropna()) == set("01234")
    assert new["country"].isna().sum() == len(batch.loc[::9])
