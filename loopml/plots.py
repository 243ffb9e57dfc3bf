"""Evaluation plots: the curves behind them (also DVC plot files) and the PNG figures."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

Curves = dict[str, pd.DataFrame]


def curves_for(task: str, y: np.ndarray, output: np.ndarray) -> Curves:
    """ROC, precision-recall, calibration and confusion (classification) or residuals."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    if task == "regression":
        return {"residuals": pd.DataFrame({"predicted": output, "residual": y - output})}
    curves: Curves = {}
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


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _line(curve: pd.DataFrame, x: str, y: str, diagonal: bool, **labels: str) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(curve[x], curve[y], "o-" if len(curve) <= 20 else "-")
    if diagonal:
        ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(**labels)
    return _png(fig)


def _confusion(curve: pd.DataFrame, classes: list[Any] | None, title: str) -> bytes:
    import matplotlib.pyplot as plt

    k = int(curve["actual"].max()) + 1
    cm = curve["count"].to_numpy().reshape(k, k)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    labels = [str(c) for c in (classes or range(k))]
    ax.set_xticks(range(k), labels, rotation=45)
    ax.set_yticks(range(k), labels)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center")
    ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix: {title}")
    return _png(fig)


def _residuals(curve: pd.DataFrame, title: str) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    sample = curve.sample(min(5000, len(curve)), random_state=0)
    ax.scatter(sample["predicted"], sample["residual"], s=4, alpha=0.4)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set(xlabel="predicted", ylabel="actual - predicted", title=f"Residuals: {title}")
    return _png(fig)


def _importance(importance: pd.DataFrame, title: str) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    top = importance.head(15).iloc[::-1]
    ax.barh(top["feature"], top["importance"], xerr=top["std"])
    ax.set(xlabel="metric drop when shuffled", title=f"Permutation importance: {title}")
    return _png(fig)


def figures_for(
    curves: Curves, importance: pd.DataFrame, classes: list[Any] | None, title: str
) -> dict[str, bytes]:
    """PNG figures of the curves and the permutation importance."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    draw: dict[str, Callable[[], bytes]] = {}
    if "roc" in curves:
        draw["roc_curve"] = lambda: _line(
            curves["roc"], "fpr", "tpr", True,
            xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}",
        )  # fmt: skip
        draw["pr_curve"] = lambda: _line(
            curves["pr"], "recall", "precision", False,
            xlabel="recall", ylabel="precision", title=f"Precision-recall: {title}",
        )  # fmt: skip
        draw["calibration_curve"] = lambda: _line(
            curves["calibration"], "predicted", "observed", True,
            xlabel="predicted probability", ylabel="observed frequency",
            title=f"Calibration: {title}",
        )  # fmt: skip
    if "confusion" in curves:
        draw["confusion_matrix"] = lambda: _confusion(curves["confusion"], classes, title)
    if "residuals" in curves:
        draw["residuals"] = lambda: _residuals(curves["residuals"], title)
    draw["permutation_importance"] = lambda: _importance(importance, title)
    return {name: make() for name, make in draw.items()}
