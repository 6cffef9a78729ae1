"""One metadata file per model card: the facts the cards, the README's model table and the tools read.

    from zoo import metadata
    metadata.card_names()                  # ('ggem', 'inception_transformer', ...)
    metadata.load("ravlt")["variants"]     # {'ravlt_t': {...}, ...}
    metadata.variant("ravlt_s")            # the variant's entry, with its card's name under "card"
    metadata.reported_top1("ravlt_s")      # 84.4 (ImageNet-1k top-1 from the paper / README), or None

Each `<card>.yaml` here follows the pattern of mmpretrain's `metafile.yml`: the paper, the
official code, license, citation, and one entry per registered model name with its exact
parameter count, its FLOPs as the zoo counts them (`zoo.flops`), the paper's own figure and
the metrics the authors reported, each with the line it comes from. The prose of the card
(architecture, fidelity, checkpoints, ...) is kept here too, as markdown, so a card is
generated from this one source (`python -m zoo.cards`), from a checkout or an installed wheel.
`tests/test_cards.py` checks every file against the registry.
"""
from __future__ import annotations

import functools
from importlib import resources
from typing import Any

__all__ = ["card_names", "load", "variant", "card_of", "reported_metrics", "reported_top1", "METRICS", "DATASETS",
           "MetadataError"]

# metric key -> (Hugging Face model-index type, display name, short label for tables)
METRICS = {
    "top1": ("accuracy", "Top-1 accuracy", "top-1"),
    "top5": ("accuracy", "Top-5 accuracy", "top-5"),
    "box_ap": ("AP", "box AP", "AP<sup>b</sup>"),
    "mask_ap": ("AP", "mask AP", "AP<sup>m</sup>"),
    "miou": ("mIoU", "mIoU", "mIoU"),
    "psnr": ("PSNR", "PSNR (dB)", "PSNR"),
    "ssim": ("SSIM", "SSIM", "SSIM"),
}
# dataset key -> (display name, task type of its metrics)
DATASETS = {
    "imagenet-1k": ("ImageNet-1k", "image-classification"),
    "coco": ("COCO", "object-detection"),
    "ade20k": ("ADE20K", "image-segmentation"),
}

_REQUIRED = ("title", "summary", "paper", "code", "license", "citation", "flops_note", "deviations", "variants")
_VARIANT_REQUIRED = ("params", "resolution", "flops")


class MetadataError(ValueError):
    """A metadata file is missing a field or names something that does not exist."""


def card_names() -> tuple[str, ...]:
    """The cards that have a metadata file (= the files model_cards/<card>.md)."""
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".yaml")))


@functools.cache
def _load(card: str) -> dict[str, Any]:
    import yaml  # a dependency of timm

    path = resources.files(__name__).joinpath(f"{card}.yaml")
    if not path.is_file():
        raise MetadataError(f"no metadata for card {card!r}; cards: {', '.join(card_names())}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise MetadataError(f"zoo/metadata/{card}.yaml: missing {', '.join(missing)}")
    for name, entry in data["variants"].items():
        missing = [key for key in _VARIANT_REQUIRED if key not in entry]
        if missing:
            raise MetadataError(f"zoo/metadata/{card}.yaml: variant {name} is missing {', '.join(missing)}")
        for metric in entry.get("metrics", []):
            if metric["metric"] not in METRICS or metric["dataset"] not in DATASETS and "task" not in metric:
                raise MetadataError(f"zoo/metadata/{card}.yaml: {name}: unknown metric or dataset in {metric}; "
                                    f"metrics: {sorted(METRICS)}, datasets: {sorted(DATASETS)} (or give 'task')")
            if metric.get("source") not in data.get("sources", {}):
                raise MetadataError(f"zoo/metadata/{card}.yaml: {name}: metric {metric} names source "
                                    f"{metric.get('source')!r}, not one of sources: {sorted(data.get('sources', {}))}")
    data["card"] = card
    return data


def load(card: str) -> dict[str, Any]:
    """The metadata of one card (a fresh copy is not made: do not modify it)."""
    return _load(card)


@functools.cache
def _index() -> dict[str, str]:
    return {name: card for card in card_names() for name in _load(card)["variants"]}


def card_of(model_name: str) -> str | None:
    """The card that describes `model_name` (a registered name, with or without a `.tag`), or None."""
    return _index().get(model_name.split(".")[0])


def variant(model_name: str) -> dict[str, Any]:
    """The metadata entry of one registered model name."""
    card = card_of(model_name)
    if card is None:
        raise MetadataError(f"no metadata for model {model_name!r}")
    return _load(card)["variants"][model_name.split(".")[0]]


def reported_metrics(model_name: str) -> list[dict[str, Any]]:
    """The metrics the authors reported for `model_name`'s official weights (empty if none)."""
    return list(variant(model_name).get("metrics", [])) if card_of(model_name) else []


def reported_top1(model_name: str) -> float | None:
    """The reported ImageNet-1k top-1 (%) of `model_name`, or None (not reported, or not a classifier)."""
    for metric in reported_metrics(model_name):
        if metric["metric"] == "top1" and metric["dataset"] == "imagenet-1k":
            return float(metric["value"])
    return None
