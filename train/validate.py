"""`zoo-validate`: top-1 / top-5 of any registered model on an image-folder dataset.

The preprocessing is the model's own (`pretrained_cfg` through timm's
resolve_data_config / create_transform): the official one for pretrained
weights, the training run's for a zoo-train checkpoint (stored in it).
Model names resolve through `zoo.create_model` (close names for a typo). Every
image counts once: unreadable ones are skipped, counted in the result
(`skipped`) and named, and make the exit status 1 unless `--allow-skips`.
Bad input (an unknown model, a missing data folder) exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch
import yaml
from omegaconf import OmegaConf
from timm.data import create_dataset, create_transform, resolve_data_config

from zoo import UnknownModelError

from . import checkpoint as ckpt
from .data import DataLayoutError, check_root, eval_loader
from .distributed import DistInfo
from .engine import PRECISIONS, create_model, evaluate, preprocessing_cfg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo-validate", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="image folder (class sub-folders), or its parent with a split")
    p.add_argument("--split", default="validation", help="split folder to search for under --data")
    p.add_argument("--model", help="registered model name (default: the one in --checkpoint)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--pretrained", action="store_true", help="the model's pretrained weights")
    src.add_argument("--checkpoint", help="a zoo-train checkpoint dir, a run's checkpoints/ dir, or .safetensors")
    p.add_argument("--ema", action="store_true", help="the checkpoint's EMA weights")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the checkpoint's / model's)")
    p.add_argument("--model-kwargs", default="{}", help="JSON constructor arguments")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="bf16" if torch.cuda.is_available() else "fp32", choices=sorted(PRECISIONS))
    p.add_argument("--allow-skips", action="store_true",
                   help="exit 0 even if some images cannot be read (they are skipped and counted either way)")
    return p


def _checkpoint_model(path: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint dir and the model settings stored in its training state."""
    if path.is_dir() and not (path / ckpt.STATE_FILE).exists():
        latest = ckpt.find_latest(path)
        if latest is None:
            raise FileNotFoundError(f"no valid checkpoint under {path}")
        path = latest
    if path.is_file():
        return path, {}
    state = ckpt.load_state(path)
    config = yaml.safe_load(state["config_yaml"])
    return path, {"model": config["model"], "num_classes": state["num_classes"], "data": config["data"]}


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _validate(args)
    except (UnknownModelError, DataLayoutError) as err:
        print(f"zoo-validate: error: {err}", file=sys.stderr)
        return 2


def _validate(args: argparse.Namespace) -> int:
    model_cfg: dict[str, Any] = {"name": args.model, "kwargs": json.loads(args.model_kwargs)}
    num_classes, overlay = args.num_classes, None
    if args.checkpoint:
        path, stored = _checkpoint_model(Path(args.checkpoint))
        if stored:
            model_cfg = {**stored["model"], "pretrained": False}
            if args.model:
                model_cfg["name"] = args.model
            num_classes = num_classes or stored["num_classes"]
            overlay = preprocessing_cfg(OmegaConf.create(stored["data"]))
    elif args.pretrained:
        model_cfg["pretrained"] = True
    if not model_cfg.get("name"):
        raise SystemExit("zoo-validate: --model is required without a zoo-train checkpoint")
    check_root(args.data, f"--data {args.data}",
               f"an image folder with one sub-folder per class ({args.data}/<class>/<image>), or its parent "
               f"holding it as the {args.split} split ({args.data}/{args.split}/<class>/<image>)")

    default_classes = num_classes or 1000
    model = create_model(model_cfg, default_classes, overlay=overlay)
    if args.checkpoint:
        ckpt.load_weights(model, path, ema=args.ema)
    device = torch.device(args.device)
    model.to(device)

    data_config = resolve_data_config(model=model)
    dataset = create_dataset("", root=args.data, split=args.split, is_training=False)
    dataset.transform = create_transform(**data_config, is_training=False)
    loader = eval_loader(dataset, args.batch_size, args.workers)
    start = time.perf_counter()
    evaluation = evaluate(model, loader, DistInfo(device=device), args.precision)
    metrics = {k: v for k, v in evaluation.metrics.items() if k not in ("images", "skipped")}
    result = {"model": model_cfg["name"], "checkpoint": str(args.checkpoint) if args.checkpoint else None,
              "ema": args.ema, "images": int(evaluation.metrics["images"]), "skipped": evaluation.skipped,
              **{k: round(v, 3) for k, v in metrics.items()},
              "seconds": round(time.perf_counter() - start, 1), "data_config": data_config}
    print(json.dumps(result, default=str))
    if evaluation.skipped:
        if args.allow_skips:
            print(f"zoo-validate: warning: {evaluation.skips_message('images', None)}", file=sys.stderr)
            return 0
        print(f"zoo-validate: error: {evaluation.skips_message('images', 'pass --allow-skips')}", file=sys.stderr)
        return 1
    return 0
