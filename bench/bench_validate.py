"""Benchmark: peak memory and wall time of ``loopml validate`` on a large snapshot, this checkout
(a snapshot of more than ``validate.batch_rows`` rows validated in batches) against an earlier
commit (default ``bab0641``, the last that validated the whole snapshot at once) in the same run.

A batch of ``--rows`` rows from the bundled generator is written to one Parquet file first (not
timed). Each run makes a new project per arm (its own DVC cache and remote, the shipped
``params.yaml``, data docs off), collects the file (not timed) and then times two commands with
that arm's code (a ``git worktree`` on ``PYTHONPATH``), the arms alternating:

- ``first``: ``loopml validate`` with no suite yet: profiles the suite, then validates;
- ``again``: ``loopml validate`` with the suite from ``first`` and the stored report removed (so
  it validates again instead of reusing the report).

Peak memory is the kernel's maximum resident set of the command and the children it waited for
(``wait4``'s ``ru_maxrss``, its embedded Prefect server included). Both arms must pass and
evaluate the same number of expectations (checked on every run).

    python bench/bench_validate.py --rows 10000000 --repeat 3
    python bench/bench_validate.py --rows 2000000 --no-doc

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
PHASES = ("first", "again")


def markers(rows: int) -> tuple[str, str]:
    return f"<!-- bench_validate_{rows}:begin -->", f"<!-- bench_validate_{rows}:end -->"


def project(where: Path, batch: Path, code: Path) -> Path:
    """A new project reading ``batch``, with only the ``validate`` keys ``code`` knows."""
    import yaml

    params, raw = new_project(where, 20_000)
    raw["data"]["source"] = {"kind": "file", "file": {"path": str(batch)}}
    raw["validate"]["data_docs"] = False
    known = yaml.safe_load((code / "params.yaml").read_text())["validate"]
    raw["validate"] = {k: v for k, v in raw["validate"].items() if k in known}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    return params


def _outcome(params: Path) -> tuple[bool, int]:
    summary = json.loads((params.parent / "data" / "validation" / "summary.json").read_text())
    return bool(summary["success"]), int(summary["evaluated"])


def _one_run(params: Path, code: Path, log: Path) -> dict[str, tuple[float, float]]:
    """Collect (not timed), then the two timed validations: {phase: (wall s, peak GB)}."""
    run("collect", params, code, log)
    timed = {"first": run("validate", params, code, log)}
    (params.parent / "data" / "validation" / "summary.json").unlink()  # the stored report
    timed["again"] = run("validate", params, code, log)
    return timed


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, dict[str, list[float]]]]:
    tree = tmp / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(tree), args.baseline],
        cwd=ROOT,
        check=True,
    )
    try:
        batch = tmp / "batch.parquet"
        write_batch(batch, args.rows)
        arms = {"in batches (this checkout)": ROOT, f"whole ({args.baseline})": tree}
        out = {p: {a: {"wall": [], "peak": []} for a in arms} for p in PHASES}
        for i in range(args.repeat):
            order = list(arms) if i % 2 == 0 else list(reversed(arms))
            outcomes = {}
            for k, arm in enumerate(order):
                params = project(tmp / f"p{i}-{k}", batch, arms[arm])
                for phase, (wall, peak) in _one_run(params, arms[arm], tmp / "log").items():
                    out[phase][arm]["wall"].append(wall)
                    out[phase][arm]["peak"].append(peak)
                    sys.stderr.write(f"{args.rows:,} rows, run {i + 1}, {arm}, {phase}: ")
                    sys.stderr.write(f"{wall:.1f} s, {peak:.2f} GB\n")
                outcomes[arm] = _outcome(params)
            if len(set(outcomes.values())) != 1 or not all(s for s, _ in outcomes.values()):
                raise SystemExit(f"the arms' validations differ: {outcomes}")
        return out
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def render(results: dict[str, dict[str, dict[str, list[float]]]], args: argparse.Namespace) -> str:
    lines = [
        markers(args.rows)[0],
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} with "
        f"{os.cpu_count()} cores (`python bench/bench_validate.py --rows {args.rows} --repeat "
        f"{args.repeat} --baseline {args.baseline}`): `loopml validate` of a snapshot of "
        f"{args.rows:,} rows (one Parquet file collected from the bundled generator), a new "
        f"project per arm and run; median (min-max) of {args.repeat} runs per arm, the arms "
        "alternating; both arms passed with the same number of expectations in every run.",
    ]
    for phase, title in zip(
        PHASES, ("First validation (profiles the suite)", "Again, with the suite"), strict=True
    ):
        lines += ["", f"{title}:", "", *arms_rows(results[phase], list(results[phase])[1])]
    lines.append(markers(args.rows)[1])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--baseline", default="bab0641", help="the commit to compare against")
    args = parse_bench_args(parser)
    with tempfile.TemporaryDirectory(prefix="bench-validate-", dir=ROOT.parent) as tmp:
        results = measure(args, Path(tmp))
    section = render(results, args)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        heading = f"\n### Validation of {args.rows:,} rows: peak memory and time\n\n"
        write_section(DOC, section, markers(args.rows), heading)


if __name__ == "__main__":
    main()
