"""A PyTorch Lightning model for tabular data: an MLP on the transformed features.

``accelerator="auto"`` picks a GPU where there is one; precision, devices and whether the
matrices stay resident on the device come from :class:`loopml.config.LightningConfig`, so the
same code runs unchanged on CPU and GPU.
"""

from __future__ import annotations

import copy
import logging
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from loopml.config import LightningConfig
from loopml.tensor_batches import ResidentBatches, as_tensors, resident_device

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
        self.automatic_optimization = False
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

    def on_train_epoch_start(self) -> None:
        self._loss_sum = torch.zeros((), device=self.device)
        self._rows = 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        # One optimizer step per batch, written out (manual optimization): Lightning's automatic
        # closure and its hooks cost about as much as a step of the shipped network. The epoch's
        # mean loss is summed here, not through ``self.log`` (~2 ms of bookkeeping a step).
        optimizer = self.optimizers()
        loss = self._loss(batch)
        optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
        self.manual_backward(loss)
        optimizer.step()  # type: ignore[union-attr]
        self._loss_sum += loss.detach() * len(batch[0])
        self._rows += len(batch[0])
        return loss

    def on_train_epoch_end(self) -> None:
        # After the epoch's validation: its val_loss drives the plateau schedule.
        if "val_loss" in self.trainer.callback_metrics:
            scheduler = self.lr_schedulers()
            scheduler.step(self.trainer.callback_metrics["val_loss"])  # type: ignore[union-attr]

    def train_loss(self) -> float:
        """The mean training loss of the epoch so far (row-weighted)."""
        return float(self._loss_sum) / max(self._rows, 1)

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        # Resident batches are on ``device`` already (a no-op ``to``); Lightning's default walks
        # the batch as a generic collection, a cost per step.
        x, y = batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

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
        return {"optimizer": opt, "lr_scheduler": sched}  # stepped in on_train_epoch_end


class TabularDataModule(pl.LightningDataModule):
    """The train and validation matrices as :class:`ResidentBatches`: placed once on the
    device that trains when they fit there (:func:`resident_device`), sliced per batch."""

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        task: str,
        cfg: LightningConfig,
        device: torch.device,
        seed: int,
    ) -> None:
        super().__init__()
        x, y = (t.to(device) for t in as_tensors(*train, task))
        vx, vy = (t.to(device) for t in as_tensors(*val, task))
        self.train_batches = ResidentBatches(x, y, cfg.batch_size, True, seed, drop_last=True)
        self.val_batches = ResidentBatches(vx, vy, cfg.batch_size * 4, False, seed)

    def train_dataloader(self) -> ResidentBatches:
        return self.train_batches

    def val_dataloader(self) -> ResidentBatches:
        return self.val_batches


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
        if self.epochs and isinstance(module, TabularMLP):
            self.epochs[-1]["train_loss"] = module.train_loss()


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


def resolve_hardware(cfg: LightningConfig) -> tuple[str, str]:
    """(accelerator, precision) for this machine under ``cfg``."""
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    precision = cfg.precision_gpu if gpu else cfg.precision_cpu
    return ("gpu" if gpu else ("cpu" if cfg.accelerator == "auto" else cfg.accelerator)), precision


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
    accelerator, precision = resolve_hardware(cfg)
    module = TabularMLP(
        n_inputs=x_train.shape[1],
        n_outputs=n_classes if task == "classification" else 1,
        task=task,
        cfg=cfg,
    )
    nbytes = x_train.nbytes + x_val.nbytes
    device = (
        resident_device(nbytes, accelerator, cfg.devices) if cfg.resident else torch.device("cpu")
    )
    data = TabularDataModule((x_train, y_train), (x_val, y_val), task, cfg, device, seed)
    history = _History()
    trainer = _trainer(cfg, accelerator, precision, history, max_seconds)
    started = time.monotonic()
    _fit_quietly(trainer, module, data, cfg.threads)
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


def _fit_quietly(
    trainer: pl.Trainer, module: TabularMLP, data: TabularDataModule, threads: int | None
) -> None:
    """``trainer.fit`` with torch's thread pool sized to ``threads`` and Lightning's hints muted."""
    before = torch.get_num_threads()
    main_thread = threading.current_thread() is threading.main_thread()
    on_sigint = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        torch.set_num_threads(threads or before)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*overridden `transfer_batch_to_device`.*")
            trainer.fit(module, datamodule=data)
    except SystemExit as exc:
        # Lightning turns a Ctrl-C during fit into sys.exit(1) after its clean-up: the caller
        # gets the KeyboardInterrupt it was, so the run ends cancelled, not crashed.
        if trainer.interrupted:
            raise KeyboardInterrupt from exc
        raise
    finally:
        torch.set_num_threads(before)
        if on_sigint is not None:  # Lightning leaves SIGINT ignored after a Ctrl-C
            signal.signal(signal.SIGINT, on_sigint)


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
