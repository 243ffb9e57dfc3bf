"""The batch-scoring flow: a registry alias's model predicts a batch of rows from a source."""

from __future__ import annotations

from typing import Any

from prefect import flow

from loopml.config.run_options import ScoringRun, resolve_run, scoring_overrides
from loopml.predlog import log_target
from loopml.scoring import ScoredBatch
from tasks._policies import STOPPABLE
from tasks.collect import read_source
from tasks.score import load_scorer, log_scores, publish_scores, score_rows, write_scores
from tasks.tracking import setup_tracking


@flow(name="batch-scoring", **STOPPABLE)
def batch_scoring(
    params_path: str = "params.yaml",
    run: ScoringRun = ScoringRun(),
    overrides: dict[str, Any] | None = None,
) -> ScoredBatch:
    """Score a batch from ``score.source`` with the model behind ``score.alias``; write the
    predictions to ``paths.scores`` and append them to the prediction log.

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
    frame = read_source(source=params.score.source, root=params.root)
    scorer = load_scorer(
        tracking=tracking, model_name=params.promote.model_name, alias=params.score.alias
    )
    scores = score_rows(
        frame=frame,
        scorer=scorer,
        table=params.data.table,
        chunk_rows=params.score.chunk_rows,
        source=params.score.source,
    )
    path = write_scores(scores=scores, out_dir=params.path("scores"), model_version=scorer.version)
    logged = log_scores(
        frame=frame,
        scores=scores,
        scorer=scorer,
        log_path=log_target(params),
        enabled=params.score.log_predictions,
        chunk_rows=params.score.chunk_rows,
    )
    return publish_scores(
        scores=scores,
        scorer=scorer,
        alias=params.score.alias,
        path=path,
        logged=logged,
        ui_url=params.tracking.ui_url,
    )
