"""Project set-up: DVC repository and default remote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loopml.config import Params
from loopml.exceptions import VersioningError

DEFAULT_REMOTE = "local"
DEFAULT_REMOTE_URL = "../.dvcstore"  # relative to .dvc/, i.e. <project>/.dvcstore


def _run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise VersioningError(
            f"`{' '.join(args)}` failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def _dvc(args: list[str], root: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], root)


def _enclosing(root: Path, marker: str) -> Path | None:
    return next((p for p in (root, *root.parents) if (p / marker).exists()), None)


def init_project(root: Path, remote_url: str | None = None) -> list[str]:
    """Make ``root`` ready for versioning: a git work tree, DVC, a default remote, where they
    are missing (a folder inside an existing git or DVC repository uses that one). Idempotent."""
    messages: list[str] = []
    root.mkdir(parents=True, exist_ok=True)
    if _enclosing(root, ".git") is None:
        _run(["git", "init", "-q"], root)
        messages.append(f"git: initialized {root}")
    dvc_root = _enclosing(root, ".dvc")
    if dvc_root is None:
        nested = _enclosing(root, ".git") != root  # a folder of a bigger git repository
        _dvc(["init", "-q", *(["--subdir"] if nested else [])], root)
        messages.append("dvc: initialized")
        dvc_root = root
    elif dvc_root != root:
        messages.append(f"dvc: using the repository at {dvc_root}")
    root = dvc_root
    _dvc(["config", "core.analytics", "false"], root)
    probe = subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "default"], cwd=root, capture_output=True, text=True
    )
    current = probe.stdout.strip() if probe.returncode == 0 else ""
    if remote_url is not None or not current:
        url = remote_url or DEFAULT_REMOTE_URL
        # Run from .dvc/: a relative path stays relative to .dvc/config, so clones keep their own.
        _dvc(["remote", "add", "--default", "--force", DEFAULT_REMOTE, url], root / ".dvc")
        current = DEFAULT_REMOTE
        messages.append(f"dvc: default remote '{DEFAULT_REMOTE}' -> {url}")
    url = _dvc(["remote", "list"], root)
    for line in url.splitlines():
        name, *rest = line.split()
        if name == current and rest and "://" not in rest[0]:
            store = Path(rest[0])
            store = store if store.is_absolute() else (root / ".dvc" / store).resolve()
            store.mkdir(parents=True, exist_ok=True)
    messages.append(f"dvc: ready (default remote: {current})")
    return messages


def require_versioning(params: Params) -> None:
    """Before a run reads anything: the snapshots folder must be inside a DVC repository when
    ``data.versioning`` is on."""
    if not params.data.versioning.enabled:
        return
    snapshots = params.path("snapshots").resolve()
    if _enclosing(snapshots, ".dvc") is None:
        raise VersioningError(
            f"{params.root.resolve()} is not inside a DVC repository: run "
            "`loopml init -p <params.yaml>` (it sets up git and DVC in that folder), or set "
            "data.versioning.enabled: false"
        )
