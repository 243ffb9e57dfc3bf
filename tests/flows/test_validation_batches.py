"""The validate flow on a snapshot larger than ``validate.batch_rows``, under a real Prefect API
with real DVC and GX: the batches' results merged into one report, a repeat across batches
found, the batch quarantined."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from flows.data import collect, validate
from loopml.exceptions import DataValidationError

pytestmark = pytest.mark.usefixtures("prefect_harness")

BATCHED = {"validate": {"batch_rows": 1000, "data_docs": True}}  # 3,000 rows: three batches


def test_a_snapshot_is_validated_in_batches_and_a_repeat_across_them_is_blocked(
    dvc_repo: Path, write_params: Callable[..., Path]
) -> None:
    params = str(write_params(**BATCHED))
    validation = dvc_repo / "data" / "validation"
    batch = collect(params_path=params)
    report = validate(params_path=params, batch=batch)
    assert report.success and report.evaluated > 50
    result = json.loads((validation / "result.json").read_text())
    assert result["meta"] == {"rows": 3000, "batch_rows": 1000, "batches": 3}
    suite = json.loads((dvc_repo / "gx" / "suite.json").read_text())
    assert "1,000 of 3,000 rows" in suite["meta"]["sample"]
    assert not (validation / "docs").exists()  # no data docs of one batch for the whole

    frame = pd.read_parquet(batch.path)
    frame.loc[2999, "customer_id"] = frame.loc[0, "customer_id"]  # first batch's id, in the last
    incoming = dvc_repo / "incoming.parquet"
    frame.to_parquet(incoming, index=False)
    source = {"data": {"source": {"kind": "file", "file": {"path": str(incoming)}}}}
    repeated = collect(params_path=params, overrides=source)
    with pytest.raises(DataValidationError, match="column 'customer_id'") as raised:
        validate(params_path=params, overrides=source, batch=repeated)
    assert "[unique_id]" in str(raised.value)
    assert (dvc_repo / "data" / "quarantine" / f"{repeated.version}.parquet").is_file()
    assert not Path(repeated.path).exists()
    summary = json.loads((validation / "summary.json").read_text())
    assert summary["snapshot"] == repeated.version and not summary["success"]
