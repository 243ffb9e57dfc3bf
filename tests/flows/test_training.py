"""The training flow under a real Prefect API (test harness), with real DVC and GX."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from flows.training import training
from loopml.datagen import generate_churn
from loopml.exceptions import DataValidationError
from tests.conftest import small_params

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _snapshot_files(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "data" / "snapshots").glob("*.parquet"))


def test_bundled_data_to_versioned_validated_features(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params = write_params()
    first = training(params_path=str(params)).features

    version = first.data_version
    snapshot = dvc_repo / "data" / "snapshots" / f"{version}.parquet"
    assert snapshot.is_file() and (snapshot.parent / f"{snapshot.name}.dvc").is_file()
    assert (
        dvc_repo / ".dvcstore" / "files" / "md5" / version[:2] / version[2:]
    ).is_file()  # pushed
    assert (dvc_repo / "gx" / "suite.json").is_file()
    summary = json.loads((dvc_repo / "data" / "validation" / "summary.json").read_text())
    assert summary == {**summary, "snapshot": version, "success": True, "blocking": []}
    features = dvc_repo / "data" / "features"
    for name in (
        "train.parquet",
        "val.parquet",
        "test.parquet",
        "transformer.joblib",
        "features.json",
    ):
        assert (features / name).is_file(), name
    assert first.sizes == {"train": 2100, "val": 450, "test": 450}

    # Same data: same DVC hash, no new snapshot.
    second = training(params_path=str(params)).features
    assert second.data_version == version
    assert _snapshot_files(dvc_repo) == [f"{version}.parquet"]

    # Different data: a new version beside the old one.
    third = training(
        params_path=str(params), overrides={"data": {"source": {"generator": {"seed": 99}}}}
    ).features
    assert third.data_version != version
    assert _snapshot_files(dvc_repo) == sorted(
        [f"{version}.parquet", f"{third.data_version}.parquet"]
    )


def test_corrupted_batch_stops_at_validate(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params = write_params()
    training(params_path=str(params))  # the first good batch profiles the suite
    features = dvc_repo / "data" / "features"
    for f in features.iterdir():
        f.unlink()
    features.rmdir()

    bad = generate_churn(3000, seed=5, id_start=50_000)
    bad.loc[np.random.default_rng(0).random(len(bad)) < 0.4, "monthly_charges"] = np.nan
    bad["age"] = bad["age"].astype(object)
    bad.loc[bad.index[:10], "age"] = "unknown"
    bad.loc[bad.index[:20], "customer_id"] = 50_000
    bad_file = dvc_repo / "incoming.csv"
    bad.to_csv(bad_file, index=False)

    with pytest.raises(DataValidationError) as info:
        training(
            params_path=str(params),
            overrides={"data": {"source": {"kind": "file", "file": {"path": str(bad_file)}}}},
        )
    message = str(info.value)
    for expected in ("monthly_charges", "[nulls]", "[types] column 'age'", "[unique_id]"):
        assert expected in message, expected
    assert len(info.value.failures) >= 3
    quarantined = Path(info.value.quarantined_to)
    assert quarantined.is_file() and quarantined.parent == dvc_repo / "data" / "quarantine"
    assert (quarantined.parent / f"{quarantined.name}.dvc").is_file()
    assert not (dvc_repo / "data" / "snapshots" / quarantined.name).exists()
    assert not features.exists()  # no features from bad data


def test_a_wrongly_declared_type_stops_the_first_run_naming_the_column(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    """A coded categorical declared ``integer`` on a new project (no suite yet): the type
    check names the column before any profile, features or model exist."""
    raw = small_params()
    raw["data"]["schema"]["columns"]["plan"] = "integer"
    params = write_params(raw)
    with pytest.raises(DataValidationError) as info:
        training(params_path=str(params))
    message = str(info.value)
    assert "[types] column 'plan': declared integer, found text" in message, message
    assert not (dvc_repo / "gx" / "suite.json").exists()  # nothing profiled from it
    assert not (dvc_repo / "data" / "features").exists()
    assert not (dvc_repo / "data" / "models").exists() and not (dvc_repo / "reports").exists()


def test_the_flow_refuses_an_invalid_run_before_it_starts(tmp_path: Path) -> None:
    """Prefect validates the typed parameter against the model: the key is named."""
    from prefect.exceptions import ParameterTypeError

    from flows.monitoring import monitoring
    from flows.scoring import batch_scoring

    params = str(_params_file(tmp_path))
    with pytest.raises(ParameterTypeError, match="max_epochs"):
        training(params_path=params, run={"train": {"max_epochs": 0}})
    with pytest.raises(ParameterTypeError, match="window_rows"):
        monitoring(params_path=params, run={"window_rows": 1})
    with pytest.raises(ParameterTypeError, match="alias"):
        batch_scoring(params_path=params, run={"alias": ["champion"]})
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlruns").exists()


def _params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(small_params()))
    return path
