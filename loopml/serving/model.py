"""The served model: a registry version with its feature transform compiled for the fast path."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.registry import LoadedVersion, load_alias
from loopml.serving.fastmodel import Predict, compile_predictor
from loopml.serving.fastpath import CompiledFeatures, compile_features
from loopml.serving.inputs import Rows, rows_frame

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from loopml.pyfunc import LoopmlModel


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /model`` answers."""

    name: str
    version: str
    alias: str
    run_id: str
    data_version: str | None
    git_commit: str | None
    metrics: dict[str, float]
    task: str
    inputs: dict[str, str]
    fast_path: bool
    """The features are computed by the compiled transform (:mod:`loopml.serving.fastpath`)."""
    fast_predictor: bool
    """The estimator's prediction is compiled too (:mod:`loopml.serving.fastmodel`)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServedModel:
    version: str
    model: LoopmlModel
    required: frozenset[str]
    info: ModelInfo
    compiled: CompiledFeatures | None = None
    predict: Predict | None = None
    """The compiled estimator (only beside compiled features)."""

    def output(self, rows: Rows) -> np.ndarray:
        """Class probabilities (or predictions) for checked rows."""
        if self.compiled is None:
            return self.model.predict_output(rows_frame(rows, self.model.input_kinds))
        x = self.compiled(rows)
        if self.predict is not None:
            return self.predict(x)
        return self.model.output_of(x)


def serve_version(loaded: LoadedVersion, alias: str) -> ServedModel:
    """A loaded version ready to serve: its info, and the compiled fast path where it agrees."""
    compiled = compile_features(loaded.model)
    predict = None
    if compiled is not None:
        predict = compile_predictor(loaded.model.predictor, loaded.model.task, compiled.probe)
    info = ModelInfo(
        name=loaded.name,
        version=loaded.version,
        alias=alias,
        run_id=loaded.run_id,
        data_version=loaded.data_version,
        git_commit=loaded.tags.get("loopml.git_commit"),
        metrics=loaded.metrics,
        task=loaded.model.task,
        inputs=dict(loaded.model.input_kinds),
        fast_path=compiled is not None,
        fast_predictor=predict is not None,
    )
    return ServedModel(
        version=loaded.version,
        model=loaded.model,
        required=loaded.required,
        info=info,
        compiled=compiled,
        predict=predict,
    )


def load_served(client: MlflowClient, name: str, alias: str) -> ServedModel:
    return serve_version(load_alias(client, name, alias, verify=True), alias)
