"""Prefect cache keys: a re-run with unchanged data, parameters and code skips the fitting."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """Hash of the source that shapes a trained model (the loopml package and tasks/)."""
    digest = hashlib.sha256()
    for folder in (ROOT / "loopml", ROOT / "tasks"):
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _dump(value: Any) -> str:
    if hasattr(value, "model_dump"):
        return json.dumps(value.model_dump(mode="json"), sort_keys=True)
    return json.dumps(value, sort_keys=True, default=str)


def fit_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Key of ``train_candidate``: data fingerprint, candidate, trainer settings, seed, code."""
    parts = [
        parameters["data"].fingerprint,
        _dump(parameters["candidate"]),
        _dump(parameters["lightning"]) if parameters["candidate"].kind == "lightning" else "",
        str(parameters["index"]),
        str(parameters["seed"]),
        parameters["metric"],
        code_digest(),
    ]
    return "fit-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
