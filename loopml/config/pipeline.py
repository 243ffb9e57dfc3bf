"""The sections of the training pipeline's stages: validate, features, train, evaluate, promote."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from loopml.config.base import Fraction, Section, Severity
from loopml.secrets import refuse_literal_secret

LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})
CLASSIFICATION_METRICS = frozenset(
    {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"}
)
REGRESSION_METRICS = frozenset({"rmse", "mae", "r2"})


# --------------------------------------------------------------------------- validate
class SeverityConfig(Section):
    columns: Severity = "blocking"
    types: Severity = "blocking"
    nulls: Severity = "blocking"
    ranges: Severity = "warning"
    domains: Severity = "warning"
    unique_id: Severity = "blocking"
    row_count: Severity = "blocking"
    target: Severity = "blocking"
    class_balance: Severity = "blocking"
    finite: Severity = Field(
        "blocking", description="inf, -inf and values beyond the float range in numeric columns."
    )
    bounds: Severity = Field(
        "blocking", description="Hard bounds declared per column (data.schema.columns.<c>.min/max)."
    )
    duplicate_rows: Severity = Field("warning", description="Rows repeated in the same batch.")


class ValidateConfig(Section):
    suite_name: str = "loopml"
    on_missing_suite: Literal["profile", "error"] = "profile"
    severity: SeverityConfig = SeverityConfig()
    null_fraction_slack: Fraction = 0.05
    range_margin: float = Field(
        0.5, ge=0.0, description="Share of the profiled range added on each side."
    )
    domain_max_values: int = Field(200, gt=0)
    min_rows: int = Field(100, ge=1)
    max_rows: int | None = Field(None, ge=1)
    class_share_slack: Fraction = 0.1
    data_docs: bool = True
    batch_rows: int = Field(
        1_000_000,
        gt=0,
        description="A larger snapshot is validated this many rows at a time, the results merged.",
    )


# --------------------------------------------------------------------------- features
SplitMethod = Literal["auto", "time", "order", "stratified", "random", "group"]


class SplitConfig(Section):
    """How rows are split into train, validation and test.

    ``time``: by ``data.schema.time_column``; ``order``: in file order (first rows train, last
    rows test), for rows already in time order; ``stratified``: random with the class shares
    kept (classification); ``random``; ``group``: random by ``group_column`` (no group in two
    splits); ``auto``: time when a time column is declared, else stratified (classification) or
    random (regression).
    """

    method: SplitMethod = "auto"
    group_column: str | None = Field(None, description="Rows of one group stay in one split.")
    val_size: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.15

    @model_validator(mode="after")
    def _group(self) -> SplitConfig:
        if self.method == "group" and not self.group_column:
            raise ValueError("group_column: required when method is 'group'")
        if self.group_column and self.method != "group":
            raise ValueError(f"group_column: set, but method is '{self.method}', not 'group'")
        return self


DatePart = Literal["hour", "weekday", "month", "day", "year"]


class FeaturesConfig(Section):
    split: SplitConfig = SplitConfig()
    numeric_impute: Literal["median", "mean"] = "median"
    clip_quantiles: tuple[Fraction, Fraction] = (0.001, 0.999)
    scale: Literal["standard", "robust", "none"] = "standard"
    categorical_min_frequency: Fraction = 0.005
    categorical_max_categories: int | None = Field(50, gt=1)
    datetime_parts: list[DatePart] = Field(default_factory=lambda: ["hour", "weekday", "month"])
    fit_rows: int | None = Field(
        200_000,
        ge=1000,
        description="The transformers are fitted on a random sample of at most this many "
        "training rows (null: all of them); quantiles, medians, scales and category "
        "frequencies are estimated from it, and every row is transformed.",
    )

    @field_validator("clip_quantiles")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError("lower quantile must be below upper quantile")
        return v


# --------------------------------------------------------------------------- train
CandidateKind = Literal["dummy", "linear", "hist_gradient_boosting", "lightning"]


class SearchConfig(Section):
    """Optional hyperparameter search for one candidate; every trial is a nested MLflow run."""

    method: Literal["grid", "random"] = "random"
    n_trials: int = Field(4, ge=1, le=200, description="Trials drawn when method is random.")
    space: dict[str, list[Any]] = Field(min_length=1)

    @field_validator("space")
    @classmethod
    def _non_empty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, vals in v.items() if not vals]
        if empty:
            raise ValueError(f"no values to search for {empty}")
        return v


class CandidateConfig(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: CandidateKind
    params: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig | None = None
    enabled: bool = True
    encoding: Literal["auto", "onehot", "ordinal"] = Field(
        "auto",
        description="Features it sees: ordinal category codes, split on natively (auto for "
        "hist_gradient_boosting), or one-hot (auto for the others).",
    )
    time_budget: float | None = Field(
        None,
        gt=0,
        description="Seconds it may train (search included); when they run out it stops and "
        "keeps the best so far, recorded as out of time.",
    )

    @property
    def features(self) -> Literal["onehot", "ordinal"]:
        """The feature representation this candidate trains on."""
        if self.encoding != "auto":
            return self.encoding
        return "ordinal" if self.kind == "hist_gradient_boosting" else "onehot"


class LightningConfig(Section):
    """Trainer settings of the Lightning candidate. GPU settings apply only where CUDA is found."""

    hidden_sizes: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [128, 64])
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    batch_norm: bool = True
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    batch_size: int = Field(512, gt=0)
    max_epochs: int = Field(30, gt=0)
    patience: int = Field(4, gt=0, description="Early stopping on the validation loss.")
    scheduler_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    scheduler_patience: int = Field(2, ge=0)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = "auto"
    precision_cpu: str = "32-true"
    precision_gpu: str = "bf16-mixed"
    resident: bool = Field(
        True,
        description="Keep the training matrices on the GPU when they fit (one copy per fit, "
        "none per batch); false: batches go to the GPU one at a time.",
    )
    deterministic: bool = True
    threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="torch's CPU threads while it trains (null: torch's default, all cores or "
        "a Dask worker's pool). Its sums depend on this count: set it for the same model "
        "wherever the candidate trains.",
    )


class ExecutorConfig(Section):
    """Where the candidates train: one after another in the flow's process, or in parallel on
    Dask (prefect-dask's DaskTaskRunner)."""

    kind: Literal["sequential", "dask"] = "sequential"
    address: str | None = Field(
        None,
        pattern=r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$",
        description="A running Dask scheduler (tcp://host:8786); null starts a local cluster.",
    )
    n_workers: int = Field(2, ge=1, le=256, description="Worker processes of a local cluster.")
    threads_per_worker: int = Field(
        1,
        ge=1,
        le=256,
        description="Threads of each local worker, and the size of its OpenMP/BLAS/torch pools, "
        "so that parallel candidates do not oversubscribe the cores.",
    )

    @property
    def parallel(self) -> bool:
        """Candidates, and the trials of each search, run in parallel."""
        return self.kind == "dask"


class TrainConfig(Section):
    candidates: list[CandidateConfig] = Field(min_length=1)
    lightning: LightningConfig = LightningConfig()
    executor: ExecutorConfig = ExecutorConfig()
    time_budget: float | None = Field(
        None,
        gt=0,
        description="Seconds all candidates together may train. A candidate running when they "
        "run out stops and keeps the best so far (out of time); one not started by then is "
        "skipped and recorded as such. The first candidate always trains.",
    )

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, v: list[CandidateConfig]) -> list[CandidateConfig]:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"candidate names must be unique, repeated: {dupes}")
        if not any(c.enabled for c in v):
            raise ValueError("at least one candidate must be enabled")
        return v

    @property
    def enabled(self) -> list[tuple[int, CandidateConfig]]:
        """(index in ``train.candidates``, candidate) of every enabled candidate."""
        return [(i, c) for i, c in enumerate(self.candidates) if c.enabled]


