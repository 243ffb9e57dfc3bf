"""Identities of work already done: a re-run with unchanged data, parameters and code skips the
fitting and evaluation (Prefect cache keys) and registers nothing new (registry fingerprints)."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from pydantic import BaseModel

from loopml.config import CandidateConfig, EvaluateConfig, LightningConfig

PACKAGE = Path(__file__).resolve().parent


def _sha(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _dump(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"), sort_keys=True)


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """Hash of the library's source, which shapes every trained model."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fit_key(
    data_fingerprint: str,
    candidate: CandidateConfig,
    lightning: LightningConfig,
    index: int,
    seed: int,
    metric: str,
    shared_budget: float | None = None,
) -> str:
    """Identity of one fitted candidate: data, candidate, trainer settings, seed, code, and
    ``train.time_budget`` (a fit it cut is not the fit without it)."""
    trainer = _dump(lightning) if candidate.kind == "lightning" else ""
    return "fit-" + _sha(
        data_fingerprint,
        _dump(candidate),
        trainer,
        str(index),
        str(seed),
        metric,
        "" if shared_budget is None else repr(float(shared_budget)),
        code_digest(),
    )


def evaluation_key(fit: str, cfg: EvaluateConfig, metric: str, seed: int, stage: str) -> str:
    """Identity of an evaluation (``stage``: metrics, or the full analysis) of a fitted model."""
    return "eval-" + _sha(fit, _dump(cfg), metric, str(seed), stage, code_digest())


def version_fingerprint(data_fingerprint: str, params_digest: str) -> str:
    """Identity of a model version: data, every parameter, code."""
    return _sha(data_fingerprint, params_digest, code_digest())
