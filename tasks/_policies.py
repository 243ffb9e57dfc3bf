"""Prefect policies shared by the task modules: retries for I/O, cache keys. Not a task module."""

from __future__ import annotations

from typing import Any

from loopml.caching import evaluation_key, fit_key
from loopml.retry import is_transient


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry only transient failures (network, disk, locks)."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # the state could not even give its exception back
        exc = err
    return isinstance(exc, BaseException) and is_transient(exc)


IO = {"retries": 2, "retry_delay_seconds": 3, "retry_condition_fn": retry_transient}
"""Retries of a task that reads or writes a store (files, DVC remote, MLflow, databases)."""


def fit_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    """Cache key of ``train_candidate``: :func:`loopml.caching.fit_key` of its inputs; none (no
    caching) for a candidate that ``train.time_budget`` skips, so a later run trains it."""
    allowance = parameters["allowance"]
    if allowance.expired:
        return None
    key = fit_key(
        parameters["data"].fingerprint,
        parameters["candidate"],
        parameters["lightning"],
        parameters["index"],
        parameters["seed"],
        parameters["metric"],
        allowance.budget,
    )
    trial = parameters.get("trial")
    return key if trial is None else f"{key}-trial-{trial}"


def evaluation_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key of the evaluation task: the fit it evaluates, settings, and whether it
    analyzes too."""
    stage = "full" if parameters.get("analyze") else "metrics"
    return evaluation_key(
        parameters["candidate"].fit_key,
        parameters["cfg"],
        parameters["metric"],
        parameters["seed"],
        stage,
    )


_STOPPED = (
    "aborted by an interrupt signal",
    "aborted by a termination signal",
    "aborted by Python system exit",
    "Stopped",
)


def cancel_when_stopped(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_crashed`` hook of every flow: a run that a person (Ctrl-C) or a supervisor
    (SIGTERM) stopped is Cancelled, not Crashed; a real crash stays a crash."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    message = state.message or ""
    if not any(word in message for word in _STOPPED):
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.id, Cancelled(message=f"stopped: {message}"), force=True)


STOPPABLE = {"on_crashed": [cancel_when_stopped]}
"""Flow options: Ctrl-C and SIGTERM cancel the run."""
