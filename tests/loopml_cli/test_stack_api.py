"""Which Prefect API a command uses when `loopml up` may be running: only a live, usable one.

The positive case (a command runs on the server of a real `loopml up`) is in test_up_down.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loopml_cli.prefect_api import UP_API_FILE, stack_api
from tests.stack import free_port


def _record(run_dir: Path, url: str, pid: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / UP_API_FILE).write_text(url)
    (run_dir / "prefect.pid").write_text(str(pid))


def test_no_server_recorded(tmp_path: Path) -> None:
    assert stack_api(tmp_path / "run") is None


def test_a_recorded_server_whose_process_is_gone(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    gone.wait()
    _record(tmp_path / "run", f"http://127.0.0.1:{free_port()}/api", gone.pid)
    assert stack_api(tmp_path / "run") is None


def test_a_live_process_that_does_not_answer(tmp_path: Path) -> None:
    _record(tmp_path / "run", f"http://127.0.0.1:{free_port()}/api", os.getpgid(0))
    assert stack_api(tmp_path / "run") is None


def test_a_garbled_pid_file(tmp_path: Path) -> None:
    _record(tmp_path / "run", "http://127.0.0.1:1/api", 0)
    (tmp_path / "run" / "prefect.pid").write_text("not a pid")
    assert stack_api(tmp_path / "run") is None
