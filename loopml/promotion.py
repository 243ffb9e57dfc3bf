"""Promotion: register the selected candidate, check that it serves, and move ``champion`` only
when the policy in ``params.yaml`` (``promote``) says so.

Policy: the challenger must pass every absolute floor and beat the current champion, re-scored
on the same new test split, by ``min_improvement`` (and, when configured, beyond the champion's
bootstrap interval). Then ``champion`` moves to it and the former champion becomes ``previous``;
otherwise the new version is the ``challenger``. Every reason is recorded as tags. Promotions are
serialized by a lock and re-read the champion inside it, so two runs finishing at once cannot
both move the alias. A version with the same data, parameters and code as an earlier one is not
registered again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from loopml.aliases import CHALLENGER, CHAMPION, PREVIOUS
from loopml.caching import version_fingerprint
from loopml.candidates import LoggedCandidate
from loopml.config import LOWER_IS_BETTER, EvaluateConfig, Params, PromoteConfig
from loopml.evaluation import Evaluation
from loopml.exceptions import PromotionRefused
from loopml.integrity import sign_version
from loopml.locks import Lock, promotion_lock
from loopml.metrics import bootstrap_interval, is_better, metrics_for, passes_floor
from loopml.modeldata import ModelData
from loopml.registry import alias_version, ensure_registered_model, load_version
from loopml.runs import run_tags
from loopml.tracking import Tracking

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Challenger:
    """The selected candidate, as the registry sees it."""

    model_uri: str
    run_id: str
    metrics: dict[str, float]
    tags: dict[str, str]
    fingerprint: str
    """Same data, parameters and code give the same fingerprint: registered only once."""

    @property
    def model_id(self) -> str | None:
        """The logged model's id (``models:/<id>``), which an MLflow server requires with it."""
        prefix = "models:/"
        rest = self.model_uri.removeprefix(prefix)
        return rest if self.model_uri.startswith(prefix) and "/" not in rest else None


@dataclass(frozen=True)
class Decision:
    model_name: str
    version: str
    promoted: bool
    reasons: list[str]
    metric: str
    challenger_score: float
    champion_version: str | None = None
    champion_score: float | None = None
    champion_ci: tuple[float, float] | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    awaiting_approval: bool = False
    """The policy passed it and ``promote.approval`` is manual: it waits as challenger."""


def decide(
    metric: str,
    challenger: dict[str, float],
    champion_score: float | None,
    champion_ci: tuple[float, float] | None,
    cfg: PromoteConfig,
) -> tuple[bool, list[str]]:
    """The promotion policy: (promote?, every reason), all checks made before deciding."""
    ok = True
    reasons: list[str] = []
    for name, floor in cfg.floors.items():
        value = challenger.get(name, float("nan"))
        word = "ceiling" if name in LOWER_IS_BETTER else "floor"
        if passes_floor(value, floor, name):
            reasons.append(f"{name} {value:.4f} passes the {word} {floor}")
        else:
            ok = False
            reasons.append(f"{name} {value:.4f} fails the {word} {floor}")
    score = challenger.get(metric, float("nan"))
    if champion_score is None:
        reasons.append("there is no champion yet")
    else:
        if is_better(score, champion_score, metric, cfg.min_improvement):
            reasons.append(
                f"{metric} {score:.4f} beats the champion's {champion_score:.4f} "
                f"on the same test split by at least {cfg.min_improvement}"
            )
        else:
            ok = False
            reasons.append(
                f"{metric} {score:.4f} does not beat the champion's {champion_score:.4f} "
                f"by the required {cfg.min_improvement}"
            )
        if cfg.beyond_champion_ci and champion_ci is not None:
            bound = champion_ci[0] if metric in LOWER_IS_BETTER else champion_ci[1]
            if is_better(score, bound, metric):
                reasons.append(
                    f"{metric} {score:.4f} is beyond the champion's interval bound {bound:.4f}"
                )
            else:
                ok = False
                reasons.append(
                    f"{metric} {score:.4f} is within the champion's interval (bound {bound:.4f})"
                )
    return ok, reasons


def _unchanged(
    client: MlflowClient, name: str, challenger: Challenger, metric: str
) -> Decision | None:
    """The decision for a version already registered from the same data, parameters and code."""
    same = [
        v
        for v in client.search_model_versions(f"name='{name}'")
        if v.tags.get("loopml.fingerprint") == challenger.fingerprint
    ]
    if not same:
        return None
    v = same[0]
    reason = (
        f"unchanged: same data, parameters and code as v{v.version} "
        f"(its decision: {v.tags.get('loopml.decision', 'unknown')}); nothing registered"
    )
    log.info("%s: %s", name, reason)
    return Decision(
        model_name=name,
        version=str(v.version),
        promoted=False,
        reasons=[reason],
        metric=metric,
        challenger_score=challenger.metrics.get(metric, float("nan")),
        aliases={a: str(v.version) for a in v.aliases},
    )


def _servable(client: MlflowClient, name: str, version: str, data: ModelData, rows: int) -> None:
    """Load the registered version back and predict on raw test rows; raise if it cannot."""
    model = load_version(client, name, version).model
    sample = data.test_inputs.head(rows)
    out = model.predict(None, sample)
    if len(out) != len(sample) or "prediction" not in out.columns or out["prediction"].isna().any():
        raise PromotionRefused([f"{name} v{version} did not return one prediction per raw row"])


