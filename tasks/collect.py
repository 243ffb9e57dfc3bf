"""collect: read a batch from the configured source, conform it to the schema, snapshot it;
and read the snapshot back for the later stages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml import collect, snapshots
from loopml.config import DataConfig
from loopml.snapshots import Snapshot
from tasks._policies import IO


@task(name="collect-snapshot", cache_policy=NO_CACHE, **IO)
def collect_snapshot(
    data: DataConfig, root: Path, snapshots_dir: Path, current_pointer: Path
) -> Snapshot:
    """The batch of ``data.source``, conformed, as an immutable DVC-versioned snapshot, written
    a chunk at a time (:func:`loopml.collect.collect_snapshot`)."""
    return collect.collect_snapshot(data, root, snapshots_dir, current_pointer)


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
