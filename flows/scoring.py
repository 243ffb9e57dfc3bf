"""The batch-scoring flow: a registry alias's model predicts a batch of rows from a source."""

from __future__ import annotations

from typing import Any

from prefect import flow

from loopml.config.run_options import ScoringRun, resolve_run, scoring_overrides
from loopml.predlog import log_target
from loopml.scoring import ScoredBatch
from tasks._policies import STOPPABLE
from tasks.score import load_scorer, publish_scores, score_batch
from tasks.tracking import setup_tracking


@flow(name="batch-scoring", **STOPPABLE)
def batch_scoring(
    params_path: str = "params.yaml",
    run: ScoringRun = ScoringRun(),
    overrides: dict[str, Any] | None = None,
) -> ScoredBatch:
    """Score a batch from ``score.source`` with the model behind ``score.alias``, a chunk of
    ``score.chunk_rows`` rows at a time; write the predictions to ``paths.scores`` and append
    them to the prediction log.

    Args:
        params_path: the params.yaml to load (on the machine that runs the flow).
        run: this run's choices; an empty field keeps params.yaml's value.
        overrides: advanced: any keys of params.yaml, nested,
            e.g. ``{"score": {"source": {"kind": "file", "file": {"path": "new.csv"}}}}``.
    """
    params, _ = resolve_run(
        params_path=params_path, overrides=overrides, run_overrides=scoring_overrides(run)
    )
    tracking = setup_tracking(params=params)
    scorer = load_scorer(
        tracking=tracking, model_name=params.promote.model_name, alias=params.score.alias
    )
    batch = score_batch(
        source=params.score.source,
        root=params.root,
        scorer=scorer,
        alias=params.score.alias,
        table=params.data.table,
        chunk_rows=params.score.chunk_rows,
        out_dir=params.path("scores"),
        log_path=log_target(params) if params.score.log_predictions else None,
    )
    return publish_scores(
        batch=batch, data_version=scorer.data_version, ui_url=params.tracking.ui_url
    )
