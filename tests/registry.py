"""A registry with two versions of a real model (no Prefect needed) for the serving tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from loopml.candidates import record_candidates
from loopml.config import load_params
from loopml.datagen import generate_churn
from loopml.evaluation import evaluate_candidate
from loopml.features import fit_transformers, write_features
from loopml.locks import Lock
from loopml.modeldata import load_model_data
from loopml.models import train_candidate
from loopml.promotion import Challenger, register_and_promote
from loopml.runs import log_candidate, parent_run
from loopml.schema import conform_frame
from loopml.splits import split_frame
from loopml.tracking import setup_tracking


def promotion_jobs(
    root: Path, raw: dict[str, Any], data_version: str, lock_url: str | None = None
) -> dict[str, Any]:
    """Features, trained and logged candidates, and the keyword arguments that promote each.

    Real parts throughout (GX is not involved): DVC-free features on disk, real fitting, a real
    MLflow SQLite store under ``root``; promotion itself is left to the caller.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(root / "params.yaml")
    table = params.data.table
    frame = conform_frame(generate_churn(3000, seed=4), table.columns)
    splits = split_frame(frame, table, params.features.split, seed=1)
    transformers = fit_transformers(splits.train, table, params.features)
    features = write_features(splits, transformers, root / "features", data_version, table)
    data = load_model_data(features, table, params.features)
    tracking = setup_tracking(params)
    jobs = {}
    with parent_run(tracking, params, name=data_version) as parent:
        logged = []
        for index, candidate in params.train.enabled:
            fit = train_candidate(candidate, index, data, "roc_auc", params.train.lightning, 1)
            logged.append(log_candidate(fit, data, params, tracking, parent))
        record_candidates(logged, parent, data_version, "roc_auc", root / "candidates.json")
    for candidate in logged:
        ev = evaluate_candidate(candidate, data, params.evaluate, "roc_auc", seed=1)
        challenger = Challenger(
            model_uri=candidate.model_uri,
            run_id=candidate.run_id,
            metrics=ev.metrics,
            tags={"loopml.params_digest": candidate.name, "loopml.data_version": data_version},
            fingerprint=f"{data_version}-{candidate.name}",
        )
        jobs[candidate.name] = dict(
            challenger=challenger,
            data=data,
            metric="roc_auc",
            cfg=params.promote,
            evaluate=params.evaluate,
            tracking=tracking,
            lock=Lock("promote", params.path("locks"), lock_url),
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
    raw["evaluate"]["bootstrap_resamples"] = 20
    built = promotion_jobs(root, raw, data_version="v-serving")
    versions = [register_and_promote(**job).version for job in built["jobs"].values()]
    return {
        "params": built["params"],
        "tracking": built["tracking"],
        "versions": versions,
        "test_rows": built["data"].test_rows,
    }


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_registry(tmp_path_factory.mktemp("serving") / "project")
