"""A PyTorch Lightning model for tabular data: an MLP on the transformed features.

``accelerator="auto"`` picks a GPU where there is one; precision, devices and pinned memory come
from :class:`loopml.config.LightningConfig`, so the same code runs unchanged on CPU and GPU.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from loopml.config import LightningConfig

log = logging.getLogger(__name__)


class TabularMLP(pl.LightningModule):
    def __init__(self, n_inputs: int, n_outputs: int, task: str, cfg: LightningConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = n_inputs
        for size in cfg.hidden_sizes:
            layers.append(nn.Linear(width, size))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU())
            if cfg.dropout:
                layers.append(nn.Dropout(cfg.dropout))
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)
        self.task = task
        self.loss_fn: nn.Module = (
            nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out if self.task == "classification" else out.squeeze(-1)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return self.loss_fn(self(x).float(), y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log(
            "val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch[0])
        )
        return loss

    def configure_optimizers(self) -> Any:
        cfg = self.cfg
        opt = torch.optim.AdamW(
            self.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=cfg.scheduler_factor, patience=cfg.scheduler_patience
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}


class TabularDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        task: str,
        cfg: LightningConfig,
        pin_memory: bool,
        seed: int,
    ) -> None:
        super().__init__()
        target_dtype = torch.long if task == "classification" else torch.float32
        self.train_set = TensorDataset(
            torch.from_numpy(train[0]), torch.as_tensor(train[1], dtype=target_dtype)
        )
        self.val_set = TensorDataset(
            torch.from_numpy(val[0]), torch.as_tensor(val[1], dtype=target_dtype)
        )
        self.batch_size = cfg.batch_size
        self.num_workers = cfg.num_workers
        self.pin_memory = pin_memory
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            generator=gen,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=len(self.train_set) > self.batch_size,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set,
            batch_size=self.batch_size * 4,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )


class _History(pl.Callback):
    """Per-epoch train/validation metrics, and the best weights kept in memory (no files)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self.best_loss = float("inf")
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = -1

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        val = metrics.get("val_loss", float("inf"))
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        self.epochs.append({"epoch": trainer.current_epoch, "lr": lr, **metrics})
        if val < self.best_loss:
            self.best_loss, self.best_epoch = val, trainer.current_epoch
            self.best_state = copy.deepcopy(
                {k: v.detach().cpu() for k, v in module.state_dict().items()}
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.epochs and "train_loss" in trainer.callback_metrics:
            self.epochs[-1]["train_loss"] = float(trainer.callback_metrics["train_loss"])


@dataclass
class TorchPredictor:
    """The trained network on CPU, with the target scaling it was trained with."""

    module: TabularMLP
    task: str
    y_mean: float = 0.0
    y_std: float = 1.0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    device_used: str = "cpu"
    out_of_time: bool = False
    """Training stopped at its time budget, before early stopping or the last epoch."""

    def _forward(self, x: np.ndarray) -> np.ndarray:
        self.module.eval()
        outs = []
        with torch.no_grad():
            for start in range(0, len(x), 8192):
                batch = torch.from_numpy(
                    np.ascontiguousarray(x[start : start + 8192], dtype=np.float32)
                )
                outs.append(self.module(batch).float().numpy())
        return np.concatenate(outs) if outs else np.empty((0,))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = self._forward(x)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return self.predict_proba(x).argmax(axis=1)
        return self._forward(x) * self.y_std + self.y_mean


def resolve_hardware(cfg: LightningConfig) -> tuple[str, str, bool]:
    """(accelerator, precision, pin_memory) for this machine under ``cfg``."""
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    precision = cfg.precision_gpu if gpu else cfg.precision_cpu
    pin = gpu if cfg.pin_memory == "auto" else bool(cfg.pin_memory)
    return (
        ("gpu" if gpu else ("cpu" if cfg.accelerator == "auto" else cfg.accelerator)),
        precision,
        pin,
    )


def _trainer(
    cfg: LightningConfig,
    accelerator: str,
    precision: str,
    history: _History,
    max_seconds: float | None,
) -> pl.Trainer:
    """A quiet trainer: no checkpoints, loggers or progress bars; early stopping on val loss;
    stopped at ``max_seconds`` when given."""
    return pl.Trainer(
        accelerator=accelerator,
        devices=cfg.devices,
        precision=precision,
        max_epochs=cfg.max_epochs,
        max_time=None if max_seconds is None else {"seconds": max(1.0, max_seconds)},
        deterministic=cfg.deterministic,
        callbacks=[
            pl.callbacks.EarlyStopping("val_loss", patience=cfg.patience, mode="min"),
            history,
        ],
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def fit_lightning(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    task: str,
    n_classes: int,
    cfg: LightningConfig,
    seed: int,
    max_seconds: float | None = None,
) -> TorchPredictor:
    """An MLP trained on ``(x_train, y_train, x_val, y_val)``, the best epoch's weights kept."""
    x_train, y_train, x_val, y_val = data
    pl.seed_everything(seed, workers=True, verbose=False)
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):  # no GPU/TPU banners
        logging.getLogger(name).setLevel(logging.WARNING)
    y_mean, y_std = 0.0, 1.0
    if task == "regression":
        y_mean, y_std = float(np.mean(y_train)), float(np.std(y_train) or 1.0)
        y_train = (y_train - y_mean) / y_std
        y_val = (y_val - y_mean) / y_std
    accelerator, precision, pin = resolve_hardware(cfg)
    module = TabularMLP(
        n_inputs=x_train.shape[1],
        n_outputs=n_classes if task == "classification" else 1,
        task=task,
        cfg=cfg,
    )
    data = TabularDataModule((x_train, y_train), (x_val, y_val), task, cfg, pin, seed)
    history = _History()
    trainer = _trainer(cfg, accelerator, precision, history, max_seconds)
    started = time.monotonic()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(cfg.threads or threads)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            trainer.fit(module, datamodule=data)
    finally:
        torch.set_num_threads(threads)
    if history.best_state is not None:
        module.load_state_dict(history.best_state)
    module = module.cpu().eval()
    log.info(
        "lightning: %d epochs on %s (%s), best epoch %d, val_loss %.4f",
        len(history.epochs),
        accelerator,
        precision,
        history.best_epoch,
        history.best_loss,
    )
    return TorchPredictor(
        module=module,
        task=task,
        y_mean=y_mean,
        y_std=y_std,
        history=history.epochs,
        best_epoch=history.best_epoch,
        device_used=accelerator,
        out_of_time=_timed_out(trainer, cfg, max_seconds, time.monotonic() - started),
    )


def _timed_out(
    trainer: pl.Trainer, cfg: LightningConfig, budget: float | None, took: float
) -> bool:
    """Stopped by ``max_time``: not by early stopping, before the last epoch, at the budget."""
    if budget is None:
        return False
    early = any(
        isinstance(c, pl.callbacks.EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks
    )
    return not early and trainer.current_epoch < cfg.max_epochs and took >= 0.9 * budget
