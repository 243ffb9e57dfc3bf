"""The suite file: loaded when it exists, otherwise profiled from the first accepted snapshot.

A snapshot of more than ``validate.batch_rows`` rows is profiled from a uniform sample of that
many rows (ranges, null shares and class shares; seed 0), except the value sets of categorical
columns, which come from every row: a category the sample missed would otherwise fail the very
snapshot the suite was profiled from. The suite's ``meta`` records the sample.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.config import SchemaConfig, ValidateConfig
from loopml.exceptions import ConfigError
from loopml.io import write_json
from loopml.quality.suite import Suite, profile_suite
from loopml.snapshot_batches import SnapshotBatches

log = logging.getLogger(__name__)

SAMPLE_SEED = 0


def _domains(
    batches: SnapshotBatches, schema: SchemaConfig, cfg: ValidateConfig
) -> dict[str, list[Any]]:
    """The distinct values of each categorical feature over every batch (a column with more
    than ``domain_max_values`` stops there: it gets no value set)."""
    columns = [c for c, k in schema.kinds.items() if k == "categorical" and c != schema.target]
    seen: dict[str, set[Any]] = {c: set() for c in columns}
    for frame in batches:
        for column in [c for c in seen if c in frame.columns]:
            if len(seen[column]) <= cfg.domain_max_values:
                seen[column].update(pd.unique(frame[column].dropna()))
    return {column: list(values) for column, values in seen.items()}


def profile_snapshot(batches: SnapshotBatches, schema: SchemaConfig, cfg: ValidateConfig) -> Suite:
    """A new suite from the snapshot: all of it, or a documented sample (see the module)."""
    if not batches.batched:
        return profile_suite(batches.whole(), schema, cfg)
    sample = batches.sample(batches.batch_rows, seed=SAMPLE_SEED)
    suite = profile_suite(sample, schema, cfg, domains=_domains(batches, schema, cfg))
    meta = {
        **suite.meta,
        "snapshot_rows": batches.rows,
        "sample": f"uniform, {len(sample):,} of {batches.rows:,} rows, seed {SAMPLE_SEED}; "
        "categorical value sets from every row",
    }
    log.info(
        "profiling the suite from a uniform sample of %s of %s rows (value sets from every row)",
        f"{len(sample):,}",
        f"{batches.rows:,}",
    )
    return Suite(name=suite.name, expectations=suite.expectations, meta=meta)


def _read_suite(suite_path: Path, cfg: ValidateConfig) -> Suite:
    try:
        raw = json.loads(suite_path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{suite_path}: not valid JSON ({exc})"], str(suite_path)) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("expectations"), list):
        raise ConfigError([f"{suite_path}: not an expectation suite"], str(suite_path))
    return Suite(
        name=str(raw.get("name") or cfg.suite_name),
        expectations=raw["expectations"],
        meta=raw.get("meta") or {},
    )


def load_suite(
    suite_path: Path,
    batches: SnapshotBatches,
    schema: SchemaConfig,
    cfg: ValidateConfig,
    types_ok: bool = True,
) -> Suite:
    """Load the reviewable suite file; profile the snapshot into a new one if there is none (but
    never a batch whose declared types are wrong: ``types_ok``)."""
    if suite_path.is_file():
        return _read_suite(suite_path, cfg)
    if cfg.on_missing_suite == "error":
        raise ConfigError(
            [f"validate.on_missing_suite is 'error' and {suite_path} does not exist"], "params.yaml"
        )
    if not types_ok:  # nothing to profile from: the declared-type failures stop the batch
        return Suite(name=cfg.suite_name, expectations=[])
    suite = profile_snapshot(batches, schema, cfg)
    write_json(suite_path, suite.to_json())
    log.info(
        "profiled a new expectation suite with %d expectations: %s",
        len(suite.expectations),
        suite_path,
    )
    return suite