def _champion_score(
    client: MlflowClient,
    name: str,
    champion: str,
    data: ModelData,
    metric: str,
    evaluate: EvaluateConfig,
    seed: int,
) -> tuple[float, tuple[float, float] | None]:
    """The champion re-scored on the challenger's test split (NaN if it cannot score it)."""
    try:
        model = load_version(client, name, champion).model
        output = model.predict_output(data.test_inputs)
    except Exception as exc:  # an old champion whose inputs no longer fit
        log.warning("champion v%s cannot score the new test split: %s", champion, exc)
        return float("nan"), None
    score = metrics_for(data.task, data.y_test, output).get(metric, float("nan"))
    ci = bootstrap_interval(
        metric,
        data.task,
        data.y_test,
        output,
        evaluate.bootstrap_resamples,
        evaluate.confidence,
        seed,
    )
    return score, ci


def _register(client: MlflowClient, name: str, challenger: Challenger) -> str:
    """A new model version of the challenger, with its metrics as tags."""
    mv = client.create_model_version(
        name,
        challenger.model_uri,
        run_id=challenger.run_id,
        tags={**challenger.tags, "loopml.fingerprint": challenger.fingerprint},
        model_id=challenger.model_id,
    )
    version = str(mv.version)
    for key, value in challenger.metrics.items():
        client.set_model_version_tag(name, version, f"metric.{key}", f"{value:.6f}")
    return version


def record_decision(
    client: MlflowClient, name: str, version: str, decision: str, reasons: list[str]
) -> None:
    client.set_model_version_tag(name, version, "loopml.decision", decision)
    client.set_model_version_tag(name, version, "loopml.reasons", " | ".join(reasons)[:5000])


def move_aliases(
    client: MlflowClient, name: str, version: str, champion: str | None, promoted: bool
) -> dict[str, str]:
    if not promoted:
        client.set_registered_model_alias(name, CHALLENGER, version)
        return {CHALLENGER: version}
    aliases = {}
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion)
        aliases[PREVIOUS] = champion
    sign_version(client, name, version)  # before the alias moves: servers verify what it names
    client.set_registered_model_alias(name, CHAMPION, version)
    aliases[CHAMPION] = version
    return aliases


AWAITING = "awaiting-approval"


def _conclude(
    client: MlflowClient,
    name: str,
    version: str,
    champion: str | None,
    promoted: bool,
    reasons: list[str],
    cfg: PromoteConfig,
) -> tuple[dict[str, str], bool]:
    """Move the aliases and record the decision: (aliases, awaiting approval). With
    ``promote.approval: manual`` a version that passed waits as challenger."""
    if promoted and cfg.approval == "manual":
        reasons.append("awaiting approval (promote.approval: manual)")
        client.set_registered_model_alias(name, CHALLENGER, version)
        record_decision(client, name, version, AWAITING, reasons)
        return {CHALLENGER: version}, True
    aliases = move_aliases(client, name, version, champion, promoted)
    record_decision(client, name, version, "promoted" if promoted else "refused", reasons)
    return aliases, False


def register_and_promote(
    challenger: Challenger,
    data: ModelData,
    metric: str,
    cfg: PromoteConfig,
    evaluate: EvaluateConfig,
    tracking: Tracking,
    lock: Lock,
    seed: int,
) -> Decision:
    """Register the challenger as a new version; move ``champion`` only if the policy allows.
    Everything from reading the champion to moving the aliases happens under ``lock``."""
    tracking.activate()  # the registry resolves the logged model (models:/m-...) through it
    client = tracking.client()
    name = cfg.model_name
    with lock.hold():
        ensure_registered_model(client, name)
        unchanged = _unchanged(client, name, challenger, metric)
        if unchanged is not None:
            return unchanged
        version = _register(client, name, challenger)
        score = challenger.metrics.get(metric, float("nan"))
        try:
            _servable(client, name, version, data, cfg.servability_rows)
        except Exception as exc:
            reasons = [f"servability check failed: {exc}"]
            record_decision(client, name, version, "refused", reasons)
            return Decision(name, version, False, reasons, metric, score)
        champion = alias_version(client, name, CHAMPION)
        champion_score, champion_ci = None, None
        if champion is not None:
            champion_score, champion_ci = _champion_score(
                client, name, champion, data, metric, evaluate, seed
            )
        promoted, reasons = decide(metric, challenger.metrics, champion_score, champion_ci, cfg)
        if champion is not None and champion_score is not None and np.isnan(champion_score):
            reasons.append(f"champion v{champion} could not score the new test split")
        aliases, awaiting = _conclude(client, name, version, champion, promoted, reasons, cfg)
        promoted = promoted and not awaiting
    log.info("%s v%s %s: %s", name, version, "promoted" if promoted else "refused", reasons)
    return Decision(
        model_name=name,
        version=version,
        promoted=promoted,
        reasons=reasons,
        metric=metric,
        challenger_score=score,
        champion_version=champion,
        champion_score=champion_score,
        champion_ci=champion_ci,
        aliases=aliases,
        awaiting_approval=awaiting,
    )


def promote_candidate(
    candidate: LoggedCandidate,
    evaluation: Evaluation,
    data: ModelData,
    params: Params,
    tracking: Tracking,
) -> Decision:
    """:func:`register_and_promote` the selected candidate under ``params.promote``."""
    if params.promote.dry_run:
        return Decision(
            model_name=params.promote.model_name,
            version="",
            promoted=False,
            reasons=["dry run (promote.dry_run): nothing registered, no alias moved"],
            metric=params.primary_metric,
            challenger_score=evaluation.metrics.get(params.primary_metric, float("nan")),
        )
    challenger = Challenger(
        model_uri=candidate.model_uri,
        run_id=candidate.run_id,
        metrics=evaluation.metrics,
        tags=run_tags(params, data.data_version),
        fingerprint=version_fingerprint(data.fingerprint, params.digest()),
    )
    lock = promotion_lock(params, tracking)
    return register_and_promote(
        challenger,
        data,
        params.primary_metric,
        params.promote,
        params.evaluate,
        tracking,
        lock,
        params.project.seed,
    )
