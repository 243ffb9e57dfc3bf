"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.exceptions import StorageError

# A write that fails for one of these reasons is the disk's fault, not the data's.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def storage_error(target: Path, exc: OSError) -> StorageError:
    """The one message of a write the disk refused: which file, why, what to do."""
    return StorageError(
        f"could not write {target}: {exc.strerror or exc} (errno {exc.errno}); nothing was "
        f"kept. Free space on the disk of {target.parent} or point the path elsewhere, "
        "then run again"
    )


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically,
    on failure it is removed and ``target`` is left as it was. A full (or read-only) disk is
    raised as ``StorageError`` naming ``target``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise storage_error(target, exc) from exc
        raise
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise storage_error(target, exc) from exc
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(target: Path, writer: Callable[[Path], Any]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def write_json(target: Path, payload: Any) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    return write_atomic(target, lambda p: p.write_text(text))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_parquet(target: Path, frame: pd.DataFrame) -> Path:
    """Deterministic Parquet: the same frame gives the same bytes (and so the same DVC hash)."""
    return write_atomic(
        target,
        lambda p: frame.to_parquet(p, index=False, engine="pyarrow", compression="zstd"),
    )
