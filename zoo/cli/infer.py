"""`zoo-infer`: classify your own images with a zoo model, as timm's `inference.py` does.

    zoo-infer photo.jpg --model ravlt_s --pretrained
    zoo-infer photos/ 'more/**/*.png' --model ravlt_s --pretrained --topk 3 --output predictions.csv
    zoo-infer photos/ --checkpoint outputs/digits/checkpoints --ema --output predictions.json

Inputs are image files, folders (searched recursively for image files) or glob patterns. Each image goes
through the model's own preprocessing (timm's `resolve_model_data_config` + `create_transform`: the
official one for `--pretrained`, the training run's for a zoo-train `--checkpoint`). The top-k classes are
named by, in this order: `--class-map`, the class folders of the checkpoint's training data (when that
folder is on this machine), the model's `pretrained_cfg` label names, ImageNet's names for 1000- and
11k-class models (`timm.data.ImageNetInfo`); else they are printed as indices.

An image that cannot be read is reported (file and reason), skipped and counted in the summary; the exit
status is then 1 (0 when every image was classified, 2 for a usage error).
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from timm.data import (
    CustomDatasetInfo,
    ImageNetInfo,
    create_transform,
    infer_imagenet_subset,
    resolve_model_data_config,
)
from timm.data.readers.class_map import load_class_map
from timm.data.readers.img_extensions import get_img_extensions
from torch.utils.data import DataLoader, Dataset

import zoo
from zoo.pretrained import CheckpointFileError

__all__ = ["Prediction", "Skipped", "expand_inputs", "class_names", "predict", "write_results", "main"]

# timm's folder datasets read .png/.jpg/.jpeg; a user's own photos come in a few more formats PIL reads.
IMAGE_SUFFIXES = tuple(sorted(set(get_img_extensions()) | {".bmp", ".gif", ".tif", ".tiff", ".webp"}))
OUTPUT_FORMATS = (".csv", ".json")


class UsageError(ValueError):
    """Arguments zoo-infer cannot act on (no such input, no weights named, an unknown output format)."""


@dataclass
class Prediction:
    file: str
    indices: list[int]
    probs: list[float]
    labels: list[str] | None = None


@dataclass
class Skipped:
    file: str
    error: str


@dataclass
class Results:
    predictions: list[Prediction] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


# ---------------------------------------------------------------------------- inputs
def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def expand_inputs(inputs: Sequence[str]) -> tuple[list[Path], bool]:
    """The image files named by `inputs` (files, folders, globs), in order, each once.

    Also returns whether a folder or glob was expanded (a progress bar is then worth showing). A file named
    directly is kept whatever its suffix (it is reported if it is not an image); files found in folders or
    by a glob are kept if their suffix is an image format's.
    """
    files: list[Path] = []
    expanded = False
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found, expanded = _images_under(path), True
            if not found:
                raise UsageError(f"{item}: the folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        elif path.is_file():
            found = [path]
        elif glob.has_magic(item):
            matches = [Path(m) for m in sorted(glob.glob(item, recursive=True))]
            found, expanded = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES], True
            found += [f for m in matches if m.is_dir() for f in _images_under(m)]
            if not found:
                raise UsageError(f"{item}: the pattern matches no image files")
        else:
            raise UsageError(f"{item}: no such file or folder")
        files += found
    return list(dict.fromkeys(files)), expanded


class _ImageFiles(Dataset):
    """(index, image tensor or None, reason it could not be read) per file."""

    def __init__(self, files: Sequence[Path], transform: Any):
        self.files, self.transform = list(files), transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            with Image.open(self.files[index]) as image:
                return index, self.transform(image.convert("RGB")), ""
        except (OSError, ValueError, Image.DecompressionBombError) as err:  # PIL's errors for bad files
            return index, None, f"cannot read it as an image ({type(err).__name__}: {err})"


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> tuple[list[int], torch.Tensor | None,
                                                                             list[tuple[int, str]]]:
    read = [(i, x) for i, x, _ in items if x is not None]
    failed = [(i, err) for i, x, err in items if x is None]
    batch = torch.stack([x for _, x in read]) if read else None
    return [i for i, _ in read], batch, failed


# ---------------------------------------------------------------------------- model and class names
def _from_checkpoint(args: argparse.Namespace, model_kwargs: dict[str, Any]) -> tuple[torch.nn.Module, dict]:
    """The model of a zoo-train checkpoint, as zoo-validate loads it; and the settings stored in it."""
    try:
        from omegaconf import OmegaConf

        from zoo.train import checkpoint as ckpt
        from zoo.train.engine import create_model, preprocessing_cfg
        from zoo.train.validate import CheckpointError, checkpoint_model
    except ImportError as err:
        raise UsageError(f"--checkpoint reads zoo-train checkpoints, which needs the train extra "
                         f"({err.name} is missing): pip install 'zoo-backbones[train]'") from err
    if not Path(args.checkpoint).exists():
        raise UsageError(f"--checkpoint {args.checkpoint}: no such file or folder")
    try:
        path, stored = checkpoint_model(Path(args.checkpoint), prog="zoo-infer")
    except CheckpointError as err:  # not a checkpoint, or its newest one unreadable: the message says what to pass
        raise UsageError(str(err)) from err
    model_cfg: dict[str, Any] = {"name": args.model, "kwargs": model_kwargs}
    overlay = None
    if stored:
        model_cfg = {**stored["model"], "pretrained": False, **({"name": args.model} if args.model else {})}
        overlay = preprocessing_cfg(OmegaConf.create(stored["data"]))
    if not model_cfg.get("name"):
        raise UsageError(f"--model is required: {path} is a weights file, not a zoo-train checkpoint")
    _check_model_name(model_cfg["name"])
    num_classes = args.num_classes or stored.get("num_classes") or 1000
    model = create_model(model_cfg, num_classes, overlay=overlay)
    try:
        ckpt.load_weights(model, path, ema=args.ema)
    except RuntimeError as err:  # safetensors' strict load: the missing / unexpected keys
        raise UsageError(f"{path} does not fit {model_cfg['name']} with {num_classes} classes "
                         f"(--model / --model-kwargs / --num-classes): {err}") from err
    return model, stored


def _check_model_name(name: str) -> None:
    """Fail before anything is built or loaded: an unknown name (with zoo.create_model's close matches), or a
    model without a classifier."""
    import timm

    architecture = name.split(":")[-1].split(".")[0]
    if not timm.is_model(architecture):
        zoo.create_model(name)  # raises UnknownModelError naming the close matches; builds nothing
    cfg = timm.get_pretrained_cfg(architecture)
    if cfg is not None and cfg.num_classes == 0:
        raise UsageError(_NO_CLASSIFIER.format(name=name))


_NO_CLASSIFIER = ("{name} has no classifier (num_classes=0): zoo-infer classifies images; "
                  "MAXIM's restoration models run with zoo-restore")


def load_model(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The classifier `--model` / `--pretrained` / `--checkpoint` name, and a zoo-train checkpoint's settings."""
    try:
        model_kwargs = json.loads(args.model_kwargs)
    except json.JSONDecodeError as err:
        raise UsageError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r} ({err})") from err
    if not isinstance(model_kwargs, dict):
        raise UsageError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
    if args.checkpoint:
        model, stored = _from_checkpoint(args, model_kwargs)
    elif args.pretrained:
        if not args.model:
            raise UsageError("--pretrained needs --model (a registered model name)")
        _check_model_name(args.model)
        extra = {"num_classes": args.num_classes} if args.num_classes else {}
        model, stored = zoo.create_model(args.model, pretrained=True, **extra, **model_kwargs), {}
    else:
        raise UsageError("name the weights: --pretrained (the model's official weights) or --checkpoint "
                         "(a zoo-train checkpoint); a randomly initialised model's predictions mean nothing")
    if not getattr(model, "num_classes", 0):
        raise UsageError(_NO_CLASSIFIER.format(name=args.model or type(model).__name__))
    return model.eval(), stored


