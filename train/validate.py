"""`zoo-validate`: top-1 / top-5 of registered models on an image-folder dataset.

    zoo-validate --model 'ravlt_*' mavit_t --pretrained --data /data/imagenet --results-file results.csv

The preprocessing is the model's own (`pretrained_cfg` through timm's
resolve_data_config / create_transform): the official one for pretrained
weights, the training run's for a zoo-train checkpoint (stored in it);
`--img-size`, `--crop-pct` and `--interpolation` override it. Model names and
wildcards resolve through `zoo.factory.resolve_model_names` (close names for a
typo). Precision: fp32 on CPU; on a GPU, autocast in the dtype the model's paper
evaluated with (`--precision auto`, see `paper_precision`). `--results-file`
writes timm's results-imagenet.csv columns plus the paper's top-1 and the
difference. Every image counts once: unreadable ones are skipped, counted in
the result (`skipped`) and named, and make the exit status 1 unless
`--allow-skips`. A model that fails in a run of several is reported and the run
goes on (exit status 1). Bad input (an unknown model, a missing data folder or
checkpoint) exits with status 2.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import OmegaConf
from timm.data import create_dataset, create_transform, resolve_data_config

from zoo import UnknownModelError
from zoo.factory import resolve_model_names

from . import checkpoint as ckpt
from .data import DataLayoutError, check_root, eval_loader
from .distributed import DistInfo
from .engine import PRECISIONS, create_model, evaluate, preprocessing_cfg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo-validate", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="image folder (class sub-folders), or its parent with a split")
    p.add_argument("--split", default="validation", help="split folder to search for under --data")
    p.add_argument("--model", nargs="+", metavar="NAME",
                   help="registered model names or wildcards (quote them); default: the one in --checkpoint")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--pretrained", action="store_true", help="the model's pretrained weights")
    src.add_argument("--checkpoint", help="a zoo-train checkpoint dir, a run's checkpoints/ dir, or .safetensors")
    p.add_argument("--ema", action="store_true", help="the checkpoint's EMA weights")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the checkpoint's / model's)")
    p.add_argument("--model-kwargs", default="{}", help="JSON constructor arguments")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="auto", choices=["auto", *sorted(PRECISIONS)],
                   help="auto: fp32 on CPU, on a GPU the dtype of the model's paper (paper_precision)")
    p.add_argument("--img-size", type=int, help="input size (default: the model's pretrained_cfg)")
    p.add_argument("--crop-pct", type=float, help="centre-crop fraction (default: the model's pretrained_cfg)")
    p.add_argument("--interpolation", choices=("bilinear", "bicubic", "nearest", "lanczos"),
                   help="resize interpolation (default: the model's pretrained_cfg)")
    p.add_argument("--results-file", help="CSV of every model's results (timm's results-imagenet.csv columns, "
                                          "plus paper_top1 and top1_diff)")
    p.add_argument("--allow-skips", action="store_true",
                   help="exit 0 even if some images cannot be read (they are skipped and counted either way)")
    return p


class CheckpointError(ValueError):
    """--checkpoint names nothing that can be loaded."""


_CHECKPOINT_FORMS = ("a checkpoint directory step-<n> (with state.pt and model.safetensors), a run's checkpoints/ "
                     "folder or the run directory above it (its newest checkpoint), or a .safetensors file")


def checkpoint_model(path: Path, prog: str = "zoo-validate") -> tuple[Path, dict[str, Any]]:
    """The checkpoint `path` names, and the model settings stored in its training state.

    `path` is a checkpoint directory, a run's checkpoints/ folder or the run directory above it
    (then its newest checkpoint, named on stderr: never an older one in its place), or a
    .safetensors file (no stored settings). Anything else, or a newest checkpoint that cannot be
    read, is a CheckpointError saying what was found and what to pass.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"--checkpoint {path}: not a .safetensors file; expected {_CHECKPOINT_FORMS}")
        return path, {}
    if not path.is_dir():
        raise CheckpointError(f"--checkpoint {path} does not exist; expected {_CHECKPOINT_FORMS}")
    if not (path / ckpt.STATE_FILE).exists():
        folder = path if ckpt.list_checkpoints(path) else path / "checkpoints"
        found = ckpt.list_checkpoints(folder)
        if not found:
            raise CheckpointError(f"--checkpoint {path}: no checkpoint there (no step-<n> folder in {folder}); "
                                  f"expected {_CHECKPOINT_FORMS}")
        newest = found[-1]
        problems = ckpt.unreadable_files(newest)
        if problems:
            readable = [p.name for p in found[:-1] if ckpt.is_valid(p)]
            raise CheckpointError(
                f"--checkpoint {path}: its newest checkpoint {newest} cannot be read ("
                + "; ".join(f"{f.name}: {why}" for f, why in problems.items()) + "). "
                + (f"Pass an older one explicitly to use it: {', '.join(str(folder / n) for n in readable)}."
                   if readable else "No older checkpoint is readable either."))
        print(f"{prog}: --checkpoint {path}: using its newest checkpoint {newest} "
              f"({len(found)} checkpoint{'s' if len(found) > 1 else ''} in {folder})", file=sys.stderr)
        path = newest
    problems = ckpt.unreadable_files(path)
    if problems:
        raise CheckpointError(f"--checkpoint {path} cannot be read: "
                              + "; ".join(f"{f.name}: {why}" for f, why in problems.items()))
    state = ckpt.load_state(path)
    config = yaml.safe_load(state["config_yaml"])
    return path, {"model": config["model"], "num_classes": state["num_classes"], "data": config["data"]}


