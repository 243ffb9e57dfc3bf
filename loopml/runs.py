"""What a training run records in MLflow: one parent run per run, its context (params, data
version, commit, dataset, GX docs, feature schema), and a child run per candidate with its
parameters, validation score, search trials (nested runs), per-epoch curves, the pyfunc model
(which bundles the fitted transformer, so it predicts on raw rows), and later its evaluation.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.candidates import LoggedCandidate, SkippedFit
from loopml.config import Params
from loopml.evaluation import Evaluation
from loopml.features import FeatureSet
from loopml.model_code import model_code
from loopml.modeldata import ModelData
from loopml.models import FitResult
from loopml.pyfunc import bundle, signature_example
from loopml.tracking import Tracking, flatten, git_commit

log = logging.getLogger(__name__)


def run_tags(params: Params, data_version: str | None = None) -> dict[str, str]:
    """Tags on every run and model version: commit, params digest, project, data version."""
    tags = {
        "loopml.git_commit": git_commit(params.root),
        "loopml.params_digest": params.digest(),
        "loopml.project": params.project.name,
    }
    if data_version:
        tags["loopml.data_version"] = data_version
    return tags


@contextmanager
def parent_run(
    tracking: Tracking, params: Params, name: str = "training", existing: str | None = None
) -> Iterator[str]:
    """The run's parent MLflow run, ended FAILED if anything inside raises; or ``existing``
    (a parent opened by an enclosing flow), which is left for its owner to end."""
    if existing is not None:
        yield existing
        return
    client = tracking.client()
    run = client.create_run(tracking.experiment_id, run_name=name, tags=run_tags(params))
    run_id = run.info.run_id
    try:
        yield run_id
    except BaseException:
        try:
            client.set_terminated(run_id, status="FAILED")
        except Exception as err:  # the store itself may be what failed: keep the first error
            log.warning("could not mark MLflow run %s FAILED: %s", run_id, err)
        raise
    client.set_terminated(run_id, status="FINISHED")


def log_run_context(tracking: Tracking, run_id: str, params: Params, features: FeatureSet) -> None:
    """Params (flattened), data version and commit, the dataset input, GX docs, feature schema."""
    import mlflow

    tracking.activate()
    data_version = features.data_version
    sample = pd.read_parquet(features.path("train.parquet")).head(1000)
    with mlflow.start_run(run_id=run_id), _quiet_mlflow():
        flat = flatten("", params.model_dump(mode="json", by_alias=True))
        mlflow.log_params({k: v for k, v in flat.items() if not k.startswith("paths.")})
        mlflow.set_tags(run_tags(params, data_version))
        dataset = mlflow.data.from_pandas(
            sample,
            source=str(params.path("snapshots") / f"{data_version}.parquet"),
            name=f"{params.project.name}-snapshot",
            digest=data_version[:36],
            targets=params.data.table.target,
        )
        mlflow.log_input(dataset, context="training")
        validation_dir = params.path("validation")
        if validation_dir.is_dir():
            mlflow.log_artifacts(str(validation_dir), artifact_path="validation")
        mlflow.log_artifact(str(features.path("features.json")), artifact_path="features")


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Integer columns are typed on purpose (see signature_example); the model is cloudpickled
    on purpose (it carries the fitted transformer). MLflow's warnings about both are noise here."""
    logger = logging.getLogger("mlflow.pyfunc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ii]nteger column.*")
            warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*")
            yield
    finally:
        logger.setLevel(level)


def pip_requirements(kind: str) -> list[str]:
    from importlib.metadata import version

    pkgs = ["scikit-learn", "pandas", "numpy", "pyarrow", "cloudpickle", "pydantic", "pyyaml"]
    if kind == "lightning":
        pkgs += ["torch", "pytorch-lightning"]
    return [f"{p}=={version(p)}" for p in pkgs]


