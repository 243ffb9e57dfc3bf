"""evaluate: test-split metrics, bootstrap intervals, plots, permutation importance, worst errors.

Also writes the DVC metrics and plots files (``paths.reports``) so ``dvc metrics show`` and
``dvc plots show`` work.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml.caching import code_digest
from loopml.config import LOWER_IS_BETTER, EvaluateConfig
from loopml.io import write_json
from loopml.metrics import (
    bootstrap_interval,
    classification_metrics,
    fast_metric,
    regression_metrics,
)
from loopml.models import FitResult
from loopml.pyfunc import LoopmlModel
from tasks.train import ModelData, build_model

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    candidate: str
    primary: str
    metrics: dict[str, float]
    ci: tuple[float, float]
    val_score: float
    importance: pd.DataFrame | None = None
    worst: pd.DataFrame | None = None
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
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


def _score(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    return (
        classification_metrics(y, output)
        if task == "classification"
        else regression_metrics(y, output)
    )


def permutation_importance(
    model: LoopmlModel,
    rows: pd.DataFrame,
    y: np.ndarray,
    task: str,
    metric: str,
    repeats: int,
    seed: int,
) -> pd.DataFrame:
    """Drop of ``metric`` when one raw input column is shuffled (positive = the model uses it).

    The first shuffle of each column goes through the feature transformer and shows which model
    features depend on that column; further shuffles permute those features' rows directly
    (the same result, since each such feature is a function of that column alone) and skip the
    transformer. Where a feature depends on several columns, every shuffle is transformed.
    """
    rng = np.random.default_rng(seed)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    x = model.features(rows)
    base = _metric(model, x, y, task, metric)
    columns = list(model.input_kinds)
    first: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    owners = np.zeros(x.shape[1], dtype=int)
    for col in columns:
        order = rng.permutation(len(rows))
        shuffled = rows.copy()
        shuffled[col] = shuffled[col].to_numpy()[order]
        xs = model.features(shuffled)
        block = np.flatnonzero(~(np.isclose(xs, x) | (np.isnan(xs) & np.isnan(x))).all(axis=0))
        owners[block] += 1
        first[col] = (xs, block)
    separable = bool((owners <= 1).all())
    records = []
    for col in columns:
        xs, block = first[col]
        drops = [sign * (base - _metric(model, xs, y, task, metric))]
        for _ in range(repeats - 1):
            order = rng.permutation(len(rows))
            if separable:
                xp = x.copy()
                xp[:, block] = x[order][:, block]
            else:
                shuffled = rows.copy()
                shuffled[col] = shuffled[col].to_numpy()[order]
                xp = model.features(shuffled)
            drops.append(sign * (base - _metric(model, xp, y, task, metric)))
        records.append(
            {"feature": col, "importance": float(np.mean(drops)), "std": float(np.std(drops))}
        )
    return pd.DataFrame(records).sort_values("importance", ascending=False, ignore_index=True)


def _metric(model: LoopmlModel, x: np.ndarray, y: np.ndarray, task: str, metric: str) -> float:
    """One metric of the model on already transformed features."""
    if task == "classification":
        output = model.predictor.predict_proba(x)
    else:
        output = np.asarray(model.predictor.predict(x), dtype=float)
    return fast_metric(metric, task, y, output)


def worst_errors(
    rows: pd.DataFrame, y: np.ndarray, output: np.ndarray, task: str, classes: list | None, n: int
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


def _curves(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, pd.DataFrame]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    if task == "regression":
        return {"residuals": pd.DataFrame({"predicted": output, "residual": y - output})}
    curves = {}
    if output.shape[1] == 2 and len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, output[:, 1])
        precision, recall, _ = precision_recall_curve(y, output[:, 1])
        prob_true, prob_pred = calibration_curve(y, output[:, 1], n_bins=10, strategy="quantile")
        step = max(1, len(fpr) // 500)
        curves["roc"] = pd.DataFrame({"fpr": fpr[::step], "tpr": tpr[::step]})
        step = max(1, len(recall) // 500)
        curves["pr"] = pd.DataFrame({"recall": recall[::step], "precision": precision[::step]})
        curves["calibration"] = pd.DataFrame({"predicted": prob_pred, "observed": prob_true})
    cm = confusion_matrix(y, output.argmax(axis=1), labels=np.arange(output.shape[1]))
    curves["confusion"] = pd.DataFrame(
        [
            {"actual": i, "predicted": j, "count": int(cm[i, j])}
            for i in range(len(cm))
            for j in range(len(cm))
        ]
    )
    return curves


def _figures(
    curves: dict[str, pd.DataFrame], importance: pd.DataFrame, classes: list | None, title: str
) -> dict[str, bytes]:
    import io

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    def png(fig: Any) -> bytes:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        return buf.getvalue()

    figs: dict[str, bytes] = {}
    if "roc" in curves:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(curves["roc"]["fpr"], curves["roc"]["tpr"])
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
        figs["roc_curve"] = png(fig)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(curves["pr"]["recall"], curves["pr"]["precision"])
        ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall: {title}")
        figs["pr_curve"] = png(fig)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(curves["calibration"]["predicted"], curves["calibration"]["observed"], "o-")
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set(
            xlabel="predicted probability",
            ylabel="observed frequency",
            title=f"Calibration: {title}",
        )
        figs["calibration_curve"] = png(fig)
    if "confusion" in curves:
        k = int(curves["confusion"]["actual"].max()) + 1
        cm = curves["confusion"]["count"].to_numpy().reshape(k, k)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.imshow(cm, cmap="Blues")
        labels = [str(c) for c in (classes or range(k))]
        ax.set_xticks(range(k), labels, rotation=45)
        ax.set_yticks(range(k), labels)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center")
        ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix: {title}")
        figs["confusion_matrix"] = png(fig)
    if "residuals" in curves:
        fig, ax = plt.subplots(figsize=(5, 4))
        sample = curves["residuals"].sample(min(5000, len(curves["residuals"])), random_state=0)
        ax.scatter(sample["predicted"], sample["residual"], s=4, alpha=0.4)
        ax.axhline(0, color="grey", linestyle="--")
        ax.set(xlabel="predicted", ylabel="actual - predicted", title=f"Residuals: {title}")
        figs["residuals"] = png(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    top = importance.head(15).iloc[::-1]
    ax.barh(top["feature"], top["importance"], xerr=top["std"])
    ax.set(xlabel="metric drop when shuffled", title=f"Permutation importance: {title}")
    figs["permutation_importance"] = png(fig)
    return figs


def _eval_key(context: Any, parameters: dict[str, Any]) -> str:
    fit, data = parameters["fit"], parameters["data"]
    parts = [
        data.fingerprint,
        fit.name,
        fit.kind,
        json.dumps(fit.params, sort_keys=True, default=str),
        repr(fit.val_score),
        parameters["cfg"].model_dump_json(),
        parameters["metric"],
        str(parameters["seed"]),
        code_digest(),
        "full" if "evaluation" in parameters else "metrics",
    ]
    return "eval-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@task(name="evaluate", cache_key_fn=_eval_key, persist_result=True)
def evaluate(
    fit: FitResult, data: ModelData, cfg: EvaluateConfig, metric: str, seed: int
) -> Evaluation:
    """Score a candidate on the held-out test split, from raw rows, as it will be served:
    every metric, a bootstrap interval of the primary one, and the curves behind the plots."""
    model = build_model(fit, data)
    output = model.predict_output(data.test_rows[list(data.input_kinds)])
    metrics = _score(data.task, data.y_test, output)
    ci = bootstrap_interval(
        metric, data.task, data.y_test, output, cfg.bootstrap_resamples, cfg.confidence, seed
    )
    log.info(
        "%s: test %s = %.4f (%.0f%% CI %.4f-%.4f)",
        fit.name,
        metric,
        metrics.get(metric, float("nan")),
        cfg.confidence * 100,
        ci[0],
        ci[1],
    )
    return Evaluation(
        candidate=fit.name,
        primary=metric,
        metrics=metrics,
        ci=ci,
        val_score=fit.val_score,
        curves=_curves(data.task, data.y_test, output),
    )


@task(name="analyze", cache_key_fn=_eval_key, persist_result=True)
def analyze(
    fit: FitResult,
    evaluation: Evaluation,
    data: ModelData,
    cfg: EvaluateConfig,
    metric: str,
    seed: int,
) -> Evaluation:
    """For the selected candidate: permutation importance, the worst errors, and the plots."""
    model = build_model(fit, data)
    rows = data.test_rows[list(data.input_kinds)]
    output = model.predict_output(rows)
    sample = rows.sample(min(cfg.permutation_max_rows, len(rows)), random_state=seed)
    y_sample = data.y_test[rows.index.get_indexer(sample.index)]
    importance = permutation_importance(
        model, sample, y_sample, data.task, metric, cfg.permutation_repeats, seed
    )
    worst = worst_errors(
        data.test_rows, data.y_test, output, data.task, data.classes, cfg.worst_errors
    )
    figures = _figures(evaluation.curves, importance, data.classes, fit.name) if cfg.plots else {}
    return Evaluation(
        candidate=evaluation.candidate,
        primary=evaluation.primary,
        metrics=evaluation.metrics,
        ci=evaluation.ci,
        val_score=evaluation.val_score,
        importance=importance,
        worst=worst,
        curves=evaluation.curves,
        figures=figures,
    )


@task(name="log-analysis", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def log_analysis(tracking: Any, run_id: str, analysis: Evaluation) -> None:
    """Attach the selected candidate's plots, importance and worst errors to its MLflow run."""
    import tempfile

    import mlflow

    tracking.activate()
    with (
        tempfile.TemporaryDirectory(prefix="loopml-analysis-") as tmp,
        mlflow.start_run(run_id=run_id),
    ):
        analysis.write_artifacts(Path(tmp))
        mlflow.log_artifacts(tmp, artifact_path="evaluation")


@task(name="write-reports", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def write_reports(best: Evaluation, evaluations: list[Evaluation], reports_dir: Path) -> Path:
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
    write_json(reports_dir / "metrics.json", payload)
    best.write_artifacts(reports_dir / "plots")
    return reports_dir / "metrics.json"


def load_metrics(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
