"""promote: register the selected candidate; move ``champion`` only when the policy allows."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml import approval, promotion
from loopml.approval import Answer
from loopml.candidates import LoggedCandidate
from loopml.config import Params
from loopml.evaluation import Evaluation
from loopml.modeldata import ModelData
from loopml.promotion import Decision
from loopml.tracking import Tracking


@task(name="register-and-promote", cache_policy=NO_CACHE)
def register_and_promote(
    candidate: LoggedCandidate,
    evaluation: Evaluation,
    data: ModelData,
    params: Params,
    tracking: Tracking,
) -> Decision:
    """A new model version, promoted or kept as challenger with every reason
    (:func:`loopml.promotion.promote_candidate`). Not retried: a half-done promotion is
    resolved by the registry's own record (its fingerprint), not by running it twice."""
    return promotion.promote_candidate(candidate, evaluation, data, params, tracking)


@task(name="answer-promotion", cache_policy=NO_CACHE)
def answer_promotion(
    decision: Decision, answer: Answer, params: Params, tracking: Tracking
) -> Decision:
    """Promote or refuse a version that waited for approval, with the answer's comment
    recorded (:func:`loopml.approval.answer_promotion`)."""
    return approval.answer_promotion(decision, answer, params, tracking)
