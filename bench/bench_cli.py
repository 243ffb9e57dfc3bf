"""Benchmark: what one ``loopml run`` costs a user, as the whole process's wall time.

In a new project on the shipped ``params.yaml`` (the bundled generator, 20k rows, the shipped
candidates), measured as the user sees it (``loopml run`` as a new process):

* cold: the first run of the project (new batch, suite profiled, every candidate fitted);
* unchanged, embedded: the same command again with nothing changed, Prefect's API started
  for the command;
* unchanged, on ``loopml up``: the same while ``loopml up`` runs for the project, whose
  Prefect server the command then uses;
* ``python -c "import loopml_cli.main"``: the interpreter and the CLI's own imports, the floor.

The fixed cost, split (each part on its own, in a new process, also ``--repeat`` times):

* imports: ``python -c "import flows.training"``, what ``loopml run`` imports before it runs
  the flow (Prefect, MLflow, scikit-learn, the library);
* Prefect start-up, embedded: starting the command's own API server until ``/health``
  answers (in a ``loopml run`` it overlaps the imports: the server starts first);
* Prefect start-up, running server: finding the server of ``loopml up`` and checking that it
  answers (what a command does instead of starting one).

Each unchanged kind is measured ``--repeat`` times (the embedded ones alternating with the
floor, then ``loopml up`` once for the others: while it runs, every command uses it);
reported are the median and the range (min-max), and the ratios of the medians to the cold
run and to the floor. Not a test: nothing here asserts a time.

    python bench/bench_cli.py                  # 3 repetitions, updates docs/benchmarks.md
    python bench/bench_cli.py --repeat 5 --no-doc
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_cli:begin -->", "<!-- bench_cli:end -->"
CLI = [sys.executable, "-m", "loopml_cli"]


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def _project(where: Path) -> Path:
    from tests.conftest import make_dvc_repo

    repo = make_dvc_repo(where)
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    return repo


ROWS = ("cold", "unchanged, embedded", "unchanged, up", "floor", "imports", "prefect, embedded")
ROWS += ("prefect, running",)
"""The table's rows, in order."""
IMPORTS = [
    sys.executable,
    "-c",
    "import loopml_cli\nloopml_cli.use_pipeline_code()\nimport flows.training",
]
_CLOCK = "import sys, time\nfrom pathlib import Path\n"
EMBEDDED = _CLOCK + (
    "from loopml_cli.prefect_api import EmbeddedApi\nt = time.perf_counter()\n"
    "api = EmbeddedApi(Path('prefect-api.log'))\napi.start()\napi.wait()\n"
    "sys.stdout.write(f'{time.perf_counter() - t}')\napi.stop()\n"
)
RUNNING = _CLOCK + (
    "from loopml_cli.prefect_api import stack_api\nt = time.perf_counter()\n"
    "assert stack_api(Path('.loopml/run'))\nsys.stdout.write(f'{time.perf_counter() - t}')\n"
)
"""Each prints its own seconds, from after the interpreter started and imported the modules
the snippet names."""


def _reported(code: str, cwd: Path, env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"start-up snippet failed:\n{done.stderr[-2000:]}")
    return float(done.stdout)


def measure(repeat: int) -> dict[str, list[float]]:
    from tests.stack import free_port

    times: dict[str, list[float]] = {key: [] for key in ROWS if key != "cold"}
    with tempfile.TemporaryDirectory(prefix="loopml-bench-cli-") as tmp:
        project = _project(Path(tmp) / "project")
        env = {**os.environ, "PREFECT_HOME": str(Path(tmp) / "prefect_home")}
        env.pop("PREFECT_API_URL", None)
        run = [*CLI, "run", "-p", "params.yaml"]
        times["cold"] = [_timed(run, project, env)]
        sys.stderr.write(f"  cold {times['cold'][0]:.1f}s\n")
        for i in range(repeat):
            floor = [sys.executable, "-c", "import loopml_cli.main"]
            times["floor"].append(_timed(floor, project, env))
            times["imports"].append(_timed(IMPORTS, project, env))
            times["prefect, embedded"].append(_reported(EMBEDDED, project, env))
            times["unchanged, embedded"].append(_timed(run, project, env))
            _progress("embedded", i, repeat, times)
        up = [*CLI, "up", "-p", "params.yaml", "--prefect-port", str(free_port())]
        up += ["--mlflow-port", str(free_port())]
        _timed(up, project, env)
        try:
            for i in range(repeat):
                times["prefect, running"].append(_reported(RUNNING, project, env))
                times["unchanged, up"].append(_timed(run, project, env))
                _progress("up", i, repeat, times)
        finally:
            down = [*CLI, "down", "-p", "params.yaml"]
            subprocess.run(down, cwd=project, env=env, check=False, capture_output=True)
    return times


def _progress(kind: str, i: int, repeat: int, times: dict[str, list[float]]) -> None:
    latest = ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items() if v)
    sys.stderr.write(f"  {kind} {i + 1}/{repeat}: {latest}\n")


def render(times: dict[str, list[float]], started: str, repeat: int) -> str:
    from bench.common import spread

    cold = statistics.median(times["cold"])
    floor = statistics.median(times["floor"])
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores, Python "
        f"{platform.python_version()} (`python bench/bench_cli.py --repeat {repeat}`): the wall "
        f"time of the whole process, median (min-max) of {repeat} runs, one cold run; ratios "
        "of medians.",
        "",
        "| command | wall s | vs cold run | vs floor |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "cold": "`loopml run`, new project (cold; one run)",
        "unchanged, embedded": "`loopml run`, nothing changed, embedded Prefect API",
        "unchanged, up": "`loopml run`, nothing changed, while `loopml up` runs",
        "floor": "`python -c 'import loopml_cli.main'` (floor)",
        "imports": "`python -c 'import flows.training'` (what `loopml run` imports)",
        "prefect, embedded": "Prefect start-up: embedded API server until `/health` answers",
        "prefect, running": "Prefect start-up: finding and checking `loopml up`'s server",
    }
    for key in ROWS:
        med = statistics.median(times[key])
        lines.append(
            f"| {labels[key]} | {spread(times[key])} | {med / cold:.2f} | {med / floor:.1f}x |"
        )
    lines += [
        "",
        "The unchanged runs still collect the batch (reading the source, hashing it: the same "
        "snapshot), find the validation done before (same snapshot, suite, schema, settings and "
        "checks) and the features built before (same snapshot, schema, settings, seed and code; "
        "the snapshot's md5 checked), take every fit from Prefect's cache, log each candidate "
        "as a child run, evaluate from the cache and decide that nothing changed.",
        "",
        "The last three rows split the fixed cost; each is measured on its own in a new process "
        "(the Prefect rows from after the snippet's own imports). In an embedded `loopml run` "
        "the API server starts first and comes up while the command imports, so the two "
        "overlap.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    from bench.common import parse_bench_args, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = parse_bench_args(parser)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = render(measure(args.repeat), started, args.repeat)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        write_section(DOC, section, (BEGIN, END), "## One `loopml run`, start to exit\n\n")


if __name__ == "__main__":
    main()
