"""The summary of a training run: candidates with their scores and runs, the decision, links.
Rendered as Markdown for the Prefect artifact and the command line."""

from __future__ import annotations

from dataclasses import dataclass

from loopml.candidates import TrainedCandidates
from loopml.evaluation import Evaluation
from loopml.features import FeatureSet
from loopml.promotion import Decision
from loopml.tracking import Tracking


@dataclass(frozen=True)
class CandidateSummary:
    name: str
    kind: str
    val: float
    test: float
    ci: tuple[float, float]
    run_id: str
    run_url: str


@dataclass(frozen=True)
class TrainingResult:
    data_version: str
    metric: str
    best: str
    best_index: int
    candidates: list[CandidateSummary]
    decision: Decision | None
    parent_run_id: str
    parent_run_url: str
    model_url: str | None
    features: FeatureSet
    metrics_file: str

    @property
    def markdown(self) -> str:
        """The summary as Markdown (the Prefect artifact, the command line)."""
        return _markdown(self)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.4f}"


def _markdown(result: TrainingResult) -> str:
    metric = result.metric
    lines = [
        "# loopml training run",
        "",
        f"- data version (DVC): `{result.data_version}`",
        f"- MLflow run: [{result.parent_run_id[:12]}]({result.parent_run_url})",
        f"- selected by validation {metric}: **{result.best}**",
        "",
        f"| candidate | kind | val {metric} | test {metric} | 95% CI | run |",
        "|---|---|---:|---:|---|---|",
    ]
    for i, c in enumerate(result.candidates):
        mark = " **(best)**" if i == result.best_index else ""
        lines.append(
            f"| {c.name}{mark} | {c.kind} | {_fmt(c.val)} | {_fmt(c.test)} | "
            f"{_fmt(c.ci[0])}-{_fmt(c.ci[1])} | [{c.run_id[:8]}]({c.run_url}) |"
        )
    decision = result.decision
    if decision is not None:
        verdict = "promoted to **champion**" if decision.promoted else "kept as **challenger**"
        lines += [
            "",
            f"## {decision.model_name} v{decision.version}: {verdict}",
            f"[model version]({result.model_url})",
            "",
            *[f"- {r}" for r in decision.reasons],
        ]
    return "\n".join(lines)


def summarize(
    tracking: Tracking,
    trained: TrainedCandidates,
    evaluations: list[Evaluation],
    decision: Decision | None,
    features: FeatureSet,
    metrics_file: str,
) -> TrainingResult:
    """The run's summary, with links into the MLflow UI of the store the run used."""
    candidates = [
        CandidateSummary(
            name=c.name,
            kind=c.kind,
            val=c.val_score,
            test=e.test_score,
            ci=e.ci,
            run_id=c.run_id,
            run_url=tracking.run_url(c.run_id),
        )
        for c, e in zip(trained.candidates, evaluations, strict=True)
    ]
    return TrainingResult(
        data_version=trained.data_version,
        metric=trained.metric,
        best=trained.selected.name,
        best_index=trained.best,
        candidates=candidates,
        decision=decision,
        parent_run_id=trained.parent_run_id,
        parent_run_url=tracking.run_url(trained.parent_run_id),
        model_url=tracking.model_url(decision.model_name, decision.version) if decision else None,
        features=features,
        metrics_file=metrics_file,
    )
