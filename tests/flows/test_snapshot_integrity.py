"""A damaged snapshot under the stage flows and monitoring: restored from DVC when it can be,
one clear IntegrityError when it cannot."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.data import featurize
from flows.training import training
from loopml.config import load_params
from loopml.exceptions import IntegrityError
from loopml.monitoring.data import reference_data
from loopml.tracking import setup_tracking
from loopml.versioning import file_md5

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


def test_stage_flows_and_monitoring_verify_the_snapshot(
    write_params: Callable[..., Path],
) -> None:
    path = write_params(
        train={"candidates": [{"name": "logreg", "kind": "linear"}]}, promote={"floors": {}}
    )
    result = training(params_path=str(path))
    params = load_params(path)
    snapshot = params.path("snapshots") / f"{result.data_version}.parquet"
    client = setup_tracking(params).client()
    reference = lambda: reference_data(  # noqa: E731
        client, params.promote.model_name, params.path("snapshots"), params.data.table
    )

    _flip_a_byte(snapshot)  # the features stage (`dvc repro` runs it alone) restores it
    assert featurize(params_path=str(path)).data_version == result.data_version
    assert file_md5(snapshot) == result.data_version
    snapshot.write_bytes(snapshot.read_bytes()[:100])  # truncated: restored too
    assert featurize(params_path=str(path)).data_version == result.data_version
    assert file_md5(snapshot) == result.data_version

    snapshot.unlink()  # monitoring pulls the champion's training snapshot back
    assert len(reference().frame) > 0 and file_md5(snapshot) == result.data_version

    shutil.rmtree(params.root / ".dvc" / "cache")
    shutil.rmtree(params.root / ".dvcstore")
    _flip_a_byte(snapshot)
    with pytest.raises(IntegrityError, match=f"expected md5 {result.data_version}"):
        reference()
    with pytest.raises(IntegrityError, match=snapshot.name):  # no good copy: the stage stops
        featurize(params_path=str(path))
