"""Snapshots: every accepted batch as an immutable, content-addressed Parquet file
(``<paths.snapshots>/<md5>.parquet``), versioned with ``dvc add`` and pushed to the DVC remote.

The md5 is the data version every later step records. The same data gives the same file and the
same version; a failure leaves nothing half-written behind. ``paths.current`` points to the
snapshot of the last collect (read by the DVC stages).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from loopml.config import VersioningConfig
from loopml.exceptions import IntegrityError, SourceError, VersioningError
from loopml.io import read_json, write_json, write_parquet
from loopml.versioning import (
    dvc_add,
    dvc_fetch_checkout,
    dvc_push,
    file_md5,
    find_repo_root,
    remove_quietly,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """An accepted batch on disk. ``version`` is its DVC hash (md5 of the Parquet file)."""

    version: str
    path: str
    rows: int
    columns: list[str]
    source: str
    dvc_tracked: bool


@dataclass(frozen=True)
class Written:
    """A batch written to a staging file (:func:`staging_path`), not yet a snapshot."""

    staging: Path
    rows: int
    columns: list[str]


def staging_path(snapshots_dir: Path) -> Path:
    """A new staging file in ``snapshots_dir`` (on the snapshots' file system: the rename to
    ``<md5>.parquet`` is atomic)."""
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    return snapshots_dir / f".staging-{os.getpid()}-{time.time_ns()}.parquet"


def _store(staging: Path) -> tuple[Path, str, bool]:
    """Move a written staging file to ``<md5>.parquet`` beside it: (path, md5, whether it
    already existed). The staging file is gone afterwards, whatever happens."""
    try:
        version = file_md5(staging)
        final = staging.with_name(f"{version}.parquet")
        existed = final.exists() and file_md5(final) == version
        if existed:
            staging.unlink()
        else:
            os.replace(staging, final)
    finally:
        remove_quietly(staging)
    return final, version, existed


def _version_with_dvc(final: Path, version: str, existed: bool, cfg: VersioningConfig) -> None:
    """``dvc add`` (and push) ``final``; on failure remove what this call created."""
    root = find_repo_root(final.parent.resolve())
    if root is None:
        if not existed:
            remove_quietly(final)
        raise VersioningError(
            f"{final.parent} is not inside a DVC repository: run `loopml init -p <params.yaml>` "
            "(it sets up git and DVC in that folder), or set data.versioning.enabled: false"
        )
    dvc_file = final.with_name(final.name + ".dvc")
    had_dvc_file = dvc_file.exists()
    try:
        dvc_version = dvc_add(final, root)
        if dvc_version != version:
            raise VersioningError(f"DVC recorded {dvc_version} for {final}, expected {version}")
        if cfg.push:
            dvc_push(final, root, cfg.remote)
    except Exception:
        if not existed:
            remove_quietly(final)
        if not had_dvc_file:
            remove_quietly(dvc_file)
        raise


def write_snapshot(
    frame: pd.DataFrame,
    snapshots_dir: Path,
    current_pointer: Path,
    source: str,
    versioning: VersioningConfig,
) -> Snapshot:
    """Write ``frame`` as an immutable snapshot, version it with DVC, point ``current`` to it.

    On any failure the new snapshot and its ``.dvc`` file are removed; an earlier identical
    snapshot is left alone.
    """
    if frame.empty:
        raise SourceError(f"{source}: refusing to snapshot an empty batch")
    staging = write_parquet(staging_path(snapshots_dir), frame)  # atomic: all or nothing
    written = Written(staging, len(frame), [str(c) for c in frame.columns])
    return publish_snapshot(written, current_pointer, source, versioning)


def publish_snapshot(
    written: Written, current_pointer: Path, source: str, versioning: VersioningConfig
) -> Snapshot:
    """The staging file as an immutable snapshot: renamed to its md5, versioned with DVC,
    ``current`` pointed to it. On any failure the new snapshot and its ``.dvc`` file are
    removed (the staging file too); an earlier identical snapshot is left alone."""
    final, version, existed = _store(written.staging)
    if versioning.enabled:
        _version_with_dvc(final, version, existed, versioning)
    snap = Snapshot(
        version=version,
        path=str(final),
        rows=written.rows,
        columns=written.columns,
        source=source,
        dvc_tracked=versioning.enabled,
    )
    try:
        rel = os.path.relpath(final.resolve(), current_pointer.resolve().parent)
    except ValueError:  # another drive
        rel = str(final.resolve())
    write_json(current_pointer, {**asdict(snap), "path": rel})
    log.info(
        "snapshot %s (%s rows)%s%s",
        final.name,
        f"{written.rows:,}",
        "" if existed else " written",
        ", versioned with DVC" if versioning.enabled else "",
    )
    return snap


def current_snapshot(current_pointer: Path) -> Snapshot:
    """The snapshot of the last collect (``paths.current``)."""
    if not current_pointer.is_file():
        raise SourceError(f"{current_pointer}: no collected snapshot yet; run `loopml collect`")
    meta = read_json(current_pointer)
    path = Path(meta["path"])
    if not path.is_absolute():
        path = (current_pointer.resolve().parent / path).resolve()
    return Snapshot(**{**meta, "path": str(path)})


def _found(path: Path) -> str:
    return file_md5(path) if path.is_file() else "missing"


def verify_snapshot(snapshot: Snapshot) -> Path:
    """The snapshot's file, checked against its version (the md5 DVC recorded for it).

    A missing, truncated or altered file is restored from the DVC cache or remote once
    (``dvc pull --force``); if that cannot bring back a matching copy, :class:`IntegrityError`
    names the file, both hashes and what to do."""
    path = Path(snapshot.path)
    found = _found(path)
    if found == snapshot.version:
        return path
    dvc_file = path.with_name(path.name + ".dvc")
    root = find_repo_root(path.resolve().parent) if dvc_file.is_file() else None
    log.warning(
        "snapshot %s: found md5 %s, expected %s; %s",
        path, found, snapshot.version, "restoring it with DVC" if root else "no DVC copy",
    )  # fmt: skip
    if root is not None:
        try:
            dvc_fetch_checkout(path, root, force=True)
        except VersioningError as exc:
            log.warning("%s", exc)
        found = _found(path)
        if found == snapshot.version:
            log.info("snapshot %s restored from the DVC cache/remote", path.name)
            return path
    raise IntegrityError(
        f"snapshot {path} does not match its version: expected md5 {snapshot.version}, found "
        f"{found}; no good copy in the DVC cache or remote. Collect the batch again "
        "(`loopml collect`) or restore the file from a backup"
    )


def read_snapshot(snapshot: Snapshot) -> pd.DataFrame:
    """The rows of a snapshot, verified against its version first (:func:`verify_snapshot`)."""
    path = verify_snapshot(snapshot)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow's own errors; a matching md5 makes this unlikely
        raise IntegrityError(f"snapshot {path} is not readable as Parquet: {exc}") from None
