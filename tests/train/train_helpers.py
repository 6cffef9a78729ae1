"""Helpers for the training tests: tiny configs and zoo-train subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A RAVLT small enough to train a few steps in well under a second on one CPU core.
TINY_MODEL = [
    "model.kwargs.embed_dims=[8,16,24,32]", "model.kwargs.depths=[1,1,1,1]",
    "model.kwargs.num_heads=[1,1,1,1]", "model.kwargs.projection=32",
]
TINY = TINY_MODEL + ["data.img_size=16", "data.batch_size=32", "progress=false", "tensorboard=false"]


def subprocess_env(zoo_cache: Path, threads: int = 1) -> dict[str, str]:
    env = dict(os.environ, ZOO_CACHE=str(zoo_cache), OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


def run_train(args: list[str], zoo_cache: Path, cwd: Path, threads: int = 1, timeout: float = 300,
              module: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "zoo.train"] if module else [str(Path(sys.executable).parent / "zoo-train")]
    return subprocess.run(cmd + args, cwd=cwd, env=subprocess_env(zoo_cache, threads), capture_output=True,
                          text=True, timeout=timeout)
