"""The summary of a training run: every metric of every candidate, the interval of the primary
one, the chosen model, the decision with its reasons, and where to see it all in the MLflow UI of
the store this run used. Rendered as Markdown for the Prefect artifact and the command line."""

from __future__ import annotations

from dataclasses import dataclass

from loopml.candidates import TrainedCandidates
from loopml.evaluation import Evaluated
from loopml.features import FeatureSet
from loopml.promotion import Decision
from loopml.secrets import redact_url
from loopml.tracking import Tracking


@dataclass(frozen=True)
class CandidateSummary:
    name: str
    kind: str
    out_of_time: bool
    val: float
    test: float
    ci: tuple[float, float]
    metrics: dict[str, float]
    """Every test metric of the task."""
    run_id: str
    run_url: str


@dataclass(frozen=True)
class TrainingResult:
    data_version: str
    metric: str
    confidence: float
    best: str
    best_index: int
    candidates: list[CandidateSummary]
    decision: Decision | None
    parent_run_id: str
    parent_run_url: str
    model_url: str | None
    ui_hint: str
    """How to open the MLflow UI of the store this run used."""
    features: FeatureSet
    metrics_file: str
    skipped: tuple[str, ...] = ()
    """Candidates not trained: ``train.time_budget`` ran out before they started."""

    @property
    def markdown(self) -> str:
        """The summary as Markdown (the Prefect artifact, the command line)."""
        return "\n".join([*_header(self), *_metrics_table(self), *_decision(self)])


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.4f}"


def _header(r: TrainingResult) -> list[str]:
    return [
        "# loopml training run",
        "",
        f"- data version (DVC): `{r.data_version}`",
        f"- MLflow run: [{r.parent_run_id[:12]}]({r.parent_run_url}) ({r.ui_hint})",
        f"- selected by validation {r.metric}: **{r.best}**",
        *(
            [f"- skipped, `train.time_budget` ran out before they started: {', '.join(r.skipped)}"]
            if r.skipped
            else []
        ),
        "",
    ]


def _metrics_table(r: TrainingResult) -> list[str]:
    """Metrics as rows, candidates as columns (the best marked), the interval under the
    primary metric, runs last."""
    names = [
        f"{c.name} (best)" if i == r.best_index else c.name for i, c in enumerate(r.candidates)
    ]
    lines = [
        f"| metric | {' | '.join(names)} |",
        f"|---|{'---:|' * len(names)}",
        f"| val {r.metric} | {' | '.join(_fmt(c.val) for c in r.candidates)} |",
    ]
    keys = [r.metric, *sorted(k for k in r.candidates[0].metrics if k != r.metric)]
    for key in keys:
        values = " | ".join(_fmt(c.metrics.get(key)) for c in r.candidates)
        lines.append(f"| test {key} | {values} |")
        if key == r.metric:
            cis = " | ".join(f"{_fmt(c.ci[0])}-{_fmt(c.ci[1])}" for c in r.candidates)
            lines.append(f"| {r.confidence:.0%} interval | {cis} |")
    kinds = [f"{c.kind} (out of time)" if c.out_of_time else c.kind for c in r.candidates]
    lines.append(f"| kind | {' | '.join(kinds)} |")
    lines.append(f"| run | {' | '.join(f'[{c.run_id[:8]}]({c.run_url})' for c in r.candidates)} |")
    return lines


def _decision(r: TrainingResult) -> list[str]:
    d = r.decision
    if d is None:
        return []
    if not d.version:
        return ["", "## dry run: nothing registered", "", *[f"- {reason}" for reason in d.reasons]]
    verdict = "promoted to **champion**" if d.promoted else "kept as **challenger**"
    return [
        "",
        f"## {d.model_name} v{d.version}: {verdict}",
        f"[model version]({r.model_url})",
        "",
        *[f"- {reason}" for reason in d.reasons],
    ]


def ui_hint(tracking: Tracking, params_file: str) -> str:
    """Where the UI is: the tracking server, or `loopml ui` on this run's embedded store."""
    if tracking.served:
        return f"MLflow UI at {tracking.ui_url}"
    return f"store {redact_url(tracking.uri)}: open it with `loopml ui -p {params_file}`"


def summarize(
    tracking: Tracking,
    trained: TrainedCandidates,
    evaluated: Evaluated,
    decision: Decision | None,
    features: FeatureSet,
    params_file: str,
) -> TrainingResult:
    """The run's summary, with links into the MLflow UI of the store the run used."""
    candidates = [
        CandidateSummary(
            name=c.name,
            kind=c.kind,
            out_of_time=c.out_of_time,
            val=c.val_score,
            test=e.test_score,
            ci=e.ci,
            metrics=dict(e.metrics),
            run_id=c.run_id,
            run_url=tracking.run_url(c.run_id),
        )
        for c, e in zip(trained.candidates, evaluated.evaluations, strict=True)
    ]
    return TrainingResult(
        data_version=trained.data_version,
        metric=trained.metric,
        confidence=evaluated.best.confidence,
        best=trained.selected.name,
        best_index=trained.best,
        candidates=candidates,
        decision=decision,
        parent_run_id=trained.parent_run_id,
        parent_run_url=tracking.run_url(trained.parent_run_id),
        model_url=tracking.model_url(decision.model_name, decision.version) if decision else None,
        ui_hint=ui_hint(tracking, params_file),
        features=features,
        metrics_file=evaluated.metrics_file,
        skipped=tuple(trained.skipped),
    )
