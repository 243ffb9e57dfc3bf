"""Mini-batches sliced from whole tensors, for the Lightning candidate.

A ``DataLoader`` over a ``TensorDataset`` indexes one row at a time and stacks the rows of each
batch on the CPU; on a GPU every batch is then copied from the host. Here the training matrix
is one tensor (the float32 matrix of the features stage, shared with numpy, not copied), placed
once on the device that trains when it fits there, and each batch is a slice (validation) or an
``index_select`` of a seeded permutation (training) on that device: no per-row Python, no
per-batch host-to-device copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

log = logging.getLogger(__name__)

GPU_HEADROOM = 0.5
"""Share of the free GPU memory the resident matrices may take (the rest: weights,
activations, optimizer state)."""


class ResidentBatches:
    """Batches of ``(x, y)`` from tensors that stay where they are.

    Each pass over it is an epoch; with ``shuffle`` the rows come in a permutation seeded by
    ``seed`` and the epoch number, so a fit is reproducible."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool = False,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last and len(x) > batch_size
        self.epoch = 0

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, b = len(self.x), self.batch_size
        stop = len(self) * b
        if not self.shuffle:
            for start in range(0, min(stop, n), b):
                yield self.x[start : start + b], self.y[start : start + b]
            return
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(n, generator=gen).to(self.x.device)
        for start in range(0, min(stop, n), b):
            idx = order[start : start + b]
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)


def as_tensors(x: np.ndarray, y: np.ndarray, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` as a float32 tensor sharing numpy's memory (copied only if it is not float32 and
    contiguous already), ``y`` as class indices or floats."""
    features = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    target = torch.as_tensor(y, dtype=torch.long if task == "classification" else torch.float32)
    return features, target


def resident_device(nbytes: int, accelerator: str, devices: int | str) -> torch.device:
    """Where the matrices live while a model trains: the GPU when training runs on one GPU and
    they fit in :data:`GPU_HEADROOM` of its free memory, else the CPU (batches then go to
    the device one at a time, as with a ``DataLoader``)."""
    if accelerator != "gpu" or devices not in (1, "auto") or not torch.cuda.is_available():
        return torch.device("cpu")
    if devices == "auto" and torch.cuda.device_count() != 1:
        return torch.device("cpu")
    free, _ = torch.cuda.mem_get_info()
    if nbytes > GPU_HEADROOM * free:
        log.info(
            "training data (%.1f GB) kept on the CPU: it does not fit on the GPU", nbytes / 1e9
        )
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())
