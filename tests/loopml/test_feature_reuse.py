"""Feature reuse: the key follows every input of the features; a feature set is given back only
when its key matches and all its files are there; a failed rewrite is never taken for one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from loopml.config import FeaturesConfig, SplitConfig
from loopml.datagen import generate_churn
from loopml.feature_reuse import feature_files, features_key, previous_features
from loopml.features import fit_transformers, write_features
from loopml.splits import split_frame
from tests.loopml.test_features import SCHEMA_CFG


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_churn(2000, seed=3)


def _write(out: Path, frame: pd.DataFrame, key: str) -> None:
    s = split_frame(frame=frame, schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    both = fit_transformers(train=s.train, schema=SCHEMA_CFG, cfg=FeaturesConfig())
    write_features(s, both, out, "v1", SCHEMA_CFG, key=key)


def test_the_key_changes_with_each_input_and_nothing_else() -> None:
    key = features_key("v1", SCHEMA_CFG, FeaturesConfig(), 42)
    assert features_key("v1", SCHEMA_CFG, FeaturesConfig(), 42) == key
    assert features_key("v2", SCHEMA_CFG, FeaturesConfig(), 42) != key
    assert features_key("v1", SCHEMA_CFG, FeaturesConfig(), 43) != key
    assert features_key("v1", SCHEMA_CFG, FeaturesConfig(scale="robust"), 42) != key
    split = FeaturesConfig(split=SplitConfig(test_size=0.2))
    assert features_key("v1", SCHEMA_CFG, split, 42) != key
    other = SCHEMA_CFG.model_copy(update={"drop_columns": []})
    assert features_key("v1", other, FeaturesConfig(), 42) != key


def test_a_feature_set_is_given_back_only_under_its_key_and_complete(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    out = tmp_path / "f"
    assert previous_features(out, "k") is None  # nothing built yet
    _write(out, frame, "k")
    assert sorted(p.name for p in out.iterdir()) == sorted([*feature_files(), "features.json"])
    found = previous_features(out, "k")
    assert found is not None and found.key == "k" and found.data_version == "v1"
    assert previous_features(out, "other") is None
    (out / "x_val.ordinal.npy").unlink()
    assert previous_features(out, "k") is None  # a file is missing


def test_an_unkeyed_feature_set_is_never_reused(tmp_path: Path, frame: pd.DataFrame) -> None:
    _write(tmp_path / "f", frame, "")  # as written before keys existed
    assert previous_features(tmp_path / "f", "") is None


def test_a_rewrite_that_fails_leaves_no_feature_set(
    tmp_path: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "f"
    _write(out, frame, "k")
    import loopml.features as features

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(features, "_save_npy", broken)  # the rewrite fails half-way
    with pytest.raises(OSError):
        _write(out, frame.sample(frac=1.0, random_state=5), "k2")
    assert previous_features(out, "k") is None  # the old key no longer vouches for the files
    assert previous_features(out, "k2") is None
