"""Batch scoring as a stream, with the real registered model of ``tests/registry.py``: one chunk
at a time in memory, the same predictions as scoring the batch whole, every problem of the
whole batch in one message, and nothing written or logged by a batch that fails."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopml.datagen import generate_churn
from loopml.exceptions import InputError
from loopml.predlog import read_prediction_log
from loopml.registry import LoadedVersion, load_alias
from loopml.scoring import ScoringOutput, score_batch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def champion(registry: dict[str, Any]) -> LoadedVersion:
    return load_alias(registry["tracking"].client(), "churn-classifier", "champion")


def _score(chunks: Any, champion: LoadedVersion, out: Path, logged: bool = True) -> Any:
    log = out / "log.sqlite" if logged else None
    output = ScoringOutput(out_dir=out / "scores", run_id="run-1234abcd", log_to=log)
    return score_batch(
        chunks=chunks,
        scorer=champion,
        alias="champion",
        id_column="customer_id",
        source="test batch",
        output=output,
        chunk_rows=1000,
    )


def test_chunks_are_scored_and_let_go_one_at_a_time(
    tmp_path: Path, champion: LoadedVersion
) -> None:
    """When a chunk is asked for, the one two before it is gone: no chunk is held for later."""
    frame = generate_churn(5000, seed=11)
    alive: list[weakref.ref[pd.DataFrame]] = []
    held: list[int] = []

    def chunks() -> Iterator[pd.DataFrame]:
        for start in range(0, len(frame), 1000):
            gc.collect()
            held.append(sum(ref() is not None for ref in alive))
            chunk = frame.iloc[start : start + 1000].copy()
            alive.append(weakref.ref(chunk))
            yield chunk
            del chunk

    batch = _score(chunks(), champion, tmp_path)
    assert held == [0, 1, 1, 1, 1]  # only the chunk being scored, never the earlier ones
    scores = pd.read_parquet(batch.path)
    whole = champion.model.predict(None, frame)  # chunking changes nothing
    pd.testing.assert_series_equal(scores["probability"], whole["probability"])
    assert scores["customer_id"].tolist() == frame["customer_id"].tolist()
    assert batch.rows == batch.logged_rows == 5000
    assert batch.summary["mean_probability"] == pytest.approx(whole["probability"].mean())
    shares = whole["prediction"].astype(str).value_counts(normalize=True)
    assert {k: batch.summary[f"share_{k}"] for k in shares.index} == pytest.approx(shares.to_dict())
    logged = read_prediction_log(tmp_path / "log.sqlite").sort_values("row")
    assert logged["row"].tolist() == list(range(5000))
    assert logged["probability"].tolist() == pytest.approx(whole["probability"].tolist())
    assert not list((tmp_path / "scores").glob(".*"))  # no staging file left behind


def test_every_problem_of_every_chunk_is_named_and_nothing_is_kept(
    tmp_path: Path, champion: LoadedVersion
) -> None:
    """A bad value in the first and in the last chunk: both counted in one message; no file,
    nothing logged, although the chunks between were fine."""
    frame = generate_churn(3000, seed=12)
    frame["age"] = frame["age"].astype(object)
    frame.loc[[10, 2990], "age"] = ["forty", "fifty"]
    frame.loc[2995, "plan"] = None
    chunks = (frame.iloc[s : s + 1000] for s in range(0, 3000, 1000))
    with pytest.raises(InputError) as err:
        _score(chunks, champion, tmp_path)
    assert str(err.value) == (
        "cannot score test batch: column 'age': 2 value(s) are not numbers, e.g. 'forty'"
    )
    assert not list((tmp_path / "scores").glob("*")) + list((tmp_path / "scores").glob(".*"))
    assert not (tmp_path / "log.sqlite").exists()


def test_a_missing_column_is_named_once(tmp_path: Path, champion: LoadedVersion) -> None:
    frame = generate_churn(2000, seed=13).drop(columns=["plan"])
    chunks = (frame.iloc[s : s + 1000] for s in range(0, 2000, 1000))
    with pytest.raises(InputError, match=r"missing column\(s\) the model needs: \['plan'\]$"):
        _score(chunks, champion, tmp_path, logged=False)


def test_an_id_column_that_changes_type_between_chunks_is_named(
    tmp_path: Path, champion: LoadedVersion
) -> None:
    frame = generate_churn(2000, seed=14)
    first, second = frame.iloc[:1000].copy(), frame.iloc[1000:].copy()
    second["customer_id"] = "C-" + second["customer_id"].astype(str)
    with pytest.raises(InputError, match=r"column\(s\) \['customer_id'\] change type"):
        _score(iter([first, second]), champion, tmp_path, logged=False)
    assert not list((tmp_path / "scores").glob("*"))


def test_chunks_with_other_columns_are_named(tmp_path: Path, champion: LoadedVersion) -> None:
    """A folder whose second file lacks the id column: the output cannot hold both."""
    frame = generate_churn(2000, seed=15)
    first, second = frame.iloc[:1000], frame.iloc[1000:].drop(columns=["customer_id"])
    with pytest.raises(InputError, match="of a later chunk differ from the first chunk's"):
        _score(iter([first, second]), champion, tmp_path, logged=False)
    assert not list((tmp_path / "scores").glob("*"))
