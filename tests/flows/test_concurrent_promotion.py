"""Two promotions that start together leave exactly one champion, consistent with the policy."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopml.config import load_params
from loopml.datagen import generate_churn
from loopml.tracking import setup_tracking
from tasks.collect import conform
from tasks.evaluate import evaluate
from tasks.features import fit_transformer, split, write_features
from tasks.promote import register_and_promote
from tasks.train import log_candidate, prepare_model_data, train_candidate
from tests.conftest import small_params

pytestmark = pytest.mark.slow


def _promote(barrier: Any, kwargs: dict[str, Any], queue: Any) -> None:
    from loopml.runtime import configure_environment

    configure_environment()
    barrier.wait(timeout=60)
    decision = register_and_promote.fn(**kwargs)
    queue.put(decision.to_dict())


def test_two_promotions_at_once_leave_one_champion(tmp_path: Path) -> None:
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
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "params.yaml")
    schema = params.data.schema_
    frame = conform.fn(frame=generate_churn(3000, seed=4), schema=schema, clean=params.data.clean)
    splits = split.fn(frame=frame, schema=schema, cfg=params.features.split, seed=1)
    transformer = fit_transformer.fn(train=splits.train, schema=schema, cfg=params.features)
    features = write_features.fn(
        splits=splits,
        transformer=transformer,
        out_dir=tmp_path / "features",
        data_version="v-race",
        schema=schema,
    )
    data = prepare_model_data.fn(features=features, schema=schema, features_cfg=params.features)
    tracking = setup_tracking(params)
    parent = tracking.client().create_run(tracking.experiment_id, run_name="race").info.run_id
    jobs = {}
    for index, candidate in enumerate(params.train.candidates):
        fit = train_candidate.fn(
            candidate=candidate,
            index=index,
            data=data,
            metric="roc_auc",
            lightning=params.train.lightning,
            seed=1,
        )
        ev = evaluate.fn(fit=fit, data=data, cfg=params.evaluate, metric="roc_auc", seed=1)
        logged = log_candidate.fn(
            fit=fit,
            evaluation=ev,
            data=data,
            tracking=tracking,
            parent_run_id=parent,
            tags={"loopml.params_digest": candidate.name},
        )
        jobs[candidate.name] = dict(
            model_uri=logged["model_uri"],
            run_id=logged["run_id"],
            challenger_metrics=ev.metrics,
            data=data,
            metric="roc_auc",
            cfg=params.promote,
            tracking=tracking,
            tags={"loopml.params_digest": candidate.name},
            lock_path=params.path("locks") / "promote.lock",
            resamples=50,
            seed=1,
        )
    assert (
        jobs["strong"]["challenger_metrics"]["roc_auc"]
        > jobs["weak"]["challenger_metrics"]["roc_auc"] + 0.05
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
    assert champion.run_id == jobs["strong"]["run_id"]  # the better model, whatever the order
    assert len(client.search_model_versions(f"name='{params.promote.model_name}'")) == 2
    # Serialized: exactly one of the two saw no champion; the other compared against it.
    assert sorted(d["champion_version"] is None for d in decisions) == [False, True]
    assert sum(d["promoted"] for d in decisions) in (1, 2)
    assert (
        set(aliases) <= {"champion", "previous", "challenger"}
        and list(aliases.values()).count(aliases["champion"]) == 1
    )
