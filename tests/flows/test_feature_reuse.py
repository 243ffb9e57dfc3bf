"""The features flow under a real Prefect API with real DVC and GX: features built from the same
snapshot, schema, settings and seed are not built again; any change builds them again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flows.data import collect, featurize, validate

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_features_are_built_again_only_when_something_they_depend_on_changed(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params = str(write_params())
    matrix = dvc_repo / "data" / "features" / "x_train.npy"
    batch = collect(params_path=params)
    validate(params_path=params, batch=batch)
    first = featurize(params_path=params, batch=batch)
    assert first.key and first.data_version == batch.version
    written = matrix.stat().st_mtime_ns

    again = featurize(params_path=params, batch=batch)
    assert again == first
    assert matrix.stat().st_mtime_ns == written  # nothing split, fitted or written

    robust = featurize(params_path=params, overrides={"features": {"scale": "robust"}}, batch=batch)
    assert robust.key != first.key and matrix.stat().st_mtime_ns != written
    assert featurize(params_path=params, batch=batch).key == first.key  # built back

    reseeded = featurize(params_path=params, overrides={"project": {"seed": 7}}, batch=batch)
    assert reseeded.key != first.key

    other = collect(params_path=params, overrides={"data": {"source": {"generator": {"seed": 7}}}})
    validate(params_path=params, batch=other)
    newer = featurize(params_path=params, batch=other)
    assert newer.data_version == other.version and newer.key != first.key