# --------------------------------------------------------------------------- evaluate, promote
class EvaluateConfig(Section):
    primary_metric: str | None = Field(
        None, description="Selects and promotes models; default roc_auc (classification), rmse."
    )
    bootstrap_resamples: int = Field(200, ge=10, le=10_000)
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    permutation_repeats: int = Field(3, ge=1)
    permutation_max_rows: int = Field(2000, ge=100)
    worst_errors: int = Field(20, ge=1)
    plots: bool = True


class PromoteConfig(Section):
    model_name: str = Field("loopml-model", min_length=1)
    floors: dict[str, float] = Field(
        default_factory=dict, description="Absolute floors (ceilings for lower-is-better metrics)."
    )
    min_improvement: float = Field(0.0, ge=0.0, description="Margin over the champion.")
    beyond_champion_ci: bool = False
    servability_rows: int = Field(50, ge=1)
    dry_run: bool = Field(False, description="Register nothing and move no alias.")
    lock_url: str | None = Field(
        None,
        description="PostgreSQL database whose advisory lock serializes promotions (several "
        "machines), as a ${ENV_VAR} reference; default LOOPML_LOCK_URL, else the registry's "
        "database when it is PostgreSQL, else a file lock in paths.locks.",
    )
    approval: Literal["auto", "manual"] = Field(
        "auto",
        description="manual: a version that passes the policy waits as challenger until "
        "someone approves it in the Prefect UI (the training run pauses for the answer).",
    )
    approval_timeout_minutes: float = Field(
        1440, gt=0, description="How long a paused run waits for the answer (then it fails)."
    )
    _no_literal_secret = field_validator("lock_url")(refuse_literal_secret)