def _log_fit_details(
    client: Any, experiment_id: str, run_id: str, fit: FitResult, metric: str
) -> None:
    """Parameters, validation score, per-epoch curves (one call) and search trials."""
    import mlflow
    from mlflow.entities import Metric, Param

    mlflow.log_params(
        {
            "model.kind": fit.kind,
            "model.encoding": fit.encoding,
            **{f"model.{k}": str(v)[:500] for k, v in fit.params.items()},
        }
    )
    mlflow.set_tag("loopml.out_of_time", str(fit.out_of_time).lower())
    mlflow.log_metrics({f"val_{metric}": fit.val_score, "fit_seconds": fit.fit_seconds})
    now = int(time.time() * 1000)
    history = [
        Metric(key=k, value=float(v), timestamp=now, step=int(row.get("epoch", 0)))
        for row in fit.history
        for k, v in row.items()
        if k != "epoch" and np.isfinite(v)
    ]
    if history:
        client.log_batch(run_id, metrics=history)
    for i, trial in enumerate(fit.trials):  # nested runs in the candidate's own experiment
        nested = client.create_run(
            experiment_id,
            run_name=f"{fit.name}-trial-{i}",
            tags={"mlflow.parentRunId": run_id, "loopml.trial": str(i)},
        ).info.run_id
        client.log_batch(
            nested,
            metrics=[
                Metric(f"val_{metric}", trial.val_score, now, 0),
                Metric("fit_seconds", trial.seconds, now, 0),
            ],
            params=[Param(k, str(v)[:500]) for k, v in trial.params.items()],
        )
        client.set_terminated(nested)


def log_candidate(
    fit: FitResult | SkippedFit,
    data: ModelData,
    params: Params,
    tracking: Tracking,
    parent_run_id: str,
) -> LoggedCandidate | SkippedFit:
    """A child run of ``parent_run_id`` for a fitted candidate, with its pyfunc model; for a
    skipped one, a child run tagged ``loopml.skipped`` (status KILLED) and no model."""
    import mlflow
    from mlflow.models import infer_signature

    tracking.activate()
    client = tracking.client()
    metric = params.primary_metric
    tags = {
        **run_tags(params, data.data_version),
        "mlflow.parentRunId": parent_run_id,
        "loopml.candidate": fit.name,
        "loopml.kind": fit.kind,
    }
    if isinstance(fit, SkippedFit):
        skipped = {"loopml.skipped": "train.time_budget", "loopml.out_of_time": "true"}
        run_id = client.create_run(
            tracking.experiment_id, run_name=fit.name, tags={**tags, **skipped}
        ).info.run_id
        client.set_terminated(run_id, status="KILLED")
        return replace(fit, run_id=run_id)
    child = client.create_run(tracking.experiment_id, run_name=fit.name, tags=tags)
    run_id = child.info.run_id
    with mlflow.start_run(run_id=run_id), model_code() as code:
        _log_fit_details(client, tracking.experiment_id, run_id, fit, metric)
        model = bundle(fit, data)
        example = signature_example(data.test_rows, data.input_kinds)
        with _quiet_mlflow():
            signature = infer_signature(example, model.predict(None, example))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(fit.kind),
                code_paths=[str(code)],
            )
    return LoggedCandidate(
        name=fit.name,
        kind=fit.kind,
        run_id=run_id,
        model_uri=info.model_uri,
        model_location=client.get_logged_model(info.model_id).artifact_location,
        val_score=fit.val_score,
        fit_key=fit.key,
        out_of_time=fit.out_of_time,
        encoding=fit.encoding,
    )


def log_evaluation(tracking: Tracking, run_id: str, evaluation: Evaluation) -> None:
    """Test metrics, the interval of the primary one, and the evaluation's files."""
    import mlflow

    tracking.activate()
    lo, hi = evaluation.ci
    primary = evaluation.primary
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(
            {
                **{f"test_{name}": value for name, value in evaluation.metrics.items()},
                f"test_{primary}_ci_low": lo,
                f"test_{primary}_ci_high": hi,
            }
        )
        with tempfile.TemporaryDirectory(prefix="loopml-eval-") as tmp:
            evaluation.write_artifacts(Path(tmp))
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
