"""The train stage's units of work: one per candidate, or, when candidates run in parallel (on
Dask), one per trial of a search; and the trials put back together as the candidate's fit, the
same fit a sequential search gives (the best trial, first in trial order on a tie)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from loopml.candidates import SkippedFit
from loopml.config import CandidateConfig
from loopml.metrics import is_better
from loopml.models import Allowance, FitResult, search_trials


@dataclass(frozen=True)
class FitPlan:
    """One submission of the train stage."""

    index: int
    """The candidate's index in ``train.candidates``."""
    candidate: CandidateConfig
    allowance: Allowance
    trial: int | None = None
    """One trial of its search (None: the whole candidate)."""


def plan_fits(
    enabled: list[tuple[int, CandidateConfig]],
    allowed: list[Allowance],
    per_trial: bool,
    seed: int,
) -> list[FitPlan]:
    """A plan per candidate, or with ``per_trial`` a plan per trial of each search, the whole
    candidates first (one of them is often the longest task: started last, it would finish
    alone). Only the first trial of a candidate that may not be skipped keeps that guarantee."""
    whole: list[FitPlan] = []
    trials: list[FitPlan] = []
    for (index, candidate), allowance in zip(enabled, allowed, strict=True):
        n = len(search_trials(candidate, seed)) if per_trial and candidate.search else 1
        if n == 1:
            whole.append(FitPlan(index, candidate, allowance))
            continue
        trials += [
            FitPlan(index, candidate, replace(allowance, skippable=allowance.skippable or t > 0), t)
            for t in range(n)
        ]
    return whole + trials


def merge_trials(
    results: list[FitResult | SkippedFit], plans: list[FitPlan], metric: str
) -> list[FitResult | SkippedFit]:
    """One result per candidate, in candidate order: a whole candidate's as it is; a search's
    trials merged (every finished trial recorded, the best kept; skipped if none started)."""
    groups: dict[int, list[FitResult | SkippedFit]] = {}
    for plan, result in sorted(
        zip(plans, results, strict=True), key=lambda pair: (pair[0].index, pair[0].trial or 0)
    ):
        groups.setdefault(plan.index, []).append(result)
    return [_merge(group, metric) if len(group) > 1 else group[0] for group in groups.values()]


def _merge(parts: list[FitResult | SkippedFit], metric: str) -> FitResult | SkippedFit:
    fitted = [p for p in parts if isinstance(p, FitResult)]
    if not fitted:
        return parts[0]
    best = fitted[0]
    for part in fitted[1:]:
        if is_better(part.val_score, best.val_score, metric):
            best = part
    return replace(
        best,
        trials=[trial for part in fitted for trial in part.trials],
        fit_seconds=sum(part.fit_seconds for part in fitted),
        out_of_time=len(fitted) < len(parts) or any(part.out_of_time for part in fitted),
    )
