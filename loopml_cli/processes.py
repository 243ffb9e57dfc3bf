"""Background processes of the stacks: started in their own process group with a log file and
a pid file, waited for over HTTP, stopped as a whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import requests


def wait_http(
    url: str, timeout: float, pid: int | None = None, not_ready_too: bool = False
) -> bool:
    """Whether ``url`` answers within ``timeout``; gives up early once process ``pid`` exits.
    ``not_ready_too``: a 503 counts as an answer (a server up but waiting, such as the model
    server before the first champion)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status = requests.get(url, timeout=2).status_code
            if status < 500 or (not_ready_too and status == 503):
                return True
        except requests.RequestException:
            pass
        if pid is not None and not group_alive(pid):
            return False
        time.sleep(0.5)
    return False


def spawn(name: str, cmd: list[str], run_dir: Path, env: dict[str, str], cwd: Path) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    logfile = (run_dir / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )
    (run_dir / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies of our own children count
    as gone once reaped)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, timeout: float = 20.0) -> None:
    """SIGTERM to the group; SIGKILL to what is left after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.time() + timeout
    while group_alive(pgid) and time.time() < deadline:
        time.sleep(0.2)  # the leader and its children (server workers) all exit
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def running(run_dir: Path) -> dict[str, int]:
    """The processes started into ``run_dir`` (one ``<name>.pid`` each) that are still alive."""
    out = {}
    for pidfile in sorted(run_dir.glob("*.pid")):
        pid = int(pidfile.read_text().strip() or 0)
        if pid and alive(pid):
            out[pidfile.stem] = pid
    return out
