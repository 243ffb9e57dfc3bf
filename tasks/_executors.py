"""Where the train stage's candidates run (``train.executor``): one after another in the flow's
process, or in parallel on Dask through prefect-dask's ``DaskTaskRunner``, on a local cluster
it starts or on a running scheduler. Not a task module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from loopml.config import ExecutorConfig
from loopml.runtime import THREAD_POOLS

R = TypeVar("R")


class Done(Generic[R]):
    """The outcome of a task run inline: already there."""

    def __init__(self, value: R) -> None:
        self._value = value

    def result(self) -> R:
        return self._value


class Inline:
    """Runs a task at once in the flow's process, as a plain call would."""

    def submit(self, task: Any, parameters: dict[str, Any]) -> Done[Any]:
        return Done(task(**parameters))


def dask_runner(executor: ExecutorConfig) -> Any:
    """A ``DaskTaskRunner`` on ``executor.address``, or on a local cluster of worker processes
    whose thread pools are sized to ``threads_per_worker``."""
    from prefect_dask import DaskTaskRunner

    if executor.address:
        return DaskTaskRunner(address=executor.address)
    threads = str(executor.threads_per_worker)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": executor.n_workers,
            "threads_per_worker": executor.threads_per_worker,
            "processes": True,
            "dashboard_address": None,
            "env": dict.fromkeys(THREAD_POOLS, threads),
        }
    )


@contextmanager
def shared_api() -> Iterator[None]:
    """Workers report their task runs to this process's Prefect API. The settings they get
    carry its address; under Prefect's ephemeral server (no ``PREFECT_API_URL``) that address is
    put in them, or each worker would start a server of its own."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with get_client(sync_client=True) as client:
        url = str(client.api_url)
    with temporary_settings({PREFECT_API_URL: url}):
        yield


@contextmanager
def candidate_runner(executor: ExecutorConfig) -> Iterator[Any]:
    """What ``submit``s the candidates: :class:`Inline`, or a started ``DaskTaskRunner`` (its
    local cluster is stopped on leaving)."""
    if executor.kind == "sequential":
        yield Inline()
        return
    with shared_api(), dask_runner(executor) as runner:
        yield runner