def paper_precision(model_name: str) -> str:
    """The dtype a model's paper evaluated in on a GPU: 'fp32' where the recipe runs without AMP, else 'fp16'.

    The zoo's recipe (configs/experiment/<model>_in1k.yaml) states the paper's setting: fp32 where the
    official code runs without AMP (plain ViG, SOFT, iFormer-S/B), and otherwise the papers' fp16 autocast (their
    recipes train in bf16 only because it needs no loss scaler). Models without a recipe (timm's, MAXIM,
    the GGeM ViTs): fp16, timm's validate default.
    """
    from importlib import resources

    from hydra import compose, initialize_config_module

    from .schema import register_configs

    experiment = f"{model_name.split('.')[0]}_in1k"
    if not resources.files("zoo.configs").joinpath("experiment", f"{experiment}.yaml").is_file():
        return "fp16"  # (the train config's experiment group is optional: Hydra would ignore a missing one)
    register_configs()
    with initialize_config_module(config_module="zoo.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}"])
    return "fp32" if cfg.precision == "fp32" else "fp16"


def paper_top1(model_name: str) -> float | None:
    """The paper's ImageNet-1k top-1 (%) from the model's metadata (zoo.metadata), or None."""
    try:
        from zoo import metadata
        return metadata.reported_top1(model_name)
    except Exception:  # no metadata (a timm model) or none in this version of the zoo: the column stays empty
        return None


RESULT_FIELDS = ["model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size", "crop_pct",
                 "interpolation", "paper_top1", "top1_diff"]


def write_results(path: Path, results: list[dict[str, Any]]) -> None:
    """timm's results-imagenet.csv columns (plus the paper's top-1 and the difference, and an error column)."""
    fields = RESULT_FIELDS + (["error"] if any("error" in r for r in results) else [])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        names = resolve_model_names(args.model) if args.model else [None]
        if args.checkpoint and len(names) > 1:
            raise CheckpointError(f"--checkpoint holds one model's weights, but --model names {len(names)}: "
                                  f"{', '.join(names)}")
        check_root(args.data, f"--data {args.data}",
                   f"an image folder with one sub-folder per class ({args.data}/<class>/<image>), or its parent "
                   f"holding it as the {args.split} split ({args.data}/{args.split}/<class>/<image>)")
        status, results = 0, []
        for name in names:
            if len(names) == 1:
                result, code = _validate(args, name)
            else:  # one model's failure is its row; the others still run
                try:
                    result, code = _validate(args, name)
                except (UnknownModelError, DataLayoutError, CheckpointError):
                    raise
                except Exception as err:
                    result, code = {"model": name, "error": f"{type(err).__name__}: {err}"}, 1
                    print(json.dumps(result), flush=True)
                    print(f"zoo-validate: error: {name}: {result['error']}", file=sys.stderr)
            results.append(result)
            status = max(status, code)
    except (UnknownModelError, DataLayoutError, CheckpointError) as err:
        print(f"zoo-validate: error: {err}", file=sys.stderr)
        return 2
    if args.results_file:
        write_results(Path(args.results_file), results)
        print(f"zoo-validate: wrote {args.results_file} ({len(results)} models)", file=sys.stderr)
    return status


