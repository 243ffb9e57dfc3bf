"""Benchmark: the Lightning candidate against a plain PyTorch loop over the same resident tensors.

Both train the same network (loopml's ``TabularMLP``) on the same matrices for the same number
of epochs (no early stopping), with the same batches (``ResidentBatches``, the matrices placed
once on the device), a validation pass per epoch and the same optimizer; on CUDA both use bf16
autocast (the candidate through Lightning's ``precision: bf16-mixed``). The figure is the
training throughput, rows per second, of each, and the ratio candidate / plain loop (the
target on a GPU: at least 0.9).

    python bench/bench_gpu.py                  # CUDA; on a machine without it: says so, exit 0
    python bench/bench_gpu.py --device cpu     # the same comparison on the CPU

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import parse_bench_args, spread, write_section  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- bench_gpu:begin -->", "<!-- bench_gpu:end -->")


def make_data(rows: int, width: int, seed: int = 0) -> tuple:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width)).astype(np.float32)
    logit = 1.5 * x[:, 0] - x[:, 1] * x[:, 2] + 0.5 * np.sin(x[:, 3])
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    cut = int(rows * 0.85)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def lightning_run(data: tuple, cfg, device: str) -> float:
    from loopml.lightning_model import fit_lightning

    cfg = cfg.model_copy(update={"accelerator": "gpu" if device == "cuda" else "cpu"})
    started = time.perf_counter()
    fitted = fit_lightning(data, "classification", 2, cfg, seed=1)
    took = time.perf_counter() - started
    assert len(fitted.history) == cfg.max_epochs, "early stopping must not cut the run"
    return took


def plain_run(data: tuple, cfg, device: str) -> float:
    """The same training as a hand-written loop: what the candidate's overhead is measured on."""
    import torch

    from loopml.lightning_model import TabularMLP
    from loopml.tensor_batches import ResidentBatches, as_tensors

    torch.manual_seed(1)
    torch.use_deterministic_algorithms(cfg.deterministic)  # as the candidate's trainer does
    dev = torch.device(device)
    x, y = (t.to(dev) for t in as_tensors(data[0], data[1], "classification"))
    vx, vy = (t.to(dev) for t in as_tensors(data[2], data[3], "classification"))
    train = ResidentBatches(x, y, cfg.batch_size, True, 1, drop_last=True)
    val = ResidentBatches(vx, vy, cfg.batch_size * 4, False, 1)
    model = TabularMLP(x.shape[1], 2, "classification", cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.scheduler_factor)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda")
    started = time.perf_counter()
    for _ in range(cfg.max_epochs):
        model.train()
        for bx, by in train:
            with autocast:
                loss = model.loss_fn(model(bx).float(), by)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad(), autocast:
            losses = [model.loss_fn(model(bx).float(), by).item() for bx, by in val]
        sched.step(sum(losses) / len(losses))
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--width", type=int, default=64, help="input features")
    parser.add_argument("--epochs", type=int, default=3)
    args = parse_bench_args(parser)
    import torch

    from loopml.config import LightningConfig

    if args.device == "cuda" and not torch.cuda.is_available():
        said = "bench_gpu: no CUDA device on this machine: nothing to measure"
        print(f"{said} (--device cpu runs the same comparison on the CPU)")  # noqa: T201
        return
    cfg = LightningConfig(max_epochs=args.epochs, patience=args.epochs + 1, threads=None)
    data = make_data(args.rows, args.width)
    rows = len(data[0]) * args.epochs
    lightning_run(data, cfg.model_copy(update={"max_epochs": 1, "patience": 2}), args.device)
    plain_run(data, cfg.model_copy(update={"max_epochs": 1}), args.device)  # warm-up of both
    times: dict[str, list[float]] = {"lightning candidate": [], "plain PyTorch loop": []}
    for _ in range(args.repeat):
        times["lightning candidate"].append(lightning_run(data, cfg, args.device))
        times["plain PyTorch loop"].append(plain_run(data, cfg, args.device))
    section = render(
        times,
        rows,
        args,
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else platform.processor() or platform.machine(),
    )
    print(section)  # noqa: T201
    if not args.no_doc:
        write_section(
            DOC, section, MARKERS, "\n## The Lightning candidate against a plain loop\n\n"
        )


def render(times: dict[str, list[float]], rows: int, args: argparse.Namespace, device: str) -> str:
    import statistics

    rates = {k: [rows / t for t in v] for k, v in times.items()}
    ratio = statistics.median(rates["lightning candidate"]) / statistics.median(
        rates["plain PyTorch loop"]
    )
    lines = [
        MARKERS[0],
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {args.device} ({device}, "
        f"{os.cpu_count()} cores) (`python bench/bench_gpu.py --device {args.device} --rows "
        f"{args.rows} --epochs {args.epochs} --repeat {args.repeat}`): {args.rows:,} rows x "
        f"{args.width} features, {args.epochs} epochs, the shipped network and batch size; "
        f"median (min-max) of {args.repeat} runs each, alternating, after one warm-up epoch each.",
        "",
        "| training | wall s | rows/s |",
        "|---|---:|---:|",
        *[f"| {k} | {spread(times[k])} | {spread(rates[k], ',.0f')} |" for k in times],
        "",
        f"Throughput of the candidate: **{ratio:.2f}x** the plain loop's.",
        MARKERS[1],
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
