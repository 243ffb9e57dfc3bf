"""train: fit every candidate declared in ``train.candidates`` and log each to MLflow.

Candidates: a dummy baseline, a linear model, histogram gradient boosting and a PyTorch
Lightning MLP. Each becomes a child MLflow run under the flow's parent run, with its parameters,
validation score, search trials (nested runs), per-epoch Lightning metrics and a pyfunc model that
bundles the fitted feature transformer, so it predicts on raw rows.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml.caching import fit_cache_key
from loopml.config import CandidateConfig, FeaturesConfig, LightningConfig, SchemaConfig
from loopml.models import FitResult, fit_candidate
from loopml.pyfunc import LoopmlModel, signature_example
from loopml.tracking import Tracking
from tasks.features import FeatureSet, transform

log = logging.getLogger(__name__)


@dataclass
class ModelData:
    """Model-ready matrices of one data version, and what is needed to serve raw rows."""

    task: str
    data_version: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_rows: pd.DataFrame
    transformer: Any
    input_kinds: dict[str, str]
    target: str
    classes: list[Any] | None
    fingerprint: str

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.x_train, self.y_train, self.x_val, self.y_val


def encode_target(values: pd.Series, classes: list[Any]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    codes = values.map(index)
    if codes.isna().any():
        unknown = sorted(map(str, pd.unique(values[codes.isna()])))[:5]
        raise ValueError(f"target has classes not seen in training: {unknown}")
    return codes.to_numpy(dtype=np.int64)


@task(name="prepare-model-data", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def prepare_model_data(
    features: FeatureSet, schema: SchemaConfig, features_cfg: FeaturesConfig
) -> ModelData:
    """Read the splits and the transformer; transform to float32 matrices; encode the target."""
    frames = {n: pd.read_parquet(features.path(f"{n}.parquet")) for n in ("train", "val", "test")}
    transformer = joblib.load(features.path("transformer.joblib"))
    target = schema.target
    if schema.task == "classification":
        classes = sorted(pd.unique(frames["train"][target].dropna()).tolist(), key=str)
        ys = {n: encode_target(f[target], classes) for n, f in frames.items()}
    else:
        classes = None
        ys = {n: f[target].to_numpy(dtype=float) for n, f in frames.items()}
    xs = {n: transform(transformer, f, schema) for n, f in frames.items()}
    return ModelData(
        task=schema.task,
        data_version=features.data_version,
        x_train=xs["train"],
        y_train=ys["train"],
        x_val=xs["val"],
        y_val=ys["val"],
        x_test=xs["test"],
        y_test=ys["test"],
        test_rows=frames["test"],
        transformer=transformer,
        input_kinds={c: schema.columns[c] for c in schema.feature_columns},
        target=target,
        classes=classes,
        fingerprint=hashlib.sha256(
            "|".join(
                [features.data_version, schema.model_dump_json(), features_cfg.model_dump_json()]
            ).encode()
        ).hexdigest()[:32],
    )


@task(name="train-candidate", cache_key_fn=fit_cache_key, persist_result=True)
def train_candidate(
    candidate: CandidateConfig,
    index: int,
    data: ModelData,
    metric: str,
    lightning: LightningConfig,
    seed: int,
) -> FitResult:
    """Fit one candidate on train (with its optional search), scored on validation."""
    return fit_candidate(
        candidate, index, data.matrices(), data.task, data.n_classes, metric, lightning, seed
    )


def build_model(fit: FitResult, data: ModelData) -> LoopmlModel:
    """The pyfunc model: transformer + estimator, predicting on raw rows."""
    return LoopmlModel(
        transformer=data.transformer,
        predictor=fit.predictor,
        task=data.task,
        input_kinds=data.input_kinds,
        classes=data.classes,
    )


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
            yield
    finally:
        logger.setLevel(level)


def pip_requirements(kind: str) -> list[str]:
    from importlib.metadata import version

    pkgs = ["scikit-learn", "pandas", "numpy", "pyarrow", "cloudpickle", "pydantic", "pyyaml"]
    if kind == "lightning":
        pkgs += ["torch", "pytorch-lightning"]
    return [f"{p}=={version(p)}" for p in pkgs]


@task(name="log-candidate", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def log_candidate(
    fit: FitResult,
    evaluation: Any,
    data: ModelData,
    tracking: Tracking,
    parent_run_id: str,
    tags: dict[str, str],
) -> dict[str, str]:
    """A child run for the candidate: params, metrics, trials, epochs, plots, pyfunc model."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.models import infer_signature

    import loopml

    tracking.activate()
    client = tracking.client()
    child = client.create_run(
        tracking.experiment_id,
        run_name=fit.name,
        tags={
            **tags,
            "mlflow.parentRunId": parent_run_id,
            "loopml.candidate": fit.name,
            "loopml.kind": fit.kind,
        },
    )
    run_id = child.info.run_id
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params(
            {"model.kind": fit.kind, **{f"model.{k}": str(v)[:500] for k, v in fit.params.items()}}
        )
        lo, hi = evaluation.ci
        mlflow.log_metrics(
            {
                f"val_{evaluation.primary}": fit.val_score,
                "fit_seconds": fit.fit_seconds,
                **{f"test_{name}": value for name, value in evaluation.metrics.items()},
                f"test_{evaluation.primary}_ci_low": lo,
                f"test_{evaluation.primary}_ci_high": hi,
            }
        )
        now = int(time.time() * 1000)
        history = [
            Metric(key=k, value=float(v), timestamp=now, step=int(row.get("epoch", 0)))
            for row in fit.history
            for k, v in row.items()
            if k != "epoch" and np.isfinite(v)
        ]
        if history:  # per-epoch curves in one call, not one database round trip per value
            client.log_batch(run_id, metrics=history)
        for i, trial in enumerate(fit.trials):
            with mlflow.start_run(
                run_name=f"{fit.name}-trial-{i}", nested=True, tags={"loopml.trial": str(i)}
            ):
                mlflow.log_params({k: str(v) for k, v in trial.params.items()})
                mlflow.log_metric(f"val_{evaluation.primary}", trial.val_score)
                mlflow.log_metric("fit_seconds", trial.seconds)
        with tempfile.TemporaryDirectory(prefix="loopml-eval-") as tmp:
            evaluation.write_artifacts(Path(tmp))
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
        model = build_model(fit, data)
        example = signature_example(data.test_rows, data.input_kinds)
        with _quiet_mlflow():
            signature = infer_signature(example, model.predict(None, example))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=model,
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(fit.kind),
                code_paths=[str(Path(loopml.__file__).parent)],
            )
    return {"run_id": run_id, "model_uri": info.model_uri, "name": fit.name}
