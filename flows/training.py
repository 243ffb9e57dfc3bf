"""The training flow: collect -> validate -> features (-> train -> evaluate -> promote).

Wiring only: every step is a task from ``tasks/``, called with keywords.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from loopml.config import load_params
from tasks.collect import conform, describe_source, read_source, write_snapshot
from tasks.features import FeatureSet, fit_transformer, split, write_features
from tasks.validate import enforce, load_or_create_suite, run_validation


@flow(name="training", log_prints=False)
def training(
    params_path: str = "params.yaml", overrides: dict[str, Any] | None = None
) -> FeatureSet:
    """Collect a batch, validate it with Great Expectations, build features.

    Args:
        params_path: the params.yaml to load.
        overrides: nested keys that replace those of params.yaml for this run,
            e.g. ``{"data": {"source": {"generator": {"n_rows": 5000}}}}``.
    """
    params = load_params(params_path, overrides)
    schema = params.data.schema_

    frame = read_source(source=params.data.source, root=params.root)
    frame = conform(frame=frame, schema=schema, clean=params.data.clean)
    snapshot = write_snapshot(
        frame=frame,
        snapshots_dir=params.path("snapshots"),
        current_pointer=params.path("current"),
        source=describe_source(params.data.source),
        versioning=params.data.versioning,
    )
    suite = load_or_create_suite(
        suite_path=params.path("suite"), frame=frame, schema=schema, cfg=params.validate_
    )
    report = run_validation(
        frame=frame,
        suite=suite,
        cfg=params.validate_,
        snapshot_version=snapshot.version,
        docs_dir=params.path("validation") / "docs" if params.validate_.data_docs else None,
    )
    enforce(
        report=report,
        snapshot_path=Path(snapshot.path),
        validation_dir=params.path("validation"),
        quarantine_dir=params.path("quarantine"),
    )
    splits = split(frame=frame, schema=schema, cfg=params.features.split, seed=params.project.seed)
    transformer = fit_transformer(train=splits.train, schema=schema, cfg=params.features)
    return write_features(
        splits=splits,
        transformer=transformer,
        out_dir=params.path("features"),
        data_version=snapshot.version,
        schema=schema,
    )
