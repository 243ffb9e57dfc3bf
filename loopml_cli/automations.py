"""The Prefect automations of the server stack, created by its registration job.

``crash-zombie-flow-runs``: a flow run that stops sending heartbeats (its worker or machine
died) is marked Crashed, as Prefect documents for self-hosted servers; the workers send one
every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds.
"""

from __future__ import annotations

from datetime import timedelta

ZOMBIE_AUTOMATION = "crash-zombie-flow-runs"
HEARTBEAT_SECONDS = 30  # Prefect's minimum
MISSED_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)


def ensure_zombie_automation() -> str:
    """Create the automation unless it exists; returns its id."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    try:
        return str(Automation.read(name=ZOMBIE_AUTOMATION).id)
    except ValueError:
        pass  # not there yet
    terminal = ("Completed", "Failed", "Cancelled", "Crashed")
    automation = Automation(
        name=ZOMBIE_AUTOMATION,
        description="Mark flow runs whose heartbeats stopped (a dead worker) as Crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in terminal)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=MISSED_AFTER,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {MISSED_AFTER.seconds}s: the worker is gone",
            )
        ],
    )
    return str(automation.create().id)
