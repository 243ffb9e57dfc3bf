"""The candidates of a training run as MLflow holds them: what evaluation, promotion and the
DVC evaluate stage (through ``paths.models``) read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from loopml.io import read_json, write_json
from loopml.metrics import select_best


@dataclass(frozen=True)
class LoggedCandidate:
    """A fitted candidate in MLflow."""

    name: str
    kind: str
    run_id: str
    model_uri: str
    """What the registry registers (``models:/m-...``)."""
    model_location: str
    """Where its artifacts are, as the tracking store resolves it (what loaders read)."""
    val_score: float
    fit_key: str
    """Identity of the fit (data, candidate, settings, seed, code): the evaluation cache key."""
    out_of_time: bool = False
    """Its time budget ran out (it is still a candidate, with the best it reached)."""
    encoding: str = "onehot"
    """The feature representation it was fitted on (:data:`loopml.features.ENCODINGS`)."""


@dataclass(frozen=True)
class SkippedFit:
    """A candidate not trained: ``train.time_budget`` had run out before it started."""

    name: str
    kind: str
    run_id: str = ""
    """Its MLflow child run (tagged ``loopml.skipped``), once logged."""


@dataclass(frozen=True)
class TrainedCandidates:
    """Every candidate of one training run, and the one selected by validation score."""

    parent_run_id: str
    data_version: str
    metric: str
    candidates: list[LoggedCandidate]
    best: int
    skipped: list[str] = field(default_factory=list)
    """Candidates not trained: ``train.time_budget`` ran out before they started."""

    @property
    def selected(self) -> LoggedCandidate:
        return self.candidates[self.best]

    def write(self, path: Path) -> Path:
        return write_json(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> TrainedCandidates:
        raw = read_json(path)
        return cls(**{**raw, "candidates": [LoggedCandidate(**c) for c in raw["candidates"]]})


def record_candidates(
    logged: list[LoggedCandidate | SkippedFit],
    parent_run_id: str,
    data_version: str,
    metric: str,
    path: Path,
) -> TrainedCandidates:
    """Select the best trained candidate by validation score and write the record (the skipped
    ones by name) to ``path``."""
    candidates = [c for c in logged if isinstance(c, LoggedCandidate)]
    trained = TrainedCandidates(
        parent_run_id=parent_run_id,
        data_version=data_version,
        metric=metric,
        candidates=candidates,
        best=select_best([c.val_score for c in candidates], metric),
        skipped=[c.name for c in logged if isinstance(c, SkippedFit)],
    )
    trained.write(path)
    return trained
