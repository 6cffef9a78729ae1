"""DDP on CPU (gloo): two processes with half the batch each train like one process with all of it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from train_helpers import run_train, subprocess_env

# No randomness in the data or the model (full-image crops, no flips, Mixup, drop path or EMA) and SGD,
# so the two runs differ only by floating-point summation order. The model has no BatchNorm: RAVLT's
# BatchNorms see per-rank batches (SyncBatchNorm needs CUDA), which is a different computation.
DETERMINISTIC = [
    "model=timm", "model.name=test_vit", "+model.kwargs.img_size=16", "+model.kwargs.patch_size=4",
    "data.img_size=16", "progress=false", "tensorboard=false", "aug.scale=[1.0,1.0]", "aug.ratio=[1.0,1.0]",
    "aug.hflip=0.0", "aug.smoothing=0.0", "model.drop_path_rate=0.0", "ema.enabled=false",
    "optim.opt=sgd", "optim.lr=0.05", "optim.eps=null", "optim.weight_decay=0.0", "sched.epochs=1",
    "sched.warmup_epochs=0", "debug.max_steps_per_epoch=4", "log_every_steps=1",
]


def test_two_process_ddp_matches_one_process_with_the_global_batch(zoo_cache: Path, tmp_path: Path) -> None:
    single = tmp_path / "single"
    proc = run_train(DETERMINISTIC + ["data.batch_size=32", f"output_dir={single}"], zoo_cache, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "zoo.train", *DETERMINISTIC, "data.batch_size=16", f"output_dir={ddp}"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(zoo_cache), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["global_batch"] == 32 and summary["optimizer_steps"] == 4
    assert "x2" in proc.stdout + proc.stderr  # the run reports two processes

    ckpt_single = json.loads((single / "summary.json").read_text())["checkpoint"]
    a = load_file(Path(ckpt_single) / "model.safetensors")
    b = load_file(Path(summary["checkpoint"]) / "model.safetensors")
    init = [k for k in a if not torch.equal(a[k], b[k])]
    moved = max((a[k] - b[k]).abs().max().item() for k in a)
    assert moved < 1e-5, f"DDP and single-process weights differ by {moved} ({init[:3]})"

    # Sharded evaluation over two ranks equals zoo-validate over the whole set in one process.
    val = subprocess.run(
        [str(Path(sys.executable).parent / "zoo-validate"), "--checkpoint", summary["checkpoint"],
         "--data", str(zoo_cache / "digits"), "--workers", "0", "--batch-size", "50"],
        cwd=tmp_path, env=subprocess_env(zoo_cache), capture_output=True, text=True, timeout=300)
    assert val.returncode == 0, val.stderr[-3000:]
    result = json.loads(val.stdout.strip().splitlines()[-1])
    assert result["images"] == 360
    assert abs(result["top1"] - summary["final_top1"]) < 1e-3
    assert abs(result["top5"] - summary["final_top5"]) < 1e-3
    assert (result["data_config"]["input_size"] == [3, 16, 16]
            or tuple(result["data_config"]["input_size"]) == (3, 16, 16))
