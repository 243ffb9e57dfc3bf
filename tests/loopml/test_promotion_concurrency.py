"""Two promotions that start together leave exactly one champion, consistent with the policy."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import pytest

from loopml.promotion import register_and_promote
from tests.conftest import small_params
from tests.registry import promotion_jobs

pytestmark = pytest.mark.slow


def _promote(barrier: Any, kwargs: dict[str, Any], queue: Any) -> None:
    from loopml.runtime import configure_environment

    configure_environment()
    barrier.wait(timeout=60)
    decision = register_and_promote(**kwargs)
    queue.put(dataclasses.asdict(decision))


PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL")
LOCKS = [
    pytest.param(None, id="file-lock"),
    pytest.param(
        PG_URL,
        id="postgres-advisory-lock",
        marks=pytest.mark.skipif(PG_URL is None, reason="LOOPML_TEST_POSTGRES_URL is not set"),
    ),
]


@pytest.mark.parametrize("lock_url", LOCKS)
def test_two_promotions_at_once_leave_one_champion(tmp_path: Path, lock_url: str | None) -> None:
    raw = small_params()
    raw["train"]["candidates"] = [
        {
            "name": "weak",
            "kind": "hist_gradient_boosting",
            "params": {"max_iter": 1, "max_depth": 2, "early_stopping": False},
        },
        {"name": "strong", "kind": "linear"},
    ]
    raw["promote"]["floors"] = {"roc_auc": 0.55}
    built = promotion_jobs(tmp_path, raw, data_version="v-race", lock_url=lock_url)
    params, tracking, jobs = built["params"], built["tracking"], built["jobs"]
    assert (
        jobs["strong"]["challenger"].metrics["roc_auc"]
        > jobs["weak"]["challenger"].metrics["roc_auc"] + 0.05
    )

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_promote, args=(barrier, job, queue)) for job in jobs.values()]
    for p in procs:
        p.start()
    decisions = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    client = tracking.client()
    aliases = {
        a: str(v) for a, v in client.get_registered_model(params.promote.model_name).aliases.items()
    }
    champion = client.get_model_version(params.promote.model_name, aliases["champion"])
    assert (
        champion.run_id == jobs["strong"]["challenger"].run_id
    )  # the better model, whatever the order
    assert len(client.search_model_versions(f"name='{params.promote.model_name}'")) == 2
    # Serialized: exactly one of the two saw no champion; the other compared against it.
    assert sorted(d["champion_version"] is None for d in decisions) == [False, True]
    assert sum(d["promoted"] for d in decisions) in (1, 2)
    assert (
        set(aliases) <= {"champion", "previous", "challenger"}
        and list(aliases.values()).count(aliases["champion"]) == 1
    )


@pytest.mark.skipif(PG_URL is None, reason="LOOPML_TEST_POSTGRES_URL is not set")
def test_the_advisory_lock_excludes_another_session_until_released(tmp_path: Path) -> None:
    import psycopg

    from loopml.locks import Lock, lock_key

    lock = Lock("promote-race-check", tmp_path, PG_URL)
    with psycopg.connect(PG_URL, autocommit=True) as other:  # type: ignore[arg-type]
        try_lock = "SELECT pg_try_advisory_lock(%s)"
        with lock.hold():
            assert other.execute(try_lock, (lock_key(lock.name),)).fetchone() == (False,)
        assert other.execute(try_lock, (lock_key(lock.name),)).fetchone() == (True,)
        other.execute("SELECT pg_advisory_unlock(%s)", (lock_key(lock.name),))
    assert list(tmp_path.iterdir()) == []  # no file lock was used