def _validate(args: argparse.Namespace, model_name: str | None) -> tuple[dict[str, Any], int]:
    """One model: its result (printed as a JSON line) and the exit status it asks for."""
    model_cfg: dict[str, Any] = {"name": model_name, "kwargs": json.loads(args.model_kwargs)}
    num_classes, overlay = args.num_classes, None
    if args.checkpoint:
        path, stored = checkpoint_model(Path(args.checkpoint))
        if stored:
            model_cfg = {**stored["model"], "pretrained": False}
            if model_name:
                model_cfg["name"] = model_name
            num_classes = num_classes or stored["num_classes"]
            overlay = preprocessing_cfg(OmegaConf.create(stored["data"]))
    elif args.pretrained:
        model_cfg["pretrained"] = True
    if not model_cfg.get("name"):
        raise CheckpointError("--model is required without a zoo-train checkpoint (a .safetensors file holds "
                              "weights only)")

    default_classes = num_classes or 1000
    model = create_model(model_cfg, default_classes, overlay=overlay)
    if args.checkpoint:
        ckpt.load_weights(model, path, ema=args.ema)
    device = torch.device(args.device)
    model.to(device)
    precision = args.precision
    if precision == "auto":
        precision = "fp32" if device.type == "cpu" else paper_precision(model_cfg["name"])

    overrides = {"img_size": args.img_size, "crop_pct": args.crop_pct, "interpolation": args.interpolation}
    data_config = resolve_data_config({k: v for k, v in overrides.items() if v is not None}, model=model)
    dataset = create_dataset("", root=args.data, split=args.split, is_training=False)
    dataset.transform = create_transform(**data_config, is_training=False)
    loader = eval_loader(dataset, args.batch_size, args.workers)
    start = time.perf_counter()
    evaluation = evaluate(model, loader, DistInfo(device=device), precision)
    metrics = {k: v for k, v in evaluation.metrics.items() if k not in ("images", "skipped")}
    top1, top5 = metrics["top1"], metrics["top5"]
    reported = paper_top1(model_cfg["name"])
    result = {"model": model_cfg["name"], "checkpoint": str(args.checkpoint) if args.checkpoint else None,
              "ema": args.ema, "images": int(evaluation.metrics["images"]), "skipped": evaluation.skipped,
              **{k: round(v, 3) for k, v in metrics.items()},
              "top1_err": round(100 - top1, 3), "top5_err": round(100 - top5, 3),
              "param_count": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
              "img_size": data_config["input_size"][-1], "crop_pct": data_config["crop_pct"],
              "interpolation": data_config["interpolation"], "precision": precision,
              "paper_top1": reported, "top1_diff": None if reported is None else round(top1 - reported, 3),
              "seconds": round(time.perf_counter() - start, 1), "data_config": data_config}
    print(json.dumps(result, default=str), flush=True)
    if evaluation.skipped:
        if args.allow_skips:
            print(f"zoo-validate: warning: {evaluation.skips_message('images', None)}", file=sys.stderr)
            return result, 0
        print(f"zoo-validate: error: {evaluation.skips_message('images', 'pass --allow-skips')}", file=sys.stderr)
        return result, 1
    return result, 0
