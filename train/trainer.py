"""The training run: setup, resume, the epoch loop, checkpoints, the final summary."""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf
from timm.utils import ModelEmaV3, dispatch_clip_grad

from . import checkpoint as ckpt
from . import engine
from .data import build_train_data, build_val_loader
from .distributed import DistInfo, all_gather_objects, barrier, cleanup, init_distributed, seed_everything
from .engine import (
    autocast,
    create_criterion,
    create_model,
    create_optimizer,
    create_scheduler,
    ema_decay,
    evaluate,
    global_batch_size,
    preprocessing_cfg,
    scaled_lr,
    updates_per_epoch,
)
from .reporting import MetricsWriter, Progress, format_duration, write_summary

log = logging.getLogger("zoo.train")


class TrainingInterrupted(Exception):
    """A stop signal arrived; a checkpoint of the position reached has been written."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}; the run resumes when launched again")
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # what SLURM and torchrun send before killing


def run(cfg: DictConfig, output_dir: str | None = None) -> dict[str, Any]:
    """Train as `cfg` says; return the summary (also written to <output_dir>/summary.json)."""
    info = init_distributed(cfg.device)
    try:
        return Trainer(cfg, info, Path(cfg.output_dir or output_dir or ".")).fit()
    finally:
        cleanup(info)


class Trainer:
    def __init__(self, cfg: DictConfig, info: DistInfo, out_dir: Path):
        self.cfg, self.info, self.out_dir = cfg, info, out_dir
        self.ckpt_root = out_dir / "checkpoints"
        if info.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)

        if cfg.model.init_checkpoint_required and not cfg.model.init_checkpoint:
            raise ValueError(f"experiment {cfg.name!r} is a fine-tune: "
                             "set model.init_checkpoint to the weights it starts from")
        self.data = build_train_data(cfg, info)
        self.val_loader = build_val_loader(cfg, info)
        self.num_classes = cfg.model.num_classes or self.data.num_classes

        seed_everything(cfg.seed)  # the same initial weights on every rank
        self.model = create_model(cfg.model, self.num_classes, overlay=preprocessing_cfg(cfg.data))
        if cfg.model.init_checkpoint:
            self._load_init_checkpoint(Path(cfg.model.init_checkpoint), cfg.model.init_checkpoint_adapt)
        if cfg.model.grad_checkpointing:
            self.model.set_grad_checkpointing(True)
        self.model.to(info.device)
        if cfg.model.channels_last:
            self.model.to(memory_format=torch.channels_last)

        self.global_batch = global_batch_size(cfg, info)
        self.lr = scaled_lr(cfg, info)
        self.optimizer = create_optimizer(self.model, cfg, self.lr)
        self.updates_per_epoch = updates_per_epoch(self.data.batches_per_epoch, cfg.accum_steps)
        self.scheduler, self.num_epochs = create_scheduler(self.optimizer, cfg, self.updates_per_epoch, info)
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=cfg.precision == "fp16")
        self.ema = ModelEmaV3(self.model, decay=ema_decay(cfg, info), use_warmup=cfg.ema.warmup,
                              device=info.device) if cfg.ema.enabled else None
        self.criterion = create_criterion(cfg, self.data.mixup is not None)

        self.epoch, self.batch_in_epoch, self.updates = 0, 0, 0
        self.best: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}
        self.skips: engine.Evaluation | None = None  # the last validation's, until checked
        self.resumed_from = self._resume()

        self.ddp: nn.parallel.DistributedDataParallel | None = None
        self.train_model: nn.Module = self.model
        if info.distributed:
            if cfg.model.sync_bn and info.device.type == "cuda":  # SyncBatchNorm needs CUDA
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
            self.train_model = self.ddp
        self.eval_model: nn.Module = self.model
        if cfg.model.compile:
            self.train_model = torch.compile(self.train_model)
            self.eval_model = torch.compile(self.model)
        self.seconds_at_start = time.perf_counter()
        self.last_save_time = time.perf_counter()
        self.stop_signal = 0
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, _frame: Any) -> None:
        self.stop_signal = signum  # acted on at the next optimizer step, where the state is consistent

    def _load_init_checkpoint(self, path: Path, adapt: bool) -> None:
        # Adapting is an explicit option, not always on: the filters change weights (they resample pos-embeds
        # and relative-position tables to the model's grid), and an init checkpoint of the wrong resolution
        # given by mistake should fail, not be silently resampled. The default load stays strict and exact;
        # the fine-tune experiments that start from weights of another resolution set init_checkpoint_adapt.
        # Either way a mismatch that is not a resize (width, depth, classes) fails with the keys named.
        try:
            ckpt.load_weights(self.model, path, adapt=adapt)
        except RuntimeError as err:
            if adapt or isinstance(err, ckpt.WeightsMismatchError):
                raise
            raise RuntimeError(
                f"model.init_checkpoint={str(path)!r} does not load strictly into {self.cfg.model.name} "
                "(weights of another resolution need model.init_checkpoint_adapt=true, which resizes them "
                f"as the family's checkpoint_filter_fn does):\n{err}") from err
        if self.info.is_main:
            log.info("initial weights: %s%s", path, " (adapted by the family's checkpoint filter)" if adapt else "")

    # ---- resume / checkpoint ---------------------------------------------------------------
    def _choose_checkpoint(self) -> tuple[Path | None, str]:
        """(checkpoint to resume from or None, why the run cannot go on or ''), decided on rank 0."""
        ckpt.remove_unfinished_writes(self.ckpt_root)
        try:
            path = ckpt.resolve_resume(self.cfg.resume, self.ckpt_root)
        except ckpt.ResumeError as err:
            return None, str(err)
        if path is not None:
            ckpt.set_aside_newer(self.ckpt_root, path)
        return path, ""

    def _resume(self) -> Path | None:
        # Rank 0 picks the checkpoint so that every rank resumes from the same one (or stops with the same error).
        path, error = all_gather_objects(self._choose_checkpoint() if self.info.is_main else None, self.info)[0]
        if error:
            raise ckpt.ResumeError(error)
        if path is None:
            seed_everything(self.cfg.seed + self.info.rank)  # per-rank randomness (drop path, Mixup)
            return None
        state = ckpt.load_state(path)
        ckpt.load_weights(self.model, path)
        if self.ema is not None:
            if state.get("has_ema"):
                ckpt.load_weights(self.ema.module, path, ema=True)
            else:
                self.ema.set(self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.batch_in_epoch, self.updates = state["epoch"], state["batch_in_epoch"], state["updates"]
        self.best, self.last_eval = dict(state.get("best", {})), dict(state.get("last_eval", {}))
        rngs = state["rng"]
        if len(rngs) == self.info.world_size:
            ckpt.restore_rng(rngs[self.info.rank])
        else:  # a different number of processes: continue, reseeded
            log.warning("resuming with %d processes instead of %d: the RNG streams are reseeded",
                        self.info.world_size, len(rngs))
            seed_everything(self.cfg.seed + self.info.rank + 1000 * self.epoch)
        if self.info.is_main:
            log.info("resumed from %s (epoch %d, batch %d, %d optimizer steps)",
                     path, self.epoch, self.batch_in_epoch, self.updates)
        return path

    def save(self) -> None:
        """Checkpoint the current position (called on every rank: RNG states are gathered)."""
        rngs = all_gather_objects(ckpt.capture_rng(), self.info)
        if self.info.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "updates": self.updates, "rng": rngs, "world_size": self.info.world_size,
                "has_ema": self.ema is not None, "best": self.best, "last_eval": self.last_eval,
                "num_classes": self.num_classes,
                "config_yaml": OmegaConf.to_yaml(self.cfg),
            }
            path = ckpt.save_checkpoint(self.ckpt_root, self.updates, self.model,
                                        self.ema.module if self.ema is not None else None, state,
                                        keep=self.cfg.checkpoint.keep)
            log.debug("saved %s", path)
        self.last_save_time = time.perf_counter()
        barrier(self.info)

    def _checkpoint_decision(self) -> tuple[bool, int]:
        """(save now, stop signal or 0), the same on every rank."""
        c = self.cfg.checkpoint
        due = bool(c.every_steps) and self.updates % c.every_steps == 0
        late = bool(c.every_minutes) and time.perf_counter() - self.last_save_time > 60 * c.every_minutes
        if not self.info.distributed:
            return due or late or bool(self.stop_signal), self.stop_signal
        if self.updates % 10:
            return due, 0
        # Clocks and signal arrival differ between ranks: rank 0 decides for everyone.
        flags = torch.tensor([float(late), float(self.stop_signal)], device=self.info.device)
        dist.broadcast(flags, src=0)
        stop = int(flags[1].item())
        return due or bool(flags[0].item()) or bool(stop), stop

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        cfg, info = self.cfg, self.info
        if info.is_main:
            n_params = sum(p.numel() for p in self.model.parameters())
            log.info("model %s (%.2f M params, %d classes) on %s x%d, global batch %d, lr %.3g, %d epochs of "
                     "%d steps, precision %s", cfg.model.name, n_params / 1e6, self.num_classes, info.device,
                     info.world_size, self.global_batch, self.lr, self.num_epochs, self.data.batches_per_epoch,
                     cfg.precision)
        writer = MetricsWriter(self.out_dir, cfg.tensorboard) if info.is_main else None
        total_steps = self.num_epochs * self.data.batches_per_epoch
        done_steps = self.epoch * self.data.batches_per_epoch + self.batch_in_epoch
        progress = Progress(info.is_main, total_steps, done_steps, cfg.log_every_steps, bar=cfg.progress)
        train_metrics: dict[str, float] = {}
        for epoch in range(self.epoch, self.num_epochs):
            self.epoch = epoch
            train_metrics = self.train_one_epoch(progress)
            if cfg.sched.step_on_epochs:
                self.scheduler.step(epoch + 1)
            evals: dict[str, float] = {}
            if (epoch + 1) % cfg.eval_every_epochs == 0 or epoch + 1 == self.num_epochs:
                evals = self.validate()
            self.epoch, self.batch_in_epoch = epoch + 1, 0
            if writer is not None:
                writer.write(epoch, train_metrics, evals, lr=self.optimizer.param_groups[0]["lr"])
            self.save()
            self.check_skips()  # after the save: stopping here loses no training
            self.skips = None
        if writer is not None:
            writer.close()
        return self.summary(train_metrics)

    def train_one_epoch(self, progress: Progress) -> dict[str, float]:
        cfg, info = self.cfg, self.info
        model, accum = self.train_model, cfg.accum_steps
        model.train()
        n_batches = self.data.batches_per_epoch
        if cfg.debug.max_steps_per_epoch:
            n_batches = min(n_batches, cfg.debug.max_steps_per_epoch)
        first = self.batch_in_epoch
        batches = self.data.start_epoch(self.epoch, first)
        progress.start_epoch(self.epoch, self.num_epochs, first, n_batches)
        loss_sum = torch.zeros((), device=info.device)
        for batch_idx in range(first, n_batches):
            images, targets = next(batches)
            images = images.to(info.device, non_blocking=True)
            targets = targets.to(info.device, non_blocking=True)
            if self.data.mixup is not None:
                images, targets = self.data.mixup(images, targets)
            if cfg.model.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            step_now = (batch_idx + 1) % accum == 0 or batch_idx + 1 == n_batches
            # Accumulating: skip DDP's gradient all-reduce until the step's last micro-batch.
            sync = self.ddp.no_sync() if self.ddp is not None and not step_now else contextlib.nullcontext()
            with sync:
                with autocast(info.device, cfg.precision):
                    loss = self.criterion(model(images), targets)
                self.scaler.scale(loss / accum).backward()
            loss_sum += loss.detach().float()
            self.batch_in_epoch = batch_idx + 1
            if step_now:
                self.optimizer_step()
            log_now = (batch_idx + 1) % cfg.log_every_steps == 0 or batch_idx + 1 == n_batches
            progress.step(batch_idx, images.shape[0] * info.world_size,
                          loss.item() if log_now else None, self.optimizer.param_groups[0]["lr"])
            if cfg.debug.step_delay_s:
                time.sleep(cfg.debug.step_delay_s)
            if step_now and batch_idx + 1 < n_batches:
                save, stop = self._checkpoint_decision()
                if save:
                    self.save()
                if stop:
                    progress.end_epoch()
                    raise TrainingInterrupted(stop)
        img_s = progress.end_epoch()
        steps = max(n_batches - first, 1)
        return {"loss": loss_sum.item() / steps, "img_per_s": img_s}

    def optimizer_step(self) -> None:
        cfg = self.cfg
        if cfg.optim.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            dispatch_clip_grad(self.model.parameters(), cfg.optim.clip_grad, mode=cfg.optim.clip_mode)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.updates)
        if not cfg.sched.step_on_epochs:
            self.scheduler.step_update(num_updates=self.updates)

    def validate(self) -> dict[str, float]:
        """Metrics of the model (and its EMA); `self.skips` holds the evaluation's unreadable images."""
        cfg, info = self.cfg, self.info
        results = {}
        models = {"": self.eval_model}
        if self.ema is not None:
            models["ema_"] = self.ema.module
        for prefix, model in models.items():
            self.skips = evaluate(model, self.val_loader, info, cfg.precision, cfg.model.channels_last)
            scores = {k: v for k, v in self.skips.metrics.items() if k not in ("images", "skipped")}
            results.update({f"{prefix}{k}": v for k, v in scores.items()})
            key = f"{prefix}top1"
            self.best[key] = max(self.best.get(key, 0.0), scores["top1"])
        results.update(images=self.skips.metrics["images"], skipped=self.skips.metrics["skipped"])
        self.last_eval = results
        for file in self.skips.skipped_files:  # every rank names its own
            log.warning("unreadable validation image, skipped: %s", file)
        if info.is_main:
            text = "  ".join(f"{k} {v:.2f}" for k, v in results.items() if k not in ("images", "skipped"))
            skipped = f" ({results['skipped']:.0f} unreadable skipped)" if results["skipped"] else ""
            log.info("epoch %d/%d validation: %s  on %d images%s", self.epoch + 1, self.num_epochs, text,
                     results["images"], skipped)
        return results

    def check_skips(self) -> None:
        """Unreadable validation images stop the run (its checkpoint written) unless data.allow_skips."""
        if self.skips is None or not self.skips.skipped or self.cfg.data.allow_skips:
            return
        message = self.skips.skips_message("validation images", "set data.allow_skips=true")
        raise engine.UnreadableImagesError(
            f"{message} The epoch's checkpoint is saved; the run resumes from it when launched again.")

    def summary(self, train_metrics: dict[str, float]) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.seconds_at_start
        out: dict[str, Any] = {
            "model": self.cfg.model.name, "epochs": self.num_epochs, "optimizer_steps": self.updates,
            "global_batch": self.global_batch, "lr": self.lr,
            "resumed_from": str(self.resumed_from) if self.resumed_from else None,
            "wall_time": format_duration(elapsed), "wall_seconds": round(elapsed, 1),
        }
        out.update({f"final_{k}": round(v, 3) for k, v in self.last_eval.items()})
        out.update({f"best_{k}": round(v, 3) for k, v in self.best.items()})
        out["train_loss"] = round(train_metrics.get("loss", float("nan")), 4)
        out["output_dir"] = str(self.out_dir.resolve())
        out["checkpoint"] = str(ckpt.find_latest(self.ckpt_root)) if self.info.is_main else None
        if self.info.is_main:
            write_summary(self.out_dir, out)
        return out
