"""The sections of the operations around the champion: monitor, serve, score, deploy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from loopml.aliases import CHAMPION
from loopml.config.base import Section
from loopml.config.data import GeneratorSource, SourceConfig
from loopml.secrets import refuse_literal_secret


class MonitorConfig(Section):
    experiment: str = "loopml-monitoring"
    current: Literal["log", "source"] = Field(
        "log", description="Production data: the serving prediction log, or a new source batch."
    )
    window_rows: int = Field(5000, ge=10, description="Newest prediction-log rows compared.")
    min_rows: int = Field(200, ge=10, description="Fewer current rows: no verdict.")
    sample_rows: int = Field(
        20_000, ge=100, description="Reference, current and labelled rows are sampled to this."
    )
    drift_share_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15
    data_summary: bool = Field(
        False,
        description="Add Evidently's column statistics (DataSummaryPreset) to the HTML report; "
        "the report then takes about twice as long.",
    )
    decay_threshold: float = Field(0.05, ge=0.0, description="Drop of the primary metric.")
    min_labelled_rows: int = Field(100, ge=10)
    cooldown_minutes: float = Field(60.0, ge=0.0)
    trigger: bool = True
    training_deployment: str = "training/training"
    webhook_url: str | None = Field(
        None, description="POST the verdict here; a URL with a token as a ${ENV_VAR} reference."
    )

    _no_literal_secret = field_validator("webhook_url")(refuse_literal_secret)
    schedule_cron: str = "*/30 * * * *"


class ServeConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    alias: str = CHAMPION
    poll_seconds: float = Field(2.0, gt=0)
    max_wait_ms: float = Field(2.0, ge=0, description="Micro-batching window.")
    max_batch_rows: int = Field(2048, gt=0)
    workers: int = Field(1, gt=0, le=64, description="Server processes (one per core).")
    threads: int = Field(
        1,
        gt=0,
        le=256,
        description="Native threads (OpenMP, BLAS, torch) per server process; more only "
        "contend with the other workers for the cores.",
    )
    inline_rows: int = Field(
        256,
        ge=0,
        description="Micro-batches up to this many rows are predicted on the event loop "
        "(compiled fast path only); larger ones in a worker thread.",
    )
    token_env: str = Field("LOOPML_API_TOKEN", description="Bearer token read from this variable.")
    max_body_bytes: int = Field(
        2_000_000, ge=1024, description="Largest request body; larger ones get 413 unread."
    )
    max_records: int = Field(
        10_000, ge=1, le=1_000_000, description="Records (or labels) per request."
    )
    max_string_length: int = Field(
        1024, ge=16, description="Longest string value of one field (422 beyond it)."
    )


class ScoreConfig(Section):
    """Batch scoring: the registry's model predicts a batch of rows from any source."""

    alias: str = CHAMPION
    source: SourceConfig = SourceConfig(generator=GeneratorSource(n_rows=5000, seed=2024))
    chunk_rows: int = Field(100_000, gt=0, description="Rows predicted at a time.")
    log_predictions: bool = Field(True, description="Append scored rows to the prediction log.")
    schedule_cron: str | None = Field(None, description="Scoring schedule; null: on demand.")


class DeployConfig(Section):
    training_cron: str | None = Field("0 3 * * *", description="Retraining schedule; null: none.")
    timezone: str = Field("UTC", description="Time zone of every deployment's cron schedule.")