def _folder_class_names(data: dict[str, Any], num_classes: int) -> tuple[list[str] | None, str]:
    """The class folders of a zoo-train run's data, in the trainer's label order (timm's folder reader)."""
    from timm.data import create_dataset

    root = data.get("root")
    if data.get("name") or root is None:
        return None, "the checkpoint's data is not a class-folder dataset given by data.root"
    if not Path(root).is_dir():
        return None, f"the checkpoint's data.root {root} is not on this machine"
    for split in dict.fromkeys(s for s in (data.get("val_split"), data.get("train_split")) if s):
        try:
            dataset = create_dataset("", root=root, split=split, is_training=False,
                                     class_map=data.get("class_map") or "")
        except (OSError, ValueError, AssertionError, RuntimeError):  # timm's reader on a folder it cannot use
            continue
        class_to_idx = getattr(dataset.reader, "class_to_idx", None) or {}
        if len(class_to_idx) == num_classes:
            return sorted(class_to_idx, key=class_to_idx.get), f"the class folders of {root}"
    return None, f"the class folders under {root} are not the checkpoint's {num_classes} classes"


def _imagenet_names(num_classes: int, names: list[str] | None = None) -> list[str] | None:
    """ImageNet's class descriptions for a model of its size (given names: only if they are its synsets)."""
    subset = infer_imagenet_subset({"num_classes": num_classes})
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    if names is not None and list(names) != info.label_names():
        return None
    return info.label_descriptions()


