"""Manual approval (`promote.approval: manual`): the training run pauses with a typed form;
approved, the version becomes champion with the comment recorded; rejected, the champion stays.

Real parts: the training flow on the Prefect test harness (its API records the pause and takes
the answer through `resume_flow_run`, as the UI's form does), real DVC, GX and MLflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.training import training
from loopml.approval import COMMENT_TAG
from loopml.config import load_params
from loopml.registry import alias_version
from loopml.tracking import setup_tracking

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _answer_when_paused(approve: bool, comment: str, seen: dict[str, Any]) -> None:
    """Wait for the paused training run, then answer its form through the API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as ByType
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    deadline = time.time() + 600
    while time.time() < deadline:
        with get_client(sync_client=True) as client:
            paused = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=ByType(any_=[StateType.PAUSED]))
                )
            )
        if paused:
            seen["paused"] = paused[0].id
            resume_flow_run(paused[0].id, run_input={"approve": approve, "comment": comment})
            return
        time.sleep(1)


def _train_and_answer(path: Path, approve: bool, comment: str, seed: int) -> Any:
    seen: dict[str, Any] = {}
    answering = threading.Thread(target=_answer_when_paused, args=(approve, comment, seen))
    answering.start()
    overrides = {"data": {"source": {"generator": {"seed": seed}}}}
    result = training(params_path=str(path), overrides=overrides)
    answering.join(timeout=60)
    assert "paused" in seen, "the run never paused for approval"
    return result


def test_a_manual_promotion_waits_for_the_answer(write_params: Callable[..., Path]) -> None:
    path = write_params(
        train={"candidates": [{"name": "logreg", "kind": "linear"}]},
        promote={"floors": {}, "approval": "manual"},
    )
    params = load_params(path)
    client = setup_tracking(params).client()
    name = params.promote.model_name

    rejected = _train_and_answer(path, approve=False, comment="label leak suspected", seed=11)
    assert not rejected.decision.promoted and not rejected.decision.awaiting_approval
    assert alias_version(client, name, "champion") is None  # nothing moved
    assert alias_version(client, name, "challenger") == rejected.decision.version
    tags = client.get_model_version(name, rejected.decision.version).tags
    assert tags[COMMENT_TAG] == "label leak suspected" and tags["loopml.decision"] == "refused"

    approved = _train_and_answer(path, approve=True, comment="checked the curves", seed=12)
    assert approved.decision.promoted and not approved.decision.awaiting_approval
    version = approved.decision.version
    assert alias_version(client, name, "champion") == version
    tags = client.get_model_version(name, version).tags
    assert tags[COMMENT_TAG] == "checked the curves" and tags["loopml.decision"] == "promoted"
    assert "approved: checked the curves" in approved.decision.reasons
