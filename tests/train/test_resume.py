"""Kill a real training process mid-epoch, resume it, and get the uninterrupted run's weights."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file
from train_helpers import TINY, run_train, subprocess_env

# Every source of randomness the resume must restore: RandAugment, random erasing, Mixup/CutMix,
# repeated augmentation, drop path, EMA, a per-step lr schedule, accumulation and clipping.
RECIPE = TINY + [
    "aug.auto_augment=rand-m9-mstd0.5-inc1", "aug.reprob=0.25", "aug.mixup=0.8", "aug.cutmix=1.0",
    "aug.repeated_aug=3", "aug.hflip=0.5", "model.drop_path_rate=0.1", "ema.enabled=true",
    "sched.epochs=2", "sched.warmup_epochs=1", "sched.step_on_epochs=false",
    "accum_steps=2", "optim.clip_grad=1.0", "debug.max_steps_per_epoch=12",
    "checkpoint.every_steps=2", "checkpoint.keep=3", "log_every_steps=4",
]


def final_weights(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    ckpt = Path(summary["checkpoint"])
    return {"model": load_file(ckpt / "model.safetensors"), "ema": load_file(ckpt / "ema.safetensors"),
            "summary": summary}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].equal(b[key]), f"{key} differs"


def interrupt_after_first_checkpoint(out: Path, zoo_cache: Path, cwd: Path, sig: signal.Signals) -> int:
    """Start a (slowed-down) run, send `sig` right after its first mid-epoch checkpoint, return its exit code."""
    cmd = [sys.executable, "-m", "zoo.train", *RECIPE, f"output_dir={out}", "debug.step_delay_s=0.25"]
    victim = subprocess.Popen(cmd, cwd=cwd, env=subprocess_env(zoo_cache), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    ckpts = out / "checkpoints"
    deadline = time.monotonic() + 240
    while not (ckpts.is_dir() and any(p.name.startswith("step-") for p in ckpts.iterdir())):
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    victim.send_signal(sig)
    victim.wait(timeout=120)
    victim.stderr.close()
    assert not (out / "summary.json").exists(), "the run finished before it was stopped"
    saved = sorted(p.name for p in ckpts.iterdir() if p.name.startswith("step-"))
    # 6 optimizer steps per epoch: a checkpoint before step 6 is mid-epoch.
    assert int(saved[-1].split("-")[1]) < 6, f"stopped too late: {saved}"
    return victim.returncode


def test_stop_mid_epoch_and_resume_is_exact(zoo_cache: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    proc = run_train(RECIPE + [f"output_dir={straight}"], zoo_cache, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = final_weights(straight)

    # SIGKILL: nothing runs after the signal, the periodic checkpoint is all there is.
    # SIGTERM (SLURM preemption, torchrun shutdown): the run checkpoints at the next step and exits 128+15.
    for sig, code in ((signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + signal.SIGTERM)):
        out = tmp_path / sig.name
        assert interrupt_after_first_checkpoint(out, zoo_cache, tmp_path, sig) == code
        proc = run_train(RECIPE + [f"output_dir={out}", "resume=auto"], zoo_cache, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        resumed = final_weights(out)
        assert resumed["summary"]["resumed_from"] is not None
        assert_same(resumed["model"], expected["model"])
        assert_same(resumed["ema"], expected["ema"])
        assert resumed["summary"]["final_top1"] == expected["summary"]["final_top1"]
        assert resumed["summary"]["optimizer_steps"] == expected["summary"]["optimizer_steps"] == 12


def test_resume_without_checkpoint_starts_fresh_and_finished_run_is_not_retrained(
        zoo_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = TINY + ["sched.epochs=1", "debug.max_steps_per_epoch=2", f"output_dir={out}"]
    first = run_train(args, zoo_cache, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["resumed_from"] is None
    again = run_train(args, zoo_cache, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["optimizer_steps"] == 2