def class_names(model: torch.nn.Module, stored: dict[str, Any],
                class_map: str | None = None) -> tuple[list[str] | None, str]:
    """The names of the model's classes in index order (None: print indices), and where they come from."""
    num_classes = model.num_classes
    if class_map:
        class_to_idx = load_class_map(class_map)
        if sorted(class_to_idx.values()) != list(range(num_classes)):
            raise UsageError(f"--class-map {class_map} names {len(class_to_idx)} classes, with indices that are not "
                             f"0..{num_classes - 1}: the model has {num_classes} classes")
        return sorted(class_to_idx, key=class_to_idx.get), f"--class-map {class_map}"
    why_not = ""
    if stored:
        names, source = _folder_class_names(stored["data"], num_classes)
        if names is not None:
            return _imagenet_names(num_classes, names) or names, source
        why_not = f" ({source})"
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if cfg.get("label_names") and len(cfg["label_names"]) == num_classes:
        info = CustomDatasetInfo(cfg["label_names"], cfg.get("label_descriptions"))
        return info.label_descriptions(), "the model's pretrained_cfg label names"
    if not stored:
        names = _imagenet_names(num_classes)
        if names is not None:
            return names, f"ImageNet ({infer_imagenet_subset({'num_classes': num_classes})}, timm.data.ImageNetInfo)"
    return None, f"none: classes are printed as indices{why_not}"


