"""Retry policy for I/O tasks: retry what may pass on a second try, never what cannot."""

from __future__ import annotations

from typing import Any

from loopml.exceptions import ConfigError, DataValidationError, SourceError


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, SourceError):
        return exc.transient
    return not isinstance(exc, ConfigError | DataValidationError | ValueError | TypeError)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient failures (network, locks)."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # the state could not even give its exception back
        exc = err
    return isinstance(exc, BaseException) and is_transient(exc)
