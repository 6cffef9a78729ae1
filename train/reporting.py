"""What the user sees and what is written down: progress, CSV, TensorBoard, summary."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from timm.utils import update_summary

log = logging.getLogger("zoo.train")


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class Progress:
    """Per-epoch progress: a tqdm bar (interactive) or log lines, with img/s and ETAs."""

    def __init__(self, enabled: bool, total_steps: int, done_steps: int, log_every: int, bar: bool = True):
        # enabled: report at all (rank 0); bar: a tqdm bar rather than log lines.
        self.enabled, self.use_bar, self.log_every = enabled, bar, max(log_every, 1)
        self.total_steps, self.done_steps = total_steps, done_steps
        self.run_start = time.perf_counter()
        self.run_start_steps = done_steps
        self.bar: Any = None

    def start_epoch(self, epoch: int, num_epochs: int, first: int, total: int) -> None:
        self.epoch_desc = f"epoch {epoch + 1}/{num_epochs}"
        self.epoch_total, self.images, self.t0 = total, 0, time.perf_counter()
        if self.enabled and self.use_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=first, desc=self.epoch_desc, dynamic_ncols=True,
                            leave=True, file=sys.stdout)

    def step(self, batch_idx: int, images: int, loss: float | None, lr: float) -> None:
        self.done_steps += 1
        self.images += images
        img_s = self.images / max(time.perf_counter() - self.t0, 1e-9)
        run_rate = (self.done_steps - self.run_start_steps) / max(time.perf_counter() - self.run_start, 1e-9)
        eta = format_duration((self.total_steps - self.done_steps) / max(run_rate, 1e-9))
        if self.bar is not None:
            self.bar.update(1)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{img_s:.0f}", run_eta=eta)
        elif loss is not None and self.enabled:
            log.info("%s [%d/%d] loss %.4f lr %.3e %.0f img/s, run ETA %s",
                     self.epoch_desc, batch_idx + 1, self.epoch_total, loss, lr, img_s, eta)

    def end_epoch(self) -> float:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        return self.images / max(time.perf_counter() - self.t0, 1e-9)


class MetricsWriter:
    """metrics.csv (timm's update_summary) and TensorBoard when it is installed."""

    def __init__(self, out_dir: Path, tensorboard: bool):
        self.csv = out_dir / "metrics.csv"
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed: logging to %s only", self.csv)

    def write(self, epoch: int, train: dict[str, float], evals: dict[str, float], lr: float) -> None:
        update_summary(epoch, train, evals, str(self.csv), lr=lr, write_header=not self.csv.exists())
        if self.tb is not None:
            for key, value in {**{f"train/{k}": v for k, v in train.items()},
                               **{f"val/{k}": v for k, v in evals.items()}, "lr": lr}.items():
                self.tb.add_scalar(key, value, epoch)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [f"{k:>22}: {v}" for k, v in summary.items()]
    width = max(len(s) for s in lines)
    print("=" * width + "\n" + "\n".join(lines) + "\n" + "=" * width, flush=True)
