"""DVC operations through DVC's own Python API (the code paths of ``dvc add``, ``dvc push``)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import yaml

from loopml.exceptions import VersioningError
from loopml.io import STORAGE_ERRNOS, storage_error

log = logging.getLogger(__name__)


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file's bytes: what DVC records as a file's hash."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def find_repo_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a ``.dvc`` folder."""
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


@contextlib.contextmanager
def _repo(root: Path) -> Iterator[object]:
    from dvc.repo import Repo  # heavy import, kept out of module import time

    # DVC's hints ("To track the changes with git, run ...") are for humans at a shell.
    logging.getLogger("dvc").setLevel(logging.WARNING)
    try:
        repo = Repo(str(root))
    except Exception as exc:  # dvc raises its own NotDvcRepoError and friends
        raise VersioningError(
            f"{root} is not a DVC repository ({exc}); run `loopml init -p <params.yaml>`"
        ) from exc
    try:
        yield repo
    finally:
        repo.close()


def _cache_dir(repo: object, root: Path) -> Path:
    local = getattr(getattr(repo, "cache", None), "local", None)
    return Path(getattr(local, "path", root / ".dvc" / "cache"))


def _partial_copies(cache: Path) -> set[Path]:
    """DVC's temporary files in its cache (``.<random>.tmp``), which a failed copy leaves."""
    return set(cache.rglob(".*.tmp")) if cache.is_dir() else set()


def _disk_error(exc: BaseException) -> OSError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in STORAGE_ERRNOS:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def dvc_add(path: Path, root: Path) -> str:
    """``dvc add path`` and return the md5 recorded in its ``.dvc`` file.

    On failure the partial copies DVC left in its cache are removed; a full disk is a
    :class:`StorageError` naming the cache."""
    path = path.resolve()
    with _repo(root) as repo:
        cache = _cache_dir(repo, root)
        before = _partial_copies(cache)
        try:
            repo.add([str(path)])  # type: ignore[attr-defined]
        except Exception as exc:
            for partial in _partial_copies(cache) - before:
                partial.unlink(missing_ok=True)
            if (disk := _disk_error(exc)) is not None:
                raise storage_error(cache / path.name, disk) from exc
            raise VersioningError(f"dvc add {path} failed: {exc}") from exc
    return dvc_file_md5(path.with_name(path.name + ".dvc"))


def dvc_file_md5(dvc_file: Path) -> str:
    try:
        meta = yaml.safe_load(dvc_file.read_text())
        return str(meta["outs"][0]["md5"])
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError) as exc:
        raise VersioningError(f"cannot read the md5 from {dvc_file}: {exc}") from exc


def dvc_push(path: Path, root: Path, remote: str | None = None) -> None:
    with _repo(root) as repo:
        try:
            repo.push(targets=[str(path.resolve())], remote=remote)  # type: ignore[attr-defined]
        except Exception as exc:
            hint = ""
            if "credentials" in str(exc).lower():
                hint = (
                    "; the DVC remote needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                    "environment (for the remote of `loopml stack up`: the values of S3_ACCESS_KEY "
                    "and S3_SECRET_KEY)"
                )
            raise VersioningError(f"dvc push {path} failed: {exc}{hint}") from exc


def dvc_move(src: Path, dst: Path, root: Path) -> None:
    """``dvc move``: the data and its ``.dvc`` file move together, versions stay in the cache."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with _repo(root) as repo:
        try:
            repo.move(str(src.resolve()), str(dst.resolve()))  # type: ignore[attr-defined]
        except Exception as exc:
            raise VersioningError(f"dvc move {src} {dst} failed: {exc}") from exc


def dvc_fetch_checkout(
    path: Path, root: Path, remote: str | None = None, force: bool = False
) -> None:
    """Bring a tracked file back into the workspace (``dvc pull path``; ``force`` replaces a
    modified copy)."""
    with _repo(root) as repo:
        try:
            repo.pull(targets=[str(path.resolve())], remote=remote, force=force)  # type: ignore[attr-defined]
        except Exception as exc:
            raise VersioningError(f"dvc pull {path} failed: {exc}") from exc


def remove_quietly(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.remove(p)
