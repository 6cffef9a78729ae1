"""The README's first command: `zoo-train` with no data trains on the embedded digits and validates.

The full default (12 epochs) takes about two minutes on two CPU cores and reaches ~99 % top-1;
here the same command runs a shorter schedule, with a bar measured for that schedule.
"""
from __future__ import annotations

import re
from pathlib import Path

from train_helpers import run_train

SHORT_EPOCHS = 4
# Measured: 4 epochs reach 98.6 % top-1, EMA 98.1 % (chance is 10 %); the bar leaves room for
# thread-count and platform noise.
TOP1_BAR = 90.0


def test_zoo_train_without_data_trains_and_validates_on_digits(zoo_cache: Path, tmp_path: Path) -> None:
    proc = run_train([f"sched.epochs={SHORT_EPOCHS}", "progress=false"], zoo_cache, tmp_path, threads=1,
                     timeout=600, module=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert len(re.findall(r"validation: top1", out)) == SHORT_EPOCHS
    top1 = float(re.search(r"final_top1: ([\d.]+)", out).group(1))
    ema_top1 = float(re.search(r"final_ema_top1: ([\d.]+)", out).group(1))
    assert top1 >= TOP1_BAR, out[-2000:]
    assert ema_top1 > 50.0  # the EMA follows the model (chance: 10 %)
    run_dir = tmp_path / "outputs" / "digits"
    assert (run_dir / "summary.json").exists() and (run_dir / "metrics.csv").exists()
    assert (zoo_cache / "digits" / "train").is_dir()
