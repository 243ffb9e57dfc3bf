"""The deployments, declared once: ``loopml deploy``/``up`` serve them, ``prefect.yaml`` (for
work pools) is generated from them (``loopml deployments --write``), and a test checks both."""

from __future__ import annotations

from dataclasses import dataclass

from loopml.config import Params


@dataclass(frozen=True)
class Deployment:
    name: str
    entrypoint: str
    """``<file relative to the repository root>:<flow function>``."""
    description: str
    schedule_key: str | None
    """Dotted key of params.yaml holding the cron schedule (its value null: on demand)."""
    concurrency_limit: int | None = None
    """Runs at once; more wait in the queue (two retrains of one model never overlap)."""

    def cron(self, params: Params) -> str | None:
        if self.schedule_key is None:
            return None
        node: object = params
        for part in self.schedule_key.split("."):
            node = getattr(node, part)
        return node if isinstance(node, str) else None


DEPLOYMENTS = (
    Deployment(
        name="training",
        entrypoint="flows/training.py:training",
        description="collect -> validate -> features -> train -> evaluate -> promote",
        schedule_key="deploy.training_cron",
        concurrency_limit=1,
    ),
    Deployment(
        name="monitoring",
        entrypoint="flows/monitoring.py:monitoring",
        description="Evidently drift and quality; triggers training when due",
        schedule_key="monitor.schedule_cron",
        concurrency_limit=1,
    ),
    Deployment(
        name="batch-scoring",
        entrypoint="flows/scoring.py:batch_scoring",
        description="the champion scores a batch from score.source into paths.scores",
        schedule_key="score.schedule_cron",
    ),
)
