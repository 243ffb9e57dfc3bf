"""Features: a transformer fitted on train only, raw rows in, float32 matrices out, on disk."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from loopml.config import FeaturesConfig, SchemaConfig, SplitConfig
from loopml.datagen import SCHEMA, generate_churn
from loopml.features import (
    fit_sample,
    fit_transformer,
    fit_transformers,
    load_feature_set,
    transform,
    write_features,
)
from loopml.splits import split_frame

SCHEMA_CFG = SchemaConfig(
    columns=SCHEMA,
    target="churned",
    id_column="customer_id",
    time_column="event_time",
    drop_columns=["next_month_spend"],
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_churn(5000, seed=9).sample(frac=1.0, random_state=0)  # shuffled on purpose


def test_transformer_handles_missing_unseen_and_outliers(frame: pd.DataFrame) -> None:
    s = split_frame(frame=frame, schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    before = s.train.copy()
    t = fit_transformer(train=s.train, schema=SCHEMA_CFG, cfg=FeaturesConfig())
    pd.testing.assert_frame_equal(s.train, before)  # input not mutated
    rows = s.test.head(5).copy()
    rows.loc[rows.index[0], "country"] = "Atlantis"  # unseen category
    rows.loc[rows.index[1], ["age", "nps_score", "monthly_charges"]] = np.nan
    rows.loc[rows.index[2], "monthly_charges"] = 1e9  # outlier is clipped
    rows["autopay"] = rows["autopay"].astype(object)
    rows.loc[rows.index[3], "autopay"] = None
    out = transform(t, rows, SCHEMA_CFG)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    names = list(t.get_feature_names_out())
    assert out.shape == (5, len(names))
    charges = names.index("num__monthly_charges")
    assert out[2, charges] == pytest.approx(out[:, charges].max()) and out[2, charges] < 50
    assert any(n.startswith("date__event_time_") for n in names)
    assert "num__missingindicator_nps_score" in names


def test_transformer_is_fitted_on_train_only(frame: pd.DataFrame) -> None:
    s = split_frame(frame=frame, schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    t = fit_transformer(train=s.train, schema=SCHEMA_CFG, cfg=FeaturesConfig())
    scaler = t.named_transformers_["num"].named_steps["scale"]
    numeric = SCHEMA_CFG.features_of("numeric") + SCHEMA_CFG.features_of("integer")
    clipped = s.train[numeric].clip(
        t.named_transformers_["num"].named_steps["clip"].low_,
        t.named_transformers_["num"].named_steps["clip"].high_,
        axis=1,
    )
    imputed_mean = clipped.fillna(clipped.median()).mean().to_numpy()
    np.testing.assert_allclose(scaler.mean_[: len(numeric)], imputed_mean, rtol=1e-6)


def test_write_features_round_trip(tmp_path: Path, frame: pd.DataFrame) -> None:
    s = split_frame(frame=frame, schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    both = fit_transformers(train=s.train, schema=SCHEMA_CFG, cfg=FeaturesConfig())
    t = both.onehot
    fs = write_features(
        splits=s, transformers=both, out_dir=tmp_path / "f", data_version="abc", schema=SCHEMA_CFG
    )
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [
        "features.json",
        "test.parquet",
        "train.parquet",
        "transformer.joblib",
        "transformer.ordinal.joblib",
        "val.parquet",
        "x_test.npy",
        "x_test.ordinal.npy",
        "x_train.npy",
        "x_train.ordinal.npy",
        "x_val.npy",
        "x_val.ordinal.npy",
        "y_test.npy",
        "y_train.npy",
        "y_val.npy",
    ]
    assert fs.classes == [False, True]
    np.testing.assert_array_equal(np.load(fs.path("x_test.npy")), transform(t, s.test, SCHEMA_CFG))
    np.testing.assert_array_equal(np.load(fs.path("y_test.npy")), s.test["churned"].astype(int))
    again = load_feature_set(tmp_path / "f")
    assert again == fs
    loaded = joblib.load(fs.path("transformer.joblib"))
    test = pd.read_parquet(fs.path("test.parquet"))
    np.testing.assert_allclose(
        transform(loaded, test, SCHEMA_CFG), transform(t, s.test, SCHEMA_CFG)
    )


def test_transformers_are_fitted_on_a_seeded_sample_and_transform_every_row(
    frame: pd.DataFrame,
) -> None:
    s = split_frame(frame=frame, schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    cfg = FeaturesConfig(fit_rows=1000)
    assert len(s.train) > 1000
    sample = fit_sample(s.train, fit_rows=1000, seed=7)
    assert len(sample) == 1000 and sample.index.isin(s.train.index).all()
    assert fit_sample(s.train, fit_rows=None, seed=7) is s.train
    assert fit_sample(s.train, fit_rows=len(s.train), seed=7) is s.train

    both = fit_transformers(train=s.train, schema=SCHEMA_CFG, cfg=cfg, seed=7)
    scaler = both.onehot.named_transformers_["num"].named_steps["scale"]
    assert scaler.n_samples_seen_ == 1000  # fitted on the sample ...
    assert transform(both.onehot, s.train, SCHEMA_CFG).shape[0] == len(s.train)  # ... every row
    again = fit_transformers(train=s.train, schema=SCHEMA_CFG, cfg=cfg, seed=7)
    np.testing.assert_array_equal(
        transform(again.ordinal, s.test, SCHEMA_CFG), transform(both.ordinal, s.test, SCHEMA_CFG)
    )
    other = fit_transformers(train=s.train, schema=SCHEMA_CFG, cfg=cfg, seed=8)
    assert not np.array_equal(
        transform(other.onehot, s.test, SCHEMA_CFG), transform(both.onehot, s.test, SCHEMA_CFG)
    )


def test_values_validation_was_told_to_let_through_are_refused_by_name(
    frame: pd.DataFrame,
) -> None:
    """With `validate.severity.finite` or `types` off, the features stage still refuses
    unusable values, naming each column, instead of scikit-learn's traceback."""
    from loopml.exceptions import DataValidationError

    s = split_frame(frame=frame, schema=SCHEMA_CFG, cfg=SplitConfig(), seed=1)
    train = s.train.copy()
    train.loc[train.index[:3], "monthly_charges"] = np.inf
    train["age"] = train["age"].astype(object)
    train.loc[train.index[0], "age"] = "unknown"
    with pytest.raises(DataValidationError) as info:
        fit_transformers(train, SCHEMA_CFG, FeaturesConfig())
    message = str(info.value)
    assert "column 'monthly_charges': 3 non-finite value(s)" in message, message
    assert "column 'age': declared numeric but holds object values" in message, message
