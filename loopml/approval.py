"""Manual approval of a promotion (``promote.approval: manual``): the answer to a version that
passed the policy and waits as challenger. Approved, the aliases move under the promotion lock,
unless the champion changed meanwhile; either way the answer and its comment are recorded on
the model version."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from loopml.aliases import CHALLENGER, CHAMPION
from loopml.config import Params
from loopml.locks import Lock, promotion_lock
from loopml.promotion import Decision, move_aliases, record_decision
from loopml.registry import alias_version
from loopml.tracking import Tracking

COMMENT_TAG = "loopml.approval_comment"


@dataclass(frozen=True)
class Answer:
    """Someone's answer to a promotion that waits for approval."""

    approve: bool
    comment: str = ""


def apply_approval(decision: Decision, answer: Answer, tracking: Tracking, lock: Lock) -> Decision:
    """Promote (approved) or refuse (rejected) the waiting version; the decision as it ends."""
    client = tracking.client()
    name, version = decision.model_name, decision.version
    reasons = [r for r in decision.reasons if not r.startswith("awaiting approval")]
    with lock.hold():
        client.set_model_version_tag(name, version, COMMENT_TAG, answer.comment[:5000])
        champion = alias_version(client, name, CHAMPION)
        if not answer.approve:
            reasons.append(f"rejected by approval: {answer.comment or 'no comment'}")
        elif champion != decision.champion_version:
            reasons.append(
                f"approved, but the champion moved to v{champion} meanwhile: not promoted "
                "(re-run the training to compare with it)"
            )
        else:
            reasons.append(f"approved: {answer.comment or 'no comment'}")
            aliases = move_aliases(client, name, version, champion, promoted=True)
            record_decision(client, name, version, "promoted", reasons)
            return dataclasses.replace(
                decision, promoted=True, awaiting_approval=False, reasons=reasons, aliases=aliases
            )
        record_decision(client, name, version, "refused", reasons)
    return dataclasses.replace(
        decision,
        promoted=False,
        awaiting_approval=False,
        reasons=reasons,
        aliases={CHALLENGER: version},
    )


def answer_promotion(
    decision: Decision, answer: Answer, params: Params, tracking: Tracking
) -> Decision:
    """:func:`apply_approval` under the lock promotions of this model take."""
    return apply_approval(decision, answer, tracking, promotion_lock(params, tracking))
