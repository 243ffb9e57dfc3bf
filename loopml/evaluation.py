"""Evaluation: test-split metrics of a model (the logged model itself, its transform checked
against the stored test features), a bootstrap interval of the primary metric, the curves
behind the plots; for the selected candidate also permutation importance on raw rows, the worst
errors and the figures. DVC metrics and plots files too."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.candidates import LoggedCandidate
from loopml.config import EvaluateConfig
from loopml.importance import permutation_importance
from loopml.io import write_json
from loopml.metrics import bootstrap_interval, metrics_for
from loopml.modeldata import ModelData
from loopml.plots import Curves, curves_for, figures_for
from loopml.pyfunc import LoopmlModel
from loopml.registry import load_model

log = logging.getLogger(__name__)

CHECK_ROWS = 1_000
"""Test rows on which a logged model's own transform is compared with the stored test matrix
(the transform is row by row and fitted once, so a sample finds a model bundled with other
features)."""


@dataclass(frozen=True)
class Evaluation:
    candidate: str
    primary: str
    metrics: dict[str, float]
    ci: tuple[float, float]
    val_score: float
    confidence: float = 0.95
    """Of the interval ``ci``."""
    importance: pd.DataFrame | None = None
    worst: pd.DataFrame | None = None
    curves: Curves = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)

    @property
    def test_score(self) -> float:
        return self.metrics.get(self.primary, float("nan"))

    def write_artifacts(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(
            folder / "metrics.json",
            {"metrics": self.metrics, "ci": list(self.ci), "primary": self.primary},
        )
        if self.importance is not None:
            self.importance.to_csv(folder / "permutation_importance.csv", index=False)
        if self.worst is not None:
            self.worst.to_csv(folder / "worst_errors.csv", index=False)
        for name, frame in self.curves.items():
            frame.to_csv(folder / f"{name}.csv", index=False)
        for name, png in self.figures.items():
            (folder / f"{name}.png").write_bytes(png)


@dataclass(frozen=True)
class Evaluated:
    """Every candidate's evaluation, the selected one's analysis, the DVC metrics file."""

    evaluations: list[Evaluation]
    best: Evaluation
    metrics_file: str


def evaluate_candidate(
    candidate: LoggedCandidate,
    data: ModelData,
    cfg: EvaluateConfig,
    metric: str,
    seed: int,
    analyze: bool = False,
) -> Evaluation:
    """:func:`evaluate_output` of a logged candidate, loaded from its MLflow artifacts and
    predicting the raw test rows; with ``analyze`` (the selected candidate) also
    :func:`analyze_model`, on the same loaded model and predictions."""
    model, _ = load_model(candidate.model_location)
    output = output_on_test_split(model, data, candidate.encoding, seed)
    evaluation = evaluate_output(
        output, data, cfg, metric, seed, candidate.name, candidate.val_score
    )
    return analyze_model(model, evaluation, output, data, cfg, seed) if analyze else evaluation


def output_on_test_split(
    model: LoopmlModel, data: ModelData, encoding: str, seed: int
) -> np.ndarray:
    """The model's output for every test row, from the test matrix the features stage wrote
    for ``encoding`` when the model's own transform of the raw rows gives that matrix on a
    sample of :data:`CHECK_ROWS` rows (the features are then not computed again for each
    candidate); otherwise from the raw rows, as :meth:`LoopmlModel.predict_output` serves them.
    """
    rows = data.test_inputs
    enc = data.encodings.get(encoding)
    if enc is not None and enc.x_test is not None and len(enc.x_test) == len(rows):
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(rows), size=min(CHECK_ROWS, len(rows)), replace=False))
        own, stored = model.features(rows.iloc[pick]), np.asarray(enc.x_test[pick])
        if own.shape == stored.shape and np.allclose(
            own, stored, rtol=1e-6, atol=1e-6, equal_nan=True
        ):
            return model.output_of(np.array(enc.x_test))
        log.warning(
            "the model's own transform differs from the %s test matrix: evaluating from raw rows",
            encoding,
        )
    return model.predict_output(rows)


def evaluate_output(
    output: np.ndarray,
    data: ModelData,
    cfg: EvaluateConfig,
    metric: str,
    seed: int,
    candidate: str,
    val_score: float,
) -> Evaluation:
    """Every test metric, a bootstrap interval of ``metric`` and the curves of one model's
    predictions of the test rows (probabilities, or values for regression)."""
    metrics = metrics_for(data.task, data.y_test, output)
    ci = bootstrap_interval(
        metric, data.task, data.y_test, output, cfg.bootstrap_resamples, cfg.confidence, seed
    )
    log.info(
        "%s: test %s = %.4f (%.0f%% CI %.4f-%.4f)",
        candidate,
        metric,
        metrics.get(metric, float("nan")),
        cfg.confidence * 100,
        ci[0],
        ci[1],
    )
    return Evaluation(
        candidate=candidate,
        primary=metric,
        metrics=metrics,
        ci=ci,
        val_score=val_score,
        confidence=cfg.confidence,
        curves=curves_for(data.task, data.y_test, output),
    )


def analyze_model(
    model: LoopmlModel,
    evaluation: Evaluation,
    output: np.ndarray,
    data: ModelData,
    cfg: EvaluateConfig,
    seed: int,
) -> Evaluation:
    """The evaluation with permutation importance (on a sample of at most
    ``cfg.permutation_max_rows`` test rows), the worst errors and the figures; ``output`` is the
    model's prediction of every test row."""
    rows = data.test_inputs
    sample = rows.sample(min(cfg.permutation_max_rows, len(rows)), random_state=seed)
    y_sample = data.y_test[rows.index.get_indexer(sample.index)]
    importance = permutation_importance(
        model, sample, y_sample, evaluation.primary, cfg.permutation_repeats, seed
    )
    worst = worst_errors(
        data.test_rows, data.y_test, output, data.task, data.classes, cfg.worst_errors
    )
    figures = (
        figures_for(evaluation.curves, importance, data.classes, evaluation.candidate)
        if cfg.plots
        else {}
    )
    return replace(evaluation, importance=importance, worst=worst, figures=figures)


def worst_errors(
    rows: pd.DataFrame,
    y: np.ndarray,
    output: np.ndarray,
    task: str,
    classes: list[Any] | None,
    n: int,
) -> pd.DataFrame:
    out = rows.copy()
    if task == "classification":
        assert classes is not None
        p_true = output[np.arange(len(y)), y]
        out["predicted"] = np.asarray(classes, dtype=object)[output.argmax(axis=1)]
        out["p_true_class"] = p_true
        out["error"] = 1.0 - p_true
    else:
        out["predicted"] = output
        out["error"] = np.abs(output - y)
    return out.sort_values("error", ascending=False).head(n).reset_index(drop=True)


def write_reports(best: Evaluation, evaluations: list[Evaluation], reports_dir: Path) -> Evaluated:
    """DVC metrics (``metrics.json``) and plots (``plots/``) of the selected candidate."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "best": best.candidate,
        "primary_metric": best.primary,
        "test": best.metrics,
        "test_ci": {"low": best.ci[0], "high": best.ci[1]},
        "candidates": {
            e.candidate: {"val": e.val_score, "test": e.metrics.get(e.primary)} for e in evaluations
        },
    }
    metrics_file = write_json(reports_dir / "metrics.json", payload)
    best.write_artifacts(reports_dir / "plots")
    return Evaluated(evaluations=evaluations, best=best, metrics_file=str(metrics_file))
