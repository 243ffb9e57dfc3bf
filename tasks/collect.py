"""collect: read a batch from the configured source, conform it to the schema, snapshot it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml import schema, snapshots, sources
from loopml.config import CleanConfig, SchemaConfig, SourceConfig, VersioningConfig
from loopml.snapshots import Snapshot
from tasks._policies import IO


@task(name="read-source", cache_policy=NO_CACHE, **IO)
def read_source(source: SourceConfig, root: Path) -> pd.DataFrame:
    """One batch from ``source`` (:func:`loopml.sources.read_batch`)."""
    return sources.read_batch(source, root)


@task(name="conform", cache_policy=NO_CACHE)
def conform(frame: pd.DataFrame, table: SchemaConfig, clean: CleanConfig) -> pd.DataFrame:
    """The declared columns in their declared kinds, and the derived columns
    (:func:`loopml.schema.conform_batch`)."""
    return schema.conform_batch(frame, table, clean)


@task(name="snapshot", cache_policy=NO_CACHE, **IO)
def snapshot(
    frame: pd.DataFrame,
    source: SourceConfig,
    snapshots_dir: Path,
    current_pointer: Path,
    versioning: VersioningConfig,
) -> Snapshot:
    """An immutable, DVC-versioned snapshot (:func:`loopml.snapshots.write_snapshot`)."""
    return snapshots.write_snapshot(
        frame, snapshots_dir, current_pointer, sources.describe_source(source), versioning
    )


@task(name="current-snapshot", cache_policy=NO_CACHE)
def current_snapshot(current_pointer: Path) -> Snapshot:
    """The snapshot of the last collect (:func:`loopml.snapshots.current_snapshot`)."""
    return snapshots.current_snapshot(current_pointer)


@task(name="read-snapshot", cache_policy=NO_CACHE, **IO)
def read_snapshot(snapshot: Snapshot) -> pd.DataFrame:
    """The rows of a snapshot (:func:`loopml.snapshots.read_snapshot`)."""
    return snapshots.read_snapshot(snapshot)


@task(name="verify-snapshot", cache_policy=NO_CACHE, **IO)
def verify_snapshot(snapshot: Snapshot) -> Path:
    """The snapshot's file, intact or restored with DVC
    (:func:`loopml.snapshots.verify_snapshot`)."""
    return snapshots.verify_snapshot(snapshot)
