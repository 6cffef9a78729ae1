"""Model, optimizer and schedule construction, and evaluation."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from .data import crop_mode
from .distributed import DistInfo, all_reduce_sum

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def preprocessing_cfg(data_cfg: DictConfig) -> dict[str, Any]:
    """The eval preprocessing of a run, stored as the model's pretrained_cfg (read back by zoo-validate)."""
    return dict(input_size=(3, data_cfg.img_size, data_cfg.img_size), crop_pct=data_cfg.crop_pct,
                crop_mode=crop_mode(data_cfg), interpolation=data_cfg.interpolation,
                mean=tuple(data_cfg.mean), std=tuple(data_cfg.std))


def create_model(model_cfg: DictConfig | dict, num_classes: int,
                 overlay: dict[str, Any] | None = None) -> nn.Module:
    """timm.create_model through zoo.create_model: the zoo's architectures, and close names for unknown ones."""
    import zoo

    mc = OmegaConf.to_container(model_cfg, resolve=True) if isinstance(model_cfg, DictConfig) else dict(model_cfg)
    overlay = {**(overlay or {}), "num_classes": num_classes}
    kwargs = dict(mc.get("kwargs") or {})
    # An unset (None) drop rate keeps the model's own default, or the one given in model.kwargs.
    for key in ("drop_rate", "drop_path_rate"):
        value = mc.get(key)
        if value is None:
            continue
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f"model.{key}={value} and model.kwargs.{key}={kwargs[key]} disagree: set one of them")
        kwargs[key] = value
    return zoo.create_model(mc["name"], pretrained=mc.get("pretrained", False), num_classes=num_classes,
                            pretrained_cfg_overlay=overlay, **kwargs)


def global_batch_size(cfg: DictConfig, info: DistInfo) -> int:
    return cfg.data.batch_size * info.world_size * cfg.accum_steps


def scaled_lr(cfg: DictConfig, info: DistInfo) -> float:
    """The papers' linear scaling rule: base_lr * global_batch / lr_base_size, unless lr is given."""
    if cfg.optim.lr is not None:
        return float(cfg.optim.lr)
    return cfg.optim.base_lr * global_batch_size(cfg, info) / cfg.optim.lr_base_size


def ema_decay(cfg: DictConfig, info: DistInfo) -> float:
    if not cfg.ema.scale_with_batch:
        return float(cfg.ema.decay)
    return float(cfg.ema.decay) ** (global_batch_size(cfg, info) / cfg.ema.batch_base)


def create_optimizer(model: nn.Module, cfg: DictConfig, lr: float) -> torch.optim.Optimizer:
    o = cfg.optim
    extra: dict[str, Any] = {}
    if o.eps is not None:
        extra["eps"] = o.eps
    if o.betas is not None and o.opt.lower().endswith(("adam", "adamw", "lamb", "nadam", "radam", "adan", "lion")):
        extra["betas"] = tuple(o.betas)
    return create_optimizer_v2(
        model, opt=o.opt, lr=lr, weight_decay=o.weight_decay, momentum=o.momentum,
        filter_bias_and_bn=o.filter_bias_and_bn, layer_decay=o.layer_decay, **extra)


def scheduler_lrs(cfg: DictConfig, info: DistInfo | None) -> tuple[float, float]:
    """(warmup_lr, min_lr): as given, or scaled by global_batch / lr_base_size (sched.scale_with_batch)."""
    s = cfg.sched
    if not s.scale_with_batch:
        return float(s.warmup_lr), float(s.min_lr)
    if info is None:
        raise ValueError("sched.scale_with_batch needs the process group (global batch)")
    factor = global_batch_size(cfg, info) / cfg.optim.lr_base_size
    return float(s.warmup_lr) * factor, float(s.min_lr) * factor


def create_scheduler(optimizer: torch.optim.Optimizer, cfg: DictConfig, updates_per_epoch: int,
                     info: DistInfo | None = None) -> tuple[Any, int]:
    """timm's scheduler and the total number of epochs (warmup prefix and cooldown included)."""
    s = cfg.sched
    warmup_lr, min_lr = scheduler_lrs(cfg, info)
    return create_scheduler_v2(
        optimizer, sched=s.sched, num_epochs=s.epochs, decay_epochs=s.decay_epochs, decay_rate=s.decay_rate,
        cooldown_epochs=s.cooldown_epochs, min_lr=min_lr, warmup_lr=warmup_lr,
        warmup_epochs=s.warmup_epochs, warmup_prefix=s.warmup_prefix, step_on_epochs=s.step_on_epochs,
        updates_per_epoch=updates_per_epoch)


def create_criterion(cfg: DictConfig, mixup_active: bool) -> nn.Module:
    # As DeiT: label smoothing lives inside Mixup's soft targets when Mixup/CutMix is on.
    if mixup_active:
        return SoftTargetCrossEntropy()
    if cfg.aug.smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=cfg.aug.smoothing)
    return nn.CrossEntropyLoss()


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def updates_per_epoch(batches: int, accum_steps: int) -> int:
    return math.ceil(batches / accum_steps)


class UnreadableImagesError(RuntimeError):
    """An evaluation skipped images it could not read, and skips were not allowed."""


@dataclass
class Evaluation:
    metrics: dict[str, float]      # top1, top5 (%), loss over the images read; images read; skipped; all ranks
    skipped_files: list[str] = field(default_factory=list)  # this rank's unreadable files, with the reason

    @property
    def skipped(self) -> int:
        return int(self.metrics["skipped"])

    def skips_message(self, what: str, allow: str | None) -> str:
        """How many `what` were skipped, which, and (`allow`) the option that accepts skips."""
        skipped, total = self.skipped, self.skipped + int(self.metrics["images"])
        names = "; ".join(self.skipped_files[:10]) + (" ..." if len(self.skipped_files) > 10 else "")
        advice = f" Repair or remove the files, or {allow} to accept the skips." if allow else ""
        return f"{skipped} of {total} {what} could not be read: {names}. The metrics cover the {total - skipped} " \
               f"that could.{advice}"


@torch.no_grad()
def evaluate(model: nn.Module, loader: Any, info: DistInfo, precision: str,
             channels_last: bool = False) -> Evaluation:
    """Top-1 / top-5 accuracy (%) and loss over the whole validation set, summed over ranks.

    Each image counts once: unreadable ones (batches of `data.eval_loader`: images, targets, skipped files)
    are counted as skipped, not scored.
    """
    model.eval()
    totals = torch.zeros(5, dtype=torch.float64, device=info.device)  # correct@1, correct@5, loss, count, skipped
    skipped_files: list[str] = []
    for batch in loader:
        images, targets, skipped = batch if len(batch) == 3 else (*batch, [])
        skipped_files += skipped
        totals[4] += len(skipped)
        if targets.numel() == 0:
            continue
        images = images.to(info.device, non_blocking=True)
        targets = targets.to(info.device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(info.device, precision):
            logits = model(images)
        logits = logits.float()
        k = min(5, logits.shape[-1])
        hits = logits.topk(k, dim=-1).indices.eq(targets[:, None])
        totals[:4] += torch.stack([
            hits[:, 0].sum(), hits.any(dim=-1).sum(),
            nn.functional.cross_entropy(logits, targets, reduction="sum"),
            torch.tensor(targets.numel(), device=info.device)]).double()
    all_reduce_sum(totals, info)
    count = max(totals[3].item(), 1.0)
    return Evaluation({"top1": 100 * totals[0].item() / count, "top5": 100 * totals[1].item() / count,
                       "loss": totals[2].item() / count, "images": totals[3].item(), "skipped": totals[4].item()},
                      skipped_files)
