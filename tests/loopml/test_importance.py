"""Permutation importance, transformed and predicted in stacks, equals shuffling and predicting
one column at a time; the model is called a few times, not once per shuffle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml import importance
from loopml.config import LOWER_IS_BETTER
from loopml.importance import permutation_importance
from loopml.metrics import fast_metric
from loopml.modeldata import ModelData
from loopml.pyfunc import LoopmlModel, bundle


def _one_at_a_time(
    model: LoopmlModel, rows: pd.DataFrame, y: np.ndarray, metric: str, repeats: int, seed: int
) -> pd.DataFrame:
    """The plain algorithm: every shuffle through the transformer and the model on its own,
    drawn in the same order (each column's first shuffle, then the further ones)."""
    rng = np.random.default_rng(seed)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0

    def score(frame: pd.DataFrame) -> float:
        return fast_metric(metric, model.task, y, model.predict_output(frame))

    def shuffled(col: str, order: np.ndarray) -> pd.DataFrame:
        out = rows.copy()
        out[col] = out[col].to_numpy()[order]
        return out

    base = score(rows)
    columns = list(model.input_kinds)
    first = {col: score(shuffled(col, rng.permutation(len(rows)))) for col in columns}
    records = []
    for col in columns:
        drops = [sign * (base - first[col])]
        drops += [
            sign * (base - score(shuffled(col, rng.permutation(len(rows)))))
            for _ in range(repeats - 1)
        ]
        records.append({"feature": col, "importance": np.mean(drops), "std": np.std(drops)})
    return pd.DataFrame(records).sort_values("importance", ascending=False, ignore_index=True)


@pytest.mark.parametrize("name", ["logreg", "hgb"])
@pytest.mark.parametrize("batch_rows", [100_000, 2_500])
def test_stacked_shuffles_equal_one_at_a_time(
    fitted: dict, name: str, batch_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether every shuffle fits in one stack or the stacks split them (2,500 rows: a few
    shuffles of 600 rows each), the importances are those of one shuffle at a time."""
    data: ModelData = fitted["data"]
    model = bundle(fitted["fits"][name], data)
    rows, y = data.test_inputs.head(600), data.y_test[:600]
    monkeypatch.setattr(importance, "BATCH_ROWS", batch_rows)
    got = permutation_importance(model, rows, y, "roc_auc", repeats=3, seed=7)
    expected = _one_at_a_time(model, rows, y, "roc_auc", repeats=3, seed=7)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-12)
    assert got["importance"].abs().max() > 0  # some column matters: the check can fail


def test_the_model_is_called_per_stack_not_per_shuffle(
    fitted: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    data: ModelData = fitted["data"]
    model = bundle(fitted["fits"]["hgb"], data)
    calls = {"features": 0, "output_of": 0}
    for method in calls:
        original = getattr(model, method)

        def counted(arg: object, original: object = original, method: str = method) -> object:
            calls[method] += 1
            return original(arg)  # type: ignore[operator]

        setattr(model, method, counted)
    rows, y = data.test_inputs.head(500), data.y_test[:500]
    permutation_importance(model, rows, y, "roc_auc", repeats=3, seed=7)
    shuffles = 1 + 3 * len(model.input_kinds)  # the base rows, then three per column
    assert shuffles * len(rows) <= importance.BATCH_ROWS  # so: one stack
    assert calls == {"features": 2, "output_of": 1}
