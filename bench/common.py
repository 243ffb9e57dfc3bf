"""Shared by the benchmarks: wall time of a flow run and of each of its tasks, the median and
spread of repeated measurements, and rewriting a script's section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def parse_bench_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the options every benchmark takes (``--repeat``, ``--no-doc``), parse, check."""
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median reported)")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def spread(values: Sequence[float], fmt: str = ".1f") -> str:
    """The median of ``values`` and, in brackets, their range: ``"34.9 (33.1-36.0)"`` (only
    the value when there is one)."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def arms_rows(results: dict[str, dict[str, list[float]]], base: str) -> list[str]:
    """Table rows ``| arm | wall s | peak GB | wall vs baseline | peak vs baseline |`` of each
    arm's ``wall`` and ``peak`` runs, the ratios of medians against the arm ``base``."""
    rows = [
        "| arm | wall s | peak GB | wall vs baseline | peak vs baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for arm, runs in results.items():
        wall = statistics.median(runs["wall"]) / statistics.median(results[base]["wall"])
        peak = statistics.median(runs["peak"]) / statistics.median(results[base]["peak"])
        rows.append(
            f"| {arm} | {spread(runs['wall'])} | {spread(runs['peak'], '.2f')} "
            f"| {wall:.2f}x | {peak:.2f}x |"
        )
    return rows


def write_section(doc: Path, section: str, markers: tuple[str, str], heading: str) -> None:
    """Replace the text from ``markers[0]`` to ``markers[1]`` in ``doc`` by ``section`` (which
    carries both markers); without them, append ``heading`` and ``section``."""
    begin, end = markers
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text += heading + section + "\n"
    doc.write_text(text)


def timed_flow(flow: Callable[..., Any], **kwargs: Any) -> tuple[Any, float, dict[str, float]]:
    """Run ``flow``; return its result, its wall time and the seconds per task, its subflows'
    tasks included (from the Prefect API; repeated tasks such as ``train-candidate-*`` are
    summed)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    from loopml_cli.prefect_api import without_heartbeats

    t = time.perf_counter()
    with without_heartbeats():  # as under a loopml command's embedded API
        state = flow(**kwargs, return_state=True)
    total = time.perf_counter() - t
    result = state.result()
    parent = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])
            )
        )
        ids = [parent, *(run.id for run in subflows)]
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    tasks: dict[str, float] = defaultdict(float)
    for run in runs:
        if run.start_time and run.end_time and run.name.rsplit("-", 1)[0] not in _SUBFLOWS:
            name = run.name.rsplit("-", 1)[0]  # "train-candidate-877" -> "train-candidate"
            tasks[name] += (run.end_time - run.start_time).total_seconds()
    return result, total, dict(tasks)


# A subflow call appears as a task run of its parent too; its tasks are counted instead.
_SUBFLOWS = {"collect", "validate", "features", "train", "evaluate"}


def new_project(where: Path, rows: int, seed: int = 0) -> tuple[Path, dict[str, Any]]:
    """A new project in ``where`` with the shipped params.yaml (its own MLflow store, suite and
    DVC remote): the bundled generator at ``rows`` rows, its seed moved by ``seed``."""
    import subprocess

    import yaml

    from loopml.project import init_project

    where.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=where, check=True)
    init_project(where)
    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["data"]["source"]["generator"]["n_rows"] = rows
    raw["data"]["source"]["generator"]["seed"] += seed
    raw["paths"]["suite"] = "gx/suite.json"
    params_path = where / "params.yaml"
    params_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return params_path, raw
