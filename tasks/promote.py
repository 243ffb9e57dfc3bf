"""promote: register the best candidate, check it serves, and move the ``champion`` alias only
when the policy in ``params.yaml`` says so.

Policy: the challenger must pass every absolute floor and beat the current champion, re-scored
on the same new test split, by ``min_improvement`` (and, when configured, beyond the champion's
bootstrap interval). Then ``champion`` moves to it and the former champion becomes ``previous``;
otherwise the new version is the ``challenger``. Every reason is recorded as tags. Promotions are
serialized by a lock and re-read the champion inside it, so two runs finishing at once cannot
both move the alias.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml.caching import code_digest
from loopml.config import LOWER_IS_BETTER, PromoteConfig
from loopml.exceptions import PromotionRefused
from loopml.metrics import (
    bootstrap_interval,
    classification_metrics,
    is_better,
    passes_floor,
    regression_metrics,
)
from loopml.tracking import Tracking
from tasks.train import ModelData

log = logging.getLogger(__name__)

CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous", "challenger"


@dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _score_rows(
    model: Any, data: ModelData, metric: str, resamples: int, seed: int
) -> tuple[float, tuple[float, float]]:
    output = model.predict_output(data.test_rows[list(data.input_kinds)])
    values = (
        classification_metrics(data.y_test, output)
        if data.task == "classification"
        else regression_metrics(data.y_test, output)
    )
    ci = bootstrap_interval(metric, data.task, data.y_test, output, resamples, 0.95, seed)
    return values.get(metric, float("nan")), ci


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # MlflowException: alias or model not found
        return None


def servability_check(model_uri: str, rows: pd.DataFrame) -> None:
    """Load the registered model back and predict on raw rows; raise if it cannot."""
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    out = model.predict(rows)
    if len(out) != len(rows) or "prediction" not in out.columns or out["prediction"].isna().any():
        raise PromotionRefused([f"{model_uri} did not return one prediction per raw row"])


@task(name="register-and-promote", cache_policy=NO_CACHE)
def register_and_promote(
    model_uri: str,
    run_id: str,
    challenger_metrics: dict[str, float],
    data: ModelData,
    metric: str,
    cfg: PromoteConfig,
    tracking: Tracking,
    tags: dict[str, str],
    lock_path: Path,
    resamples: int,
    seed: int,
) -> Decision:
    """Register ``model_uri`` as a new version; move ``champion`` only if the policy allows."""
    import mlflow
    from filelock import FileLock

    tracking.activate()
    client = tracking.client()
    name = cfg.model_name
    fingerprint = hashlib.sha256(
        f"{data.fingerprint}|{tags.get('loopml.params_digest')}|{code_digest()}".encode()
    ).hexdigest()[:32]
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path)):
        try:
            client.get_registered_model(name)
        except Exception:
            client.create_registered_model(name, description="Managed by loopml promotion policy.")
        same = [
            v
            for v in client.search_model_versions(f"name='{name}'")
            if v.tags.get("loopml.fingerprint") == fingerprint
        ]
        if same:
            v = same[0]
            reason = (
                f"unchanged: same data, parameters and code as v{v.version} "
                f"(its decision: {v.tags.get('loopml.decision', 'unknown')}); nothing registered"
            )
            log.info("%s: %s", name, reason)
            return Decision(
                name,
                str(v.version),
                False,
                [reason],
                metric,
                challenger_metrics.get(metric, float("nan")),
                aliases={a: str(v.version) for a in v.aliases},
            )
        mv = client.create_model_version(
            name, model_uri, run_id=run_id, tags={**tags, "loopml.fingerprint": fingerprint}
        )
        version = str(mv.version)
        for key, value in challenger_metrics.items():
            client.set_model_version_tag(name, version, f"metric.{key}", f"{value:.6f}")
        score = challenger_metrics.get(metric, float("nan"))
        try:
            servability_check(
                f"models:/{name}/{version}",
                data.test_rows[list(data.input_kinds)].head(cfg.servability_rows),
            )
        except Exception as exc:
            reason = f"servability check failed: {exc}"
            client.set_model_version_tag(name, version, "loopml.decision", "refused")
            client.set_model_version_tag(name, version, "loopml.reasons", reason[:5000])
            return Decision(name, version, False, [reason], metric, score)

        champion = _alias_version(client, name, CHAMPION)
        champion_score, champion_ci = None, None
        if champion is not None:
            try:
                loaded = mlflow.pyfunc.load_model(
                    f"models:/{name}/{champion}"
                ).unwrap_python_model()
                champion_score, champion_ci = _score_rows(loaded, data, metric, resamples, seed)
            except Exception as exc:
                log.warning("champion v%s cannot score the new test split: %s", champion, exc)
                champion_score, champion_ci = float("nan"), None
        promoted, reasons = decide(metric, challenger_metrics, champion_score, champion_ci, cfg)
        if champion is not None and champion_score is not None and np.isnan(champion_score):
            reasons.append(f"champion v{champion} could not score the new test split")
        aliases: dict[str, str] = {}
        if promoted:
            if champion is not None:
                client.set_registered_model_alias(name, PREVIOUS, champion)
                aliases[PREVIOUS] = champion
            client.set_registered_model_alias(name, CHAMPION, version)
            aliases[CHAMPION] = version
        else:
            client.set_registered_model_alias(name, CHALLENGER, version)
            aliases[CHALLENGER] = version
        client.set_model_version_tag(
            name, version, "loopml.decision", "promoted" if promoted else "refused"
        )
        client.set_model_version_tag(name, version, "loopml.reasons", " | ".join(reasons)[:5000])
    decision = Decision(
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
    )
    log.info(
        "%s v%s %s: %s",
        name,
        version,
        "promoted to champion" if promoted else "refused",
        "; ".join(reasons),
    )
    return decision


def rollback(tracking: Tracking, name: str) -> tuple[str, str]:
    """Move ``champion`` back to ``previous``. Returns (demoted version, restored version)."""
    client = tracking.client()
    champion = _alias_version(client, name, CHAMPION)
    previous = _alias_version(client, name, PREVIOUS)
    if champion is None or previous is None:
        raise PromotionRefused(
            [f"{name} has no '{CHAMPION}' and '{PREVIOUS}' aliases to roll back"]
        )
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.delete_registered_model_alias(name, PREVIOUS)
    client.set_model_version_tag(name, champion, "loopml.decision", "rolled_back")
    return champion, previous
