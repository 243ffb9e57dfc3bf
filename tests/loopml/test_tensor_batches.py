"""Resident batches for the Lightning candidate: every row once per epoch in a seeded order, the
matrix shared with numpy (no copy), the GPU only where there is one and the data fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopml.tensor_batches import ResidentBatches, as_tensors, resident_device


def _data(n: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return as_tensors(x, np.arange(n) % 2, "classification")


def test_an_epoch_is_a_seeded_permutation_of_every_row() -> None:
    x, y = _data()
    batches = ResidentBatches(x, y, batch_size=128, shuffle=True, seed=7)
    first = torch.cat([bx[:, 0] for bx, _ in batches])
    second = torch.cat([bx[:, 0] for bx, _ in batches])
    assert sorted(first.tolist()) == sorted(x[:, 0].tolist())  # every row, once
    assert not torch.equal(first, second)  # a new order each epoch ...
    again = ResidentBatches(x, y, batch_size=128, shuffle=True, seed=7)
    assert torch.equal(torch.cat([bx[:, 0] for bx, _ in again]), first)  # ... from the seed
    for bx, by in ResidentBatches(x, y, batch_size=128, shuffle=True, seed=1):
        assert torch.equal(by, (bx[:, 0] / 3).long() % 2)  # rows and labels stay paired


def test_sizes_drop_last_and_validation_order() -> None:
    x, y = _data(1000)
    train = ResidentBatches(x, y, batch_size=128, shuffle=True, seed=0, drop_last=True)
    assert len(train) == 7 == len(list(train))
    assert all(len(bx) == 128 for bx, _ in train)
    val = ResidentBatches(x, y, batch_size=300, shuffle=False, seed=0)
    parts = list(val)
    assert [len(bx) for bx, _ in parts] == [300, 300, 300, 100] and len(val) == 4
    assert torch.equal(torch.cat([bx for bx, _ in parts]), x)  # file order, whole
    assert parts[0][0].data_ptr() == x.data_ptr()  # a validation batch is a view


def test_the_matrix_is_shared_with_numpy_not_copied() -> None:
    matrix = np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32)
    x, _ = as_tensors(matrix, np.zeros(500), "regression")
    assert x.data_ptr() == matrix.ctypes.data


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_without_cuda_the_data_stays_on_the_cpu() -> None:
    assert resident_device(10_000, "gpu", 1) == torch.device("cpu")
    assert resident_device(10_000, "cpu", "auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_on_one_gpu_the_data_is_resident_when_it_fits() -> None:
    assert resident_device(10_000, "gpu", 1).type == "cuda"
    free, _ = torch.cuda.mem_get_info()
    assert resident_device(free, "gpu", 1) == torch.device("cpu")  # more than the headroom
