"""The training flow: collect -> validate -> features -> train -> evaluate -> promote.

The five stages run as subflows (the same flows the DVC stages run); promotion follows.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.approval import ask_for_approval
from flows.data import collect, featurize, validate
from flows.modeling import evaluate, train
from loopml.config.run_options import TrainingRun, training_params
from loopml.runs import parent_run
from loopml.summary import TrainingResult
from tasks._policies import STOPPABLE
from tasks.features import load_model_data
from tasks.promote import register_and_promote
from tasks.tracking import publish_summary, setup_tracking


@flow(name="training", **STOPPABLE)
def training(
    params_path: str = "params.yaml",
    run: TrainingRun = TrainingRun(),
    overrides: dict[str, Any] | None = None,
) -> TrainingResult:
    """Collect a batch, validate it, build features, train and evaluate every candidate, and
    promote the best in the MLflow registry when the policy allows.

    Args:
        params_path: the params.yaml to load (on the machine that runs the flow).
        run: this run's choices; an empty field keeps params.yaml's value.
        overrides: advanced: any keys of params.yaml, nested, e.g.
            ``{"data": {"source": {"generator": {"n_rows": 5000}}}}``.
    """
    params, merged = training_params(params_path=params_path, overrides=overrides, run=run)
    stage = {"params_path": params_path, "overrides": merged}
    tracking = setup_tracking(params=params)
    with parent_run(tracking=tracking, params=params) as run_id:
        batch = collect(**stage)
        validate(**stage, batch=batch)
        feature_set = featurize(**stage, batch=batch)
        trained = train(**stage, feature_set=feature_set, parent_run_id=run_id)
        evaluated = evaluate(**stage, feature_set=feature_set, trained=trained)
        data = load_model_data(
            feature_set=feature_set, table=params.data.table, cfg=params.features
        )
        decision = register_and_promote(
            candidate=trained.selected,
            evaluation=evaluated.best,
            data=data,
            params=params,
            tracking=tracking,
        )
        if decision.awaiting_approval:  # promote.approval: manual
            decision = ask_for_approval(decision=decision, params=params, tracking=tracking)
        return publish_summary(
            tracking=tracking,
            trained=trained,
            evaluated=evaluated,
            decision=decision,
            features=feature_set,
            params_file=str(params.source),
        )
