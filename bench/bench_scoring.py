"""Benchmark: peak memory and wall time of ``loopml score`` on a large Parquet file, this
checkout against an earlier commit (default ``b260644``, the last before scoring streamed) in
the same run.

One new project trains and promotes a champion on 20,000 rows (``loopml run``, not timed); a
batch of ``--rows`` rows from the bundled generator is written to one Parquet file (not
timed); then ``loopml score`` scores that file with each commit's code in turn (a ``git
worktree`` on ``PYTHONPATH``), the order alternating, ``--repeat`` times each, with
``score.chunk_rows: 100000`` and the prediction log on (a new log file for every run). Peak
memory is the kernel's maximum resident set of the command and the children it waited for
(``wait4``'s ``ru_maxrss``: its embedded Prefect server included); wall time is the clock
around the command.

    python bench/bench_scoring.py --rows 1000000            # 3 runs per arm, doc updated
    python bench/bench_scoring.py --rows 10000000 --no-doc

Not a test: nothing here asserts a time. Measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import arms_rows, new_project, parse_bench_args, write_section  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
PIECE = 1_000_000
"""Rows generated at a time while writing the batch (the bench process stays small)."""


def markers(rows: int) -> tuple[str, str]:
    return f"<!-- bench_scoring_{rows}:begin -->", f"<!-- bench_scoring_{rows}:end -->"


def write_batch(path: Path, rows: int) -> None:
    """``rows`` rows of the bundled generator in one Parquet file, ``PIECE`` at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.datagen import generate_churn

    writer = None
    for first in range(0, rows, PIECE):
        n = min(PIECE, rows - first)
        frame = generate_churn(n, seed=7 + first // PIECE, id_start=first + 1)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table.cast(writer.schema))
    assert writer is not None
    writer.close()


def project(where: Path, batch: Path) -> Path:
    import yaml

    params, raw = new_project(where, 20_000)
    raw["score"]["source"] = {"kind": "file", "file": {"path": str(batch)}}
    raw["score"]["chunk_rows"] = 100_000
    raw["validate"]["data_docs"] = False
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    return params


def run(command: str, params: Path, code: Path, log: Path) -> tuple[float, float]:
    """``loopml <command>`` on ``code``'s checkout: (wall seconds, peak RSS in GB)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopml_cli", command, "-p", str(params)],
            cwd=params.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"loopml {command} failed; the end of its output:\n{log.read_text()[-3000:]}"
        )
    return wall, usage.ru_maxrss / 1024 / 1024


def measure(rows: int, repeat: int, baseline: str, tmp: Path) -> dict[str, dict[str, list[float]]]:
    tree = tmp / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(tree), baseline], cwd=ROOT, check=True
    )
    try:
        batch = tmp / "batch.parquet"
        write_batch(batch, rows)
        params = project(tmp / "p", batch)
        run("run", params, ROOT, tmp / "run.log")  # the champion; not timed
        arms = {"streamed (this checkout)": ROOT, f"baseline ({baseline})": tree}
        out: dict[str, dict[str, list[float]]] = {a: {"wall": [], "peak": []} for a in arms}
        for i in range(repeat):
            order = list(arms) if i % 2 == 0 else list(reversed(arms))
            for arm in order:
                for old in params.parent.glob("data/predictions*"):
                    old.unlink()  # a new prediction log each run
                wall, peak = run("score", params, arms[arm], tmp / "score.log")
                out[arm]["wall"].append(wall)
                out[arm]["peak"].append(peak)
                print(f"{rows:,} rows, run {i + 1}, {arm}: {wall:.1f} s, {peak:.2f} GB", flush=True)  # noqa: T201
        return out
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def render(rows: int, results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> str:
    base = list(results)[1]
    lines = [
        markers(rows)[0],
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} with "
        f"{os.cpu_count()} cores (`python bench/bench_scoring.py --rows {rows} --repeat "
        f"{args.repeat} --baseline {args.baseline}`): `loopml score` of one Parquet file of "
        f"{rows:,} rows, `score.chunk_rows: 100000`, prediction log on (a new SQLite log each "
        f"run); median (min-max) of {args.repeat} runs per arm, the arms alternating.",
        "",
        *arms_rows(results, base),
    ]
    lines.append(markers(rows)[1])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline", default="b260644", help="the commit to compare against")
    args = parse_bench_args(parser)
    with tempfile.TemporaryDirectory(prefix="bench-scoring-", dir=ROOT.parent) as tmp:
        results = measure(args.rows, args.repeat, args.baseline, Path(tmp))
    section = render(args.rows, results, args)
    print(section)  # noqa: T201
    if not args.no_doc:
        heading = f"\n## Batch scoring of {args.rows:,} rows: peak memory and time\n\n"
        write_section(DOC, section, markers(args.rows), heading)


if __name__ == "__main__":
    main()