# ---------------------------------------------------------------------------- prediction
class _Progress:
    """tqdm's bar on stderr when tqdm is installed, else a count printed once per batch."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.bar = total, 0, enabled, None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, unit="img", desc="zoo-infer", file=sys.stderr)
            except ImportError:
                pass

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled:
            print(f"zoo-infer: {self.done}/{self.total} images", file=sys.stderr, flush=True)

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def predict(model: torch.nn.Module, files: Sequence[Path], transform: Any, names: Sequence[str] | None = None,
            topk: int = 5, batch_size: int = 32, workers: int = 0, device: str = "cpu",
            progress: bool = False) -> Results:
    """Top-k softmax probabilities of every readable file; the others are skipped with their reason."""
    loader = DataLoader(_ImageFiles(files, transform), batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate)
    k = min(topk, model.num_classes)
    results, bar = Results(), _Progress(len(files), progress)
    model.to(device)
    try:
        with torch.inference_mode():
            for read, batch, failed in loader:
                for index, error in failed:
                    results.skipped.append(Skipped(str(files[index]), error))
                    bar.write(f"zoo-infer: skipped {files[index]}: {error}")
                if batch is not None:
                    probs, indices = model(batch.to(device)).float().softmax(-1).topk(k)
                    for index, p, c in zip(read, probs.tolist(), indices.tolist()):
                        labels = [names[i] for i in c] if names is not None else None
                        results.predictions.append(Prediction(str(files[index]), c, p, labels))
                bar.update(len(read) + len(failed))
    finally:
        bar.close()
    return results


# ---------------------------------------------------------------------------- output
def _describe(prediction: Prediction) -> str:
    labels = prediction.labels or [f"class {i}" for i in prediction.indices]
    return ", ".join(f"{label} [{i}] {p:.1%}" for label, i, p in zip(labels, prediction.indices, prediction.probs))


def write_results(path: Path, results: Results, topk: int, model: str, classes: str) -> None:
    """CSV (one row per file: top-k index / label / prob columns, and an error column) or JSON, by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        records = [{"file": p.file, "topk": [{"index": i, "label": p.labels[n] if p.labels else None, "prob": prob}
                                              for n, (i, prob) in enumerate(zip(p.indices, p.probs))]}
                   for p in results.predictions]
        skipped = [{"file": s.file, "error": s.error} for s in results.skipped]
        path.write_text(json.dumps({"model": model, "classes": classes, "results": records, "skipped": skipped},
                                   indent=1) + "\n")
        return
    k = max((len(p.indices) for p in results.predictions), default=topk)
    columns = ["file", *(f"{c}_{n}" for n in range(1, k + 1) for c in ("index", "label", "prob")), "error"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for p in results.predictions:
            row = {"file": p.file, "error": ""}
            for n, (i, prob) in enumerate(zip(p.indices, p.probs), start=1):
                row.update({f"index_{n}": i, f"label_{n}": p.labels[n - 1] if p.labels else "", f"prob_{n}": prob})
            writer.writerow(row)
        writer.writerows({"file": s.file, "error": s.error} for s in results.skipped)


# ---------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo-infer", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:5]))
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    p.add_argument("--model", "-m", help="registered model name (default: the one in --checkpoint)")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", action="store_true", help="the model's official weights")
    weights.add_argument("--checkpoint", help="a zoo-train checkpoint dir, a run's checkpoints/ dir, or .safetensors")
    p.add_argument("--ema", action="store_true", help="the checkpoint's EMA weights")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the checkpoint's / model's)")
    p.add_argument("--model-kwargs", default="{}", help="JSON constructor arguments")
    p.add_argument("--class-map", help="class names, one per line in index order (.txt), as timm's --class-map")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="image-reading processes (0: read in this process)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--output", "-o", type=Path, help="write the results to this .csv or .json file")
    p.add_argument("--quiet", "-q", action="store_true", help="no line per image on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for folders and globs")
    return p


def run(args: argparse.Namespace) -> int:
    if args.topk < 1 or args.batch_size < 1 or args.workers < 0:
        raise UsageError(f"--topk and --batch-size must be at least 1 and --workers at least 0, got "
                         f"{args.topk}, {args.batch_size} and {args.workers}")
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_FORMATS:
        raise UsageError(f"--output {args.output}: the suffix says the format, one of {', '.join(OUTPUT_FORMATS)}")
    files, expanded = expand_inputs(args.inputs)
    model, stored = load_model(args)
    names, classes = class_names(model, stored, args.class_map)
    transform = create_transform(**resolve_model_data_config(model), is_training=False)
    results = predict(model, files, transform, names, topk=args.topk, batch_size=args.batch_size,
                      workers=args.workers, device=args.device, progress=expanded and not args.no_progress)
    if not args.quiet:
        for prediction in results.predictions:
            print(f"{prediction.file}: {_describe(prediction)}")
    name = args.model or model.pretrained_cfg.get("architecture", type(model).__name__)
    if args.output is not None:
        write_results(args.output, results, args.topk, name, classes)
    summary = f"zoo-infer: {len(results.predictions)} of {len(files)} images classified by {name}"
    if results.skipped:
        summary += f", {len(results.skipped)} skipped (unreadable: {', '.join(s.file for s in results.skipped)})"
    summary += f"; class names: {classes}" + (f"; results in {args.output}" if args.output else "")
    print(summary, file=sys.stderr)
    return 1 if results.skipped else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (UsageError, zoo.UnknownModelError, FileNotFoundError, CheckpointFileError) as err:
        print(f"zoo-infer: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
