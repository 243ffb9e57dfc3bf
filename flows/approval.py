"""Manual approval inside the training flow: the run pauses and the Prefect UI shows a typed
form (approve or not, and a comment); the answer goes to the promote task."""

from __future__ import annotations

from prefect import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from loopml.approval import Answer
from loopml.config import Params
from loopml.promotion import Decision
from loopml.tracking import Tracking
from tasks.promote import answer_promotion


class Approval(RunInput):
    """The form the paused training run shows."""

    approve: bool = Field(description="Move the champion alias to this version.")
    comment: str = Field("", description="Recorded on the model version.")


def ask_for_approval(decision: Decision, params: Params, tracking: Tracking) -> Decision:
    """Pause until someone answers (or ``promote.approval_timeout_minutes`` pass: the run
    fails and the version stays challenger), then apply the answer."""
    description = (
        f"{decision.model_name} v{decision.version} passed the promotion policy:\n\n"
        + "\n".join(f"- {reason}" for reason in decision.reasons)
    )
    form = Approval.with_initial_data(description=description, approve=False)
    given = pause_flow_run(
        wait_for_input=form, timeout=int(params.promote.approval_timeout_minutes * 60)
    )
    answer = Answer(approve=given.approve, comment=given.comment)
    return answer_promotion(decision=decision, answer=answer, params=params, tracking=tracking)
