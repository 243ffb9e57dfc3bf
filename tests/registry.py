"""A registry with two versions of a real model (no Prefect needed) for the serving tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from loopml.config import load_params
from loopml.datagen import generate_churn
from loopml.tracking import setup_tracking
from tasks.collect import conform
from tasks.evaluate import evaluate
from tasks.features import fit_transformer, split, write_features
from tasks.promote import register_and_promote
from tasks.train import log_candidate, prepare_model_data, train_candidate


def promotion_jobs(
    root: Path, raw: dict[str, Any], data_version: str, resamples: int
) -> dict[str, Any]:
    """Features, trained and logged candidates, and the keyword arguments that promote each.

    Real parts throughout (GX is not involved): DVC-free features on disk, real fitting, a real
    MLflow SQLite store under ``root``; promotion itself is left to the caller.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(root / "params.yaml")
    schema = params.data.schema_
    frame = conform.fn(frame=generate_churn(3000, seed=4), schema=schema, clean=params.data.clean)
    splits = split.fn(frame=frame, schema=schema, cfg=params.features.split, seed=1)
    transformer = fit_transformer.fn(train=splits.train, schema=schema, cfg=params.features)
    features = write_features.fn(
        splits=splits,
        transformer=transformer,
        out_dir=root / "features",
        data_version=data_version,
        schema=schema,
    )
    data = prepare_model_data.fn(features=features, schema=schema, features_cfg=params.features)
    tracking = setup_tracking(params)
    parent = tracking.client().create_run(tracking.experiment_id, run_name=data_version).info.run_id
    jobs = {}
    for index, candidate in enumerate(params.train.candidates):
        fit = train_candidate.fn(
            candidate=candidate,
            index=index,
            data=data,
            metric="roc_auc",
            lightning=params.train.lightning,
            seed=1,
        )
        ev = evaluate.fn(fit=fit, data=data, cfg=params.evaluate, metric="roc_auc", seed=1)
        tags = {"loopml.params_digest": candidate.name, "loopml.data_version": data_version}
        logged = log_candidate.fn(
            fit=fit, evaluation=ev, data=data, tracking=tracking, parent_run_id=parent, tags=tags
        )
        jobs[candidate.name] = dict(
            model_uri=logged["model_uri"],
            run_id=logged["run_id"],
            challenger_metrics=ev.metrics,
            data=data,
            metric="roc_auc",
            cfg=params.promote,
            tracking=tracking,
            tags=tags,
            lock_path=params.path("locks") / "promote.lock",
            resamples=resamples,
            seed=1,
        )
    return {"params": params, "tracking": tracking, "data": data, "jobs": jobs}


def build_registry(root: Path) -> dict[str, Any]:
    """Train two candidates on the bundled data; v1 (logreg) champion, v2 (hgb) registered."""
    from tests.conftest import small_params  # here, not at import: conftest imports this module

    raw = small_params()
    raw["train"]["candidates"] = [
        {"name": "logreg", "kind": "linear"},
        {"name": "hgb", "kind": "hist_gradient_boosting", "params": {"max_iter": 50}},
    ]
    raw["promote"]["floors"] = {}
    raw["promote"]["min_improvement"] = 1.0  # v2 never beats v1 on its own: tests move aliases
    built = promotion_jobs(root, raw, data_version="v-serving", resamples=20)
    versions = [register_and_promote.fn(**job).version for job in built["jobs"].values()]
    return {
        "params": built["params"],
        "tracking": built["tracking"],
        "versions": versions,
        "test_rows": built["data"].test_rows,
    }


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_registry(tmp_path_factory.mktemp("serving") / "project")
