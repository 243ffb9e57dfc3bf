"""Process set-up: ``serve.threads`` caps the native thread pools of a server process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# In a new process: the cap changes process-wide state (thread pools, the environment).
PROBE = """
import json, os
import sklearn.ensemble  # loads scikit-learn's OpenMP runtime and numpy's BLAS
from threadpoolctl import threadpool_info
before = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
from loopml.runtime import THREAD_POOLS, limit_native_threads
limit_native_threads(THREADS)
after = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
env = [os.environ[v] for v in THREAD_POOLS]
print(json.dumps({"before": before, "after": after, "env": env}))
"""


@pytest.mark.parametrize("threads", [1, 3])
def test_limit_native_threads_caps_every_loaded_pool_and_the_environment(threads: int) -> None:
    code = PROBE.replace("THREADS", str(threads))
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"}  # what a 2-core machine defaults to
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=env
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert "openmp" in report["after"]  # scikit-learn's OpenMP runtime was loaded
    assert set(report["before"].values()) == {2}
    assert set(report["after"].values()) == {threads}
    assert report["env"] == [str(threads)] * 3
