"""Evaluation reads each candidate's test output from the stored test matrix only where the
model's own transform of raw rows gives that matrix; otherwise from the raw rows."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.evaluation import output_on_test_split
from loopml.modeldata import ModelData
from loopml.pyfunc import LoopmlModel, bundle


@pytest.mark.parametrize("name", ["logreg", "hgb"])
def test_the_stored_test_matrix_gives_the_raw_rows_output(fitted: dict, name: str) -> None:
    fit = fitted["fits"][name]
    data: ModelData = fitted["data"]
    model = bundle(fit, data)
    assert fit.encoding == ("ordinal" if name == "hgb" else "onehot")
    got = output_on_test_split(model, data, fit.encoding, seed=3)
    np.testing.assert_allclose(got, model.predict_output(data.test_inputs), rtol=1e-6, atol=1e-7)


def _counting(model: LoopmlModel) -> tuple[LoopmlModel, list[int]]:
    """The model, recording how many rows each call of its own transform gets."""
    sizes: list[int] = []
    features = model.features

    def counted(frame: Any) -> np.ndarray:
        sizes.append(len(frame))
        return features(frame)

    model.features = counted  # type: ignore[method-assign]
    return model, sizes


def test_the_test_rows_are_transformed_only_for_the_check(fitted: dict) -> None:
    data: ModelData = fitted["data"]
    model, sizes = _counting(bundle(fitted["fits"]["logreg"], data))
    output_on_test_split(model, data, "onehot", seed=3)
    assert sizes == [min(1_000, len(data.test_rows))] and len(data.test_rows) > 0


@pytest.mark.parametrize("how", ["other-encoding", "other-values"])
def test_a_model_whose_transform_differs_is_evaluated_from_raw_rows(
    fitted: dict, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A model bundled with other features than the stored matrix (other columns, or the same
    columns with other values) is evaluated from the raw rows, with a warning."""
    data: ModelData = fitted["data"]
    encoding = "onehot"
    if how == "other-encoding":
        encoding = "ordinal"  # the linear model's one-hot transform against the ordinal matrix
    else:
        onehot = data.encodings["onehot"]
        shifted = replace(onehot, x_test=np.asarray(onehot.x_test) + 0.5)
        data = replace(data, encodings={**data.encodings, "onehot": shifted})
    model, sizes = _counting(bundle(fitted["fits"]["logreg"], fitted["data"]))
    with caplog.at_level(logging.WARNING, logger="loopml.evaluation"):
        got = output_on_test_split(model, data, encoding, seed=3)
    assert "evaluating from raw rows" in caplog.text
    assert sizes[-1] == len(data.test_rows)  # the whole test split through the model's transform
    np.testing.assert_array_equal(got, model.predict_output(data.test_inputs))


def test_model_data_maps_the_test_matrices(fitted: dict, tmp_path: Path) -> None:
    """The test matrices are memory-mapped, not read into memory with the training data."""
    for encoding in fitted["data"].encodings.values():
        assert isinstance(encoding.x_test, np.memmap)
