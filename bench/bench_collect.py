"""Benchmark: peak memory and wall time of ``loopml collect`` on a large file, this checkout
against an earlier commit (default ``bbb54ca``, the last before collect streamed) in the same
run.

A batch of ``--rows`` rows from the bundled generator is written to one Parquet (or CSV) file
first (not timed). Then ``loopml collect`` reads it into a DVC-versioned snapshot with each
commit's code in turn (a ``git worktree`` on ``PYTHONPATH``), the order alternating,
``--repeat`` times each, every run in a new project (its own DVC cache and local remote) with
the shipped ``params.yaml`` and ``data.chunk_rows`` at its default. Peak memory is the kernel's
maximum resident set of the command and the children it waited for (``wait4``'s
``ru_maxrss``: its embedded Prefect server and ``dvc`` included); wall time is the clock around
the command. Both arms must give snapshots that read back equal (checked once, after the runs).

    python bench/bench_collect.py --rows 1000000            # 3 runs per arm, doc updated
    python bench/bench_collect.py --rows 10000000 --no-doc
    python bench/bench_collect.py --rows 1000000 --format csv

Not a test: nothing here asserts a time. Measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_scoring import run, write_batch  # noqa: E402
from bench.common import arms_rows, new_project, parse_bench_args, write_section  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"


def markers(rows: int, fmt: str) -> tuple[str, str]:
    return f"<!-- bench_collect_{fmt}_{rows}:begin -->", f"<!-- bench_collect_{fmt}_{rows}:end -->"


def write_file(tmp: Path, rows: int, fmt: str) -> Path:
    """The batch as one file of ``fmt``; a CSV file is converted from the Parquet one a row
    group at a time (the bench process stays small)."""
    parquet = tmp / "batch.parquet"
    write_batch(parquet, rows)
    if fmt == "parquet":
        return parquet
    import pyarrow.parquet as pq

    csv = tmp / "batch.csv"
    reader = pq.ParquetFile(parquet)
    for i in range(reader.num_row_groups):
        frame = reader.read_row_group(i).to_pandas()
        frame.to_csv(csv, mode="a", header=i == 0, index=False)
    parquet.unlink()
    return csv


def project(where: Path, batch: Path, code: Path) -> Path:
    """A new project reading ``batch``, with the keys of ``code``'s own params.yaml (an older
    commit refuses keys it does not know, such as ``data.chunk_rows``)."""
    import yaml

    params, raw = new_project(where, 20_000)
    raw["data"]["source"] = {"kind": "file", "file": {"path": str(batch)}}
    known = yaml.safe_load((code / "params.yaml").read_text())["data"]
    raw["data"] = {k: v for k, v in raw["data"].items() if k in known}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    return params


def snapshot_of(params: Path) -> Path:
    meta = json.loads((params.parent / "data" / "current.json").read_text())
    return (params.parent / "data" / meta["path"]).resolve()


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, list[float]]]:
    tree = tmp / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(tree), args.baseline],
        cwd=ROOT,
        check=True,
    )
    try:
        batch = write_file(tmp, args.rows, args.format)
        arms = {"streamed (this checkout)": ROOT, f"whole batch ({args.baseline})": tree}
        out: dict[str, dict[str, list[float]]] = {a: {"wall": [], "peak": []} for a in arms}
        last: dict[str, Path] = {}
        for i in range(args.repeat):
            order = list(arms) if i % 2 == 0 else list(reversed(arms))
            for k, arm in enumerate(order):
                params = project(tmp / f"p{i}-{k}", batch, arms[arm])
                wall, peak = run("collect", params, arms[arm], tmp / "collect.log")
                out[arm]["wall"].append(wall)
                out[arm]["peak"].append(peak)
                last[arm] = snapshot_of(params)
                sys.stderr.write(f"{args.rows:,} rows, run {i + 1}, {arm}: {wall:.1f} s, ")
                sys.stderr.write(f"{peak:.2f} GB\n")
        _same_rows(*last.values())
        return out
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def _same_rows(a: Path, b: Path) -> None:
    """Both arms' snapshots read back equal, a row group at a time (the files differ in how
    their rows are grouped, so their md5s do)."""
    import pandas as pd
    import pyarrow.parquet as pq

    left, right = pq.ParquetFile(a), pq.ParquetFile(b)
    if left.metadata.num_rows != right.metadata.num_rows:
        raise SystemExit(f"the snapshots differ in rows: {a}, {b}")
    for x, y in zip(left.iter_batches(100_000), right.iter_batches(100_000), strict=True):
        pd.testing.assert_frame_equal(x.to_pandas(), y.to_pandas())


def render(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> str:
    base = list(results)[1]
    lines = [
        markers(args.rows, args.format)[0],
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} with "
        f"{os.cpu_count()} cores (`python bench/bench_collect.py --rows {args.rows} --format "
        f"{args.format} --repeat {args.repeat} --baseline {args.baseline}`): `loopml collect` "
        f"of one {args.format} file of {args.rows:,} rows into a DVC-versioned snapshot, a new "
        f"project each run; median (min-max) of {args.repeat} runs per arm, the arms "
        "alternating; both arms' snapshots read back equal.",
        "",
        *arms_rows(results, base),
    ]
    lines.append(markers(args.rows, args.format)[1])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--baseline", default="bbb54ca", help="the commit to compare against")
    args = parse_bench_args(parser)
    with tempfile.TemporaryDirectory(prefix="bench-collect-", dir=ROOT.parent) as tmp:
        results = measure(args, Path(tmp))
    section = render(results, args)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        heading = f"\n### Collect of {args.rows:,} rows ({args.format}): peak memory and time\n\n"
        write_section(DOC, section, markers(args.rows, args.format), heading)


if __name__ == "__main__":
    main()
