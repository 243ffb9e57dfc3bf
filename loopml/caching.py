"""Identities of work already done: a re-run with unchanged data, parameters and code skips the
fitting and evaluation (Prefect cache keys) and registers nothing new (registry fingerprints)."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
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


MODEL_LIBRARIES = ("numpy", "scikit-learn", "torch", "pytorch-lightning", "lightning")
"""The libraries whose version changes what a fitted model is and how it unpickles."""


@functools.cache
def library_versions(names: tuple[str, ...]) -> str:
    """``name==version`` of each installed library in ``names`` (``name==absent`` where it is not
    installed): a key that holds it is not reused after an upgrade (a transformer pickled by
    scikit-learn 1.5 and unpickled by 1.6 is not guaranteed to behave the same)."""
    found = []
    for name in names:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}==absent")
    return ",".join(found)


def fit_key(
    data_fingerprint: str,
    candidate: CandidateConfig,
    lightning: LightningConfig,
    index: int,
    seed: int,
    metric: str,
    shared_budget: float | None = None,
) -> str:
    """Identity of one fitted candidate: data, candidate, trainer settings, seed, code, the
    modelling libraries' versions, and ``train.time_budget`` (a fit it cut is not the fit
    without it)."""
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
        library_versions(MODEL_LIBRARIES),
    )


def evaluation_key(fit: str, cfg: EvaluateConfig, metric: str, seed: int, stage: str) -> str:
    """Identity of an evaluation (``stage``: metrics, or the full analysis) of a fitted model."""
    return "eval-" + _sha(fit, _dump(cfg), metric, str(seed), stage, code_digest())


def version_fingerprint(data_fingerprint: str, params_digest: str) -> str:
    """Identity of a model version: data, every parameter, code, the modelling libraries."""
    return _sha(data_fingerprint, params_digest, code_digest(), library_versions(MODEL_LIBRARIES))
